"""Shared by the checkpoint tests: run a training script in a child process, kill it, run it again."""
import json
import signal
import subprocess
import sys
from pathlib import Path
import time

import numpy as np


def position(checkpoint: Path) -> dict:
    """Where the run stood when ``checkpoint`` was written (its ``fit_state``'s position)."""
    with np.load(checkpoint) as entries:
        return json.loads(str(entries["fit_state"][()]))["position"]


def assert_same_outcome(expected: dict, got: dict) -> None:
    """The same arrays, bit for bit."""
    assert sorted(expected) == sorted(got)
    for key in expected:
        assert expected[key].dtype == got[key].dtype and expected[key].shape == got[key].shape, key
        assert expected[key].tobytes() == got[key].tobytes(), key  # bit for bit


def kill_then_finish(child: Path, name: str, checkpoint: Path, result: Path, duration: float,
                     kills: int) -> tuple[list[float], list[dict]]:
    """Run ``child name checkpoint result`` and SIGKILL it once half-way and ``kills - 1`` times at random.

    Each run resumes from ``checkpoint``; a last run finishes the training
    unless one finished before its kill. Returns the delays and the
    positions the killed runs left in the checkpoint.
    """
    delays = [0.5 * duration, *np.random.default_rng().uniform(0.0, duration, size=kills - 1)]
    resumed_from = []
    for delay in delays:
        process = subprocess.Popen([sys.executable, str(child), name, str(checkpoint), str(result)],
                                   stdout=subprocess.PIPE)
        assert process.stdout.readline() == b"ready\n"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        if result.exists():  # it finished before the kill
            break
        if checkpoint.exists():
            resumed_from.append(position(checkpoint))
    if not result.exists():
        subprocess.run([sys.executable, str(child), name, str(checkpoint), str(result)], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    return delays, resumed_from

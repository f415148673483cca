"""NetClassifier/NetRegressor(checkpoint=): a fit killed at random moments and fitted again ends bit for bit."""
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from layerkit.sklearn import NetClassifier, NetRegressor
from sklearn_checkpoint_runs import RUNS, outcome, slow_epochs, train
from kill_and_resume import assert_same_outcome, kill_then_finish, position

CHILD = Path(__file__).with_name("sklearn_checkpoint_runs.py")
KILLS = 2


@pytest.mark.parametrize("name", ["adam classifier", "sgd adaptive, early stopping"])
def test_an_estimator_fit_killed_at_random_moments_and_fitted_again_ends_bit_for_bit(name, tmp_path, monkeypatch):
    expected = outcome(train(name))
    from layerkit.sklearn._stopping import MLPEpochs
    monkeypatch.setattr(MLPEpochs, "on_epoch_end", MLPEpochs.on_epoch_end)  # undone after the test
    slow_epochs()
    started = time.perf_counter()
    assert_same_outcome(expected, outcome(train(name, str(tmp_path / "uninterrupted.npz"))))
    duration = time.perf_counter() - started  # with the child's pauses, so the kills land while it trains
    checkpoint, result = tmp_path / "run.npz", tmp_path / "result.npz"
    delays, resumed_from = kill_then_finish(CHILD, name, checkpoint, result, duration, KILLS)
    with np.load(result) as got:
        assert_same_outcome(expected, dict(got))
    assert any(0 < position["epoch"] for position in resumed_from), \
        f"no kill landed after a checkpoint (delays {delays}); the test resumed nothing"


class Crash(Exception):
    pass


@pytest.mark.parametrize("name", sorted(RUNS))
@pytest.mark.parametrize("crash_after", [1, 4, 20])
def test_a_fit_that_crashed_after_some_epochs_resumes_to_the_same_end(name, crash_after, tmp_path, monkeypatch):
    """An exception after the checkpoint of epoch ``crash_after`` stands in for the kill."""
    expected = outcome(train(name))
    from layerkit._checkpoint import Checkpoint
    original, saves = Checkpoint.after_epoch, []

    def after_epoch(self, run):
        original(self, run)
        saves.append(run.position.epoch)
        if len(saves) == crash_after:
            raise Crash

    monkeypatch.setattr(Checkpoint, "after_epoch", after_epoch)
    checkpoint = str(tmp_path / "run.npz")
    with pytest.raises(Crash):
        train(name, checkpoint)
    assert position(checkpoint)["epoch"] == crash_after
    monkeypatch.setattr(Checkpoint, "after_epoch", original)
    assert_same_outcome(expected, outcome(train(name, checkpoint)))
    # a finished run's checkpoint: fitting again gives the same estimator, without training
    assert_same_outcome(expected, outcome(train(name, checkpoint)))


def test_checkpoint_is_a_parameter(tmp_path):
    path = tmp_path / "run.npz"
    for cls in (NetClassifier, NetRegressor):
        assert cls().get_params()["checkpoint"] is None
        est = cls(checkpoint=path)
        assert est.get_params()["checkpoint"] is path
        assert clone(est).checkpoint == path
        assert est.set_params(checkpoint=str(path)).checkpoint == str(path)
        with pytest.raises(ValueError, match="checkpoint"):
            cls(checkpoint=3).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_checkpoint_refuses_lbfgs_warm_start_partial_fit_and_an_unseeded_split(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = (x[:, 0] > 0).astype(int)
    path = tmp_path / "run.npz"
    with pytest.raises(ValueError, match="lbfgs"):
        NetClassifier((4,), solver="lbfgs", checkpoint=path).fit(x, y)
    with pytest.raises(ValueError, match="warm_start"):
        NetClassifier((4,), warm_start=True, checkpoint=path).fit(x, y)
    with pytest.raises(ValueError, match="partial_fit"):
        NetClassifier((4,), checkpoint=path).partial_fit(x, y, classes=[0, 1])
    with pytest.raises(ValueError, match="partial_fit"):
        NetRegressor((4,), checkpoint=path).partial_fit(x, x[:, 0])
    with pytest.raises(ValueError, match="random_state"):  # the held-out rows must be the same on resume
        NetClassifier((4,), early_stopping=True, checkpoint=path).fit(x, y)
    assert not path.exists()


def test_a_checkpoint_of_another_estimator_is_refused_and_changes_nothing(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 3))
    y = (x[:, 0] > 0).astype(int)
    path = tmp_path / "run.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        NetClassifier((4,), max_iter=3, random_state=0, checkpoint=path).fit(x, y)
        with pytest.raises(ValueError, match="another net"):
            NetClassifier((5,), max_iter=3, random_state=0, checkpoint=path).fit(x, y)
        with pytest.raises(ValueError, match="another run"):
            NetClassifier((4,), max_iter=3, learning_rate_init=0.1, random_state=0, checkpoint=path).fit(x, y)

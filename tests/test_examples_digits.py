"""The digits example, run as a test with its default seed."""
import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits_binary.py"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_binary", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_example_reaches_97_percent(capsys):
    accuracy = load_example().main(["--no-plot"])
    out = capsys.readouterr().out
    assert accuracy >= 0.97
    assert out.strip().splitlines()[-1] == f"test accuracy: {accuracy:.4f}"
    assert out.count("epoch ") == 20


def test_digits_example_split_sizes():
    x_train, x_test, y_train, y_test = load_example().load_data(12345)
    assert x_train.shape == (898, 64) and x_test.shape == (899, 64)
    assert abs(x_train.mean()) < 1e-12 and x_train.std() == pytest.approx(1)
    assert set(y_train) == {0.0, 1.0}


def test_digits_example_saves_the_plot(tmp_path, capsys):
    out = tmp_path / "curves.png"
    load_example().main(["--epochs", "2", "--out", str(out)])
    assert out.exists() and f"learning curves saved to {out}" in capsys.readouterr().out

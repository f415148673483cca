"""examples/gradient_descent_2d.py: the seed's settings give the seed's outcomes."""
import numpy as np
import pytest

from example_loader import load_example


def test_decay_reaches_the_global_basin_and_fixed_step_does_not(tmp_path):
    example = load_example("gradient_descent_2d")
    finals = example.main(["--out", str(tmp_path / "gd.png")])
    assert finals["step 0.2 * 0.8**t, 10 steps"] < -2  # the seed's assertion
    assert finals["step 0.1, 10 steps"] > 1  # stuck in the local minimum
    assert (tmp_path / "gd.png").stat().st_size > 10_000


def test_first_step_is_the_seed_update():
    example = load_example("gradient_descent_2d")
    path = example.descend(0.1, 1)
    np.testing.assert_allclose(path[1], np.array([3.0, 2.0]) - 0.1 * example.grad_f(np.array([3.0, 2.0])))
    decayed = example.descend(example.lk.optim.ExponentialDecay(0.01, 0.1), 2, start=(0.123, 0.456))
    assert abs(decayed[1, 0] - decayed[0, 0]) > 5 * abs(decayed[2, 0] - decayed[1, 0])  # the seed's hint
    assert example.f(np.array(3.0), np.array(2.0)) == pytest.approx(9 + 4 + 12 + np.cos(9))

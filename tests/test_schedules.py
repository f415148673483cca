"""layerkit.optim.schedules: values, composition, configs and bad input."""
import math

import pytest

from layerkit import optim


def test_exponential_decay_is_the_seed_formula():
    schedule = optim.ExponentialDecay(0.2, 0.8)
    assert [schedule(t) for t in range(4)] == pytest.approx([0.2 * 0.8 ** t for t in range(4)])


def test_step_decay():
    schedule = optim.StepDecay(1.0, step_size=3, gamma=0.5)
    assert [schedule(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_cosine_reaches_min_and_stays():
    schedule = optim.CosineDecay(1.0, total_steps=10, min_lr=0.1)
    assert schedule(0) == 1.0
    assert schedule(5) == pytest.approx(0.55)
    assert schedule(10) == schedule(50) == 0.1


def test_warmup_composes_with_another_schedule():
    schedule = optim.Warmup(optim.CosineDecay(1.0, total_steps=4), steps=2, start_factor=0.5)
    assert [schedule(t) for t in range(7)] == pytest.approx(
        [0.5, 0.75, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0])


def test_per_epoch():
    schedule = optim.PerEpoch(optim.ExponentialDecay(1.0, 0.5), steps_per_epoch=3)
    assert [schedule(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("schedule", [
    optim.Constant(0.1), optim.ExponentialDecay(0.1, 0.9), optim.StepDecay(0.1, 5, 0.3),
    optim.CosineDecay(0.1, 7, 0.01), optim.Warmup(optim.StepDecay(0.1, 2), 3, 0.1),
    optim.PerEpoch(optim.Warmup(0.2, 2), 4),
], ids=repr)
def test_config_round_trip(schedule):
    copy = optim.schedule_from_config(schedule.config())
    assert copy == schedule
    assert [copy(t) for t in range(12)] == [schedule(t) for t in range(12)]


def test_optimizer_uses_each_parameters_update_index():
    opt = optim.SGD(lr=optim.ExponentialDecay(1.0, 0.5))
    import numpy as np
    p = np.zeros(1)
    for _ in range(3):
        opt.update_param("p", p, np.ones(1))
    assert p[0] == -(1 + 0.5 + 0.25)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match=r"ExponentialDecay: decay: expected a number <= 1.0, got 1.5"):
        optim.ExponentialDecay(0.1, 1.5)
    with pytest.raises(ValueError, match="StepDecay: step_size: expected an integer >= 1, got 0"):
        optim.StepDecay(0.1, 0)
    with pytest.raises(TypeError, match="CosineDecay: total_steps: expected an integer, got float"):
        optim.CosineDecay(0.1, 2.5)
    with pytest.raises(ValueError, match="Constant: lr: expected a finite number"):
        optim.Constant(float("nan"))
    with pytest.raises(ValueError, match="schedule config: expected a dict with 'type'"):
        optim.schedule_from_config({"type": "Linear"})

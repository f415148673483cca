"""ReduceLROnPlateau (layerkit/optim/schedules.py): torch's sequence of rates, inside fit, saved and restored."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import optim

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra, torch==2.13.0) is needed to compare "
                                            "with torch.optim.lr_scheduler.ReduceLROnPlateau")

# a metric that falls, stalls, wobbles and falls again
VALUES = [1.0, 0.8, 0.79995, 0.8, 0.81, 0.7, 0.7, 0.7, 0.7, 0.69, 0.5, 0.5, 0.6, 0.5, 0.5, 0.5, 0.5, 0.49, 0.49,
          0.4, 0.4, 0.4, 0.4, 0.4, 0.4]

SETTINGS = [
    dict(),
    dict(patience=3),
    dict(factor=0.5, patience=1),
    dict(factor=0.5, patience=0, cooldown=2),
    dict(factor=0.3, patience=2, threshold=0.05, threshold_mode="abs"),
    dict(factor=0.1, patience=1, min_lr=0.004),
    dict(factor=0.5, patience=1, mode="max"),
    dict(factor=0.5, patience=2, mode="max", threshold_mode="abs", threshold=0.01, cooldown=1),
]


def _torch_rates(values, lr, **settings):
    mode = settings.pop("mode", "min")
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, **settings)
    rates = []
    for value in values:
        scheduler.step(value)
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_rates_are_torchs(settings):
    plateau = optim.ReduceLROnPlateau(0.1, **settings)
    rates = []
    for value in VALUES:
        plateau.step(value)
        rates.append(plateau(0))
    assert rates == _torch_rates(VALUES, 0.1, **settings)  # exactly: the same float operations
    assert plateau.cuts == len(set(rates) - {0.1})


def test_auto_mode_maximises_accuracies():
    plateau = optim.ReduceLROnPlateau(0.1, factor=0.5, patience=0)
    for value in (0.5, 0.6, 0.7):
        plateau.step(value, "val_accuracy")
    assert plateau.rate == 0.1
    plateau.step(0.6, "val_accuracy")
    assert plateau.rate == 0.05


def test_fit_steps_it_with_the_monitored_metric_after_every_epoch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    net = lk.Net([lk.Linear(4, 8, rng=1), lk.Tanh(), lk.Linear(8, 2, rng=2)])
    settings = dict(factor=0.5, patience=1, threshold=0.02)
    history = lk.fit(net, x, y, epochs=12, optimizer=optim.Adam(optim.ReduceLROnPlateau(0.05, **settings)),
                     batch_size=16, seed=1, verbose=False, validation_data=(x[:20] + 0.3, y[:20]))
    expected = [0.05] + _torch_rates(history["val_loss"][:-1], 0.05, **settings)
    assert history["lr"] == expected and len(set(expected)) > 1  # the rate of each epoch, cut on plateaus


def test_its_progress_is_saved_with_the_optimizer(tmp_path):
    plateau = optim.ReduceLROnPlateau(0.1, factor=0.5, patience=1, cooldown=1)
    for value in VALUES[:9]:
        plateau.step(value)
    copy = optim.schedule_from_config(plateau.config())
    assert copy == plateau and (copy.rate, copy.best, copy.bad_epochs, copy.cuts) == \
        (plateau.rate, plateau.best, plateau.bad_epochs, plateau.cuts)
    for value in VALUES[9:]:
        plateau.step(value)
        copy.step(value)
        assert copy.rate == plateau.rate
    adam = optim.Adam(plateau)
    restored = optim.optimizer_from_state_dict(adam.state_dict())
    assert restored.lr.rate == plateau.rate and restored.lr.cuts == plateau.cuts


def test_a_missing_metric_is_named():
    x = np.random.default_rng(0).normal(size=(10, 2))
    net = lk.Net([lk.Linear(2, 1, rng=0)])
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: monitor 'val_loss' is not recorded"):
        lk.fit(net, x, x[:, 0], epochs=1, optimizer=optim.SGD(optim.ReduceLROnPlateau(0.1, monitor="val_loss")),
               verbose=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(factor=1.0), r"factor must be below 1"),
    (dict(factor=0.0), r"factor: expected a number > 0"),
    (dict(patience=-1), r"patience: expected an integer >= 0"),
    (dict(threshold_mode="relative"), r"threshold_mode must be 'rel' or 'abs'"),
    (dict(mode="up"), r"mode must be 'auto', 'min' or 'max'"),
    (dict(monitor=3), r"monitor must be a metric name"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        optim.ReduceLROnPlateau(0.1, **kwargs)

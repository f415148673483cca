"""Training runs of the checkpoint tests, each the same in the test process and in a child killed at random.

``python tests/checkpoint_runs.py <config> <checkpoint> <result>`` trains the
run ``<config>`` with ``checkpoint=<checkpoint>, resume=True`` and, when it
ends, writes the net's arrays, the optimizer's state and the history to
``<result>`` (an ``.npz``). It prints ``ready`` once imported (and once a first
tiny ``fit`` has imported what ``fit`` imports on first use), so the parent
kills it while it trains rather than while it starts.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

import layerkit as lk
from layerkit._atomic import atomic_path
from layerkit.optim import SGD, Adam, RMSprop, ReduceLROnPlateau, StepDecay


def _data(n: int = 61):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5))
    labels = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int) + (x[:, 2] > 0.8)
    return x, labels


def _slow_epochs() -> lk.LambdaCallback:
    """A pause after every epoch (without on_batch_end, so whole epochs still run in the core)."""
    return lk.LambdaCallback(on_epoch_end=lambda state: time.sleep(0.004))


def _sgd_in_core():
    net = lk.Net([lk.Linear(5, 16, rng=1), lk.Tanh(), lk.Linear(16, 3, rng=2)])
    return net, dict(lr=0.05, batch_size=8, epochs=30, callbacks=[_slow_epochs()])


def _momentum_dropout_batch_norm():
    net = lk.Net([lk.Linear(5, 12, rng=1), lk.BatchNorm1d(12), lk.ReLU(), lk.Dropout(0.25, rng=3),
                  lk.Linear(12, 3, rng=2)])
    return net, dict(optimizer=SGD(StepDecay(0.05, 40, 0.5), momentum=0.9), batch_size=9, epochs=20,
                     callbacks=[_slow_epochs()])


def _adam_early_stopping():
    x, labels = _data(30)
    net = lk.Net([lk.Linear(5, 10, rng=1), lk.GELU(), lk.Dropout(0.1, rng=4), lk.Linear(10, 3, rng=2)])
    noisy = labels.copy()
    noisy[:9] = np.roll(labels[:9], 1)  # validation labels partly wrong: their loss rises, the run stops early
    return net, dict(optimizer=Adam(0.01), batch_size=10, epochs=60, validation_data=(x + 0.1, noisy),
                     early_stopping=lk.EarlyStopping(patience=4), callbacks=[_slow_epochs()])


def _rmsprop_plateau_every_batch():
    net = lk.Net([lk.Linear(5, 10, rng=1), lk.Sigmoid(), lk.Linear(10, 3, rng=2)])
    return net, dict(optimizer=RMSprop(ReduceLROnPlateau(0.01, factor=0.5, patience=1, threshold=0.05)), batch_size=7, epochs=15,
                     checkpoint_every_batches=3, callbacks=[_slow_epochs()])


def _conv_net_in_core_float64_images():
    """A float32 conv net on float64 images: whole epochs in the core, each minibatch cast as gathered."""
    _, labels = _data()
    images = np.random.default_rng(5).normal(size=(len(labels), 1, 6, 6)) + labels[:, None, None, None]
    f32 = np.float32
    net = lk.Net([lk.Conv2d(1, 4, 3, padding=1, rng=1, dtype=f32), lk.ReLU(), lk.MaxPool2d(2), lk.Flatten(),
                  lk.Linear(36, 3, rng=2, dtype=f32)])
    return net, dict(optimizer=Adam(0.01), batch_size=8, epochs=30, callbacks=[_slow_epochs()], data=images)


RUNS = {
    "sgd in core": _sgd_in_core,
    "momentum, schedule, dropout, batch norm": _momentum_dropout_batch_norm,
    "adam, early stopping": _adam_early_stopping,
    "rmsprop, plateau, every 3 minibatches": _rmsprop_plateau_every_batch,
    "conv net in core, float64 images": _conv_net_in_core_float64_images,
}


def train(name: str, checkpoint: str | None = None) -> tuple[lk.Net, dict, lk.History]:
    """The run ``name``, checkpointed and resumed from ``checkpoint`` when given."""
    net, options = RUNS[name]()
    x, labels = _data()
    x = options.pop("data", x)
    if checkpoint is None:
        options.pop("checkpoint_every_batches", None)
    else:
        options.update(checkpoint=checkpoint, resume=True)
    history = lk.fit(net, x, labels, seed=7, verbose=False, **options)
    return net, options, history


def outcome(net: lk.Net, options: dict, history: lk.History) -> dict[str, np.ndarray]:
    """Everything a run ends with, as arrays: the net's arrays, the optimizer's state, the history."""
    result = {f"net/{key}": np.array(value) for key, value in lk.io.net_entries(net).items()}
    optimizer = options.get("optimizer")
    if optimizer is not None:
        state = optimizer.state_dict()
        result["optimizer/config"] = np.array(json.dumps(state["config"]))
        result.update({f"optimizer/{key}": value for key, value in state["arrays"].items()})
    result["history"] = np.array(json.dumps(history.to_dict()))
    return result


if __name__ == "__main__":
    name, checkpoint, result_path = sys.argv[1:4]
    x_small, labels_small = _data(4)
    lk.fit(lk.Net([lk.Linear(5, 3, rng=0)]), x_small, labels_small, epochs=1, verbose=False)  # first-call imports
    print("ready", flush=True)
    trained = train(name, checkpoint)
    with atomic_path(result_path) as tmp, open(tmp, "wb") as handle:  # a kill now leaves no partial result
        np.savez(handle, **outcome(*trained))

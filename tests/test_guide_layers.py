"""docs/guide/layers.md lists every built-in layer with its registry name (tests/test_docs_blocks.py runs its examples)."""
from __future__ import annotations

import pathlib
import re
from importlib import metadata

import numpy as np
import pytest

import layerkit as lk
from layerkit import registry

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guide" / "layers.md"


def test_table_names_every_builtin_layer():
    text = PAGE.read_text()
    builtins = {ep.name: ep.value.rsplit(":", 1)[1] for ep in metadata.entry_points(group=registry.GROUP)
                if ep.dist is not None and ep.dist.name == "layerkit"}
    for name, cls in builtins.items():
        assert re.search(rf"\| `{cls}\(.*\| `{name}` \|", text), f"{cls} ({name}) missing from {PAGE.name}"


class _PythonIdentity(lk.Layer):
    """A Python layer: a net holding it runs as fused segments with this layer called in between."""

    def forward(self, x):
        return np.array(x)

    def backward(self, x, dy):
        return np.array(dy)


def _passes(layers, x, dy, path):
    """``(y, dx)`` through one of the three paths; the layers keep their gradients."""
    if path == "layer by layer":
        inputs, h = [], x
        for layer in layers:
            inputs.append(h)
            h = layer.forward(h)
        g = dy
        for layer, xin in zip(reversed(layers), reversed(inputs)):
            g = layer.backward(xin, g)
        return h, g
    net = lk.Net(layers if path == "fused" else [layers[0], _PythonIdentity()] + layers[1:])
    assert type(net._runner()).__name__ == ("Plan" if path == "fused" else "SegmentedPlan")
    y, trace = net.forward(x)
    return y, net.backward(trace, dy, input_grad=True)


@pytest.mark.parametrize("path", ["fused", "segmented", "layer by layer"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("middle", ["tanh", "relu"])
def test_the_nan_conventions_of_the_guide_hold_on_every_path(path, dtype, middle):
    """Issue 21: docs/guide/layers.md's 'NaN and infinity', checked statement by statement."""
    rng = np.random.default_rng(0)
    layers = [lk.Linear(3, 4, rng=0, dtype=dtype), lk.Tanh() if middle == "tanh" else lk.ReLU(),
              lk.Linear(4, 2, rng=1, dtype=dtype)]
    x = rng.normal(size=(3, 3)).astype(dtype)
    x[1, 2] = np.nan
    dy = rng.normal(size=(3, 2)).astype(dtype)
    clean = [0, 2]
    with np.errstate(invalid="ignore"):
        y, dx = _passes(layers, x, dy, path)
        first, last = ({name: getattr(layer, name).copy() for name in ("dW", "db")} for layer in layers[::2])
        assert np.isnan(y[1]).all() and np.isfinite(y[clean]).all()  # a NaN row gives NaN outputs
        y_clean, dx_clean = _passes(layers, x[clean], dy[clean], "layer by layer")
    np.testing.assert_allclose(y[clean], y_clean, rtol=1e-6)  # the other rows are untouched
    np.testing.assert_allclose(dx[clean], dx_clean, rtol=1e-6)
    assert np.isnan(last["dW"]).all() and np.array_equal(last["db"], dy.sum(axis=0))
    if middle == "tanh":  # its derivative at NaN is NaN: the gradient reaching the first Linear has a NaN row
        assert np.isnan(dx[1]).all()
        assert np.isnan(first["dW"]).all() and np.isnan(first["db"]).all()
    else:  # ReLU passes dy at a NaN (threshold_backward): the first Linear sees a finite gradient
        assert np.isfinite(dx).all()
        assert np.isnan(first["dW"]).any(axis=1).tolist() == [False, False, True] and np.isfinite(first["db"]).all()

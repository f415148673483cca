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


def _torch_grad_at_nan(fn, n):
    torch = pytest.importorskip("torch")
    t = torch.full((n,), float("nan"), dtype=torch.float64, requires_grad=True)
    fn(t).backward(torch.full((n,), 2.0, dtype=torch.float64))
    return t.grad.numpy()


@pytest.mark.parametrize("n", [1, 3, 64])
def test_relu_and_leaky_relu_at_nan_match_torch_as_the_guide_says(n):
    """ReLU's ``x <= 0`` test (torch.threshold_backward) passes dy at a NaN; LeakyReLU's ``x > 0`` test
    passes negative_slope * dy; both as torch at every size."""
    F = pytest.importorskip("torch.nn.functional")
    x, dy = np.full((1, n), np.nan), np.full((1, n), 2.0)
    with np.errstate(invalid="ignore"):
        relu, leaky = lk.ReLU().backward(x, dy), lk.LeakyReLU(0.1).backward(x, dy)
    np.testing.assert_array_equal(relu[0], _torch_grad_at_nan(F.relu, n))
    np.testing.assert_array_equal(relu, dy)
    np.testing.assert_allclose(leaky[0], _torch_grad_at_nan(lambda t: F.leaky_relu(t, 0.1), n), rtol=1e-15)
    np.testing.assert_allclose(leaky, 0.1 * dy, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elu_at_nan_differs_from_torch_where_the_guide_says(dtype):
    """torch's ELU backward at a NaN gives dy in its scalar loop (a tensor of 3) and NaN in its vectorised
    loop (a tensor of 64); layerkit gives NaN at every size, layer by layer and fused."""
    F = pytest.importorskip("torch.nn.functional")
    np.testing.assert_array_equal(_torch_grad_at_nan(F.elu, 3), [2.0, 2.0, 2.0])
    assert np.isnan(_torch_grad_at_nan(F.elu, 64)).all()
    for n in (1, 3, 64):
        x, dy = np.full((2, n), np.nan, dtype=dtype), np.full((2, n), 2.0, dtype=dtype)
        with np.errstate(invalid="ignore"):
            assert np.isnan(lk.ELU().backward(x, dy)).all()
            net = lk.Net([lk.Linear(n, n, rng=0, dtype=dtype), lk.ELU()])
            y, trace = net.forward(np.full((2, n), np.nan, dtype=dtype))
            assert np.isnan(net.backward(trace, dy, input_grad=True)).all()


def test_the_guide_states_which_test_each_backward_takes_at_nan():
    """The statements the two tests above check are those of the page (it said ReLU takes the ``x > 0``
    test, and that every layer's backward matches torch at a NaN)."""
    text = " ".join(PAGE.read_text().split())
    assert "`ReLU` zeroes the gradient where `x <= 0`, the test of `torch.threshold_backward`" in text
    assert "`LeakyReLU` passes `dy` where `x > 0`" in text
    assert "take the `x > 0` test as PyTorch does" not in text
    assert "**`ELU` at a NaN: where layerkit differs from PyTorch.**" in text

"""The issue-11 activations on the fused path: bit-identical to the layers, parameters passed through, no allocations.

The reference is each layer called on its own. The chain runs the same C loops
with the same parameters (``layerkit._fusable.chain_activation``), so results
must be identical, not merely close.
"""
from __future__ import annotations

import numpy as np
import pytest

import layerkit as lk
from layerkit._backend import core
from layerkit._fusable import chain_activation
from layerkit._plan import Plan

DTYPES = [np.float64, np.float32]


def layers_of(kind: str, dtype) -> list:
    rng = np.random.default_rng(5)

    def lin(n_in, n_out):
        return lk.Linear(n_in, n_out, rng=rng, dtype=dtype)

    if kind == "after_linear":  # each activation fused into the dense stage before it
        return [lin(6, 7), lk.Tanh(), lin(7, 7), lk.LeakyReLU(negative_slope=0.2), lin(7, 7), lk.ELU(alpha=0.5),
                lin(7, 7), lk.GELU(), lin(7, 7), lk.GELU(approximate="tanh"), lin(7, 6),
                lk.Softplus(beta=2.0, threshold=3.0), lin(6, 5), lk.Identity(), lin(5, 4)]
    if kind == "stand_alone":  # activations after activations: stages of their own
        return [lin(6, 7), lk.Sigmoid(), lk.Tanh(), lk.LeakyReLU(negative_slope=-0.3), lk.ELU(alpha=2.0),
                lk.GELU(), lk.GELU(approximate="tanh"), lk.Softplus(beta=0.5, threshold=1.0), lk.Identity(),
                lin(7, 3), lk.Identity()]
    raise AssertionError(kind)


def clone(layers: list) -> list:
    out = []
    for layer in layers:
        copy = type(layer)(**layer.get_config())
        if isinstance(layer, lk.Linear):
            copy.W, copy.b = layer.W.copy(), layer.b.copy()
        out.append(copy)
    return out


def plain_pass(layers, x, dy):
    inputs = []
    for layer in layers:
        inputs.append(x)
        x = layer.forward(x)
    y, g = x, dy
    for layer, inp in zip(reversed(layers), reversed(inputs)):
        g = layer.backward(inp, g)
    return y, inputs, g, [(l.dW.copy(), l.db.copy()) for l in layers if isinstance(l, lk.Linear)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["after_linear", "stand_alone"])
@pytest.mark.parametrize("n", [1, 9, 0])
@pytest.mark.parametrize("use_workspace", [False, True])
def test_fused_pass_equals_the_layers_bit_for_bit(kind, dtype, n, use_workspace):
    layers = layers_of(kind, dtype)
    reference = clone(layers)
    rng = np.random.default_rng(n)
    x = (rng.normal(scale=2.0, size=(n, 6))).astype(dtype)
    dy = rng.normal(size=(n, 4 if kind == "after_linear" else 3)).astype(dtype)
    y_ref, inputs_ref, dx_ref, grads_ref = plain_pass(reference, x, dy)

    net = lk.Net(layers)
    assert isinstance(net._compiled(), Plan)
    ws = net.workspace() if use_workspace else None
    y, trace = net.forward(x, workspace=ws)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, y_ref)
    for entry, expected in zip(trace, inputs_ref):
        np.testing.assert_array_equal(entry.x, expected)
    dx = net.backward(trace, dy, input_grad=True)
    np.testing.assert_array_equal(dx, dx_ref)
    got = [(l.dW, l.db) for l in net if isinstance(l, lk.Linear)]
    for (dW, db), (dW_ref, db_ref) in zip(got, grads_ref):
        np.testing.assert_array_equal(dW, dW_ref)
        np.testing.assert_array_equal(db, db_ref)


def test_parameters_reach_the_chain():
    assert chain_activation(lk.LeakyReLU(negative_slope=0.25)) == (core.ACT_LEAKY_RELU, (0.25, 0.0))
    assert chain_activation(lk.ELU(alpha=3.0)) == (core.ACT_ELU, (3.0, 0.0))
    assert chain_activation(lk.Softplus(beta=2.0, threshold=7.0)) == (core.ACT_SOFTPLUS, (2.0, 7.0))
    assert chain_activation(lk.GELU()) == (core.ACT_GELU, (0.0, 0.0))
    assert chain_activation(lk.GELU(approximate="tanh")) == (core.ACT_GELU_TANH, (0.0, 0.0))
    assert chain_activation(lk.Tanh()) == (core.ACT_TANH, (0.0, 0.0))
    assert chain_activation(lk.Identity()) == (core.ACT_IDENTITY, (0.0, 0.0))

    class MyTanh(lk.Tanh):  # a subclass may override forward: it runs as a Python layer
        pass

    assert chain_activation(MyTanh()) is None
    # two slopes give two different fused results: the parameter is used, not a default
    x = np.random.default_rng(0).normal(size=(4, 3))
    a = lk.Net([lk.Linear(3, 3, rng=0), lk.LeakyReLU(negative_slope=0.1)]).predict(x)
    b = lk.Net([lk.Linear(3, 3, rng=0), lk.LeakyReLU(negative_slope=0.5)]).predict(x)
    neg = a < 0
    assert neg.any()
    np.testing.assert_allclose(b[neg], 5 * a[neg], rtol=1e-12)


def test_dense_chain_checks_activation_codes():
    with pytest.raises(ValueError, match="unknown activation code"):
        core.DenseChain([None], [99], [3, 3], np.float64)
    with pytest.raises(ValueError, match="unknown activation code 42"):
        core.activation_forward(42, np.ones((2, 2)), np.empty((2, 2)))


def allocations(step, repeats=5):
    """NumPy array blocks made and kept during ``repeats`` calls (as in tests/test_fast_paths.py)."""
    import tracemalloc

    kept = []
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(repeats):
            kept.append(step())
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    stats = after.filter_traces([domain]).compare_to(before.filter_traces([domain]), "traceback")
    return sum(stat.count_diff for stat in stats if stat.count_diff > 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["after_linear", "stand_alone"])
def test_a_training_step_with_a_workspace_allocates_no_arrays(kind, dtype):
    net = lk.Net(layers_of(kind, dtype))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 6)).astype(dtype)
    y0 = net.predict(x)
    target = rng.normal(size=y0.shape).astype(dtype)
    ws = net.workspace()
    dy = np.empty_like(target)

    def step(workspace):
        y, trace = net.forward(x, workspace=workspace)
        np.subtract(y, target, out=dy)
        net.backward(trace, dy, input_grad=False)
        net.step(0.001)
        return y, trace

    step(ws)  # warm-up: buffers and gradient arrays are made here
    assert allocations(lambda: step(None)) > 0  # the measurement sees arrays when there are some
    assert allocations(lambda: step(ws)) == 0

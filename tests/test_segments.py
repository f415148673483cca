"""Nets with layers the chain cannot take run as fused segments (layerkit._plan.SegmentedPlan).

The reference is the layer-by-layer path written out (each layer's
``forward_pass``/``backward_pass``, or ``forward``/``backward``): the segments
run the same kernels in the same order, so every number must be identical.
"""
from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest

import layerkit as lk
from layerkit._plan import Plan, SegmentedPlan

DTYPES = [np.float64, np.float32]


class PyIdentity(lk.Layer):
    """A custom Python layer that passes its input through."""

    def forward(self, x):
        return x

    def backward(self, x, dy):
        return dy


class Scale(lk.Layer):
    """A custom layer with a parameter."""

    param_names = ("beta",)

    def __init__(self, n, dtype=np.float64):
        self.beta = np.linspace(0.5, 1.5, n).astype(dtype)

    def forward(self, x):
        return x * self.beta

    def backward(self, x, dy):
        self.dbeta = (x * dy).sum(axis=0)
        return dy * self.beta


class Duck:
    """Not a Layer at all: forward and backward only."""

    def forward(self, x):
        return x * 2.0

    def backward(self, x, dy):
        return dy * 2.0


class MyLinear(lk.Linear):
    """A Linear subclass runs as a Python layer (it may override its passes)."""


def mix(kind, dtype):
    rng = np.random.default_rng(11)

    def lin(a, b, dt=dtype):
        return lk.Linear(a, b, rng=rng, dtype=dt)

    return {
        "identity_inside": [lin(6, 8), lk.ReLU(), PyIdentity(), lin(8, 3), lk.Sigmoid()],
        "custom_param": [lin(6, 8), Scale(8, dtype), lk.ReLU(), lin(8, 5), lk.Tanh(), lin(5, 3)],
        "starts_with_activation": [lk.ReLU(), lin(6, 5), lk.Sigmoid(), lin(5, 3)],
        "dropout_layernorm": [lin(6, 8), lk.Dropout(0.3, rng=4), lin(8, 5), lk.LayerNorm(5), lk.ReLU(),
                              lin(5, 3), lk.Softmax()],
        "batchnorm": [lin(6, 8), lk.BatchNorm1d(8), lk.ReLU(), lin(8, 3)],
        "duck_ends": [Duck(), lin(6, 5), lk.GELU(), lin(5, 3), Duck()],
        "subclass_first": [MyLinear(6, 5, rng=rng, dtype=dtype), lk.ELU(), lin(5, 4), lk.Softplus(),
                           PyIdentity(), lk.LeakyReLU(0.1), lin(4, 3)],
        "dtype_change": [lin(6, 5, np.float64), lk.ReLU(), lin(5, 4, np.float32), lk.Sigmoid(),
                         PyIdentity(), lin(4, 3, np.float32)],
        "width_mismatch_free": [lin(6, 5), PyIdentity(), lin(5, 3), PyIdentity()],
    }[kind]


KINDS = ["identity_inside", "custom_param", "starts_with_activation", "dropout_layernorm", "batchnorm",
         "duck_ends", "subclass_first", "dtype_change", "width_mismatch_free"]


def ref_forward(layers, x, training=None):
    entries = []
    for layer in layers:
        fp = getattr(layer, "forward_pass", None)
        if fp is None:
            entries.append((layer, x, None))
            x = layer.forward(x)
        else:
            y, ctx = fp(x, getattr(layer, "training", True) if training is None else training)
            entries.append((layer, x, ctx))
            x = y
    return x, entries


def ref_backward(entries, dy, input_grad=True):
    for i, (layer, x, ctx) in enumerate(reversed(entries)):
        if i == len(entries) - 1 and not input_grad and getattr(layer, "supports_need_dx", False):
            layer.backward(x, dy, need_dx=False)
            return None
        bp = getattr(layer, "backward_pass", None)
        dy = layer.backward(x, dy) if bp is None else bp(x, ctx, dy)
    return dy if input_grad else None


def grads(layers):
    out = []
    for layer in layers:
        for name in getattr(layer, "param_names", ()):
            out.append(np.array(getattr(layer, "d" + name)))
        for name in getattr(layer, "state_names", ()):
            out.append(np.array(getattr(layer, name)))
    return out


def params(layers):
    return [np.array(getattr(layer, name)) for layer in layers for name in getattr(layer, "param_names", ())]


def assert_all_equal(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u, v)


def data(n, dtype, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype(dtype), rng.normal(size=(n, n_out)).astype(dtype)


def test_nets_with_python_layers_compile_to_segments():
    plan = lk.Net(mix("identity_inside", np.float64))._runner()
    assert isinstance(plan, SegmentedPlan)
    assert [(s.start, s.stop, s.chain is not None) for s in plan.segments] == [
        (0, 2, True), (2, 3, False), (3, 5, True)]
    plan = lk.Net(mix("subclass_first", np.float64))._runner()
    assert [(s.start, s.stop, s.chain is not None) for s in plan.segments] == [
        (0, 1, False), (1, 4, True), (4, 5, False), (5, 7, True)]  # activations lead their chains
    plan = lk.Net([lk.ReLU(), PyIdentity(), lk.Sigmoid(), lk.Tanh(), lk.Linear(3, 2), PyIdentity(), lk.ReLU()])._runner()
    assert [(s.start, s.stop, s.chain is not None) for s in plan.segments] == [
        (0, 1, False), (1, 2, False), (2, 5, True), (5, 6, False), (6, 7, False)]
    plan = lk.Net(mix("dtype_change", np.float64))._runner()
    assert [(s.start, s.stop) for s in plan.segments if s.chain is not None] == [(0, 2), (2, 4), (5, 6)]
    assert isinstance(lk.Net([lk.Linear(3, 2), lk.ReLU()])._runner(), Plan)
    assert lk.Net([PyIdentity(), lk.ReLU()])._runner() is None  # nothing to fuse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("use_workspace", [False, True])
@pytest.mark.parametrize("input_grad", [True, False])
def test_segments_equal_the_layer_by_layer_path(kind, dtype, use_workspace, input_grad):
    layers = mix(kind, dtype)
    reference = copy.deepcopy(layers)
    net = lk.Net(layers)
    assert isinstance(net._runner(), SegmentedPlan)
    ws = net.workspace() if use_workspace else None
    for step in range(2):  # a second step reuses the workspace's buffers
        x, dy = data(7, dtype, seed=step)
        y_ref, entries = ref_forward(reference, x)
        y, trace = net.forward(x, workspace=ws)
        assert y.dtype == y_ref.dtype
        np.testing.assert_array_equal(y, y_ref)
        assert [entry.layer for entry in trace] == layers
        for entry, (_, x_ref, ctx_ref) in zip(trace, entries):
            np.testing.assert_array_equal(entry.x, x_ref)
            assert (entry.ctx is None) == (ctx_ref is None)
        dx_ref = ref_backward(entries, dy, input_grad)
        dx = net.backward(trace, dy, input_grad=input_grad)
        if input_grad:
            np.testing.assert_array_equal(dx, dx_ref)
        else:
            assert dx is None and dx_ref is None
        assert_all_equal(grads(layers), grads(reference))
        net.step(0.05)
        for layer in reference:
            if hasattr(layer, "step"):
                layer.step(0.05)
        assert_all_equal(params(layers), params(reference))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["dropout_layernorm", "custom_param", "batchnorm"])
def test_interleaved_passes_keep_their_own_inputs(kind, dtype):
    layers = mix(kind, dtype)
    reference = copy.deepcopy(layers)
    net = lk.Net(layers)
    (xa, dya), (xb, dyb) = data(5, dtype, seed=1), data(9, dtype, seed=2)
    ya, ta = net.forward(xa)
    yb, tb = net.forward(xb)
    ya_ref, ea = ref_forward(reference, xa)
    yb_ref, eb = ref_forward(reference, xb)
    np.testing.assert_array_equal(ya, ya_ref)
    np.testing.assert_array_equal(yb, yb_ref)
    np.testing.assert_array_equal(net.backward(tb, dyb, input_grad=True), ref_backward(eb, dyb))
    assert_all_equal(grads(layers), grads(reference))
    np.testing.assert_array_equal(net.backward(ta, dya, input_grad=True), ref_backward(ea, dya))
    assert_all_equal(grads(layers), grads(reference))


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_runs_inference_mode_and_leaves_the_modes(dtype):
    layers = mix("dropout_layernorm", dtype) + [lk.BatchNorm1d(3)]
    reference = copy.deepcopy(layers)
    net = lk.Net(layers)
    x, _ = data(6, dtype)
    np.testing.assert_array_equal(net.predict(x), ref_forward(reference, x, training=False)[0])
    assert all(layer.training for layer in layers)
    np.testing.assert_array_equal(layers[-1].running_mean, np.zeros(3))  # inference mode: no update
    y_train, _ = net.forward(x)
    assert not np.array_equal(y_train, net.predict(x))  # dropout and batch statistics in training


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["custom_param", "starts_with_activation"])
def test_non_contiguous_and_other_dtype_inputs_give_the_layers_results(kind, dtype):
    layers = mix(kind, dtype)
    reference = copy.deepcopy(layers)
    net = lk.Net(layers)
    x, dy = data(8, np.float64)
    for variant in (np.asfortranarray(x), x[::-1][::-1].astype(">f8"), np.repeat(x, 2, axis=1)[:, ::2]):
        y, trace = net.forward(variant)
        y_ref, entries = ref_forward(reference, variant)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(net.backward(trace, dy.astype(dtype), input_grad=True), ref_backward(entries, dy.astype(dtype)))
        assert_all_equal(grads(layers), grads(reference))


def test_errors_in_segments_are_the_layers_errors():
    net = lk.Net(mix("identity_inside", np.float64))
    with pytest.raises(ValueError, match=r"Linear\(6, 8\): x must have 6 features"):
        net.forward(np.ones((3, 4)))
    y, trace = net.forward(np.ones((3, 6)))
    with pytest.raises(ValueError, match=r"Sigmoid\(\): dy must have the shape"):
        net.backward(trace, np.ones((3, 2)))


def test_a_training_step_with_a_custom_identity_inside_allocates_nothing_in_the_fused_parts():
    rng = np.random.default_rng(0)
    net = lk.Net([lk.Linear(64, 256, rng=rng), lk.ReLU(), PyIdentity(), lk.Linear(256, 256, rng=rng),
                  lk.Tanh(), PyIdentity(), lk.Linear(256, 1, rng=rng), lk.Sigmoid()])
    x, dy = rng.normal(size=(128, 64)), rng.normal(size=(128, 1))
    ws = net.workspace()

    def step():
        y, trace = net.forward(x, workspace=ws)
        net.backward(trace, dy, input_grad=False)
        net.step(0.01)
        return y

    y0 = step()
    tracemalloc.start()
    try:
        y1 = step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y1 is y0  # the output lives in the workspace
    assert peak < 32_000, f"a step allocated {peak} bytes (one activation array is {128 * 256 * 8})"


def test_a_segment_whose_parameters_do_not_fit_steps_through_its_layers_only():
    layers = mix("identity_inside", np.float64)
    reference = copy.deepcopy(layers)
    net = lk.Net(layers)
    x, dy = data(4, np.float64)
    for group in (layers, reference):
        group[3].b = group[3].b.astype(np.float32)  # the second chain's sgd refuses this bias
    y, trace = net.forward(x)
    net.backward(trace, dy)
    _, entries = ref_forward(reference, x)
    ref_backward(entries, dy)
    net.step(0.5)
    for layer in reference:
        layer.step(0.5)
    assert_all_equal(params(layers), params(reference))  # each layer updated exactly once


def sparse_aware(linear):
    """Give one Linear scipy.sparse products (the sklearn helper's Linear does this for real)."""

    def forward(x):
        return np.asarray(x @ linear.W) + linear.b

    def backward(x, dy, need_dx=True):
        linear.dW = np.asarray(x.T @ dy)
        linear.db = dy.sum(axis=0)
        return dy @ linear.W.T if need_dx else None

    linear.forward, linear.backward = forward, backward
    return linear


@pytest.mark.parametrize("custom", [False, True])
def test_a_sparse_input_runs_the_first_linear_by_itself_and_the_rest_fused(custom):
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    first = sparse_aware(lk.Linear(6, 5, rng=rng))
    rest = [lk.ReLU(), lk.Linear(5, 4, rng=rng), lk.Tanh()] + ([PyIdentity()] if custom else []) + [
        lk.Linear(4, 2, rng=rng)]
    net = lk.Net([first] + rest)
    x = sp.random(7, 6, density=0.4, format="csr", random_state=1)
    dy = rng.normal(size=(7, 2))
    y, trace = net.forward(x)
    assert trace[0].x is x
    h = first.forward(x)
    y_ref, entries = ref_forward(copy.deepcopy(rest), h)
    np.testing.assert_array_equal(y, y_ref)
    for entry, (_, x_ref, _) in zip(trace[1:], entries):
        np.testing.assert_array_equal(entry.x, x_ref)
    plan = net._runner()
    sparse_plan = plan._sparse_plan()
    assert [(s.start, s.chain is not None) for s in sparse_plan.segments][:2] == [(0, False), (1, True)]
    assert sparse_plan.segments[1].layers[:2] == rest[:2]  # the ReLU after the sparse Linear is fused
    reference = copy.deepcopy(rest)
    ref_forward(reference, h)
    g = ref_backward(ref_forward(reference, h)[1], dy)
    assert net.backward(trace, dy, input_grad=False) is None
    assert_all_equal(grads(net.layers[1:]), grads(reference))
    np.testing.assert_array_equal(first.dW, np.asarray(x.T @ g))
    np.testing.assert_array_equal(net.predict(x), y_ref)


def test_fit_trains_on_sparse_minibatches_like_on_the_dense_array():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    dense = rng.normal(size=(40, 6)) * (rng.random((40, 6)) < 0.5)
    y = (dense[:, 0] > 0).astype(float)

    def make():
        r = np.random.default_rng(5)
        return lk.Net([sparse_aware(lk.Linear(6, 4, rng=r)), lk.ReLU(), lk.Linear(4, 1, rng=r), lk.Sigmoid()])

    on_sparse, on_dense = make(), make()
    h_sparse = lk.fit(on_sparse, sp.csr_matrix(dense), y, epochs=3, batch_size=8, seed=1, verbose=0,
                      validation_data=(sp.csc_matrix(dense), y))
    h_dense = lk.fit(on_dense, dense, y, epochs=3, batch_size=8, seed=1, verbose=0, validation_data=(dense, y))
    np.testing.assert_allclose(h_sparse["train_loss"], h_dense["train_loss"], rtol=1e-12)
    np.testing.assert_allclose(h_sparse["val_loss"], h_dense["val_loss"], rtol=1e-12)
    np.testing.assert_allclose(on_sparse.layers[2].W, on_dense.layers[2].W, rtol=1e-10, atol=1e-14)

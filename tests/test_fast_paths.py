"""The fused plan, workspaces, skipped input gradients and float32 against the plain layers.

The reference is each layer called on its own (``layer.forward``,
``layer.backward``), which is what ``Net`` does for layers it cannot fuse.
The fast paths run the same kernels in the same order, so results must be
identical, not merely close.
"""
from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

import layerkit as lk
from layerkit.workspace import Workspace

DTYPES = [np.float64, np.float32]


def make_layers(kind: str, dtype) -> list:
    rng = np.random.default_rng(3)
    if kind == "digits":
        return [lk.Linear(64, 32, rng=rng, dtype=dtype), lk.ReLU(), lk.Linear(32, 1, rng=rng, dtype=dtype), lk.Sigmoid()]
    if kind == "softmax":
        return [lk.Linear(6, 5, rng=rng, dtype=dtype), lk.Sigmoid(), lk.Linear(5, 4, rng=rng, dtype=dtype),
                lk.ReLU(), lk.Linear(4, 3, rng=rng, dtype=dtype), lk.Softmax()]
    if kind == "linear_only":
        return [lk.Linear(6, 5, rng=rng, dtype=dtype), lk.Linear(5, 2, rng=rng, dtype=dtype)]
    if kind == "stacked_activations":  # an activation that follows an activation is a stage of its own
        return [lk.Linear(6, 5, rng=rng, dtype=dtype), lk.Sigmoid(), lk.ReLU(), lk.Linear(5, 2, rng=rng, dtype=dtype)]
    raise AssertionError(kind)


KINDS = ["digits", "softmax", "linear_only", "stacked_activations"]


def plain_pass(layers, x, dy):
    """Forward and backward by calling each layer: returns y, the inputs, dx and the gradients."""
    inputs = []
    for layer in layers:
        inputs.append(x)
        x = layer.forward(x)
    y = x
    g = dy
    for layer, inp in zip(reversed(layers), reversed(inputs)):
        g = layer.backward(inp, g)
    grads = [(layer.dW.copy(), layer.db.copy()) for layer in layers if isinstance(layer, lk.Linear)]
    return y, inputs, g, grads


def clone(layers):
    out = []
    for layer in layers:
        if isinstance(layer, lk.Linear):
            copy = lk.Linear(layer.n_in, layer.n_out, dtype=layer.dtype)
            copy.W, copy.b = layer.W.copy(), layer.b.copy()
            out.append(copy)
        else:
            out.append(type(layer)())
    return out


def grads_of(net):
    return [(layer.dW.copy(), layer.db.copy()) for layer in net if isinstance(layer, lk.Linear)]


def batch(layers, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    n_out = [l for l in layers if isinstance(l, lk.Linear)][-1].n_out
    return rng.normal(size=(n, layers[0].n_in)).astype(dtype), rng.normal(size=(n, n_out)).astype(dtype)


def test_builtin_nets_are_compiled_and_others_are_not():
    assert lk.Net(make_layers("digits", np.float64))._compiled() is not None

    class Square(lk.Layer):
        def forward(self, x):
            return x ** 2

        def backward(self, x, dy):
            return 2 * x * dy

    assert lk.Net([lk.Linear(3, 2), Square()])._compiled() is None
    assert lk.Net([lk.ReLU(), lk.Linear(3, 2)])._compiled() is None  # starts with an activation
    assert lk.Net([lk.Linear(3, 2), lk.Linear(2, 2, dtype=np.float32)])._compiled() is None  # mixed dtypes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 7, 0])
@pytest.mark.parametrize("use_workspace", [False, True])
def test_fused_pass_equals_plain_layers(kind, dtype, n, use_workspace):
    layers = make_layers(kind, dtype)
    reference = clone(layers)
    x, dy = batch(layers, n, dtype)
    y_ref, inputs_ref, dx_ref, grads_ref = plain_pass(reference, x, dy)

    net = lk.Net(layers)
    ws = net.workspace() if use_workspace else None
    y, trace = net.forward(x, workspace=ws)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, y_ref)
    assert [entry.layer for entry in trace] == layers
    for entry, expected in zip(trace, inputs_ref):
        np.testing.assert_array_equal(entry.x, expected)
    dx = net.backward(trace, dy, input_grad=True)
    np.testing.assert_array_equal(dx, dx_ref)
    for (dW, db), (dW_ref, db_ref) in zip(grads_of(net), grads_ref):
        np.testing.assert_array_equal(dW, dW_ref)
        np.testing.assert_array_equal(db, db_ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_skipped_input_gradient_gives_the_same_parameter_gradients(dtype):
    layers = make_layers("softmax", dtype)
    reference = clone(layers)
    x, dy = batch(layers, 9, dtype)
    _, _, _, grads_ref = plain_pass(reference, x, dy)
    net = lk.Net(layers)
    y, trace = net.forward(x, workspace=net.workspace())
    assert net.backward(trace, dy, input_grad=False) is None
    for (dW, db), (dW_ref, db_ref) in zip(grads_of(net), grads_ref):
        np.testing.assert_array_equal(dW, dW_ref)
        np.testing.assert_array_equal(db, db_ref)


def test_skipped_input_gradient_on_the_layer_by_layer_path_keeps_plain_layers_working():
    class Square(lk.Layer):  # only backward(x, dy): no need_dx keyword
        def forward(self, x):
            return x ** 2

        def backward(self, x, dy):
            return 2 * x * dy

    rng = np.random.default_rng(0)
    first = lk.Linear(3, 4, rng=rng)
    net = lk.Net([first, Square(), lk.Linear(4, 1, rng=rng)])
    assert net._compiled() is None
    x = rng.normal(size=(5, 3))
    y, trace = net.forward(x)
    dx = net.backward(trace, np.ones_like(y), input_grad=True)
    dW_full = first.dW.copy()
    assert dx.shape == (5, 3)
    assert net.backward(trace, np.ones_like(y), input_grad=False) is None
    np.testing.assert_array_equal(first.dW, dW_full)

    starts_with_square = lk.Net([Square(), lk.Linear(3, 1, rng=rng)])
    y, trace = starts_with_square.forward(x)
    assert starts_with_square.backward(trace, np.ones_like(y), input_grad=False) is None


def test_linear_backward_need_dx_and_gradient_buffer_reuse():
    rng = np.random.default_rng(1)
    layer = lk.Linear(4, 3, rng=rng)
    x, dy = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    dx = layer.backward(x, dy)
    dW, db = layer.dW, layer.db
    np.testing.assert_allclose(dW, x.T @ dy, rtol=1e-13)
    np.testing.assert_allclose(dx, dy @ layer.W.T, rtol=1e-13)
    assert layer.backward(2 * x, dy, need_dx=False) is None
    assert layer.dW is dW and layer.db is db  # written in place
    np.testing.assert_allclose(dW, 2 * x.T @ dy, rtol=1e-13)
    layer.dW = np.zeros((4, 3), dtype=np.float32)  # does not fit: replaced, not written into
    layer.backward(x, dy)
    assert layer.dW.dtype == np.float64
    np.testing.assert_allclose(layer.dW, x.T @ dy, rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["fortran", "strided", "int", "list", "float32_into_float64"])
def test_unusual_inputs_give_the_same_result_as_a_c_contiguous_batch(dtype, layout):
    layers = make_layers("digits", dtype)
    net = lk.Net(layers)
    rng = np.random.default_rng(5)
    base = rng.integers(-3, 4, size=(8, 64)).astype(dtype)
    dy = rng.normal(size=(8, 1)).astype(dtype)
    y_ref, trace = net.forward(base)
    dx_ref = net.backward(trace, dy, input_grad=True).copy()
    grads_ref = grads_of(net)
    x = {
        "fortran": np.asfortranarray(base),
        "strided": np.repeat(base, 2, axis=1)[:, ::2],
        "int": base.astype(np.int64),
        "list": base.tolist(),
        "float32_into_float64": base.astype(np.float32),
    }[layout]
    for ws in (None, net.workspace()):
        y, trace = net.forward(x, workspace=ws)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(net.backward(trace, np.asfortranarray(dy), input_grad=True), dx_ref)
        for (dW, db), (dW_ref, db_ref) in zip(grads_of(net), grads_ref):
            np.testing.assert_array_equal(dW, dW_ref)
            np.testing.assert_array_equal(db, db_ref)


def test_forwards_without_workspace_are_reentrant_in_any_order():
    layers = make_layers("digits", np.float64)
    net = lk.Net(layers)
    reference = clone(layers)
    x1, dy1 = batch(layers, 5, np.float64, seed=1)
    x2, dy2 = batch(layers, 3, np.float64, seed=2)
    y1, trace1 = net.forward(x1)
    y2, trace2 = net.forward(x2)
    dx2 = net.backward(trace2, dy2, input_grad=True)
    _, _, dx2_ref, grads2_ref = plain_pass(reference, x2, dy2)
    np.testing.assert_array_equal(dx2, dx2_ref)
    np.testing.assert_array_equal(grads_of(net)[0][0], grads2_ref[0][0])
    dx1 = net.backward(trace1, dy1, input_grad=True)
    _, _, dx1_ref, grads1_ref = plain_pass(reference, x1, dy1)
    np.testing.assert_array_equal(dx1, dx1_ref)
    np.testing.assert_array_equal(grads_of(net)[0][0], grads1_ref[0][0])
    np.testing.assert_array_equal(y1, plain_pass(reference, x1, dy1)[0])


def test_a_trace_whose_workspace_was_reused_is_refused():
    net = lk.Net(make_layers("digits", np.float64))
    ws = net.workspace()
    x, dy = batch(net.layers, 4, np.float64)
    _, old = net.forward(x, workspace=ws)
    _, new = net.forward(x, workspace=ws)
    with pytest.raises(RuntimeError, match="workspace was used by a later forward pass"):
        net.backward(old, dy)
    assert net.backward(new, dy, input_grad=True).shape == x.shape


def test_workspace_buffers_are_reused_and_belong_to_one_net():
    net = lk.Net(make_layers("digits", np.float64))
    ws = net.workspace()
    x, _ = batch(net.layers, 4, np.float64)
    y1, _ = net.forward(x, workspace=ws)
    y2, _ = net.forward(x, workspace=ws)
    assert y1 is y2
    y3, _ = net.forward(x[:3], workspace=ws)
    assert ws.batch_sizes == [3, 4] and ws.nbytes > 0
    assert isinstance(ws, Workspace)
    other = lk.Net(make_layers("digits", np.float64))
    with pytest.raises(ValueError, match="workspace must come from this net"):
        other.forward(x, workspace=ws)
    with pytest.raises(ValueError, match="workspace must come from this net"):
        net.forward(x, workspace="buffers")


def test_changing_the_layers_recompiles_the_plan():
    layers = make_layers("digits", np.float64)
    net = lk.Net(layers)
    x, dy = batch(layers, 4, np.float64)
    ws = net.workspace()
    net.forward(x, workspace=ws)
    net.layers[3] = lk.ReLU()  # sigmoid -> relu
    y, trace = net.forward(x, workspace=ws)
    expected = np.maximum(net.layers[2].forward(net.layers[1].forward(net.layers[0].forward(x))), 0)
    np.testing.assert_array_equal(y, expected)
    assert trace[3].layer is net.layers[3]


def test_replaced_parameters_are_checked_like_the_layers_do():
    layers = make_layers("digits", np.float64)
    net = lk.Net(layers)
    x, dy = batch(layers, 4, np.float64)
    W = layers[2].W.copy()
    layers[2].W = W.tolist()  # converted, as Linear.forward does
    y, trace = net.forward(x)
    assert isinstance(layers[2].W, np.ndarray)
    np.testing.assert_array_equal(layers[2].W, W)
    layers[0].W = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"Linear\(64, 32\): parameter W must have shape \(64, 32\)"):
        net.forward(x)


def test_bad_input_and_gradient_give_the_layers_messages():
    net = lk.Net(make_layers("digits", np.float64))
    with pytest.raises(ValueError, match=r"Linear\(64, 32\): x must have 64 features"):
        net.forward(np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"Linear\(64, 32\): x must hold real numbers"):
        net.forward(np.array([["a"] * 64]))
    y, trace = net.forward(np.ones((2, 64)), workspace=net.workspace())
    with pytest.raises(ValueError, match=r"Sigmoid\(\): dy must have the shape of the layer's output \(2, 1\)"):
        net.backward(trace, np.ones((3, 1)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_sgd_step_equals_the_layers_step(dtype):
    layers = make_layers("softmax", dtype)
    reference = clone(layers)
    x, dy = batch(layers, 6, dtype)
    plain_pass(reference, x, dy)
    for layer in reference:
        layer.step(0.3)
    net = lk.Net(layers)
    _, trace = net.forward(x, workspace=net.workspace())
    net.backward(trace, dy, input_grad=False)
    net.step(0.3)
    for mine, ref in zip(net, reference):
        if isinstance(mine, lk.Linear):
            np.testing.assert_array_equal(mine.W, ref.W)
            np.testing.assert_array_equal(mine.b, ref.b)


def test_step_before_any_backward_still_raises():
    net = lk.Net(make_layers("digits", np.float64))
    with pytest.raises(RuntimeError, match="no gradient dW yet"):
        net.step(0.1)


def test_predict_uses_the_plan_and_matches_forward():
    net = lk.Net(make_layers("softmax", np.float32))
    x, _ = batch(net.layers, 5, np.float32)
    np.testing.assert_array_equal(net.predict(x), net.forward(x)[0])


def allocations(step, repeats=5):
    """NumPy array blocks made and kept during ``repeats`` calls, and the peak of temporary memory.

    Whatever ``step`` returns is kept alive, so arrays it hands out show up
    as NumPy-domain blocks; arrays made and freed inside show up in the peak.
    """
    kept = []
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(repeats):
            kept.append(step())
        _, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    stats = after.filter_traces([domain]).compare_to(before.filter_traces([domain]), "traceback")
    return sum(stat.count_diff for stat in stats if stat.count_diff > 0), peak - start


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_step_with_a_workspace_allocates_no_arrays(dtype):
    net = lk.Net(make_layers("softmax", dtype))
    x, target = batch(net.layers, 512, dtype)
    ws = net.workspace()
    dy = np.empty_like(target)

    def step(workspace):
        y, trace = net.forward(x, workspace=workspace)
        np.subtract(y, target, out=dy)
        net.backward(trace, dy, input_grad=False)
        net.step(0.01)
        return y, trace

    step(ws)  # warm-up: buffers and gradient arrays are made here
    smallest_batch_array = 512 * 3 * np.dtype(dtype).itemsize
    # the measurement can fail: without a workspace a step makes and frees arrays
    blocks, peak = allocations(lambda: step(None))
    assert blocks > 0 and peak > smallest_batch_array
    blocks, peak = allocations(lambda: step(ws))
    assert blocks == 0
    assert peak < smallest_batch_array  # only small Python objects (the trace's list and tuples)


def test_two_threads_training_two_nets_get_the_sequential_results():
    def train(net, x, t, out):
        ws = net.workspace()
        for _ in range(30):
            y, trace = net.forward(x, workspace=ws)
            net.backward(trace, y - t, input_grad=False)
            net.step(0.05)
        out.append(net.layers[0].W.copy())

    x, t = batch(make_layers("softmax", np.float64), 64, np.float64)
    sequential = []
    for _ in range(2):
        train(lk.Net(make_layers("softmax", np.float64)), x, t, sequential)
    threaded = []
    threads = [threading.Thread(target=train, args=(lk.Net(make_layers("softmax", np.float64)), x, t, threaded))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(threaded[0], sequential[0])
    np.testing.assert_array_equal(threaded[1], sequential[1])

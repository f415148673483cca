"""Workspaces: an output fed back in is never overwritten (issue 15, item 3); hand-edited traces (item 8)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import layerkit as lk
from layerkit.net import TraceEntry


class PyIdentity(lk.Layer):
    def forward(self, x):
        return x

    def backward(self, x, dy):
        return dy


def nets(dtype=np.float64):
    rng = np.random.default_rng(0)
    yield "single", [lk.Linear(4, 4, rng=rng, dtype=dtype)]
    yield "multi", [lk.Linear(4, 5, rng=rng, dtype=dtype), lk.Tanh(), lk.Linear(5, 4, rng=rng, dtype=dtype),
                    lk.Sigmoid()]
    yield "segments", [lk.Linear(4, 5, rng=rng, dtype=dtype), lk.ReLU(), PyIdentity(),
                       lk.Linear(5, 4, rng=rng, dtype=dtype)]
    yield "python_first", [PyIdentity(), lk.Linear(4, 4, rng=rng, dtype=dtype), lk.Sigmoid()]


def grads(net):
    return [(layer.dW.copy(), layer.db.copy()) for layer in net if isinstance(layer, lk.Linear)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,layers", list(nets()), ids=[n for n, _ in nets()])
def test_feeding_a_workspace_output_back_in_equals_the_plain_pass(name, layers, dtype):
    layers = [l for n, ls in nets(dtype) if n == name for l in ls]
    net = lk.Net(layers)
    ws = net.workspace()
    x = np.random.default_rng(1).random((5, 4)).astype(dtype)
    dy = np.random.default_rng(2).random((5, 4)).astype(dtype)
    y1, _ = net.forward(x, workspace=ws)
    fed = y1.copy()
    y2, trace = net.forward(y1, workspace=ws)  # y1 is a buffer of ws
    np.testing.assert_array_equal(trace[0].x, fed)
    net.backward(trace, dy)
    got = grads(net)
    y_ref, trace_ref = net.forward(fed)
    np.testing.assert_array_equal(y2, y_ref)
    net.backward(trace_ref, dy)
    for (dW, db), (dW_ref, db_ref) in zip(got, grads(net)):
        np.testing.assert_array_equal(dW, dW_ref)
        np.testing.assert_array_equal(db, db_ref)


def test_a_view_of_an_input_gradient_fed_back_in_is_copied_too():
    net = lk.Net([lk.Linear(4, 4, rng=0), lk.ReLU(), lk.Linear(4, 4, rng=1)])
    ws = net.workspace()
    x = np.random.default_rng(1).random((6, 4))
    y, trace = net.forward(x, workspace=ws)
    dx = net.backward(trace, np.ones_like(y), input_grad=True)  # lives in ws
    view = dx[:, ::-1]
    expected = net.predict(view.copy())
    y2, trace2 = net.forward(view, workspace=ws)
    np.testing.assert_array_equal(y2, expected)
    assert not np.may_share_memory(trace2[0].x, dx)


def test_an_ordinary_input_is_not_copied():
    net = lk.Net([lk.Linear(4, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)])
    ws = net.workspace()
    x = np.random.default_rng(1).random((6, 4))
    net.forward(x, workspace=ws)
    _, trace = net.forward(x, workspace=ws)
    assert trace[0].x is x


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize("bad,error,message", [
    (None, TypeError, r"x must hold real numbers"),
    (np.ones(4), ValueError, r"2-D"),
    ([], ValueError, r"2-D"),
    (np.ones((3, 4)), ValueError, r"rows|shape"),
])
def test_hand_edited_traces_give_clear_errors(fused, position, bad, error, message):
    layers = [lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)]
    if not fused:
        layers.insert(3, PyIdentity())
    net = lk.Net(layers)
    y, trace = net.forward(np.random.default_rng(0).random((5, 3)))
    trace[position] = TraceEntry(trace[position].layer, bad)
    with pytest.raises(error, match=message):
        net.backward(trace, np.ones_like(y))


def test_malformed_trace_entries_name_the_entry():
    net = lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)])
    y, trace = net.forward(np.ones((5, 3)))
    for bad in (None, [], (1, 2, 3)):
        edited = list(trace)
        edited[-1] = bad
        with pytest.raises((TypeError, ValueError), match=r"trace entry 2 must be a TraceEntry"):
            net.backward(edited, np.ones_like(y))
    with pytest.raises(ValueError, match=r"expected 3 entries .* got 2"):
        net.backward(trace[:2], np.ones_like(y))
    edited = list(trace)
    edited[0] = TraceEntry(net.layers[2], trace[0].x)
    with pytest.raises(ValueError, match=r"trace entry 0 .* does not come from this net"):
        net.backward(edited, np.ones_like(y))
    edited = list(trace)
    edited[1] = TraceEntry(net.layers[1], np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"trace entry 1 \(ReLU\(\)\) holds an input of 4 rows, but entry 0 holds 5"):
        net.backward(edited, np.ones_like(y))


@pytest.mark.parametrize("name,layers", list(nets()), ids=[n for n, _ in nets()])
def test_alternating_batch_sizes_give_each_trace_its_own_inputs(name, layers):
    """A workspace makes the trace entries of its buffers once; a pass at another batch size must not reuse them."""
    net, plain = lk.Net(layers), lk.Net(copy.deepcopy(layers))
    ws = net.workspace()
    rng = np.random.default_rng(1)
    for n in (5, 3, 5, 3):
        x = rng.normal(size=(n, 4))
        y, trace = net.forward(x, workspace=ws)
        y_ref, trace_ref = plain.forward(x)
        np.testing.assert_array_equal(y, y_ref)
        for i, (entry, entry_ref) in enumerate(zip(trace, trace_ref)):
            assert entry.layer is net[i] and entry.x.shape[0] == n
            np.testing.assert_array_equal(entry.x, entry_ref.x)
        dy = rng.normal(size=y.shape)
        np.testing.assert_array_equal(net.backward(trace, dy, input_grad=True), plain.backward(trace_ref, dy, input_grad=True))
        for ours, ref in zip(grads(net), grads(plain)):
            np.testing.assert_array_equal(ours[0], ref[0])

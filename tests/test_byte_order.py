"""Big-endian (byte-swapped) arrays give the results of native ones, on every path (issue 15, item 1).

The kernels compare type numbers, which do not carry the byte order; each
kernel entry refuses a swapped array so that the caller's general path
converts it. A swapped array read as native gives numbers like 5.7e281.
"""
from __future__ import annotations

import numpy as np
import pytest

import layerkit as lk
from layerkit._backend import core
from layerkit._plan import Plan

DTYPES = [np.float64, np.float32]


def swapped(a: np.ndarray) -> np.ndarray:
    """The same values stored in the other byte order."""
    out = a.astype(a.dtype.newbyteorder("S"))
    assert not out.dtype.isnative
    return out


def make_net(dtype, act=lk.ReLU):
    return lk.Net([lk.Linear(3, 4, rng=0, dtype=dtype), act(), lk.Linear(4, 2, rng=1, dtype=dtype)])


def pass_of(net, x, dy, workspace=None):
    y, trace = net.forward(x, workspace=workspace)
    y = y.copy()
    dx = net.backward(trace, dy, input_grad=True)
    dx = None if dx is None else dx.copy()
    return y, dx, [(layer.dW.copy(), layer.db.copy()) for layer in net if isinstance(layer, lk.Linear)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_issue_reproducer_predict_of_a_big_endian_batch(dtype):
    x = np.random.default_rng(0).random((5, 3)).astype(dtype)
    net = make_net(dtype)
    expected = net.predict(x)
    assert isinstance(net._compiled(), Plan)  # the fused path
    np.testing.assert_array_equal(net.predict(swapped(x)), expected)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(swapped(x))), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_workspace", [False, True])
def test_big_endian_x_dy_w_and_b_give_the_native_pass(dtype, use_workspace):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3)).astype(dtype)
    dy = rng.normal(size=(6, 2)).astype(dtype)
    net = make_net(dtype, lk.Sigmoid)
    net[0].b = rng.normal(size=4).astype(dtype)
    ws = net.workspace() if use_workspace else None
    expected = pass_of(net, x, dy, ws)
    for variant in ("x", "dy", "W", "b", "all"):
        other = make_net(dtype, lk.Sigmoid)
        other[0].b = net[0].b.copy()
        xv = swapped(x) if variant in ("x", "all") else x
        dyv = swapped(dy) if variant in ("dy", "all") else dy
        if variant in ("W", "all"):
            other[0].W = swapped(other[0].W)
        if variant in ("b", "all"):
            other[0].b = swapped(other[0].b)
        got = pass_of(other, xv, dyv, other.workspace() if use_workspace else None)
        np.testing.assert_array_equal(got[0], expected[0], err_msg=variant)
        np.testing.assert_array_equal(got[1], expected[1], err_msg=variant)
        for (gw, gb), (ew, eb) in zip(got[2], expected[2]):
            np.testing.assert_array_equal(gw, ew, err_msg=variant)
            np.testing.assert_array_equal(gb, eb, err_msg=variant)
        # the parameters were converted once, to the layer's own (native) dtype
        assert other[0].W.dtype == np.dtype(dtype) and other[0].W.dtype.isnative


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_step_with_big_endian_parameters_equals_native(dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 3)).astype(dtype)
    dy = rng.normal(size=(8, 2)).astype(dtype)
    a, b = make_net(dtype), make_net(dtype)
    b[2].W = swapped(b[2].W)
    for net in (a, b):
        _, trace = net.forward(x)
        net.backward(trace, dy)
        net.step(0.1)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


@pytest.mark.parametrize("layer_cls", [lk.Sigmoid, lk.ReLU, lk.Softmax])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_layers_convert_big_endian_and_keep_the_dtype(layer_cls, dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5)).astype(dtype)
    dy = rng.normal(size=(4, 5)).astype(dtype)
    layer = layer_cls()
    y = layer.forward(swapped(x))
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, layer.forward(x))
    np.testing.assert_array_equal(layer.backward(swapped(x), swapped(dy)), layer.backward(x, dy))


def test_kernels_refuse_a_swapped_byte_order():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="native byte order"):
        core.relu_forward(swapped(x), np.empty_like(x))
    with pytest.raises(ValueError, match="native byte order"):
        core.dense_forward(swapped(x), np.ones((3, 2)), np.zeros(2), np.empty((2, 2)))
    with pytest.raises(ValueError, match="byte order"):
        core.dense_forward(x, np.ones((3, 2)), swapped(np.zeros(2)), np.empty((2, 2)))
    chain = core.DenseChain([None], [core.ACT_RELU], [3, 3], np.float64)
    assert chain.forward(swapped(x)) is None
    # the losses leave swapped predictions to their Python path, and convert swapped targets and weights
    assert core.bce_loss(1e-7, 1e-12, True, swapped(x / 2), x / 2, None, None) is None
    native = core.softmax_ce_loss(x, np.zeros(2, np.int64), np.ones(2), None)
    converted = core.softmax_ce_loss(x, swapped(np.zeros(2, np.int64)), swapped(np.ones(2)), None)
    assert converted[0] == native[0] and converted[2] == native[2]
    np.testing.assert_array_equal(converted[1], native[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_bce_with_big_endian_inputs_targets_and_weights(dtype):
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, size=(6, 2)).astype(dtype)
    t = (rng.random((6, 2)) > 0.5).astype(dtype)
    w = rng.uniform(0.5, 2, size=6)
    loss = lk.binary_cross_entropy
    value, grad, acc = loss.batch(p, t, np.empty_like(p), sample_weight=w)
    grad = grad.copy()
    for pv, tv, wv, gv in [(swapped(p), t, w, np.empty_like(p)), (p, swapped(t), w, np.empty_like(p)),
                           (p, t, swapped(w), np.empty_like(p)),
                           (swapped(p), swapped(t), swapped(w), swapped(np.empty_like(p)))]:
        v2, g2, a2 = loss.batch(pv, tv, gv, sample_weight=wv)
        assert v2 == pytest.approx(value, rel=1e-6 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(g2, grad, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert a2 == acc


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_softmax_cross_entropy_with_big_endian_logits_labels_and_weights(dtype):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(7, 3)).astype(dtype)
    labels = rng.integers(0, 3, size=7).astype(np.int64)
    w = rng.uniform(0.5, 2, size=7)
    loss = lk.softmax_cross_entropy
    value, grad, acc = loss.batch(z, labels, np.empty_like(z), sample_weight=w)
    grad = grad.copy()
    for zv, lv, wv, gv in [(swapped(z), labels, w, np.empty_like(z)), (z, swapped(labels), w, np.empty_like(z)),
                           (z, labels, swapped(w), np.empty_like(z)),
                           (swapped(z), swapped(labels), swapped(w), swapped(np.empty_like(z)))]:
        v2, g2, a2 = loss.batch(zv, lv, gv, sample_weight=wv)
        assert v2 == pytest.approx(value, rel=1e-6 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(g2, grad, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
        assert a2 == acc


def test_fit_on_big_endian_data_equals_native():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 3))
    t = (x[:, :1] > 0).astype(float)
    nets = [lk.Net([lk.Linear(3, 4, rng=0), lk.Sigmoid(), lk.Linear(4, 1, rng=1), lk.Sigmoid()]) for _ in range(2)]
    lk.fit(nets[0], x, t, epochs=3, lr=0.5, batch_size=8, seed=0)
    lk.fit(nets[1], swapped(x), swapped(t), epochs=3, lr=0.5, batch_size=8, seed=0)
    np.testing.assert_array_equal(nets[0].predict(x), nets[1].predict(x))


@pytest.mark.parametrize("byteorder", ["=", ">"])
@pytest.mark.parametrize("lead", [lk.Softmax, lk.Tanh, lk.GELU, lk.Identity])
@pytest.mark.parametrize("net_dtype", [np.float64, np.float32])
def test_a_leading_parameterless_layer_computes_in_the_input_dtype_on_both_paths(byteorder, lead, net_dtype):
    """Issue 21: Net([Softmax(), Linear(.., dtype=float64)]) on float32 input: the softmax computes in
    float32 (the input's dtype, either byte order), the Linear converts; the net's fused path and the
    layers called one by one agree bit for bit (docs/guide/layers.md, 'The dtype of a layer without parameters')."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4)).astype(np.dtype(np.float32).newbyteorder(byteorder))
    dy = rng.normal(size=(5, 3)).astype(net_dtype)
    layers = [lead(), lk.Linear(4, 3, rng=1, dtype=net_dtype), lk.ReLU()]
    net = lk.Net(layers)
    y, trace = net.forward(x)
    dx = net.backward(trace, dy, input_grad=True)
    dW = layers[1].dW.copy()
    assert trace[1].x.dtype == np.float32 and y.dtype == net_dtype and dx.dtype == np.float32
    np.testing.assert_array_equal(trace[1].x, lead().forward(x.astype(np.float32)))  # float32 arithmetic
    h = layers[0].forward(x)
    g = layers[1].backward(h, layers[2].backward(layers[1].forward(h), dy))
    by_hand = layers[0].backward(x, g)
    assert h.dtype == np.float32 and by_hand.dtype == np.float32
    assert np.array_equal(y, layers[2].forward(layers[1].forward(h)))
    assert np.array_equal(dx, by_hand) and np.array_equal(dW, layers[1].dW)
    assert np.array_equal(net.predict(x), y)


class _BigEndianScale(lk.Layer):
    """A custom layer whose parameter is stored big-endian: ``y = x * beta``."""

    param_names = ("beta",)

    def __init__(self):
        self.beta = np.linspace(.5, 2, 3).astype(">f8")

    def forward(self, x):
        return x * self.beta

    def backward(self, x, dy):
        self.dbeta = (x * dy).sum(axis=0).astype(">f8")
        return dy * self.beta


@pytest.mark.parametrize("entry", ["layer.step", "Net.step", "Net.step with a Linear"])
def test_step_with_a_learning_rate_updates_a_big_endian_parameter_in_place(entry):
    """``step(lr)`` updates a big-endian parameter in place, as ``step(SGD(lr))`` does."""
    layers, reference = ([_BigEndianScale()], [_BigEndianScale()])
    if entry == "Net.step with a Linear":  # the custom layer between fused segments
        layers.insert(0, lk.Linear(3, 3, rng=0))
        reference.insert(0, lk.Linear(3, 3, rng=0))
    x = np.random.default_rng(0).normal(size=(4, 3))
    for net in (lk.Net(layers), lk.Net(reference)):
        y, trace = net.forward(x)
        net.backward(trace, np.ones_like(y))
    param = layers[-1].beta
    if entry == "layer.step":
        layers[-1].step(0.1)
        reference[-1].step(lk.optim.SGD(0.1))
    else:
        lk.Net(layers).step(0.1)
        lk.Net(reference).step(lk.optim.SGD(0.1))
    assert layers[-1].beta is param and param.dtype == np.dtype(">f8")  # in place, byte order kept
    np.testing.assert_array_equal(param, reference[-1].beta)
    np.testing.assert_array_equal(param, np.linspace(.5, 2, 3) - 0.1 * layers[-1].dbeta)

"""Net: forward/trace/backward, reentrancy, custom layers, introspection."""
import re

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad


class Square(lk.Layer):
    """A user's layer: forward and backward only."""

    def forward(self, x):
        return np.asarray(x, dtype=float) ** 2

    def backward(self, x, dy):
        return 2 * np.asarray(x, dtype=float) * dy


class Scale(lk.Layer):
    """A user's layer with a parameter, relying on Layer.step."""

    param_names = ("s",)

    def __init__(self, n):
        self.s = np.ones(n)

    def forward(self, x):
        return x * self.s

    def backward(self, x, dy):
        self.ds = (x * dy).sum(axis=0)
        return dy * self.s


def random_net(rng, widths, activations):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(lk.Linear(n_in, n_out, rng=rng))
        layers.append(activations[i % len(activations)]())
    return lk.Net(layers)


@pytest.mark.parametrize("n", [1, 7, 64])
@pytest.mark.parametrize("widths, activations", [
    ((5, 4, 3), (lk.Sigmoid,)),
    ((6, 5, 4, 2), (lk.ReLU, lk.Sigmoid)),
    ((3, 4, 3), (lk.Softmax,)),
    ((4, 3, 3, 2), (Square, lk.ReLU)),
])
def test_whole_net_gradients_match_differences(rng, n, widths, activations):
    net = random_net(rng, widths, activations)
    for layer in net:
        if isinstance(layer, lk.Linear):
            layer.b = rng.normal(size=layer.b.shape)
    x = rng.normal(size=(n, widths[0]))
    dy = rng.normal(size=(n, widths[-1]))
    assert_grad(net, x, dy=dy, rtol=1e-6, atol=1e-8, max_coords=None)


def test_trace_records_each_layer_and_its_input(rng):
    net = lk.Net([lk.Linear(3, 4, rng=rng), lk.ReLU(), lk.Linear(4, 1, rng=rng)])
    x = rng.normal(size=(2, 3))
    y, trace = net.forward(x)
    assert [entry.layer for entry in trace] == list(net)
    assert trace[0].x is x
    np.testing.assert_array_equal(trace[1].x, net[0].forward(x))
    np.testing.assert_array_equal(trace[2].x, np.maximum(trace[1].x, 0))
    for layer, seen in trace:  # unpacks like the course's (layer, x) pairs
        assert seen.shape[0] == 2
    np.testing.assert_array_equal(y, net.predict(x))
    assert "Linear(3, 4) <- (2, 3)" in repr(trace)


def test_two_forwards_then_backwards_in_any_order(rng):
    net = lk.Net([lk.Linear(3, 5, rng=rng), lk.Sigmoid(), lk.Linear(5, 2, rng=rng), Scale(2)])
    xa, xb = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    dya, dyb = rng.normal(size=(4, 2)), rng.normal(size=(6, 2))

    def grads_alone(x, dy):
        _, trace = net.forward(x)
        dx = net.backward(trace, dy, input_grad=True)
        return dx, [getattr(l, "d" + p).copy() for l in net for p in l.param_names]

    expected_a, expected_b = grads_alone(xa, dya), grads_alone(xb, dyb)
    _, trace_a = net.forward(xa)
    _, trace_b = net.forward(xb)
    for trace, dy, expected in ((trace_b, dyb, expected_b), (trace_a, dya, expected_a)):
        dx = net.backward(trace, dy, input_grad=True)
        np.testing.assert_array_equal(dx, expected[0])
        for got, want in zip([getattr(l, "d" + p) for l in net for p in l.param_names], expected[1]):
            np.testing.assert_array_equal(got, want)


def test_step_updates_every_layer_including_custom(rng):
    net = lk.Net([lk.Linear(3, 2, rng=rng), Scale(2)])
    y, trace = net.forward(rng.normal(size=(5, 3)))
    net.backward(trace, np.ones_like(y))
    before = net[0].W.copy(), net[1].s.copy()
    net.step(0.5)
    np.testing.assert_allclose(net[0].W, before[0] - 0.5 * net[0].dW)
    np.testing.assert_allclose(net[1].s, before[1] - 0.5 * net[1].ds)


def test_training_steps_reduce_the_loss(rng):
    net = lk.Net([lk.Linear(4, 8, rng=rng), lk.ReLU(), lk.Linear(8, 1, rng=rng), lk.Sigmoid()])
    x = rng.normal(size=(64, 4))
    t = (x[:, 0] + x[:, 1] > 0).astype(float)
    losses = []
    for _ in range(50):
        y, trace = net.forward(x)
        loss, dy = lk.binary_cross_entropy(y, t)
        losses.append(loss)
        net.backward(trace, dy)
        net.step(0.5)
    assert losses[-1] < 0.5 * losses[0]


def test_str_len_iter_index(rng):
    net = lk.Net([lk.Linear(64, 32, rng=rng), lk.ReLU(), lk.Linear(32, 1, rng=rng), lk.Sigmoid()])
    text = str(net)
    lines = text.splitlines()
    assert len(lines) == 6
    assert "Linear(64, 32)" in lines[1] and "32" in lines[1] and "2080" in lines[1]
    assert "Sigmoid()" in lines[4] and lines[4].split()[-2:] == ["1", "0"]
    assert lines[-1] == "total params: 2113"
    assert len(net) == 4 and net.n_params == 2113
    assert isinstance(net[1], lk.ReLU) and list(net)[2] is net[2]
    assert isinstance(net[:2], lk.Net) and len(net[:2]) == 2
    assert repr(net) == "Net([Linear(64, 32), ReLU(), Linear(32, 1), Sigmoid()])"


def test_backward_refuses_a_foreign_trace(rng):
    net_a = lk.Net([lk.Linear(3, 2, rng=rng)])
    net_b = lk.Net([lk.Linear(3, 2, rng=rng)])
    y, trace = net_a.forward(np.ones((1, 3)))
    with pytest.raises(ValueError, match="trace does not come from this net's forward"):
        net_b.backward(trace, np.ones_like(y))
    with pytest.raises(TypeError, match="trace must be the Trace returned by forward, got dict"):
        net_a.backward({}, np.ones_like(y))


def test_bad_layers():
    with pytest.raises(TypeError, match="item 1 must be a layer .* got int without forward"):
        lk.Net([lk.ReLU(), 3])
    with pytest.raises(TypeError, match="layers must be a sequence of layers, got ReLU"):
        lk.Net(lk.ReLU())


def test_errors_name_the_failing_layer(rng):
    net = lk.Net([lk.Linear(3, 4, rng=rng), lk.ReLU(), lk.Linear(5, 1, rng=rng)])
    with pytest.raises(ValueError, match=r"Linear\(5, 1\): x must have 5 features \(columns\), got shape \(2, 4\)"):
        net.forward(np.ones((2, 3)))


# ---------------------------------------------------------------- issue 15, item 4
def _alpha_layer(value):
    class Alpha(lk.Layer):
        param_names = ("alpha",)

        def __init__(self):
            self.alpha = value

        def forward(self, x):
            return x * np.asarray(self.alpha)

        def backward(self, x, dy):
            self.dalpha = np.sum(x * dy, axis=0) if np.ndim(self.alpha) else np.sum(x * dy)
            return dy * np.asarray(self.alpha)
    return Alpha()


@pytest.mark.parametrize("value", [np.float64(0.5), 0.5, [0.5, 0.5, 0.5], np.array([1, 2, 3])],
                         ids=["numpy-scalar", "float", "list", "int-array"])
@pytest.mark.parametrize("update", ["lr", "sgd", "fit"])
def test_step_refuses_parameters_it_cannot_update_in_place(value, update):
    """Issue 15 item 4: ``net.step(0.1)`` and ``fit(lr=...)`` left such a parameter unchanged, silently."""
    layer = _alpha_layer(value)
    net = lk.Net([lk.Linear(3, 3, rng=0), layer])
    x = np.random.default_rng(0).random((5, 3))
    y, trace = net.forward(x)
    net.backward(trace, y)
    kind = type(value).__name__
    if update == "lr":
        with pytest.raises(TypeError, match=rf"Alpha\(\)\.step: parameter 'alpha' must be a writeable float "
                                            rf"ndarray to be updated in place, got {kind}.*np\.array"):
            net.step(0.1)
        with pytest.raises(TypeError, match=rf"parameter 'alpha' .* got {kind}"):
            layer.step(0.1)
    elif update == "sgd":
        with pytest.raises(TypeError, match=rf"SGD: parameter Alpha\(\)\.alpha must be a writeable float "
                                            rf"ndarray to be updated in place, got {kind}"):
            net.step(lk.optim.SGD())
    else:
        with pytest.raises(TypeError, match=rf"parameter 'alpha' .* got {kind}"):
            lk.fit(net, x, np.ones((5, 3)), loss="mse", lr=0.1, epochs=1, verbose=False)


def test_step_updates_a_zero_d_float_array_parameter():
    layer = _alpha_layer(np.array(0.5))
    x = np.random.default_rng(0).random((5, 3))
    layer.backward(x, layer.forward(x))
    expected = 0.5 - 0.1 * layer.dalpha
    layer.step(0.1)
    assert float(layer.alpha) == pytest.approx(float(expected))


EMPTY_NETS = [
    lambda: [lk.Linear(3, 2, rng=0), lk.ReLU()],
    lambda: [lk.Linear(3, 2, rng=0), lk.Tanh(), lk.Linear(2, 2, rng=1), lk.Softmax()],
    lambda: [lk.Linear(3, 2, rng=0), lk.Dropout(0.5, rng=0), lk.Linear(2, 2, rng=1), lk.Sigmoid()],
]


@pytest.mark.parametrize("make", EMPTY_NETS)
def test_an_empty_batch_gives_empty_input_gradients_and_zero_parameter_gradients(make):
    """Issue 21: forward takes a batch of 0 rows; backward gives what PyTorch gives (empty dx, zero dW, db)."""
    net = lk.Net(make())
    y, trace = net.forward(np.zeros((0, 3)))
    assert y.shape == (0, 2)
    hand_built = [(layer, np.array(x)) for layer, x in trace]  # a list of plain (layer, x) pairs
    for given in (trace, hand_built):
        dx = net.backward(given, np.zeros((0, 2)), input_grad=True)
        assert dx.shape == (0, 3)
        for layer in net:
            if isinstance(layer, lk.Linear):
                assert not layer.dW.any() and not layer.db.any() and layer.dW.shape == layer.W.shape


@pytest.mark.parametrize("make", EMPTY_NETS)
@pytest.mark.parametrize("written", [[], (), np.zeros(0), 5])
def test_a_hand_built_trace_of_an_empty_batch_without_columns_is_refused_clearly(make, written):
    """Issue 21: the last entry written as [] (an empty batch as lists) raised IndexError: tuple index out of range."""
    layers = make()
    net = lk.Net(layers)
    _, trace = net.forward(np.zeros((0, 3)))
    hand_built = [(layer, x) for layer, x in trace[:-1]] + [(layers[-1], written)]
    # the net's own check (whole-net plan) or the layer's (segments), each naming the layer and the shape
    with pytest.raises(ValueError, match=rf"{re.escape(repr(layers[-1]))}.* 2-D .*{re.escape(str(np.shape(written)))}"
                                         rf"|{re.escape(repr(layers[-1]))}.* {re.escape(str(np.shape(written)))}.* 2-D"):
        net.backward(hand_built, np.zeros((0, 2)))

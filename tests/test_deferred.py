"""Net.backward's input gradient only when asked (layerkit/_deferred.py): the contract and its deprecation path."""
import warnings

import numpy as np
import pytest

import layerkit as lk
from layerkit._deferred import DeferredInputGrad


class _Recording(lk.Layer):
    """A Python identity layer that records whether its input gradient was asked for."""

    supports_need_dx = True

    def __init__(self):
        self.asked = []

    def forward(self, x):
        return np.asarray(x, dtype=float)

    def backward(self, x, dy, need_dx=True):
        self.asked.append(need_dx)
        return np.array(dy, copy=True) if need_dx else None


def _net():
    return lk.Net([lk.Linear(4, 5, rng=0), lk.Sigmoid(), lk.Linear(5, 2, rng=1)])


def _pass(net, seed=0, workspace=None):
    x = np.random.default_rng(seed).normal(size=(6, 4))
    y, trace = net.forward(x, workspace=workspace)
    return trace, y - 0.25


def _grads(net):
    return [getattr(layer, "d" + name).tobytes() for layer in net.layers for name in getattr(layer, "param_names", ())]


def test_without_input_grad_the_first_layer_skips_its_input_gradient():
    first = _Recording()
    net = lk.Net([first, lk.Linear(4, 3, rng=0), lk.Tanh()])
    trace, dy = _pass(net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = net.backward(trace, dy)
    assert isinstance(result, DeferredInputGrad) and first.asked == [False]
    assert net.backward(trace, dy, input_grad=False) is None and first.asked == [False, False]
    assert isinstance(net.backward(trace, dy, input_grad=True), np.ndarray) and first.asked[-1] is True


def test_asked_for_it_gives_the_array_and_no_warning():
    net = _net()
    trace, dy = _pass(net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dx = net.backward(trace, dy, input_grad=True)
    expected = ((dy @ net[2].W.T) * (lambda s: s * (1 - s))(1 / (1 + np.exp(-(trace[0].x @ net[0].W + net[0].b))))
                ) @ net[0].W.T
    np.testing.assert_allclose(dx, expected, rtol=1e-12)


def test_the_old_use_warns_and_gives_the_same_gradient_leaving_the_parameter_gradients_alone():
    net = _net()
    trace, dy = _pass(net)
    expected = net.backward(trace, dy, input_grad=True)
    deferred = net.backward(trace, dy)
    net[0].dW *= 0.5  # clipped in place before the old code reads dx: kept as it is
    grads = _grads(net)
    with pytest.warns(FutureWarning, match="pass input_grad=True"):
        dx = np.asarray(deferred)
    assert dx.tobytes() == expected.tobytes()
    assert _grads(net) == grads
    with warnings.catch_warnings():  # computed once: no second warning
        warnings.simplefilter("error")
        assert deferred.shape == expected.shape


@pytest.mark.parametrize("use", [
    lambda d: d.shape, lambda d: d * 2.0, lambda d: 1.0 - d, lambda d: d[0], lambda d: d.sum(), lambda d: -d,
    lambda d: np.tanh(d), lambda d: d @ np.ones(4), lambda d: len(d), lambda d: d.T,
])
def test_every_array_use_warns_and_computes(use):
    net = _net()
    trace, dy = _pass(net)
    expected = net.backward(trace, dy, input_grad=True)
    deferred = net.backward(trace, dy)
    with pytest.warns(FutureWarning, match="no longer computes the input gradient"):
        result = use(deferred)
    np.testing.assert_array_equal(result, use(expected))


def test_after_a_step_it_cannot_be_computed_and_says_what_to_do():
    net = _net()
    trace, dy = _pass(net)
    deferred = net.backward(trace, dy)
    net.step(0.1)
    with pytest.warns(FutureWarning), pytest.raises(RuntimeError, match="updated since.*input_grad=True"):
        np.asarray(deferred)
    other = _net()
    trace, dy = _pass(other)
    deferred = other.backward(trace, dy)
    other.step(lk.optim.Adam(0.01))
    with pytest.warns(FutureWarning), pytest.raises(RuntimeError, match="input_grad=True"):
        deferred.shape


def test_after_the_workspace_served_another_pass_it_cannot_be_computed():
    net = _net()
    workspace = net.workspace()
    trace, dy = _pass(net, 0, workspace)
    deferred = net.backward(trace, dy)
    _pass(net, 1, workspace)
    with pytest.warns(FutureWarning), pytest.raises(RuntimeError, match="input_grad=True"):
        np.asarray(deferred)


def test_a_bad_input_grad_is_refused():
    net = _net()
    trace, dy = _pass(net)
    with pytest.raises(TypeError, match="Net.backward: input_grad must be True, False or None, got str"):
        net.backward(trace, dy, input_grad="yes")


def test_nets_inside_nets_still_pass_their_input_gradient_on():
    inner = lk.Net([lk.Linear(5, 5, rng=2), lk.Tanh()])
    outer = lk.Net([lk.Linear(4, 5, rng=0), _Recording(), inner, lk.Linear(5, 2, rng=1)])
    flat = lk.Net([lk.Linear(4, 5, rng=0), lk.Linear(5, 5, rng=2), lk.Tanh(), lk.Linear(5, 2, rng=1)])
    trace, dy = _pass(outer)
    outer.backward(trace, dy, input_grad=False)
    flat_trace, _ = _pass(flat)
    flat.backward(flat_trace, dy, input_grad=False)
    assert outer[0].dW.tobytes() == flat[0].dW.tobytes()  # the gradient went through the inner net
    assert outer[1].asked == [True]


def test_numpy_booleans_are_taken_as_booleans():
    net = _net()
    trace, dy = _pass(net)
    assert net.backward(trace, dy, input_grad=np.False_) is None
    np.testing.assert_array_equal(net.backward(trace, dy, input_grad=np.True_),
                                  net.backward(trace, dy, input_grad=True))


def test_probes_of_private_names_neither_warn_nor_compute():
    """A notebook looks for _repr_html_ and the like when it displays a result: that is no use as an array."""
    net = _net()
    trace, dy = _pass(net)
    deferred = net.backward(trace, dy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(deferred, "_repr_html_", None) is None
        assert getattr(deferred, "__array_struct__", None) is None
        assert "not computed" in repr(deferred)
    with pytest.warns(FutureWarning):  # still there for a real use
        np.testing.assert_array_equal(np.asarray(deferred), net.backward(trace, dy, input_grad=True))

"""layerkit.warnings: layers whose gradients or step() no update reaches (issue 15, items 10-12)."""
import warnings

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import GradcheckError, assert_grad, check_grad
from layerkit.warnings import DoubleSoftmaxWarning, LayerkitWarning, UntrainedParameterWarning

X = np.random.default_rng(0).random((5, 3))


def _ported_linear():
    """The assignment's own Linear, ported as a subclass that forgets param_names (a fresh class each time)."""
    class PortedLinear(lk.Linear):
        param_names = ()
    return PortedLinear


def _own_step_layer():
    class OwnStep(lk.Layer):
        def __init__(self):
            self.scale = np.ones(3)

        def forward(self, x):
            return x * self.scale

        def backward(self, x, dy):
            self.grad_scale = np.sum(x * dy, axis=0)
            return dy * self.scale

        def step(self, lr):
            self.scale -= lr * self.grad_scale
    return OwnStep


def _backward(net):
    y, trace = net.forward(X)
    net.backward(trace, y - 1.0)


def test_warnings_are_user_warnings():
    assert issubclass(UntrainedParameterWarning, LayerkitWarning)
    assert issubclass(DoubleSoftmaxWarning, LayerkitWarning) and issubclass(LayerkitWarning, UserWarning)


@pytest.mark.parametrize("update", [0.1, lk.optim.SGD(lr=0.1), lk.optim.Adam()], ids=["lr", "sgd", "adam"])
def test_net_step_warns_once_per_class_about_undeclared_gradients(update):
    """Issue 15 item 10: a layer storing dW/db with no param_names never trained, silently."""
    cls = _ported_linear()
    net = lk.Net([cls(3, 4, rng=0), lk.ReLU(), cls(4, 2, rng=1)])
    before = net[0].W.copy()
    _backward(net)
    with pytest.warns(UntrainedParameterWarning,
                      match=r"PortedLinear\) stores the gradients dW, db of its arrays W, b, but param_names "
                            r"does not list W, b: they are never trained\. Add param_names = \('W', 'b'\)") as caught:
        net.step(update)
    assert len([w for w in caught if issubclass(w.category, UntrainedParameterWarning)]) == 1  # once per class
    assert caught[0].filename == __file__  # points at the caller, not inside layerkit
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedParameterWarning)
        net.step(update)  # the second step is quiet
    np.testing.assert_array_equal(net[0].W, before)  # the warning is right: nothing trained


def test_lone_layer_step_and_optimizer_warn():
    cls = _ported_linear()
    layer = cls(3, 2, rng=0)
    y = layer.forward(X)
    layer.backward(X, y)
    with pytest.warns(UntrainedParameterWarning, match=r"param_names = \('W', 'b'\)"):
        lk.optim.Adam().update_layer(layer)


def test_fit_warns_about_undeclared_gradients():
    cls = _ported_linear()
    net = lk.Net([cls(3, 1, rng=0), lk.Sigmoid()])
    with pytest.warns(UntrainedParameterWarning, match=r"never trained"):
        lk.fit(net, X, np.array([0, 1, 0, 1, 1]), epochs=2, verbose=False, loss="bce")


def test_check_grad_fails_naming_an_undeclared_gradient():
    """Issue 15 item 10: assert_grad passed the ported Linear even with dW negated."""
    class Negated(_ported_linear()):
        def backward(self, x, dy):
            dx = super().backward(x, dy)
            self.dW = -self.dW
            return dx

    for layer in (Negated(3, 2, rng=0), lk.Net([Negated(3, 2, rng=0)])):
        with pytest.raises(GradcheckError, match=r"stores the gradients dW, db of its arrays W, b, which "
                                                 r"param_names does not list.*add param_names = \('W', 'b'\)"):
            check_grad(layer, X, seed=0)
        with pytest.raises(GradcheckError, match=r"dW"):
            assert_grad(layer, X, seed=0)


def test_declared_layers_neither_warn_nor_fail():
    net = lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerkitWarning)
        _backward(net)
        net.step(0.1)
        net.step(lk.optim.Adam())
        assert_grad(net, X, seed=0)


@pytest.mark.parametrize("run", ["net.step", "layer.step", "fit"])
def test_a_layer_overriding_step_without_param_names_is_named_when_an_optimizer_trains_it(run):
    """Issue 15 item 11: the optimizers silently skipped it; only a float learning rate called step()."""
    cls = _own_step_layer()
    net = lk.Net([lk.Linear(3, 3, rng=0), cls()])
    _backward(net)
    message = (r"OwnStep\) overrides step\(\) but lists no param_names: an optimizer never calls a "
               r"layer's step\(\).*Add param_names")
    with pytest.warns(UntrainedParameterWarning, match=message):
        if run == "net.step":
            net.step(lk.optim.SGD())
        elif run == "layer.step":
            lk.Layer.step(net[1], lk.optim.SGD())
        else:
            lk.fit(net, X, np.ones((5, 3)), loss="mse", optimizer=lk.optim.Adam(), epochs=1, verbose=False)


def test_a_layer_overriding_step_is_quiet_with_a_learning_rate():
    cls = _own_step_layer()
    net = lk.Net([cls()])
    _backward(net)
    before = net[0].scale.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerkitWarning)
        net.step(0.1)
    assert not np.array_equal(net[0].scale, before)  # its own step ran

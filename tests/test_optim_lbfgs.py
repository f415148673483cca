"""``layerkit.optim.LBFGS``: full-batch L-BFGS-B over a net's parameters, in place."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.losses import get_loss
from layerkit.optim.lbfgs import FlatParameters, minimize


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 + 0.01 * rng.normal(size=(40, 1))
    net = lk.Net([lk.Linear(3, 1, rng=seed)])
    loss = get_loss("mse")

    def closure():
        pred, trace = net.forward(x)
        value, grad = loss(pred, y)
        net.backward(trace, grad, input_grad=False)
        return value

    return net, x, y, closure


def test_step_reaches_the_least_squares_solution_in_the_net_s_own_arrays():
    net, x, y, closure = _problem()
    W, b = net[0].W, net[0].b
    opt = lk.optim.LBFGS(net, max_iter=100, tol=1e-10)
    final = opt.step(closure)
    design = np.hstack([x, np.ones((40, 1))])
    exact = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(net[0].W[:, 0], exact[:3, 0], atol=1e-6)
    np.testing.assert_allclose(net[0].b, exact[3], atol=1e-6)
    assert net[0].W is W and net[0].b is b  # updated in place, never replaced
    assert final == pytest.approx(float(np.mean((design @ exact - y) ** 2)), rel=1e-6)
    assert 0 < opt.n_iter_ <= 100


def test_weight_decay_without_biases_is_ridge_on_the_weights_only():
    net, x, y, closure = _problem(1)
    decay = 0.5
    lk.optim.LBFGS(net, max_iter=200, tol=1e-12, weight_decay=decay, decay_biases=False).step(closure)
    # minimise mean((xW + b - y)^2) + decay/2 ||W||^2: normal equations with an unpenalised intercept
    n = x.shape[0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    W = np.linalg.solve(2 / n * xc.T @ xc + decay * np.eye(3), 2 / n * xc.T @ yc)
    np.testing.assert_allclose(net[0].W, W, atol=1e-6)
    np.testing.assert_allclose(net[0].b, y.mean(0) - x.mean(0) @ W, atol=1e-6)


def test_objective_gradient_matches_central_differences():
    net, x, y, closure = _problem(2)
    net = lk.Net([lk.Linear(3, 4, rng=2), lk.Tanh(), lk.Linear(4, 1, rng=3)])
    loss = get_loss("mse")

    def closure():
        pred, trace = net.forward(x)
        value, grad = loss(pred, y)
        net.backward(trace, grad, input_grad=False)
        return value

    flat = FlatParameters(net)
    assert [p.ndim for _, _, p in flat.params] == [2, 2, 1, 1]  # weights first, as MLPClassifier packs them
    theta = flat.get()
    flat.set(theta)
    closure()
    grad = flat.gradient().copy()
    eps = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = eps
        flat.set(theta + step)
        up = closure()
        flat.set(theta - step)
        down = closure()
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_max_iter_and_max_fun_bound_the_run():
    net, x, y, closure = _problem(3)
    calls = []

    def counted():
        calls.append(1)
        return closure()

    opt = lk.optim.LBFGS(net, max_iter=100, max_fun=4, tol=0.0)
    opt.step(counted)
    assert len(calls) <= 5 and opt.result_.nfev <= 5
    opt = lk.optim.LBFGS(net, max_iter=2, tol=0.0)
    opt.step(closure)
    assert opt.n_iter_ == 2


def test_bad_arguments_are_named():
    net, *_ = _problem()
    with pytest.raises(ValueError, match="LBFGS: net must be a layerkit Net with trainable parameters"):
        lk.optim.LBFGS(lk.Net([lk.ReLU()]))
    with pytest.raises(ValueError, match="LBFGS: max_iter"):
        lk.optim.LBFGS(net, max_iter=0)
    with pytest.raises(TypeError, match="LBFGS.step: closure must be callable, got int"):
        lk.optim.LBFGS(net).step(3)
    with pytest.raises(TypeError, match="LBFGS: decay_biases must be a bool"):
        lk.optim.LBFGS(net, decay_biases="yes")


def test_minimize_leaves_the_best_point_in_the_net():
    net, x, y, closure = _problem(4)
    flat = FlatParameters(net)
    result = minimize(flat, closure, max_iter=50, max_fun=100, tol=1e-9)
    np.testing.assert_allclose(flat.get(), result.x)

"""The estimators solve MLPClassifier's and MLPRegressor's problems: the same penalty, losses, rates and errors."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from layerkit.optim import SGD
from layerkit.sklearn import NetClassifier, NetRegressor, NonFiniteWeightsError
from layerkit.sklearn._losses import Poisson, Scaled
from layerkit.sklearn._stopping import LearningRate
from layerkit.losses import get_loss


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _same_weights(ours, theirs, rtol=1e-7, atol=1e-10):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_full_batch_sgd_epochs_equal_mlp_classifier_s(iris, alpha, momentum):
    # one minibatch of all the rows, unshuffled: the same updates, so alpha's scaling and the loss agree exactly
    X, y = iris
    params = dict(hidden_layer_sizes=(6,), solver="sgd", alpha=alpha, momentum=momentum, learning_rate_init=0.1,
                  batch_size=150, shuffle=False, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = NetClassifier(**params).fit(X, y), MLPClassifier(**params).fit(X, y)
    _same_weights(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)  # the L2 term included


def test_full_batch_sgd_regression_equals_mlp_regressor_s_half_squared_error():
    X, y = make_regression(n_samples=80, n_features=4, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(axis=0)
    params = dict(hidden_layer_sizes=(5,), solver="sgd", alpha=0.1, momentum=0.0, learning_rate_init=0.01,
                  batch_size=80, shuffle=False, max_iter=4, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = NetRegressor(**params).fit(X, y), MLPRegressor(**params).fit(X, y)
    _same_weights(ours, theirs)


@pytest.mark.parametrize("alpha", [1e-4, 1.0])
def test_lbfgs_with_alpha_ends_at_mlp_classifier_s_weights(iris, alpha):
    X, y = iris
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", alpha=alpha, max_iter=40, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = NetClassifier(**params).fit(X, y), MLPClassifier(**params).fit(X, y)
    _same_weights(ours, theirs, rtol=1e-5, atol=1e-8)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8) and ours.n_iter_ == theirs.n_iter_


def test_lbfgs_objective_gradient_matches_central_differences(iris):
    X, y = iris
    X, y = X[::8], y[::8]  # every class
    clf = NetClassifier(hidden_layer_sizes=(3,), solver="lbfgs", alpha=0.3, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    Y = np.eye(3)[y]
    theta = np.hstack([p.ravel() for p in clf.coefs_ + clf.intercepts_])
    value, grad = clf._loss_grad_lbfgs(theta, X, Y, None)
    grad = grad.copy()
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        numeric[i] = (clf._loss_grad_lbfgs(theta + step, X, Y, None)[0]
                      - clf._loss_grad_lbfgs(theta - step, X, Y, None)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_poisson_loss_value_and_gradient():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 2))
    t = rng.poisson(2.0, size=(6, 2)).astype(float)
    w = rng.uniform(0.5, 2.0, size=6)
    loss = Poisson()
    value, grad = loss(z, t, sample_weight=w)
    rows = (np.exp(z) - t * z + np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0) - t).sum(axis=1)
    assert value == pytest.approx(np.mean(w * rows))
    numeric = np.empty_like(z)
    for index in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[index] = 1e-6
        numeric[index] = (loss(z + step, t, sample_weight=w)[0] - loss(z - step, t, sample_weight=w)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="poisson loss: targets must be >= 0"):
        loss(z, -t - 1)


def test_scaled_loss_scales_value_and_gradient():
    rng = np.random.default_rng(1)
    y, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    base, scaled = get_loss("mse"), Scaled(get_loss("mse"), 1.5)
    (v0, g0), (v1, g1) = base(y, t), scaled(y, t)
    assert v1 == pytest.approx(1.5 * v0)
    np.testing.assert_allclose(g1, 1.5 * g0)


def test_poisson_regressor_predicts_the_exponential_of_the_net(iris):
    X, _ = iris
    counts = np.random.default_rng(0).poisson(np.exp(0.5 * X[:, 0]))
    reg = NetRegressor(loss="poisson", hidden_layer_sizes=(4,), solver="lbfgs", random_state=0).fit(X, counts)
    assert reg.out_activation_ == "exp"
    np.testing.assert_allclose(reg.predict(X), np.exp(reg.net_.predict(X)[:, 0]))
    with pytest.raises(ValueError, match="loss='poisson' needs targets >= 0"):
        NetRegressor(loss="poisson").fit(X, -counts - 1.0)


def test_learning_rate_schedules_as_mlp_classifier():
    sgd = SGD(lr=0.1)
    rate = LearningRate(sgd, "invscaling", 0.1, 0.5)
    rate.iteration_ends(3)
    assert rate.learning_rate == pytest.approx(0.1 / 2) and sgd.lr(0) == pytest.approx(0.05)
    adaptive = LearningRate(sgd, "adaptive", 0.1, 0.5)
    assert adaptive.trigger_stopping("no improvement.", False) is False
    assert adaptive.learning_rate == pytest.approx(0.02) and sgd.lr(7) == pytest.approx(0.02)
    adaptive.learning_rate = 1e-6
    assert adaptive.trigger_stopping("no improvement.", False) is True
    assert LearningRate(sgd, "constant", 0.1, 0.5).trigger_stopping("x", False) is True


def test_adaptive_rate_drops_before_stopping(iris):
    X, y = iris
    clf = NetClassifier(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1, max_iter=500,
                        random_state=0).fit(X, y)
    # every epoch counts as no improvement: the rate drops by 5 every 2 epochs until it is below 1e-6
    assert clf._optimizer.learning_rate <= 1e-6 and clf.n_iter_ < 500


def test_non_finite_weights_error_is_value_error_and_floating_point_error():
    assert issubclass(NonFiniteWeightsError, ValueError) and issubclass(NonFiniteWeightsError, FloatingPointError)
    X = np.finfo(np.float64).max * np.random.default_rng(0).uniform(size=(10, 2))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        with pytest.raises(NonFiniteWeightsError, match="Solver produced non-finite parameter weights"):
            NetRegressor().fit(X, np.arange(10.0))


def test_too_few_rows_for_early_stopping_as_mlp_classifier():
    with pytest.raises(ValueError, match="The validation set is too small"):
        NetRegressor(early_stopping=True).fit(np.ones((2, 3)), [1.0, 2.0])


def test_fortran_ordered_and_strided_input_train_as_c_ordered(iris):
    X, y = iris
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c = NetClassifier(**params).fit(X, y)
        f = NetClassifier(**params).fit(np.asfortranarray(X), y)
        wide = np.repeat(X, 2, axis=1)[:, ::2]  # a strided view
        s = NetClassifier(**params).fit(wide, y)
    np.testing.assert_array_equal(c.predict_proba(X), f.predict_proba(X))
    np.testing.assert_array_equal(c.predict_proba(X), s.predict_proba(X))


def test_assigned_coefs_start_partial_fit_and_are_copied_into_a_fitted_net(iris):
    X, y = iris
    shapes = [(4, 3), (3, 3)]
    weights = [np.full(shape, 0.1 * (i + 1)) for i, shape in enumerate(shapes)]
    clf = NetClassifier(hidden_layer_sizes=(3,), solver="sgd", learning_rate_init=1e-300, random_state=0)
    clf.coefs_ = [None, None]
    for i, W in enumerate(weights):
        clf.coefs_[i] = W  # item assignment before fitting, as scikit-learn's test_fit does
    clf.intercepts_ = [np.zeros(3), np.ones(3)]
    clf.partial_fit(X, y, classes=[0, 1, 2])
    for ours, given in zip(clf.coefs_, weights):
        np.testing.assert_array_equal(ours, given)  # a rate of 1e-300 leaves them as given
    np.testing.assert_array_equal(clf.intercepts_[1], np.ones(3))
    assert clf.n_layers_ == 3
    net_W = clf.net_[0].W
    clf.coefs_ = [2 * W for W in weights]
    assert clf.net_[0].W is net_W  # copied into the net's own array
    np.testing.assert_array_equal(clf.net_[0].W, 2 * weights[0])
    with pytest.raises(ValueError, match=r"NetClassifier: coefs_\[1\] must have shape \(3, 3\), got \(2, 2\)"):
        clf.coefs_ = [weights[0], np.ones((2, 2))]
    with pytest.raises(ValueError, match="intercepts_ must hold 2 arrays"):
        clf.intercepts_ = [np.zeros(3)]

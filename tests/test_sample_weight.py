"""``sample_weight`` of the losses and of ``fit``: weighted per-row losses averaged over the batch."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.losses import binary_cross_entropy, mean_squared_error, softmax_cross_entropy


def _case(name, rng):
    n = 6
    if name == "mse":
        return mean_squared_error, rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    if name == "bce":
        return binary_cross_entropy, rng.uniform(0.05, 0.95, size=(n, 1)), rng.integers(0, 2, size=n)
    return softmax_cross_entropy, rng.normal(size=(n, 4)) * 3, rng.integers(0, 4, size=n)


LOSS_NAMES = ["mse", "bce", "softmax_cross_entropy"]


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weighted_gradient_matches_central_differences(name, rng):
    loss, y, t = _case(name, rng)
    w = rng.uniform(0, 3, size=y.shape[0])
    w[1] = 0.0
    _, grad = loss(y, t, sample_weight=w)
    numeric = np.zeros_like(y)
    eps = 1e-6
    for index in np.ndindex(y.shape):
        plus, minus = y.copy(), y.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (loss(plus, t, sample_weight=w)[0] - loss(minus, t, sample_weight=w)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    assert np.all(grad[1] == 0)  # a row of weight 0 contributes nothing


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weights_scale_each_rows_loss_and_average_over_the_batch(name, rng):
    loss, y, t = _case(name, rng)
    w = rng.uniform(0, 3, size=y.shape[0])
    per_row = np.array([loss(y[i:i + 1], t[i:i + 1])[0] for i in range(y.shape[0])])
    value, grad = loss(y, t, sample_weight=w)
    assert value == pytest.approx(np.mean(w * per_row), rel=1e-12)
    ones_value, ones_grad = loss(y, t, sample_weight=np.ones(y.shape[0]))
    plain_value, plain_grad = loss(y, t)
    assert ones_value == pytest.approx(plain_value, rel=1e-15)
    np.testing.assert_array_equal(ones_grad, plain_grad)
    assert grad.dtype == y.dtype


@pytest.mark.parametrize("weights, error, message", [
    (np.ones(5), ValueError, r"mse: sample_weight must have shape \(6,\).*got \(5,\)"),
    (-np.ones(6), ValueError, "mse: sample_weight must be non-negative"),
    (np.full(6, np.nan), ValueError, "mse: sample_weight contains 6 NaN"),
    (np.array(["a"] * 6), TypeError, "mse: sample_weight must hold real numbers"),
])
def test_bad_weights_are_refused(weights, error, message):
    with pytest.raises(error, match=message):
        mean_squared_error(np.zeros((6, 1)), np.zeros(6), sample_weight=weights)


def _net(seed=0):
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(4, 5, rng=rng), lk.ReLU(), lk.Linear(5, 1, rng=rng), lk.Sigmoid()])


def test_fit_doubled_weights_equal_doubled_learning_rate(rng):
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 2, size=40)
    weighted, plain = _net(), _net()
    lk.fit(weighted, x, y, epochs=3, lr=0.05, batch_size=8, seed=1, verbose=False, sample_weight=np.full(40, 2.0))
    lk.fit(plain, x, y, epochs=3, lr=0.1, batch_size=8, seed=1, verbose=False)
    np.testing.assert_allclose(weighted.predict(x), plain.predict(x), rtol=1e-12)


def test_fit_shuffles_the_weights_with_the_rows(rng):
    """Zero weight on a row is the same as leaving that row out when each batch is one row and lr is plain."""
    x, y = rng.normal(size=(12, 4)), rng.integers(0, 2, size=12)
    w = np.ones(12)
    w[::3] = 0.0
    weighted, reference = _net(), _net()
    history = lk.fit(weighted, x, y, epochs=4, lr=0.1, batch_size=1, seed=3, verbose=False, sample_weight=w)
    order_rng = np.random.default_rng(3)
    for _ in range(4):  # replay fit's shuffling, skipping the rows of weight 0
        for i in order_rng.permutation(12):
            if w[i]:
                lk.training.train_batch(reference, x[i:i + 1], y[i:i + 1], binary_cross_entropy, 0.1)
    np.testing.assert_allclose(weighted.predict(x), reference.predict(x), rtol=1e-12)
    assert history.epochs == 4


def test_fit_refuses_weights_of_the_wrong_length(rng):
    with pytest.raises(ValueError, match=r"fit: sample_weight must have shape \(10,\)"):
        lk.fit(_net(), rng.normal(size=(10, 4)), np.zeros(10), epochs=1, verbose=False, sample_weight=np.ones(3))

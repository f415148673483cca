"""Losses: values, gradients against differences, stability, targets and bad input."""
import numpy as np
import pytest

from layerkit import losses


def numeric_grad(loss_fn, y, t, eps=1e-6):
    grad = np.zeros_like(y)
    for idx in np.ndindex(*y.shape):
        plus, minus = y.copy(), y.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (loss_fn(plus, t)[0] - loss_fn(minus, t)[0]) / (2 * eps)
    return grad


def test_mse(rng):
    y, t = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    value, grad = losses.mean_squared_error(y, t)
    assert value == pytest.approx(np.mean((y - t) ** 2))
    np.testing.assert_allclose(grad, numeric_grad(losses.mean_squared_error, y, t), rtol=1e-6)
    assert losses.mean_squared_error.accuracy(y, t) is None


def test_bce_value_and_gradient(rng):
    p = rng.uniform(0.05, 0.95, size=(8, 1))
    t = rng.integers(0, 2, size=8)
    value, grad = losses.binary_cross_entropy(p, t)
    tt = t.reshape(-1, 1)
    assert value == pytest.approx(-np.mean(tt * np.log(p) + (1 - tt) * np.log(1 - p)))
    np.testing.assert_allclose(grad, numeric_grad(losses.binary_cross_entropy, p, t), rtol=1e-5)
    assert losses.binary_cross_entropy.accuracy(p, t) == np.mean((p[:, 0] > 0.5) == (t > 0.5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_is_finite_for_confident_predictions(dtype):
    p = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=dtype)
    t = np.array([0, 1, 1, 0])
    with np.errstate(all="raise"):
        value, grad = losses.binary_cross_entropy(p, t)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value > 5  # the two wrong confident predictions cost a lot
    assert grad.dtype == dtype
    right, _ = losses.binary_cross_entropy(p[:2], t[:2])
    assert 0 <= right < 1e-5


def test_bce_refuses_logits():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: predictions must be probabilities in \[0, 1\], got values in \[-2, 3\]"):
        losses.binary_cross_entropy(np.array([[-2.0], [3.0]]), np.array([0, 1]))


def test_softmax_cross_entropy_labels_and_onehot(rng):
    z = rng.normal(size=(5, 3))
    labels = rng.integers(0, 3, size=5)
    onehot = np.eye(3)[labels]
    value, grad = losses.softmax_cross_entropy(z, labels)
    value2, grad2 = losses.softmax_cross_entropy(z, onehot)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])))
    assert value2 == pytest.approx(value)
    np.testing.assert_allclose(grad, (p - onehot) / 5)
    np.testing.assert_allclose(grad2, grad)
    np.testing.assert_allclose(grad, numeric_grad(losses.softmax_cross_entropy, z, labels), rtol=1e-5, atol=1e-10)
    assert losses.softmax_cross_entropy.accuracy(z, labels) == np.mean(z.argmax(1) == labels)


def test_log_sum_exp_never_overflows():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise"):
        value, grad = losses.softmax_cross_entropy(z, np.array([0, 2]))
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(np.log(3) / 2)


@pytest.mark.parametrize("call, error, message", [
    (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, r"labels must be in \[0, 2\]"),
    (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError, "expected 2 labels, got 3"),
    (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.5, 1])), ValueError, "integer class labels"),
    (lambda: losses.mean_squared_error(np.zeros((2, 3)), np.zeros((3, 2))), ValueError, r"targets must have the prediction's shape \(2, 3\), got \(3, 2\)"),
    (lambda: losses.mean_squared_error(np.zeros((0, 3)), np.zeros((0, 3))), ValueError, "empty batch"),
    (lambda: losses.mean_squared_error(np.full((1, 1), np.nan), np.zeros((1, 1))), ValueError, "predictions contains 1 NaN"),
    (lambda: losses.binary_cross_entropy(np.full((1, 1), 0.5), np.array([np.nan])), ValueError, "targets contains 1 NaN"),
    (lambda: losses.get_loss("hinge"), ValueError, "unknown loss 'hinge'"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_get_loss():
    assert losses.get_loss("BCE") is losses.binary_cross_entropy
    assert losses.get_loss(losses.mean_squared_error) is losses.mean_squared_error


# ------------------------------------------------------------------ fused minibatch path (fit's call)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_bce_batch_matches_the_python_loss(rng, dtype):
    p = rng.uniform(size=(9, 2)).astype(dtype)
    p[0, 0], p[1, 1] = 0.0, 1.0  # confident predictions go through the clip
    t = rng.integers(0, 2, size=(9, 2)).astype(dtype)
    loss = losses.binary_cross_entropy
    target = loss.prepare_targets(t, np.dtype(dtype))
    buffer = np.full_like(p, np.nan)
    value, grad, accuracy = loss.batch(p, target, buffer)
    assert grad is buffer
    expected_value, expected_grad = loss(p, t)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert value == pytest.approx(expected_value, rel=tol)
    np.testing.assert_allclose(grad, expected_grad, rtol=tol)
    assert accuracy == loss.accuracy(p, t)


@pytest.mark.parametrize("k", [4, 37])  # 37: the vectorised exp's full vectors and its tail
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_softmax_cross_entropy_batch_matches_the_python_loss(rng, dtype, k):
    z = rng.normal(scale=4 if k == 4 else 30, size=(11, k)).astype(dtype)
    labels = rng.integers(0, k, size=11)
    loss = losses.softmax_cross_entropy
    target = loss.prepare_targets(labels, np.dtype(dtype))
    assert target.dtype == np.int64
    value, grad, accuracy = loss.batch(z, target, np.empty_like(z))
    expected_value, expected_grad = loss(z, labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert value == pytest.approx(expected_value, rel=tol)
    np.testing.assert_allclose(grad, expected_grad, rtol=tol, atol=tol * 1e-3)
    assert accuracy == loss.accuracy(z, labels)


def test_fused_kernels_weight_rows(rng):
    from layerkit import _core as core

    p, t = rng.uniform(size=(5, 1)), rng.integers(0, 2, size=(5, 1)).astype(float)
    w = rng.uniform(0.5, 2, size=5)
    grad = np.empty_like(p)
    value, out, _ = core.bce_loss(1e-7, 1e-12, False, p, t, w, grad)
    assert out is grad
    per_row = -(t * np.log(p) + (1 - t) * np.log1p(-p))[:, 0]
    assert value == pytest.approx(np.mean(w * per_row))
    np.testing.assert_allclose(grad[:, 0], w * (p - t)[:, 0] / (p * (1 - p))[:, 0] / 5)
    z, labels = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    value, _, _ = core.softmax_ce_loss(z, labels.astype(np.int64), w, np.empty_like(z))
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert value == pytest.approx(np.mean(-w * log_p[np.arange(5), labels]))


@pytest.mark.parametrize("call, message", [
    (lambda: losses.binary_cross_entropy.batch(np.array([[1.5]]), np.array([[1.0]]), np.empty((1, 1))),
     r"predictions must be probabilities in \[0, 1\], got values in \[1.5, 1.5\]"),
    (lambda: losses.binary_cross_entropy.batch(np.array([[np.nan]]), np.array([[1.0]]), np.empty((1, 1))),
     "predictions contains 1 NaN"),
    (lambda: losses.softmax_cross_entropy.batch(np.zeros((2, 3)), np.array([0, 5]), np.empty((2, 3))),
     r"labels must be in \[0, 2\]"),
    (lambda: losses.softmax_cross_entropy.batch(np.array([[np.inf, 0.0]]), np.array([0]), np.empty((1, 2))),
     "predictions contains 1 NaN or infinite"),
])
def test_fused_path_reports_bad_values_like_the_python_loss(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("loss, y, t", [
    (losses.binary_cross_entropy, np.full((3, 1), 0.5), np.ones((3, 1))),
    (losses.softmax_cross_entropy, np.zeros((3, 2)), np.array([0, 1, 1], dtype=np.int64)),
])
def test_fused_path_checks_sample_weights_like_the_python_loss(loss, y, t):
    with pytest.raises(ValueError, match="sample_weight must be non-negative, got minimum -1"):
        loss.batch(y, t, np.empty_like(y), sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(3,\), one weight per row, got \(2,\)"):
        loss.batch(y, t, np.empty_like(y), sample_weight=np.ones(2))
    strided = np.array([1.0, 9.0, 2.0, 9.0, 3.0, 9.0])[::2]  # valid, but not contiguous: still fused correctly
    value, _, _ = loss.batch(y, t, np.empty_like(y), sample_weight=strided)
    assert value == pytest.approx(loss(y, t, sample_weight=np.array([1.0, 2.0, 3.0]))[0])


# ---------------------------------------------------------------- issue 15, items 5 and 6
def test_softmax_ce_gradient_is_that_of_the_loss_for_rows_not_summing_to_one():
    """Issue 15 item 5: z=[[1,2,.5]], t=[[1,1,0]] used to return the gradient of another loss."""
    z, t = np.array([[1.0, 2.0, 0.5]]), np.array([[1.0, 1.0, 0.0]])
    value, grad = losses.softmax_cross_entropy(z, t)
    np.testing.assert_allclose(grad, numeric_grad(losses.softmax_cross_entropy, z, t), atol=1e-7)
    np.testing.assert_allclose(grad, [[-0.5375522, 0.25706344, 0.28048877]], atol=1e-7)
    shifted = z - z.max()
    assert value == pytest.approx(-np.sum(t * (shifted - np.log(np.exp(shifted).sum()))))


def test_softmax_ce_soft_rows_of_any_sum_match_numeric_gradient(rng):
    z = rng.normal(size=(4, 3))
    t = rng.uniform(0, 2, size=(4, 3))
    w = rng.uniform(0.5, 2, size=4)
    _, grad = losses.softmax_cross_entropy(z, t, sample_weight=w)
    numeric = numeric_grad(lambda y, tt: losses.softmax_cross_entropy(y, tt, sample_weight=w), z, t)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


BAD_BCE_TARGETS = {
    "nan": np.array([[np.nan], [1.0], [0.0]]),
    "inf": np.array([[np.inf], [1.0], [0.0]]),
    "-inf": np.array([[0.0], [-np.inf], [0.0]]),
    "wrong shape": np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
    "strings": np.array([["a"], ["b"], ["c"]]),
}
BAD_SOFTMAX_TARGETS = {
    "label too large": np.array([0, 3, 1], dtype=np.int64),
    "negative label": np.array([0, -1, 1], dtype=np.int64),
    "too few labels": np.array([0, 1], dtype=np.int64),
    "nan row": np.array([[np.nan, 1, 0], [1, 0, 0], [0, 1, 0]]),
    "inf row": np.array([[np.inf, 1, 0], [1, 0, 0], [0, 1, 0]]),
    "fractional label": np.array([0.5, 1.0, 2.0]),
}


def _outcome(call):
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the outcome compared is the exception itself
        return type(error), str(error)
    return "returned", result


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(BAD_BCE_TARGETS))
def test_bce_fused_batch_and_direct_call_reject_bad_targets_alike(case, dtype):
    """Issue 15 item 6: the fused ``batch`` returned a NaN loss where the direct call raised."""
    p = np.array([[0.2], [0.7], [0.4]], dtype=dtype)
    t = BAD_BCE_TARGETS[case]
    prepared = losses.binary_cross_entropy.prepare_targets(t, dtype)
    direct = _outcome(lambda: losses.binary_cross_entropy(p, t))
    fused = _outcome(lambda: losses.binary_cross_entropy.batch(p, prepared, np.empty_like(p)))
    assert direct[0] in (ValueError, TypeError), direct
    assert fused == direct
    assert "binary_cross_entropy" in direct[1] and "targets" in direct[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(BAD_SOFTMAX_TARGETS))
def test_softmax_ce_fused_batch_and_direct_call_reject_bad_targets_alike(case, dtype):
    z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]], dtype=dtype)
    t = BAD_SOFTMAX_TARGETS[case]
    prepared = losses.softmax_cross_entropy.prepare_targets(t, dtype)
    direct = _outcome(lambda: losses.softmax_cross_entropy(z, t))
    fused = _outcome(lambda: losses.softmax_cross_entropy.batch(z, prepared, np.empty_like(z)))
    assert direct[0] in (ValueError, TypeError), direct
    assert fused == direct
    assert "softmax_cross_entropy" in direct[1]


def test_bce_fused_batch_rejects_nan_predictions_like_the_direct_call():
    p = np.array([[np.nan], [0.5]])
    t = np.array([[1.0], [0.0]])
    direct = _outcome(lambda: losses.binary_cross_entropy(p, t))
    fused = _outcome(lambda: losses.binary_cross_entropy.batch(p, t, np.empty_like(p)))
    assert issubclass(direct[0], ValueError) and fused == direct
    assert "predictions" in direct[1]


def test_softmax_ce_docstring_says_it_takes_logits():
    doc = losses.SoftmaxCrossEntropy.__doc__
    assert "takes logits" in doc and "Softmax" in doc


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [2.0, -0.5])
def test_bce_refuses_targets_outside_0_1_on_the_direct_and_the_fused_path(dtype, bad):
    p = np.full((4, 1), 0.3, dtype=dtype)
    t = np.array([[0.0], [1.0], [bad], [0.5]], dtype=dtype)
    message = r"binary_cross_entropy: targets must be in \[0, 1\]"
    with pytest.raises(ValueError, match=message):
        losses.binary_cross_entropy(p, t)
    with pytest.raises(ValueError, match=message):
        losses.get_loss("bce").batch(p, t, np.empty_like(p))

"""The losses in the compiled core: equal to the NumPy formulas, for every layout, dtype and target kind.

Each loss is one kernel pass (checks, value, gradient). These tests hold it to
the NumPy formula it replaced: bit for bit where the arithmetic is the same
(the mean squared error, whose value NumPy sums pairwise), within a tolerance
of the dtype where logarithms and exponentials come from another library.
"""
import numpy as np
import pytest

import layerkit as lk
from layerkit import losses

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def reference_bce(p, t, w=None):
    """The NumPy formula (float64 arithmetic; the clip of the predictions' dtype)."""
    eps = 1e-7 if p.dtype == np.float32 else 1e-12
    q = np.clip(p, p.dtype.type(eps), p.dtype.type(1 - eps)).astype(np.float64)
    t = np.asarray(t).astype(p.dtype).astype(np.float64).reshape(p.shape)  # targets in the dtype, as astype makes them
    w = np.ones(p.shape[0]) if w is None else np.asarray(w, p.dtype).astype(np.float64)
    per = -(t * np.log(q) + (1 - t) * np.log1p(-q))
    grad = w[:, None] * (q - t) / (q * (1 - q)) / p.size
    return float(np.mean(w[:, None] * per)), grad


def reference_softmax_ce(z, t, w=None):
    z64 = z.astype(np.float64)
    n, k = z.shape
    t = np.asarray(t)
    rows = np.eye(k)[t.astype(np.int64)] if t.ndim == 1 else t.astype(z.dtype).astype(np.float64)
    shifted = z64 - z64.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    w = np.ones(n) if w is None else np.asarray(w, z.dtype).astype(np.float64)
    sums = rows.sum(axis=1, keepdims=True)
    if np.all(np.abs(sums - 1) <= 8 * np.finfo(z.dtype).eps * k):
        sums = np.ones_like(sums)
    grad = w[:, None] * (np.exp(log_p) * sums - rows) / n
    return float(np.sum(w * -np.sum(rows * log_p, axis=1)) / n), grad


def reference_mse(y, t, w=None):
    """NumPy's formula in the dtype's own arithmetic (the compiled loss equals it bit for bit)."""
    t = np.asarray(t).astype(y.dtype).reshape(y.shape)
    diff = y - t
    grad = diff * (2.0 / diff.size)
    if w is None:
        return float(np.mean(diff * diff)), grad
    w = np.asarray(w).astype(y.dtype)[:, None]
    return float(np.mean(w * (diff * diff))), grad * w


def assert_close(actual, expected, dtype, what):
    value, grad = actual
    ref_value, ref_grad = expected
    assert grad.dtype == dtype, what
    assert value == pytest.approx(ref_value, rel=TOL[dtype], abs=TOL[dtype] * 1e-3), what
    np.testing.assert_allclose(grad, ref_grad, rtol=TOL[dtype] * 4, atol=TOL[dtype] * 1e-3 / grad.size,
                               err_msg=what)


def layouts(a):
    """``a`` as C, Fortran, strided and big-endian arrays, and as an int or bool array where it is integral."""
    out = {"C": a, "Fortran": np.asfortranarray(a), "strided": np.repeat(a, 2, axis=0)[::2],
           "big-endian": a.astype(a.dtype.newbyteorder(">"))}
    if np.all(a == np.round(a)):
        out["int64"] = a.astype(np.int64)
        out["int32, big-endian"] = a.astype(">i4")
        if np.all((a == 0) | (a == 1)):
            out["bool"] = a.astype(bool)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (15, 1), (9, 3), (300, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_equals_the_numpy_formula_for_every_target_layout(dtype, shape, weighted):
    rng = np.random.default_rng(hash((shape, weighted)) % 2**32)
    p = rng.uniform(size=shape).astype(dtype)
    p.flat[0] = 0.0  # confident predictions go through the clip
    p.flat[-1] = 1.0
    hard = (rng.random(shape) < 0.5).astype(np.float64)
    soft = rng.uniform(size=shape)
    w = rng.uniform(0, 2, size=shape[0]) if weighted else None
    for kind, t in [("hard", hard), ("soft", soft)]:
        expected = reference_bce(p, t, w)
        for layout, target in layouts(t).items():
            assert_close(lk.binary_cross_entropy(p, target, sample_weight=w), expected, dtype, f"{kind} {layout}")
        if shape[1] == 1:  # a vector of targets for a single output
            assert_close(lk.binary_cross_entropy(p, t[:, 0], sample_weight=w), expected, dtype, f"{kind} 1-D")
    if weighted:
        for layout, weights in layouts(w).items():
            assert_close(lk.binary_cross_entropy(p, hard, sample_weight=weights), reference_bce(p, hard, w),
                         dtype, f"weights {layout}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_gradient_of_the_direct_call_is_the_numpy_formula_bit_for_bit(dtype, weighted):
    """The formula layerkit computed with NumPy before the loss moved into the core, in the dtype."""
    rng = np.random.default_rng(11)
    p = rng.uniform(size=(31, 2)).astype(dtype)
    p[0, 0], p[1, 1] = 0.0, 1.0
    for t in ((rng.random((31, 2)) < 0.5).astype(np.int64), rng.uniform(size=(31, 2))):
        w = rng.uniform(0, 2, size=31) if weighted else None
        eps = 1e-7 if dtype == np.float32 else 1e-12
        q = np.clip(p, eps, 1 - eps)
        target = t.astype(dtype)
        expected = ((q - target) / (q * (1 - q)) / p.size).astype(dtype)
        if weighted:
            expected = expected * w.astype(dtype)[:, None]
        _, grad = lk.binary_cross_entropy(p, t, sample_weight=w)
        np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_of_hard_labels_takes_one_logarithm_with_the_full_formulas_bits(dtype):
    """The kernel drops the term a 0/1 label zeroes: the sum must stay that of the full formula."""
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(40, 2)).astype(dtype)
    hard = (rng.random((40, 2)) < 0.5).astype(dtype)
    nudged = hard.copy()
    nudged[hard == 0] = np.nextafter(dtype(0), dtype(1))  # no longer exactly 0: the full formula runs
    value, grad = lk.binary_cross_entropy(p, hard)
    assert value == pytest.approx(lk.binary_cross_entropy(p, nudged)[0], rel=TOL[dtype])
    assert value == pytest.approx(reference_bce(p, hard)[0], rel=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 37])  # 37: the vectorised exp's full vectors and its tail
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_ce_equals_the_numpy_formula_for_labels_and_rows(dtype, k, weighted):
    rng = np.random.default_rng(k + 100 * weighted)
    n = 17
    z = rng.normal(scale=5, size=(n, k)).astype(dtype)
    labels = rng.integers(0, k, size=n)
    w = rng.uniform(0, 2, size=n) if weighted else None
    expected = reference_softmax_ce(z, labels, w)
    for layout, target in layouts(labels.astype(np.float64)).items():  # float labels of integral value too
        if layout != "bool":
            assert_close(lk.softmax_cross_entropy(z, target, sample_weight=w), expected, dtype, f"labels {layout}")
    for kind, rows in [("one-hot", np.eye(k)[labels]), ("soft", rng.dirichlet(np.ones(k), size=n)),
                       ("any sum", rng.uniform(0, 2, size=(n, k)))]:
        expected = reference_softmax_ce(z, rows, w)
        for layout, target in layouts(rows).items():
            assert_close(lk.softmax_cross_entropy(z, target, sample_weight=w), expected, dtype, f"{kind} {layout}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (15, 1), (16, 3), (129, 1), (1000, 7), (70001, 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_mse_is_the_numpy_formula_bit_for_bit(dtype, shape, weighted):
    """Sizes around NumPy's pairwise blocks (8 and 128 elements) and far beyond them."""
    rng = np.random.default_rng(shape[0])
    y = rng.normal(size=shape).astype(dtype)
    t = rng.normal(size=shape)
    w = rng.uniform(0, 2, size=shape[0]) if weighted else None
    expected_value, expected_grad = reference_mse(y, t, w)
    for layout, target in layouts(t).items():
        value, grad = lk.mean_squared_error(y, target, sample_weight=w)
        assert value == expected_value, layout
        np.testing.assert_array_equal(grad, expected_grad, err_msg=layout)


@pytest.mark.parametrize("loss, y, t", [
    (losses.binary_cross_entropy, np.full((4, 1), 0.3), np.array([0, 1, 1, 0])),
    (losses.softmax_cross_entropy, np.zeros((4, 3)), np.array([0, 2, 1, 1])),
    (losses.mean_squared_error, np.zeros((4, 2)), np.ones((4, 2))),
])
def test_batch_writes_into_the_buffer_and_agrees_with_the_direct_call(loss, y, t):
    buffer = np.full_like(y, np.nan)
    value, grad, accuracy = loss.batch(y, loss.prepare_targets(t, y.dtype), buffer)
    assert grad is buffer
    direct_value, direct_grad = loss(y, t)
    assert value == direct_value
    np.testing.assert_allclose(grad, direct_grad, rtol=1e-15)  # BCE: two roundings of one formula
    assert accuracy == loss.accuracy(y, t)


@pytest.mark.parametrize("loss, y, t, error, message", [
    # the conversions of the compiled path keep the checks that follow them
    (losses.binary_cross_entropy, np.full((2, 1), 0.5, np.float32), np.array([[1e300], [0.0]]), ValueError,
     "binary_cross_entropy: targets contains 1 NaN or infinite value"),
    (losses.binary_cross_entropy, np.full((2, 1), 0.5), np.array([[np.nan], [0.0]]).astype(">f8"), ValueError,
     "binary_cross_entropy: targets contains 1 NaN"),
    (losses.binary_cross_entropy, np.full((2, 1), 0.5), np.array([2, 0]), ValueError,
     r"binary_cross_entropy: targets must be in \[0, 1\]"),
    (losses.binary_cross_entropy, np.full((2, 2), 0.5), np.zeros(3), ValueError,
     r"targets must have the prediction's shape \(2, 2\), got \(3,"),
    (losses.mean_squared_error, np.zeros((2, 1)), np.array([[np.inf], [0.0]])[::1].T.T, ValueError,
     "mse: targets contains 1 NaN or infinite value"),
    (losses.mean_squared_error, np.array([[np.nan], [0.0]]), np.zeros((2, 1)), losses.NonFinitePredictionsError,
     "mse: predictions contains 1 NaN"),
    (losses.mean_squared_error, np.zeros((2, 0)), np.zeros((2, 0)), ValueError, "predictions have no columns"),
    (losses.softmax_cross_entropy, np.zeros((2, 3)), np.array([0.0, np.nan]), ValueError,
     "1-D targets must be integer class labels"),
    (losses.softmax_cross_entropy, np.zeros((2, 3)), np.array([True, False]), TypeError,
     "1-D targets must be integer class labels, got dtype bool"),
    (losses.softmax_cross_entropy, np.zeros((2, 3)), np.array([0.0, 3.0]), ValueError, r"labels must be in \[0, 2\]"),
    (losses.softmax_cross_entropy, np.zeros((2, 3)), np.array([[0.0, 1, 0], [np.inf, 0, 0]]), ValueError,
     "softmax_cross_entropy: targets contains 1 NaN or infinite"),
    (losses.softmax_cross_entropy, np.array([[0.0, np.nan, 0]]), np.array([0]), losses.NonFinitePredictionsError,
     "softmax_cross_entropy: predictions contains 1 NaN"),
])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_bad_values_raise_the_python_messages(loss, y, t, error, message):
    with pytest.raises(error, match=message):
        loss(y, t)
    with pytest.raises(error, match=message):
        loss.batch(y, loss.prepare_targets(t, y.dtype), np.empty_like(y))


@pytest.mark.parametrize("loss, y, t", [
    (losses.binary_cross_entropy, np.full((3, 1), 0.5), np.ones((3, 1))),
    (losses.softmax_cross_entropy, np.zeros((3, 2)), np.array([0, 1, 1])),
    (losses.mean_squared_error, np.zeros((3, 2)), np.ones((3, 2))),
])
@pytest.mark.parametrize("weights, dtype, message", [
    (np.array([1.0, np.nan, 1.0]), np.float64, "sample_weight contains 1 NaN or infinite"),
    (np.array([1.0, np.inf, 1.0]), np.float64, "sample_weight contains 1 NaN or infinite"),
    (np.array([1.0, -1.0, 1.0]).astype(">f8"), np.float64, "sample_weight must be non-negative, got minimum -1"),
    (np.array([1e300, 1.0, 1.0]), np.float32, "sample_weight contains 1 NaN or infinite"),  # inf in float32
    (np.array(["a", "b", "c"]), np.float64, "sample_weight must hold real numbers"),
])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_bad_weights_raise_the_python_messages(loss, y, t, weights, dtype, message):
    y = y.astype(dtype)
    with pytest.raises((ValueError, TypeError), match=message):
        loss(y, t, sample_weight=weights)


def test_lists_and_integer_predictions_are_converted_like_before():
    value, grad = lk.mean_squared_error([[1, 2], [3, 4]], [[1.0, 1.0], [1.0, 1.0]])
    assert value == pytest.approx((0 + 1 + 4 + 9) / 4) and grad.dtype == np.float64
    value, grad = lk.binary_cross_entropy([[0.25], [0.75]], [0, 1])
    assert value == pytest.approx(-np.log(0.75))
    value, _ = lk.softmax_cross_entropy(np.zeros((2, 4), np.float32), [3, 0])
    assert value == pytest.approx(np.log(4), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_confident_wrong_predictions_stay_finite_in_every_kernel_path(dtype):
    p = np.array([[0.0], [1.0]], dtype=dtype)
    with np.errstate(all="raise"):
        for t in (np.array([1, 0]), np.array([[0.9], [0.1]], dtype=dtype)):
            value, grad = lk.binary_cross_entropy(p, t, sample_weight=np.array([1.0, 2.0]))
            assert np.isfinite(value) and np.isfinite(grad).all() and value > 5


@pytest.mark.parametrize("loss, make_target", [
    (losses.binary_cross_entropy, lambda rng, shape: (rng.random(shape) < 0.5).astype(float)),
    (losses.softmax_cross_entropy, lambda rng, shape: rng.integers(0, shape[1], size=shape[0])),
    (losses.mean_squared_error, lambda rng, shape: rng.normal(size=shape)),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_predictions_of_any_layout_give_the_c_contiguous_result(loss, make_target, dtype):
    rng = np.random.default_rng(2)
    y = rng.uniform(0.05, 0.95, size=(9, 3)).astype(dtype)
    t = make_target(rng, y.shape)
    w = rng.uniform(0, 2, size=9)
    expected_value, expected_grad = loss(y, t, sample_weight=w)
    for layout, pred in layouts(y).items():
        if pred.dtype.kind != "f":
            continue
        value, grad = loss(pred, t, sample_weight=w)
        assert value == expected_value, layout
        assert grad.dtype == dtype and grad.flags.c_contiguous
        np.testing.assert_array_equal(grad, expected_grad, err_msg=layout)


def test_a_subclass_with_its_own_call_is_what_batch_computes():
    class Halved(losses.MeanSquaredError):
        def __call__(self, y, t, sample_weight=None):
            value, grad = super().__call__(y, t, sample_weight)
            return value / 2, grad / 2

    y, t = np.ones((3, 1)), np.zeros((3, 1))
    value, grad, accuracy = Halved().batch(y, t, np.empty_like(y))
    assert value == 0.5 and np.array_equal(grad, np.full((3, 1), 1 / 3)) and accuracy is None

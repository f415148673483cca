"""The Cython kernels against plain NumPy formulas, for both dtypes and all layouts."""
import numpy as np
import pytest

from layerkit import _core as core

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_order", ["C", "F"])
@pytest.mark.parametrize("w_order", ["C", "F"])
@pytest.mark.parametrize("n", [0, 1, 7, 64])
def test_dense_forward_backward_match_numpy(rng, dtype, x_order, w_order, n):
    x = np.asarray(rng.normal(size=(n, 5)), dtype=dtype, order=x_order)
    W = np.asarray(rng.normal(size=(5, 3)), dtype=dtype, order=w_order)
    b = rng.normal(size=3).astype(dtype)
    dy = np.asarray(rng.normal(size=(n, 3)), dtype=dtype, order=x_order)
    out = np.empty((n, 3), dtype=dtype)
    assert core.dense_forward(x, W, b, out) is out
    np.testing.assert_allclose(out, x @ W + b, **tol(dtype))
    dW, db, dx = np.empty((5, 3), dtype), np.empty(3, dtype), np.empty((n, 5), dtype)
    core.dense_backward(x, W, dy, dW, db, dx)
    np.testing.assert_allclose(dW, x.T @ dy, **tol(dtype))
    np.testing.assert_allclose(db, dy.sum(axis=0), **tol(dtype))
    np.testing.assert_allclose(dx, dy @ W.T, **tol(dtype))


@pytest.fixture
def pieces():
    """Small batches' products always in pieces (by default only while the BLAS runs one thread)."""
    previous = core.small_batch_pieces(True)
    yield
    core.small_batch_pieces(previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_order", ["C", "F"])
@pytest.mark.parametrize("w_order", ["C", "F"])
@pytest.mark.parametrize("n", [3, 8, 32, 33])
def test_small_batch_products_split_into_pieces_match_numpy(rng, pieces, dtype, x_order, w_order, n):
    # 1000 x 300 weights: at 32 rows or fewer the forward product is summed over slabs of
    # the 1000 inputs and the weight gradient computed in row panels, with ragged last pieces
    n_in, n_out = 1000, 300
    x = np.asarray(rng.normal(size=(n, n_in)), dtype=dtype, order=x_order)
    W = np.asarray(rng.normal(size=(n_in, n_out)), dtype=dtype, order=w_order)
    b = rng.normal(size=n_out).astype(dtype)
    dy = np.asarray(rng.normal(size=(n, n_out)), dtype=dtype, order=x_order)
    x64, W64, dy64 = (a.astype(np.float64) for a in (x, W, dy))
    scale = dict(rtol=0, atol=2e-4 * np.sqrt(n_in)) if dtype == np.float32 else dict(rtol=0, atol=1e-11)
    out = np.full((n, n_out), np.nan, dtype=dtype)
    core.dense_forward(x, W, b, out)
    np.testing.assert_allclose(out, x64 @ W64 + b, **scale)
    dW, db, dx = (np.full(shape, np.nan, dtype=dtype) for shape in ((n_in, n_out), n_out, (n, n_in)))
    core.dense_backward(x, W, dy, dW, db, dx)
    np.testing.assert_allclose(dW, x64.T @ dy64, **scale)
    np.testing.assert_allclose(dx, dy64 @ W64.T, **scale)


def _small_products(setting):
    rng = np.random.default_rng(3)
    x, W, dy = rng.normal(size=(8, 1000)), rng.normal(size=(1000, 300)), rng.normal(size=(8, 300))
    previous = core.small_batch_pieces(setting)
    try:
        out, dW, db = np.empty((8, 300)), np.empty((1000, 300)), np.empty(300)
        core.dense_forward(x, W, np.zeros(300), out)
        core.dense_backward(x, W, dy, dW, db, None)
    finally:
        core.small_batch_pieces(previous)
    return out, dW


def test_small_batch_pieces_setting_gives_the_same_products_and_restores():
    assert core.small_batch_pieces(None) is None  # the default: while the BLAS runs one thread
    split, whole = _small_products(True), _small_products(False)
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)
    assert not np.array_equal(split[0], whole[0])  # other sums: the two settings are told apart below
    assert core.small_batch_pieces(None) is None


def test_small_batches_split_only_while_the_blas_runs_one_thread():
    """A piece runs on one thread; with several BLAS threads one whole call is left to use them."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if core.small_batch_blas_threads() is None:
        pytest.skip("the BLAS thread count cannot be read here (not scipy's OpenBLAS)")
    # (the BLAS's own rounding depends on its thread count: each comparison is made within one limit)
    with threadpoolctl.threadpool_limits(1):
        assert core.small_batch_blas_threads() == 1
        for a, b in zip(_small_products(None), _small_products(True)):
            np.testing.assert_array_equal(a, b)
    with threadpoolctl.threadpool_limits(2):
        if core.small_batch_blas_threads() != 2:
            pytest.skip("the BLAS runs one thread at most here")
        for a, b in zip(_small_products(None), _small_products(False)):
            np.testing.assert_array_equal(a, b)


def test_dense_backward_can_skip_dx(rng):
    x, W, dy = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    dW, db = np.empty((5, 3)), np.empty(3)
    assert core.dense_backward(x, W, dy, dW, db, None) is None
    np.testing.assert_allclose(dW, x.T @ dy)


def test_dense_kernels_overwrite_stale_buffers(rng):
    x, W, b, dy = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(4, 3))
    out = np.full((4, 3), np.nan)
    dW, db, dx = np.full((5, 3), np.nan), np.full(3, np.nan), np.full((4, 5), np.nan)
    core.dense_forward(x, W, b, out)
    core.dense_backward(x, W, dy, dW, db, dx)
    for array in (out, dW, db, dx):
        assert np.isfinite(array).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (lambda r: (r((4, 5)), r((6, 3)), r(3), np.empty((4, 3))), "do not chain"),
        (lambda r: (r((4, 5)), r((5, 3)), r(4), np.empty((4, 3))), "bias"),
        (lambda r: (r((4, 5)), r((5, 3)), r(3), np.empty((4, 4))), "output buffer"),
        (lambda r: (r((4, 5)), r((5, 3)).astype(np.float32), r(3), np.empty((4, 3))), "dtype"),
        (lambda r: (r((4, 5)).astype(np.int64), r((5, 3)), r(3), np.empty((4, 3))), "float32 or float64"),
        (lambda r: (r((8, 5))[::2], r((5, 3)), r(3), np.empty((4, 3))), "contiguous"),
        (lambda r: (r((4, 5)), r((5, 3)), r(3), np.empty((4, 3), order="F")), "output buffer"),
        (lambda r: (r((4, 5, 1)), r((5, 3)), r(3), np.empty((4, 3))), "2-D"),
    ],
)
def test_dense_forward_refuses_broken_contracts(rng, args, message):
    with pytest.raises(ValueError, match=message):
        core.dense_forward(*args(lambda shape: rng.normal(size=shape)))


def test_read_only_output_is_refused(rng):
    out = np.empty((4, 3))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        core.dense_forward(rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), np.zeros(3), out)


def sigmoid_ref(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_kernels_match_numpy(rng, dtype):
    x = rng.normal(scale=3, size=(6, 5)).astype(dtype)
    dy = rng.normal(size=(6, 5)).astype(dtype)
    out = np.empty_like(x)
    np.testing.assert_allclose(core.sigmoid_forward(x, out), sigmoid_ref(x), **tol(dtype))
    s = sigmoid_ref(x.astype(np.float64))
    np.testing.assert_allclose(core.sigmoid_backward(x, dy, np.empty_like(x)), dy * s * (1 - s), **tol(dtype))
    np.testing.assert_array_equal(core.relu_forward(x, np.empty_like(x)), np.maximum(x, 0))
    np.testing.assert_array_equal(core.relu_backward(x, dy, np.empty_like(x)), dy * (x > 0))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(core.softmax_forward(x, np.empty_like(x)), p, **tol(dtype))
    jvp = p * (dy - (dy * p).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(core.softmax_backward(x, dy, np.empty_like(x)), jvp, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softmax_never_overflow(dtype):
    x = np.array([[-1e4, -100, 0, 100, 1e4]], dtype=dtype)
    with np.errstate(all="raise"):
        s = core.sigmoid_forward(x, np.empty_like(x))
        p = core.softmax_forward(x, np.empty_like(x))
        g = core.sigmoid_backward(x, np.ones_like(x), np.empty_like(x))
    assert np.isfinite(s).all() and s[0, 0] == 0 and s[0, -1] == 1 and s[0, 2] == 0.5
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1)
    assert np.isfinite(g).all()


def test_elementwise_kernels_refuse_mismatched_buffers(rng):
    x = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match="shape"):
        core.relu_forward(x, np.empty((4, 3)))
    with pytest.raises(ValueError, match="dtype"):
        core.sigmoid_forward(x, np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        core.relu_backward(x, np.asfortranarray(x), np.empty_like(x))
    with pytest.raises(ValueError, match="2-D"):
        core.softmax_forward(x.reshape(-1), np.empty(12))


@pytest.mark.parametrize("dtype", DTYPES)
def test_axpy_updates_in_place(rng, dtype):
    x = rng.normal(size=(3, 4)).astype(dtype)
    y = rng.normal(size=(3, 4)).astype(dtype)
    expected = y - 0.5 * x
    assert core.axpy(-0.5, x, y) is y
    np.testing.assert_allclose(y, expected, **tol(dtype))
    with pytest.raises(ValueError, match="shape"):
        core.axpy(1.0, x, np.empty((4, 3), dtype))

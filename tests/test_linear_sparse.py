"""Linear with a ``scipy.sparse`` x: products through scipy, the same numbers as dense, gradient-checked."""
import numpy as np
import pytest
import scipy.sparse as sp

import layerkit as lk

FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix]


@pytest.fixture
def no_densifying(monkeypatch):
    """Any densification of a sparse matrix fails the test."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse x was densified")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse, raising=False)


def _sparse(rng, shape, density=0.3):
    return sp.random(*shape, density=density, format="csr", random_state=np.random.RandomState(0),
                     data_rvs=rng.standard_normal)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_forward_and_backward_equal_dense(rng, fmt, dtype, no_densifying):
    layer = lk.Linear(12, 4, rng=0, dtype=dtype)
    layer.b = rng.normal(size=4).astype(dtype)
    csr = _sparse(rng, (9, 12))
    dense = np.zeros((9, 12))
    coo = csr.tocoo()
    dense[coo.row, coo.col] = coo.data
    x = fmt(csr)
    dy = rng.normal(size=(9, 4)).astype(dtype)
    y = layer.forward(x)
    assert type(y) is np.ndarray and y.dtype == dtype and y.shape == (9, 4)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, layer.forward(dense), rtol=tol, atol=tol)
    dx = layer.backward(x, dy)
    dW, db = layer.dW.copy(), layer.db.copy()
    dx_dense = layer.backward(dense, dy)
    np.testing.assert_allclose(dx, dx_dense, rtol=tol, atol=tol)
    np.testing.assert_allclose(dW, layer.dW, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, layer.db, rtol=tol, atol=tol)
    assert layer.backward(x, dy, need_dx=False) is None and type(layer.dW) is np.ndarray


def test_sparse_gradients_match_central_differences(rng):
    layer = lk.Linear(10, 3, rng=1)
    x = _sparse(rng, (6, 10), density=0.4)
    r = rng.normal(size=(6, 3))  # loss = sum(forward(x) * r)
    layer.backward(x, r)
    eps = 1e-6
    for name, grad in (("W", layer.dW), ("b", layer.db)):
        param = getattr(layer, name)
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + eps
            up = np.sum(layer.forward(x) * r)
            param[index] = old - eps
            down = np.sum(layer.forward(x) * r)
            param[index] = old
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_sparse_input_errors_name_the_layer():
    layer = lk.Linear(4, 2, rng=0)
    with pytest.raises(ValueError, match=r"Linear\(4, 2\): x must have shape \(n_samples, 4\), got sparse \(3, 5\)"):
        layer.forward(sp.csr_matrix((3, 5)))
    with pytest.raises(ValueError, match=r"Linear\(4, 2\)"):
        layer.backward(sp.csr_matrix((3, 4)), np.ones((2, 2)))

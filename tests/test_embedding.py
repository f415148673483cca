"""Embedding against torch.nn.Embedding: lookup, scatter-add of repeated indices, padding_idx, errors, files."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad, check_grad

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")


def torch_pair(num, dim, dtype, padding_idx=None):
    ours = lk.Embedding(num, dim, rng=0, padding_idx=padding_idx, dtype=dtype)
    theirs = torch.nn.Embedding(num, dim, padding_idx=padding_idx).to(
        torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.W))
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("shape", [(6,), (4, 5), (0, 3)])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint8])
def test_forward_and_backward_equal_torch(rng, dtype, padding_idx, shape, index_dtype):
    ours, theirs = torch_pair(7, 3, dtype, padding_idx)
    x = rng.integers(0, 7, size=shape).astype(index_dtype)
    x.flat[:2] = 2  # repeated indices, and the padding row when there is one
    dy = rng.normal(size=shape + (3,)).astype(dtype)
    y = theirs(torch.from_numpy(x.astype(np.int64)))
    y.backward(torch.from_numpy(dy))
    ours_y = ours.forward(x)
    assert ours_y.dtype == dtype and ours_y.shape == shape + (3,)
    np.testing.assert_array_equal(ours_y, y.detach().numpy())
    assert ours.backward(x, dy) is None  # integer indices have no gradient
    np.testing.assert_allclose(ours.dW, theirs.weight.grad.numpy(), rtol=1e-12 if dtype == np.float64 else 1e-6,
                               atol=1e-12 if dtype == np.float64 else 1e-6)


def test_repeated_indices_add_up_and_other_rows_are_zero():
    layer = lk.Embedding(4, 2, rng=0)
    layer.backward(np.array([1, 1, 3, 1]), np.arange(8.0).reshape(4, 2))
    np.testing.assert_array_equal(layer.dW, [[0, 0], [0 + 2 + 6, 1 + 3 + 7], [0, 0], [4, 5]])


def test_default_init_is_standard_normal_and_padding_row_starts_at_zero():
    W = lk.Embedding(2000, 50, rng=0).W
    assert abs(W.mean()) < 0.01 and abs(W.std() - 1) < 0.01
    assert np.array_equal(lk.Embedding(5, 3, rng=0, padding_idx=-2).W[3], np.zeros(3))
    assert lk.Embedding(5, 3, rng=0, padding_idx=-2).padding_idx == 3


def test_parameter_gradient_matches_finite_differences(rng):
    layer = lk.Embedding(5, 3, rng=0)
    x = np.array([[0, 1, 1], [4, 1, 0]])
    report = assert_grad(layer, x, rtol=1e-7, atol=1e-9, max_coords=None, directions=3)
    assert list(report.tensors) == ["W"]  # the input is discrete: only the table is checked
    net = lk.Net([lk.Embedding(6, 4, rng=0), lk.Tanh(), lk.Linear(4, 2, rng=1)])
    report = assert_grad(net, rng.integers(0, 6, size=(3, 5)), rtol=1e-6, atol=1e-8, max_coords=None)
    assert "x" not in report.tensors and len(report.tensors) == 3


def test_a_wrong_gradient_is_caught_by_the_check():
    class Broken(lk.Embedding):
        def backward(self, x, dy, *, need_dx=True):
            super().backward(x, dy)
            self.dW[0] *= 2

    report = check_grad(Broken(3, 2, rng=0), np.array([0, 0, 1]), max_coords=None)
    assert not report.passed()


@pytest.mark.parametrize("x, error, message", [
    (np.array([0.0, 1.0]), TypeError, r"Embedding\(5, 3\): x must hold integer indices \(an integer dtype\), got "
                                      r"dtype float64"),
    (np.array([True, False]), TypeError, r"Embedding\(5, 3\): x must hold integer indices .* got dtype bool"),
    (np.array([0, 5]), ValueError, r"Embedding\(5, 3\): x holds index 5, outside \[0, 4\] \(the table has 5 rows\)"),
    (np.array([[0, -1]]), ValueError, r"Embedding\(5, 3\): x holds index -1, outside \[0, 4\]"),
    (np.zeros((2, 2, 2), dtype=int), ValueError, r"Embedding\(5, 3\): x must be 1-D or 2-D .* got 3-D array"),
    (np.array(3), ValueError, r"Embedding\(5, 3\): x must be 1-D or 2-D .* got 0-D array"),
    ("abc", TypeError, r"Embedding\(5, 3\): x must hold integer indices"),
])
def test_bad_indices_are_named(x, error, message):
    with pytest.raises(error, match=message):
        lk.Embedding(5, 3, rng=0).forward(x)
    with pytest.raises(error, match=message):
        lk.Embedding(5, 3, rng=0).backward(x, np.zeros(np.shape(x) + (3,)))


def test_torch_refuses_float_indices_too():
    with pytest.raises((RuntimeError, TypeError)):
        torch.nn.Embedding(5, 3)(torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_embeddings": 0, "embedding_dim": 3}, ValueError, r"Embedding: num_embeddings: expected an integer >= 1"),
    ({"num_embeddings": 4, "embedding_dim": 2.0}, TypeError, r"Embedding: embedding_dim: expected an integer"),
    ({"num_embeddings": 4, "embedding_dim": 2, "padding_idx": 4}, ValueError,
     r"Embedding: padding_idx must be in \[-4, 3\], got 4"),
    ({"num_embeddings": 4, "embedding_dim": 2, "padding_idx": 1.0}, TypeError,
     r"Embedding: padding_idx must be an int or None, got float"),
    ({"num_embeddings": 4, "embedding_dim": 2, "dtype": "int64"}, TypeError, r"Embedding: dtype: expected float32"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        lk.Embedding(**kwargs)


def test_wrong_dy_shape_is_named():
    with pytest.raises(ValueError, match=r"Embedding\(5, 3\): dy must have the shape of the layer's output "
                                         r"\(2, 3\), got \(2, 4\)"):
        lk.Embedding(5, 3, rng=0).backward(np.array([0, 1]), np.zeros((2, 4)))


def test_an_embedding_after_a_float_layer_refuses_its_input():
    net = lk.Net([lk.Linear(2, 2, rng=0), lk.Embedding(4, 3, rng=0)])
    with pytest.raises(TypeError, match=r"Embedding\(4, 3\): x must hold integer indices"):
        net.forward(np.ones((2, 2)))


def test_sgd_steps_update_only_the_rows_looked_up(rng):
    net = lk.Net([lk.Embedding(6, 2, rng=0), lk.Linear(2, 1, rng=1)])
    before = net[0].W.copy()
    y, trace = net.forward(np.array([1, 4, 4]))
    assert net.backward(trace, np.ones_like(y)) is None
    net.step(0.1)
    changed = np.flatnonzero(np.any(net[0].W != before, axis=1))
    assert changed.tolist() == [1, 4]


def test_config_repr_and_save_load_bit_identical(tmp_path, rng):
    layer = lk.Embedding(5, 3, rng=0, padding_idx=0, dtype="float32")
    assert repr(layer) == "Embedding(5, 3, padding_idx=0, dtype='float32')"
    assert layer.get_config() == {"num_embeddings": 5, "embedding_dim": 3, "init": {"type": "normal", "std": 1.0},
                                  "dtype": "float32", "padding_idx": 0}
    assert lk.registry.get("embedding") is lk.Embedding
    net = lk.Net.from_config([{"type": "embedding", "num_embeddings": 9, "embedding_dim": 4},
                              {"type": "linear", "n_in": 4, "n_out": 2}], seed=0)
    x = rng.integers(0, 9, size=(3, 6))
    net.save(tmp_path / "emb.npz")
    loaded = lk.Net.load(tmp_path / "emb.npz")
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()
    assert loaded.config() == net.config()

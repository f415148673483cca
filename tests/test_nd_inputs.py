"""Inputs with more than two axes: the layers against torch.nn, nets, and fit/evaluate/predict checking x by the first layer."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")


class Flatten(lk.Layer):
    """(n, ...) -> (n, prod(...)): a test's stand-in for a flattening layer."""

    input_ranks = (2, None)

    def forward(self, x):
        return np.ascontiguousarray(x).reshape(len(x), -1)

    def backward(self, x, dy):
        return np.asarray(dy).reshape(np.shape(x))


class Images(lk.Layer):
    """Takes (n, 2, 3, 3) images only, as a convolution would: the mean over the last axis, flattened."""

    example_input_shape = (2, 2, 3, 3)  # input_ranks (4, 4) follows from it

    def forward(self, x):
        if np.ndim(x) != 4:
            raise ValueError("Images: expected 4-D input")
        return np.asarray(x, dtype=float).mean(axis=-1).reshape(len(x), 6)

    def backward(self, x, dy):
        return np.repeat(np.asarray(dy).reshape(len(x), 2, 3, 1) / 3, 3, axis=-1)


def t(a):
    return torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 5), (0, 2, 5)])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_linear_over_the_last_axis_equals_torch(rng, shape, layout):
    ours = lk.Linear(5, 4, rng=0)
    ours.b[...] = rng.normal(size=4)
    theirs = torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.W.T))
        theirs.bias.copy_(torch.from_numpy(ours.b))
    x = rng.normal(size=shape)
    dy = rng.normal(size=shape[:-1] + (4,))
    xt = t(x)
    y = theirs(xt)
    y.backward(torch.from_numpy(dy))
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros(shape[:-1] + (10,))
        big[..., ::2] = x
        x = big[..., ::2]
    np.testing.assert_allclose(ours.forward(x), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    dx = ours.backward(x, dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.dW, theirs.weight.grad.numpy().T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.db, theirs.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert ours.backward(x, dy, need_dx=False) is None


TORCH_ACTIVATIONS = {
    "relu": (lk.ReLU(), torch.nn.ReLU()), "sigmoid": (lk.Sigmoid(), torch.nn.Sigmoid()),
    "tanh": (lk.Tanh(), torch.nn.Tanh()), "softmax": (lk.Softmax(), torch.nn.Softmax(dim=-1)),
    "gelu": (lk.GELU(), torch.nn.GELU()), "elu": (lk.ELU(alpha=0.7), torch.nn.ELU(alpha=0.7)),
    "leaky_relu": (lk.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
    "softplus": (lk.Softplus(beta=2.0, threshold=5.0), torch.nn.Softplus(beta=2.0, threshold=5.0)),
}


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 4)])
def test_activations_take_any_shape_like_torch(rng, name, shape):
    ours, theirs = TORCH_ACTIVATIONS[name]
    x = rng.normal(size=shape) * 3
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks
    dy = rng.normal(size=shape)
    xt = t(x)
    y = theirs(xt)
    y.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(ours.forward(x), y.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours.backward(x, dy), xt.grad.numpy(), rtol=1e-11, atol=1e-15)
    # the same numbers as the 2-D batch of its rows
    rows = x.reshape(-1, shape[-1])
    np.testing.assert_array_equal(ours.forward(x).reshape(rows.shape), ours.forward(rows))


def test_layer_norm_over_the_last_axis_equals_torch(rng):
    ours = lk.LayerNorm(5, eps=1e-3)
    ours.gamma, ours.beta = rng.normal(size=5), rng.normal(size=5)
    theirs = torch.nn.LayerNorm(5, eps=1e-3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.gamma))
        theirs.bias.copy_(torch.from_numpy(ours.beta))
    x, dy = rng.normal(size=(2, 3, 5)) * 2 + 1, rng.normal(size=(2, 3, 5))
    xt = t(x)
    y = theirs(xt)
    y.backward(torch.from_numpy(dy))
    y_ours, ctx = ours.forward_pass(x, True)
    np.testing.assert_allclose(y_ours, y.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.backward_pass(x, ctx, dy), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.dgamma, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.dbeta, theirs.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ours.backward(x, dy), ours.backward_pass(x, ctx, dy))


def test_dropout_masks_every_element_of_any_shape(rng):
    layer = lk.Dropout(0.5, rng=0)
    x = rng.normal(size=(4, 3, 5)) + 10
    y, mask = layer.forward_pass(x, True)
    assert y.shape == mask.shape == x.shape
    assert set(np.unique(mask)) == {0.0, 2.0}
    np.testing.assert_array_equal(layer.backward_pass(x, mask, np.ones_like(x)), mask)
    np.testing.assert_array_equal(layer.forward_pass(x, False)[0], x)


@pytest.mark.parametrize("layer, message", [
    (lk.ReLU(), r"ReLU\(\): x must be 2-D or more \(n_samples, \.\.\., n_features\), got 1-D"),
    (lk.Softmax(), r"Softmax\(\): x must be 2-D or more"),
    (lk.Dropout(0.5), r"Dropout\(p=0.5\): x must be 2-D or more"),
    (lk.LayerNorm(3), r"LayerNorm\(3\): x must be 2-D or more \(n_samples, \.\.\., n\), got 1-D"),
])
def test_a_single_axis_is_refused_with_the_layer_named(layer, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(np.ones(3))


def test_nets_of_fused_layers_run_inputs_with_more_axes_layer_by_layer(rng):
    net = lk.Net([lk.Linear(5, 6, rng=0), lk.Tanh(), lk.Linear(6, 3, rng=1), lk.Softmax()])
    x = rng.normal(size=(2, 4, 5))
    y, trace = net.forward(x)
    expected = x
    for layer in net:
        expected = layer.forward(expected)
    np.testing.assert_array_equal(y, expected)
    assert [entry.x.shape for entry in trace] == [(2, 4, 5), (2, 4, 6), (2, 4, 6), (2, 4, 3)]
    dx = net.backward(trace, np.ones_like(y), input_grad=True)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(net.predict(x), y)
    workspace = net.workspace()
    y_ws, trace_ws = net.forward(x, workspace=workspace)
    np.testing.assert_array_equal(y_ws, y)
    np.testing.assert_array_equal(net.backward(trace_ws, np.ones_like(y), input_grad=True), dx)
    # 2-D inputs still take the fused chain, with the same numbers as the rows of the 3-D input
    np.testing.assert_array_equal(net.predict(x.reshape(8, 5)), y.reshape(8, 3))
    assert net._compiled() is not None
    assert_grad(net, x, rtol=1e-6, atol=1e-8, max_coords=None)


def test_a_segmented_net_runs_inputs_with_more_axes(rng):
    net = lk.Net([lk.Linear(5, 6, rng=0), lk.LayerNorm(6), lk.ReLU(), lk.Linear(6, 2, rng=1), lk.Dropout(0.2, rng=0)])
    x = rng.normal(size=(3, 2, 5))
    y, trace = net.forward(x)
    assert y.shape == (3, 2, 2)
    assert net.backward(trace, np.ones_like(y), input_grad=True).shape == x.shape
    assert_grad(net, x, rtol=1e-6, atol=1e-8, max_coords=None, reset=lambda n: setattr(n[4], "rng",
                                                                                        np.random.default_rng(0)))


def test_input_spec_asks_the_first_layer_that_declares_one():
    assert lk.Net([lk.Linear(3, 2)]).input_spec().ranks == (2, None)
    spec = lk.Net([lk.Dropout(0.1), lk.ReLU(), lk.BatchNorm2d(3)]).input_spec()
    assert spec.ranks == (4, 4) and not spec.integer and isinstance(spec.layer, lk.BatchNorm2d)
    spec = lk.Net([lk.Embedding(5, 2), lk.Linear(2, 1)]).input_spec()
    assert spec.ranks == (1, 2) and spec.integer
    assert lk.Net([lk.Residual([lk.BatchNorm1d(3)])]).input_spec().ranks == (2, 3)
    assert lk.Net([Images()]).input_spec().ranks == (4, 4)
    assert lk.Net([lk.ReLU()]).input_spec().ranks == (2, None)


def _regression(rng, shape):
    x = rng.normal(size=shape)
    return x, x.reshape(len(x), -1).sum(axis=1, keepdims=True)


def test_fit_evaluate_predict_with_a_linear_net_on_sequences(rng):
    x, y = _regression(rng, (60, 4, 3))
    net = lk.Net([lk.Linear(3, 1, rng=0), Flatten(), lk.Linear(4, 1, rng=1)])
    before = lk.evaluate(net, x, y, loss="mse")[0]
    history = lk.fit(net, x, y, loss="mse", epochs=30, lr=0.02, batch_size=10, verbose=0, seed=0,
                     validation_data=(x[:10], y[:10]))
    assert history["train_loss"][-1] < 0.05 * before
    assert lk.evaluate(net, x, y, loss="mse")[0] == pytest.approx(history["train_loss"][-1], rel=0.5)
    assert net.predict(x).shape == (60, 1)
    fortran_loss = lk.fit(net, np.asfortranarray(x), y, loss="mse", epochs=1, lr=0.0, verbose=0,
                         shuffle=False)["train_loss"][-1]
    assert fortran_loss == pytest.approx(lk.evaluate(net, x, y, loss="mse")[0], rel=1e-12)


def test_fit_takes_images_for_a_net_starting_with_a_4d_layer_and_refuses_2d(rng):
    x, y = _regression(rng, (30, 2, 3, 3))
    net = lk.Net([Images(), lk.Linear(6, 1, rng=0)])
    history = lk.fit(net, x, y, loss="mse", epochs=20, lr=0.05, verbose=0, seed=0)
    assert history["train_loss"][-1] < history["train_loss"][0]
    with pytest.raises(ValueError, match=r"fit: x must be 4-D as Images\(\) takes, got 2-D array of shape \(30, 18\)"):
        lk.fit(net, x.reshape(30, 18), y, loss="mse", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: x must be 4-D as Images\(\) takes, got 2-D array"):
        lk.evaluate(net, x.reshape(30, 18), y, loss="mse")


def test_fit_reads_images_from_a_memmap_a_minibatch_at_a_time(tmp_path, rng):
    x, y = _regression(rng, (20, 2, 3, 3))
    stored = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=x.shape)
    stored[...] = x
    net = lk.Net([Images(), lk.Linear(6, 1, rng=0)])
    history = lk.fit(net, stored, y, loss="mse", epochs=3, lr=0.05, batch_size=6, verbose=0, seed=0)
    assert len(history["train_loss"]) == 3 and np.isfinite(history["train_loss"]).all()


class Recording(lk.Embedding):
    """An Embedding that records the dtypes of the inputs it sees."""

    def forward_pass(self, x, training, **kwargs):
        self.__dict__.setdefault("seen", set()).add(np.asarray(x).dtype.kind)
        return super().forward_pass(x, training, **kwargs)


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint8])
def test_fit_evaluate_predict_with_an_embedding_net_keep_integer_indices(rng, index_dtype):
    x = rng.integers(0, 8, size=200).astype(index_dtype)
    y = (x % 2).astype(np.int64)  # parity of the index: learnable only through the table
    embedding = Recording(8, 4, rng=0)
    net = lk.Net([embedding, lk.Tanh(), lk.Linear(4, 2, rng=1)])
    history = lk.fit(net, x, y, epochs=40, lr=0.5, batch_size=20, verbose=0, seed=0,
                     validation_data=(x[:50], y[:50]))
    assert history["train_accuracy"][-1] == 1.0
    assert lk.evaluate(net, x, y)[1] == 1.0
    assert np.array_equal(net.predict(x).argmax(axis=1), y)
    assert embedding.seen and embedding.seen <= {"i", "u"}  # never cast to float


def test_an_embedding_net_refuses_float_x_with_the_layer_named(rng):
    net = lk.Net([lk.Embedding(8, 4, rng=0), lk.Linear(4, 2, rng=1)])
    y = np.zeros(5, dtype=int)
    with pytest.raises(TypeError, match=r"fit: x must hold integer indices for Embedding\(8, 4\), got dtype "
                                        r"float64"):
        lk.fit(net, np.zeros(5), y, verbose=0)
    with pytest.raises(TypeError, match=r"evaluate: x must hold integer indices for Embedding\(8, 4\)"):
        lk.evaluate(net, np.zeros(5), y)
    with pytest.raises(ValueError, match=r"fit: x must be 1-D or 2-D as Embedding\(8, 4\) takes, got shape "
                                         r"\(5, 2, 2\)"):
        lk.fit(net, np.zeros((5, 2, 2), dtype=int), y, verbose=0)
    with pytest.raises(ValueError, match=r"Embedding\(8, 4\): x holds index 9, outside \[0, 7\]"):
        lk.fit(net, np.full(5, 9), y, verbose=0)


def test_an_embedding_net_on_sequences_trains(rng):
    x = rng.integers(0, 6, size=(80, 3))
    y = (x[:, 0] == x[:, 1]).astype(float)[:, None]
    net = lk.Net([lk.Embedding(6, 3, rng=0), Flatten(), lk.Linear(9, 8, rng=1), lk.Tanh(), lk.Linear(8, 1, rng=2),
                  lk.Sigmoid()])
    history = lk.fit(net, x, y, loss="bce", epochs=10, lr=0.3, batch_size=8, verbose=0, seed=0)
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_blocks_take_inputs_with_more_axes(rng):
    x = rng.normal(size=(4, 3, 2, 3))
    bn, relu = lk.BatchNorm2d(3), lk.ReLU()
    bn.gamma = rng.normal(size=3)
    blocks = {
        "residual": (lk.Residual([bn, relu]), lambda: x + relu.forward(bn.forward_pass(x, True)[0])),
        "add": (lk.Add([[lk.Tanh()], [lk.Sigmoid()]]), lambda: np.tanh(x) + 1 / (1 + np.exp(-x))),
        "concatenate": (lk.Concatenate([[lk.Tanh()], [lk.Identity()]]), lambda: np.concatenate([np.tanh(x), x], 1)),
    }
    for name, (block, reference) in blocks.items():
        net = lk.Net([block])
        for workspace in (None, net.workspace()):
            y, trace = net.forward(x, workspace=workspace)
            np.testing.assert_allclose(y, reference(), rtol=1e-12, atol=1e-12, err_msg=name)
            assert net.backward(trace, np.ones_like(y), input_grad=True).shape == x.shape
        assert_grad(net, x, rtol=1e-6, atol=1e-8, max_coords=None)


def test_concatenated_branches_must_agree_on_the_other_axes(rng):
    block = lk.Concatenate([[lk.ReLU()], [Flatten()]])
    with pytest.raises(ValueError, match=r"Concatenate\(.*\): the branches' outputs are concatenated along axis 1, so "
                                         r"they must agree on every other axis, got \(2, 3, 4\) \(branch 0\), "
                                         r"\(2, 12\) \(branch 1\)"):
        lk.Net([block]).forward(rng.normal(size=(2, 3, 4)))

"""BatchNorm1d against torch.nn.BatchNorm1d: both modes, running statistics, per-pass statistics, files."""
import pickle

import numpy as np
import pytest

import layerkit as lk
from layerkit.io import ModelFileError
from layerkit.testing import assert_grad

from norm_helpers import our_pass, torch_pass

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")


def torch_pair(n, dtype, rng, **kwargs):
    ours = lk.BatchNorm1d(n, dtype=dtype, **kwargs)
    theirs = torch.nn.BatchNorm1d(n, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    gamma, beta = rng.normal(size=n), rng.normal(size=n)
    ours.gamma, ours.beta = gamma.astype(dtype), beta.astype(dtype)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    return ours, theirs


def assert_close(ours, theirs, rtol, dx_scale):
    """Relative to each result's largest entry; ``dx`` relative to the size of the terms that cancel in it."""
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), ours, theirs):
        assert a.dtype == b.dtype, name
        scale = dx_scale if name == "dx" else np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("rows", [2, 9, 64])
def test_forward_and_backward_equal_torch(rng, dtype, rtol, training, rows):
    ours, theirs = torch_pair(5, dtype, rng, eps=1e-3, momentum=0.3)
    # start from non-trivial running statistics in both
    ours.running_mean = rng.normal(size=5).astype(dtype)
    ours.running_var = rng.uniform(0.5, 2.0, size=5).astype(dtype)
    theirs.running_mean.copy_(torch.from_numpy(ours.running_mean))
    theirs.running_var.copy_(torch.from_numpy(ours.running_var))
    theirs.train(training)
    x = (rng.normal(size=(rows, 5)) * 3 + 2).astype(dtype)
    dy = rng.normal(size=(rows, 5)).astype(dtype)
    var = x.astype(np.float64).var(axis=0) if training else ours.running_var.astype(np.float64)
    dx_scale = np.abs(dy).max() * np.abs(ours.gamma).max() / np.sqrt(var.min() + 1e-3)
    assert_close(our_pass(ours, x, dy, training), torch_pass(theirs, x, dy), rtol, dx_scale)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=rtol)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=rtol)


def test_running_statistics_match_torch_after_20_training_steps(rng):
    ours, theirs = torch_pair(6, np.float64, rng)
    net = lk.Net([lk.Linear(3, 6, rng=0), ours, lk.ReLU(), lk.Linear(6, 1, rng=1)])
    linear = torch.nn.Linear(3, 6).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(net[0].W.T.copy()))
        linear.bias.copy_(torch.from_numpy(net[0].b))
    for step in range(20):
        x = rng.normal(size=(16, 3)) * (1 + step / 10)
        net.forward(x)  # training mode: updates the running statistics
        with torch.no_grad():
            theirs(linear(torch.from_numpy(x)))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    # the unbiased variance goes into the running estimate: a biased one would miss by m/(m-1)
    assert not np.allclose(theirs.running_var.numpy(), 1 + 0 * ours.running_var)
    # and inference normalises with them, as torch's eval mode does
    theirs.eval()
    x = rng.normal(size=(4, 3))
    with torch.no_grad():
        expected = theirs(linear(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(net[:2].predict(x), expected, rtol=1e-12, atol=1e-14)


def test_momentum_zero_and_one(rng):
    x = rng.normal(size=(5, 3))
    frozen = lk.BatchNorm1d(3, momentum=0.0)
    frozen.forward(x)
    assert np.array_equal(frozen.running_mean, np.zeros(3)) and np.array_equal(frozen.running_var, np.ones(3))
    last = lk.BatchNorm1d(3, momentum=1.0)
    last.forward(x)
    np.testing.assert_allclose(last.running_mean, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(last.running_var, x.var(0, ddof=1), rtol=1e-14)


def test_a_batch_of_one_row_in_training_mode_is_refused_like_torch():
    layer = lk.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\): expected more than 1 value per feature in training "
                                         r"mode, got a batch of 1 row\(s\) of shape \(1, 4\); use a larger batch "
                                         r"or net.eval\(\)"):
        layer.forward(np.ones((1, 4)))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        torch.nn.BatchNorm1d(4)(torch.ones(1, 4))
    assert np.array_equal(layer.running_mean, np.zeros(4))  # nothing was updated
    layer.training = False
    assert layer.forward(np.ones((1, 4))).shape == (1, 4)  # inference takes a single row


def test_inference_mode_neither_uses_nor_updates_batch_statistics(rng):
    layer = lk.BatchNorm1d(3)
    layer.running_mean, layer.running_var = np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 0.25])
    x = rng.normal(size=(6, 3))
    y, ctx = layer.forward_pass(x, False)
    np.testing.assert_allclose(y, (x - layer.running_mean) / np.sqrt(layer.running_var + 1e-5), rtol=1e-14)
    assert ctx.training is False
    assert np.array_equal(layer.running_mean, [1.0, 2.0, 3.0])


def test_interleaved_passes_keep_their_own_batch_statistics(rng):
    layer = lk.BatchNorm1d(4)
    layer.gamma = rng.normal(size=4)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(7, 4)) * 4 + 1
    da, db = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    sequential = []
    for x, dy in ((a, da), (b, db)):
        y, ctx = layer.forward_pass(x, True)
        sequential.append((layer.backward_pass(x, ctx, dy), layer.dgamma.copy()))
    for order in ((1, 0), (0, 1)):  # both passes forward first, then the backward passes in either order
        passes = [(x, layer.forward_pass(x, True)[1], dy) for x, dy in ((a, da), (b, db))]
        for i in order:
            x, ctx, dy = passes[i]
            assert np.array_equal(layer.backward_pass(x, ctx, dy), sequential[i][0])
            assert np.array_equal(layer.dgamma, sequential[i][1])


def test_backward_without_ctx_recomputes_the_statistics_from_x(rng):
    layer = lk.BatchNorm1d(3)
    x, dy = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    y, ctx = layer.forward_pass(x, True)
    assert np.array_equal(layer.backward(x, dy), layer.backward_pass(x, ctx, dy))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_in_both_modes_although_training_updates_the_running_statistics(rng, training, dtype):
    layer = lk.BatchNorm1d(4, dtype=dtype)
    layer.gamma = rng.normal(size=4).astype(dtype)
    layer.running_var = rng.uniform(0.5, 2, size=4).astype(dtype)
    layer.training = training
    before = layer.running_var
    copy = before.copy()
    assert_grad(layer, rng.normal(size=(6, 4)) * 2, rtol=1e-6, atol=1e-8, max_coords=None, directions=3)
    assert layer.running_var is before and np.array_equal(before, copy)  # the check leaves the state as it was


def test_gradients_through_a_net(rng):
    net = lk.Net([lk.Linear(3, 5, rng=0), lk.BatchNorm1d(5), lk.Sigmoid(), lk.Linear(5, 2, rng=1)])
    assert_grad(net, rng.normal(size=(8, 3)), rtol=1e-6, atol=1e-8, max_coords=None)


def test_other_changed_attributes_still_get_a_layer_refused(rng):
    class Counting(lk.BatchNorm1d):
        def forward_pass(self, x, training):
            self.calls = getattr(self, "calls", 0) + 1
            return super().forward_pass(x, training)

    with pytest.raises(lk.testing.GradcheckError, match=r"changes its own state between calls \(attributes calls\)"):
        assert_grad(Counting(3), rng.normal(size=(4, 3)))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n": 0}, ValueError, r"BatchNorm1d: n: expected an integer >= 1, got 0"),
    ({"n": 2.5}, TypeError, r"BatchNorm1d: n: expected an integer, got float 2.5"),
    ({"n": 3, "eps": 0}, ValueError, r"BatchNorm1d: eps: expected a real number in \(0, inf\), got int 0"),
    ({"n": 3, "momentum": 1.5}, ValueError, r"BatchNorm1d: momentum: expected a real number in \[0, 1\], got float"),
    ({"n": 3, "momentum": None}, ValueError, r"BatchNorm1d: momentum: expected a real number .* got NoneType"),
    ({"n": 3, "dtype": "int32"}, TypeError, r"BatchNorm1d: dtype: expected float32 or float64, got int32"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        lk.BatchNorm1d(**kwargs)


def test_bad_input_and_state_are_named():
    layer = lk.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): x must have 3 features \(columns\), got shape \(4, 2\)"):
        layer.forward(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): dy must have the shape of the layer's output \(4, 3\)"):
        layer.backward(np.ones((4, 3)), np.ones((3, 4)))
    layer.running_var = np.ones(4)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): running_var must have shape \(3,\), got \(4,\)"):
        layer.forward(np.ones((4, 3)))


def test_config_repr_pickle_and_dtype():
    layer = lk.BatchNorm1d(3, eps=1e-3, momentum=0.2, dtype="float32")
    assert repr(layer) == "BatchNorm1d(3, momentum=0.2, eps=0.001, dtype='float32')"
    assert repr(lk.BatchNorm1d(3)) == "BatchNorm1d(3)"
    assert layer.get_config() == {"n": 3, "eps": 0.001, "momentum": 0.2, "dtype": "float32"}
    assert layer.state_names == ("running_mean", "running_var") and layer.param_names == ("gamma", "beta")
    assert lk.registry.get("batch_norm") is lk.BatchNorm1d
    y = layer.forward(np.ones((3, 3)) * np.arange(3)[:, None])
    assert y.dtype == np.float32 and layer.running_var.dtype == np.float32
    again = pickle.loads(pickle.dumps(layer))
    assert np.array_equal(again.running_var, layer.running_var)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_load_keeps_the_running_statistics_and_predictions_bit_identical(tmp_path, rng, dtype):
    net = lk.Net.from_config([{"type": "linear", "n_in": 4, "n_out": 6, "dtype": dtype},
                              {"type": "batch_norm", "n": 6, "momentum": 0.3, "dtype": dtype}, "relu",
                              {"type": "linear", "n_in": 6, "n_out": 2, "dtype": dtype}], seed=0)
    x = rng.normal(size=(10, 4)).astype(dtype)
    lk.fit(net, x, rng.normal(size=(10, 2)), loss="mse", epochs=3, batch_size=5, verbose=0, seed=0)
    assert not np.array_equal(net[1].running_mean, np.zeros(6))
    net.save(tmp_path / "bn.npz")
    loaded = lk.Net.load(tmp_path / "bn.npz")
    assert loaded[1].running_mean.tobytes() == net[1].running_mean.tobytes()
    assert loaded[1].running_var.tobytes() == net[1].running_var.tobytes()
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()
    assert loaded.config() == net.config()


def write_with(tmp_path, path, **changes):
    entries = dict(np.load(path))
    entries.update(changes)
    bad = tmp_path / "bad.npz"
    with open(bad, "wb") as handle:
        np.savez(handle, **entries)
    return bad


@pytest.mark.parametrize("changes, message", [
    ({"layers/1/running_var": np.ones(5)}, r"array 'layers/1/running_var' of BatchNorm1d\(6\) must have shape "
                                           r"\(6,\) and dtype float64, got array of shape \(5,\)"),
    ({"layers/1/running_mean": np.ones(6, dtype=np.float32)}, r"'layers/1/running_mean' .* dtype float64, got .* float32"),
    ({"layers/1/running_var": -np.ones(6)}, r"the state of layer 1 \(BatchNorm1d\(6\)\) is invalid: .*negative"),
    ({"layers/1/running_mean": np.full(6, np.nan)}, r"state of layer 1 .* running_mean contains NaN"),
])
def test_misshapen_or_corrupt_state_in_a_file_is_a_model_file_error(tmp_path, changes, message):
    net = lk.Net([lk.Linear(4, 6, rng=0), lk.BatchNorm1d(6), lk.Linear(6, 1, rng=1)])
    net.save(tmp_path / "good.npz")
    with pytest.raises(ModelFileError, match=message):
        lk.Net.load(write_with(tmp_path, tmp_path / "good.npz", **changes))


def test_a_file_missing_the_state_is_a_model_file_error(tmp_path):
    net = lk.Net([lk.Linear(4, 6, rng=0), lk.BatchNorm1d(6)])
    net.save(tmp_path / "good.npz")
    entries = dict(np.load(tmp_path / "good.npz"))
    del entries["layers/1/running_mean"]
    with open(tmp_path / "bad.npz", "wb") as handle:
        np.savez(handle, **entries)
    with pytest.raises(ModelFileError, match=r"missing parameter arrays \['layers/1/running_mean'\]"):
        lk.Net.load(tmp_path / "bad.npz")


def test_early_stopping_restores_the_running_statistics_of_the_best_epoch(rng):
    net = lk.Net([lk.Linear(3, 6, rng=0), lk.BatchNorm1d(6), lk.ReLU(), lk.Linear(6, 1, rng=1)])
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    x_val, y_val = rng.normal(size=(10, 3)) + 3, rng.normal(size=(10, 1))  # shifted: val loss wanders
    seen = []
    record = lk.LambdaCallback(on_epoch_end=lambda state: seen.append(
        (net[1].running_mean.copy(), net[1].running_var.copy(), net[0].W.copy())))
    stopper = lk.EarlyStopping(patience=2, restore_best_weights=True)
    lk.fit(net, x, y, loss="mse", epochs=30, lr=0.2, batch_size=8, verbose=0, seed=0,
           validation_data=(x_val, y_val), callbacks=[record], early_stopping=stopper)
    best = stopper.best_epoch
    assert best < len(seen) - 1  # something later than the best epoch was undone
    assert np.array_equal(net[0].W, seen[best][2])
    assert np.array_equal(net[1].running_mean, seen[best][0]) and np.array_equal(net[1].running_var, seen[best][1])
    assert not np.array_equal(seen[-1][0], seen[best][0])
    val_loss, _ = lk.mean_squared_error(net.predict(x_val), y_val)
    assert val_loss == pytest.approx(stopper.best, rel=1e-12)

"""BatchNorm2d, and BatchNorm1d on (n, C, L), against torch.nn: both modes, running statistics, layouts, files."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

from norm_helpers import our_pass, torch_pass

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")

TORCH_CLASSES = {lk.BatchNorm2d: torch.nn.BatchNorm2d, lk.BatchNorm1d: torch.nn.BatchNorm1d}


def torch_pair(cls, n, dtype, rng, **kwargs):
    ours = cls(n, dtype=dtype, **kwargs)
    theirs = TORCH_CLASSES[cls](n, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    gamma, beta = rng.normal(size=n), rng.normal(size=n)
    ours.gamma, ours.beta = gamma.astype(dtype), beta.astype(dtype)
    ours.running_mean = rng.normal(size=n).astype(dtype)
    ours.running_var = rng.uniform(0.5, 2.0, size=n).astype(dtype)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
        theirs.running_mean.copy_(torch.from_numpy(ours.running_mean))
        theirs.running_var.copy_(torch.from_numpy(ours.running_var))
    return ours, theirs


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("cls, shape", [
    (lk.BatchNorm2d, (2, 3, 4, 5)), (lk.BatchNorm2d, (7, 3, 1, 1)), (lk.BatchNorm2d, (1, 3, 3, 2)),
    (lk.BatchNorm1d, (4, 3, 6)), (lk.BatchNorm1d, (1, 3, 5)),
])
@pytest.mark.parametrize("options", [{}, {"eps": 1e-3, "momentum": 0.3}, {"momentum": 0.0}])
def test_forward_backward_and_running_statistics_equal_torch(rng, dtype, rtol, training, cls, shape, options):
    ours, theirs = torch_pair(cls, shape[1], dtype, rng, **options)
    theirs.train(training)
    x = (rng.normal(size=shape) * 3 + 2).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), our_pass(ours, x, dy, training), torch_pass(theirs, x, dy)):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()), err_msg=name)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=rtol, atol=rtol)


def test_running_statistics_match_torch_after_several_training_steps(rng):
    ours, theirs = torch_pair(lk.BatchNorm2d, 4, np.float64, rng, momentum=0.2)
    for _ in range(5):
        x = rng.normal(size=(3, 4, 2, 5)) * 2 + 1
        ours.forward_pass(x, True)
        theirs(torch.from_numpy(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("held", ["own", "read-only", "one array for both"])
@pytest.mark.parametrize("cls, shape", [(lk.BatchNorm2d, (4, 3, 2, 5)), (lk.BatchNorm1d, (40, 3))])
def test_running_statistics_update_in_place_by_the_formula_whatever_array_holds_them(rng, dtype, held, cls, shape):
    # (1 - m) * running + m * batch, in place in their own arrays, copied first when read-only or shared
    layer = cls(3, momentum=0.3, dtype=dtype)
    start = rng.normal(size=3).astype(dtype) ** 2
    if held == "read-only":
        layer.running_mean, layer.running_var = start.copy(), start.copy()
        layer.running_mean.flags.writeable = layer.running_var.flags.writeable = False
        originals = (layer.running_mean, layer.running_var)
    elif held == "one array for both":
        layer.running_mean = layer.running_var = start.copy()
    else:
        layer.running_mean, layer.running_var = start.copy(), start.copy()
    x = (rng.normal(size=shape) * 2 + 1).astype(dtype)
    held_before = layer.running_mean
    layer.forward_pass(x, True)
    m = dtype(0.3)
    axes = (0,) + tuple(range(2, x.ndim))
    values = x.size // 3
    mean, var = x.mean(axis=axes, dtype=np.float64), x.var(axis=axes, dtype=np.float64)
    np.testing.assert_allclose(layer.running_mean, (1 - m) * start + m * mean.astype(dtype), rtol=1e-6)
    unbiased = var.astype(dtype) * dtype(values / (values - 1))
    np.testing.assert_allclose(layer.running_var, (1 - m) * start + m * unbiased, rtol=1e-6)
    assert layer.running_mean is not layer.running_var
    assert (layer.running_mean is held_before) == (held != "read-only")  # updated in its own array
    if held == "read-only":  # the read-only arrays are left as they were
        assert all(np.array_equal(original, start) for original in originals)


@pytest.mark.parametrize("layout", ["fortran", "strided", "float32 into float64", "big-endian"])
def test_any_layout_and_dtype_gives_the_c_ordered_float64_results(rng, layout):
    layer = lk.BatchNorm2d(3)
    layer.gamma = rng.normal(size=3)
    x = rng.normal(size=(4, 3, 5, 6))
    dy = rng.normal(size=x.shape)
    expected = our_pass(layer, x, dy, True)
    if layout == "fortran":
        other, other_dy = np.asfortranarray(x), np.asfortranarray(dy)
    elif layout == "strided":
        big, big_dy = np.zeros((4, 3, 10, 6)), np.zeros((4, 3, 10, 6))
        big[:, :, ::2], big_dy[:, :, ::2] = x, dy
        other, other_dy = big[:, :, ::2], big_dy[:, :, ::2]
    elif layout == "big-endian":
        other, other_dy = x.astype(">f8"), dy
    else:
        x = x.astype(np.float32).astype(np.float64)
        expected = our_pass(layer, x, dy, True)
        other, other_dy = x.astype(np.float32), dy
    for a, b in zip(our_pass(layer, other, other_dy, True), expected):
        np.testing.assert_array_equal(a, b)


def test_a_single_value_per_channel_in_training_mode_is_refused_like_torch():
    layer = lk.BatchNorm2d(2)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(2\): expected more than 1 value per channel in training "
                                         r"mode, got input of shape \(1, 2, 1, 1\)"):
        layer.forward_pass(np.ones((1, 2, 1, 1)), True)
    with pytest.raises(ValueError):
        torch.nn.BatchNorm2d(2)(torch.ones(1, 2, 1, 1))
    y, _ = layer.forward_pass(np.ones((1, 2, 1, 1)), False)  # inference mode takes it
    assert y.shape == (1, 2, 1, 1)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_in_both_modes(rng, training, dtype):
    layer = lk.BatchNorm2d(3, dtype=dtype)
    layer.gamma = rng.normal(size=3).astype(dtype)
    layer.running_var = rng.uniform(0.5, 2, size=3).astype(dtype)
    layer.training = training
    assert_grad(layer, rng.normal(size=(2, 3, 2, 3)) * 2, rtol=1e-6, atol=1e-8, max_coords=None, directions=3)


def test_gradients_of_batch_norm_1d_on_sequences(rng):
    layer = lk.BatchNorm1d(3)
    layer.gamma = rng.normal(size=3)
    assert_grad(layer, rng.normal(size=(2, 3, 4)), rtol=1e-6, atol=1e-8, max_coords=None, directions=3)


def test_backward_without_ctx_recomputes_the_statistics_without_updating_them(rng):
    layer = lk.BatchNorm2d(3)
    x, dy = rng.normal(size=(4, 3, 2, 2)), rng.normal(size=(4, 3, 2, 2))
    _, ctx = layer.forward_pass(x, True)
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    np.testing.assert_array_equal(layer.backward(x, dy), layer.backward_pass(x, ctx, dy))
    assert np.array_equal(layer.running_mean, mean) and np.array_equal(layer.running_var, var)


@pytest.mark.parametrize("x, error, message", [
    (np.ones((4, 3, 5)), ValueError, r"BatchNorm2d\(3\): x must be 4-D \(n_samples, n, H, W\), got 3-D array of "
                                     r"shape \(4, 3, 5\)"),
    (np.ones((4, 2, 5, 5)), ValueError, r"BatchNorm2d\(3\): x must have 3 channels \(axis 1\), got shape "
                                        r"\(4, 2, 5, 5\)"),
    (np.array([[[["a"]]]]), TypeError, r"BatchNorm2d\(3\): x must hold real numbers"),
])
def test_bad_input_is_named(x, error, message):
    with pytest.raises(error, match=message):
        lk.BatchNorm2d(3).forward(x)


def test_batch_norm_1d_refuses_four_axes_and_names_its_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): x must be 2-D or 3-D \(n_samples, n\) or "
                                         r"\(n_samples, n, L\), got 4-D"):
        lk.BatchNorm1d(3).forward(np.ones((2, 3, 2, 2)))


def test_bad_ctx_is_refused(rng):
    layer = lk.BatchNorm2d(3)
    x = rng.normal(size=(2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): ctx must be the ChannelStats of this pass"):
        layer.backward_pass(x, ("not", "stats"), x)


def test_a_workspace_pass_reuses_its_arrays(rng):
    net = lk.Net([lk.BatchNorm2d(3), lk.ReLU()])
    workspace = net.workspace()
    x = rng.normal(size=(4, 3, 2, 2))
    y1, trace = net.forward(x, workspace=workspace)
    dx1 = net.backward(trace, np.ones_like(y1), input_grad=True)
    expected_y, expected_dx = y1.copy(), dx1.copy()
    plain_y, plain_trace = net.forward(x)
    np.testing.assert_array_equal(plain_y, expected_y)
    np.testing.assert_array_equal(net.backward(plain_trace, np.ones_like(y1), input_grad=True), expected_dx)
    first_bn_output = trace[1].x
    y2, trace = net.forward(x, workspace=workspace)
    dx2 = net.backward(trace, np.ones_like(y2), input_grad=True)
    assert trace[1].x is first_bn_output  # the layer's output lives in the workspace, not in a new array
    assert np.shares_memory(dx1, dx2)
    np.testing.assert_array_equal(dx2, expected_dx)


def test_config_registry_repr_and_save_load_bit_identical(tmp_path, rng):
    layer = lk.BatchNorm2d(3, eps=1e-3, momentum=0.2, dtype="float32")
    assert repr(layer) == "BatchNorm2d(3, momentum=0.2, eps=0.001, dtype='float32')"
    assert layer.get_config() == {"n": 3, "eps": 0.001, "momentum": 0.2, "dtype": "float32"}
    assert lk.registry.get("batch_norm2d") is lk.BatchNorm2d
    net = lk.Net.from_config([{"type": "batch_norm2d", "n": 3, "momentum": 0.3}, "relu"])
    for _ in range(3):
        net.forward(rng.normal(size=(5, 3, 4, 4)) + 1)
    assert not np.array_equal(net[0].running_mean, np.zeros(3))
    net.save(tmp_path / "bn2d.npz")
    loaded = lk.Net.load(tmp_path / "bn2d.npz")
    x = rng.normal(size=(2, 3, 4, 4))
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()
    assert loaded.config() == net.config() == [{"type": "batch_norm2d", "n": 3, "eps": 1e-05, "momentum": 0.3,
                                                "dtype": "float64"}, "relu"]

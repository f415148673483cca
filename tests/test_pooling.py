"""Max, average and global average pooling against torch.nn, forward and backward; layouts and errors."""
from __future__ import annotations

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

torch = pytest.importorskip("torch")

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-6, atol=2e-6)}

CASES_2D = [
    (2, {}, (6, 6)),
    (3, {}, (7, 8)),
    (3, {"stride": 2}, (7, 8)),
    (3, {"stride": 1, "padding": 1}, (5, 6)),
    ((2, 3), {"stride": (1, 2), "padding": (1, 1)}, (5, 7)),
    (4, {"stride": 3, "padding": 2}, (9, 10)),
    (1, {}, (3, 4)),
]
CASES_1D = [
    (2, {}, (8,)),
    (3, {"stride": 2, "padding": 1}, (9,)),
    (4, {"stride": 1, "padding": 2}, (6,)),
    (5, {}, (12,)),
]
PAIRS_2D = [(lk.MaxPool2d, torch.nn.MaxPool2d), (lk.AvgPool2d, torch.nn.AvgPool2d)]
PAIRS_1D = [(lk.MaxPool1d, torch.nn.MaxPool1d), (lk.AvgPool1d, torch.nn.AvgPool1d)]


def _compare(layer, ref, x, dtype):
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(x, dy), xt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, torch_cls", PAIRS_2D)
@pytest.mark.parametrize("kernel, options, size", CASES_2D)
def test_2d_pooling_equals_torch(cls, torch_cls, kernel, options, size, dtype):
    x = np.random.default_rng(0).standard_normal((3, 2) + size).astype(dtype)
    _compare(cls(kernel, **options), torch_cls(kernel, **options), x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, torch_cls", PAIRS_1D)
@pytest.mark.parametrize("kernel, options, size", CASES_1D)
def test_1d_pooling_equals_torch(cls, torch_cls, kernel, options, size, dtype):
    x = np.random.default_rng(0).standard_normal((3, 4) + size).astype(dtype)
    _compare(cls(kernel, **options), torch_cls(kernel, **options), x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer, reference, shape", [
    (lk.GlobalAvgPool2d(), torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()), (3, 5, 4, 6)),
    (lk.GlobalAvgPool1d(), torch.nn.Sequential(torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten()), (3, 5, 7)),
])
def test_global_average_pooling_equals_torch(layer, reference, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    _compare(layer, reference, x, dtype)


def test_max_pooling_propagates_nan_and_ignores_the_padding():
    x = -np.ones((1, 1, 2, 2)) * 5
    x[0, 0, 1, 1] = np.nan
    y = lk.MaxPool2d(2, stride=1, padding=1).forward(x)
    assert np.isnan(y[0, 0, 1:, 1:]).all() and (y[0, 0, 0, 0] == -5)  # the padding's -inf never wins over -5
    ref = torch.nn.MaxPool2d(2, stride=1, padding=1)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(y, ref)


def test_average_pooling_counts_the_padding_as_torch_does():
    y = lk.AvgPool2d(2, padding=1).forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 0.25))


@pytest.mark.parametrize("layer, shape", [
    (lk.MaxPool2d(3, stride=2, padding=1), (2, 3, 6, 5)),
    (lk.AvgPool2d((2, 3), stride=1, padding=1), (2, 3, 5, 4)),
    (lk.MaxPool1d(3, stride=2, padding=1), (2, 3, 8)),
    (lk.AvgPool1d(2), (2, 3, 7)),
    (lk.GlobalAvgPool2d(), (2, 3, 3, 4)),
    (lk.GlobalAvgPool1d(), (2, 3, 5)),
])
def test_gradients_match_central_differences(layer, shape):
    assert_grad(layer, np.random.default_rng(0).standard_normal(shape))


@pytest.mark.parametrize("layer", [lk.MaxPool2d(2), lk.AvgPool2d(3, stride=1, padding=1), lk.GlobalAvgPool2d()])
@pytest.mark.parametrize("layout", ["fortran", "strided", "float32_big_endian", "int"])
def test_other_layouts_and_dtypes_give_the_c_ordered_result(layer, layout):
    x = np.round(np.random.default_rng(0).standard_normal((3, 2, 6, 6)) * 4)
    if layout == "fortran":
        given = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros((3, 4, 6, 12))
        big[:, ::2, :, ::2] = x
        given = big[:, ::2, :, ::2]
    elif layout == "float32_big_endian":
        x = x.astype(np.float32)
        given = x.astype(">f4")
    else:
        given = x.astype(np.int16)
    expected = layer.forward(x)
    dy = np.ones_like(expected)
    got = layer.forward(given)
    assert got.dtype == expected.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(layer.backward(given, dy), layer.backward(x, dy))


@pytest.mark.parametrize("layer, x, error, message", [
    (lk.MaxPool2d(2), np.ones((2, 3, 4)), ValueError, r"MaxPool2d\(2\): x must be 4-D .* got 3-D"),
    (lk.AvgPool1d(2), np.ones((2, 3, 4, 4)), ValueError, r"AvgPool1d\(2\): x must be 3-D .* got 4-D"),
    (lk.MaxPool2d(5), np.ones((2, 3, 4, 8)), ValueError,
     r"MaxPool2d\(5\): the window \(size 5\) is larger than the padded input \(4 \+ padding 0 = 4\)"),
    (lk.AvgPool2d(2), np.ones((0, 3, 4, 4)), ValueError, r"AvgPool2d\(2\): x is an empty batch"),
    (lk.GlobalAvgPool2d(), np.ones((2, 3)), ValueError, r"GlobalAvgPool2d\(\): x must be 4-D"),
    (lk.MaxPool1d(2), np.array([[["a", "b"]]]), TypeError, r"MaxPool1d\(2\): x must hold real numbers"),
])
def test_bad_inputs_are_refused_clearly(layer, x, error, message):
    with pytest.raises(error, match=message):
        layer.forward(x)


@pytest.mark.parametrize("make, message", [
    (lambda: lk.MaxPool2d(2, padding=2), r"MaxPool2d: padding must be at most half the kernel size"),
    (lambda: lk.AvgPool1d(0), r"AvgPool1d: kernel_size: expected an integer >= 1, got 0"),
    (lambda: lk.MaxPool2d(2, stride=(1, 2, 3)), r"MaxPool2d: stride: expected an integer or 2 integers"),
])
def test_bad_arguments_are_refused_clearly(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_configs_rebuild_the_layer_with_torch_defaults():
    layer = lk.MaxPool2d(3)
    assert layer.stride == (3, 3) and layer.get_config() == {"kernel_size": 3, "stride": 3, "padding": 0}
    pool = lk.AvgPool2d((2, 3), stride=1, padding=(1, 0))
    assert repr(lk.AvgPool2d(**pool.get_config())) == repr(pool) == "AvgPool2d([2, 3], stride=1, padding=[1, 0])"
    assert lk.GlobalAvgPool1d().get_config() == {}


def _relu_input(shape, dtype, seed=0):
    """Random numbers with exact zeros, negative zeros, ties inside windows and a NaN."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[::7] = 0.0
    flat[3::11] = -0.0
    flat[5::13] = flat[4::13][: flat[5::13].size]
    flat[min(17, flat.size - 1)] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 2, 8, 6), (2, 3, 7, 5), (1, 1, 2, 2)])
def test_relu_then_max_pool_backward_in_one_pass_equals_the_two_passes_bit_for_bit(dtype, shape):
    from layerkit._backend import core

    relu, pool = lk.ReLU(), lk.MaxPool2d(2)
    x = _relu_input(shape, dtype)
    h = relu.forward(x)
    dy = np.random.default_rng(1).standard_normal(pool.output_shape(h.shape)).astype(dtype)
    expected = relu.backward(x, pool.backward(h, dy))
    got = core.max_pool_relu_backward(pool._geometry(h), h, dy, np.full_like(h, 7.0))
    assert got.tobytes() == expected.tobytes()


def test_max_pool_relu_backward_refuses_another_window():
    from layerkit._backend import core

    h = np.ones((1, 1, 6, 6))
    with pytest.raises(ValueError, match="2x2 pooling with stride 2"):
        core.max_pool_relu_backward(lk.MaxPool2d(3)._geometry(h), h, np.ones((1, 1, 2, 2)), np.empty_like(h))


@pytest.mark.parametrize("pool", [lk.MaxPool2d(2), lk.MaxPool2d(3), lk.MaxPool2d(2, stride=1)])
@pytest.mark.parametrize("use_workspace", [False, True])
@pytest.mark.parametrize("with_linear", [False, True])
def test_a_net_with_relu_then_pooling_trains_as_its_layers_do_bit_for_bit(pool, use_workspace, with_linear,
                                                                          monkeypatch):
    import layerkit._plan as plan

    calls = []
    fused = plan.relu_max_pool_backward

    def counted(*args):
        calls.append(1)
        return fused(*args)

    monkeypatch.setattr(plan, "relu_max_pool_backward", counted)
    layers = [lk.Conv2d(2, 3, 3, padding=1, rng=0), lk.ReLU(), pool, lk.Flatten()]
    x = _relu_input((4, 2, 7, 7), np.float64)
    head = [lk.Linear(int(np.prod(pool.output_shape((4, 3, 7, 7))[1:])), 2, rng=0)] if with_linear else []
    net = lk.Net(layers + head)
    workspace = net.workspace() if use_workspace else None
    y, trace = net.forward(x, workspace=workspace)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx = net.backward(trace, dy, input_grad=True)
    dW = layers[0].dW.copy()
    inputs = [x]
    for layer in layers + head:
        inputs.append(layer.forward(inputs[-1]))
    grad = dy
    for layer, seen in zip(reversed(layers + head), reversed(inputs[:-1])):
        grad = layer.backward(seen, grad)
    assert dx.tobytes() == grad.tobytes() and dW.tobytes() == layers[0].dW.tobytes()
    assert len(calls) == 1  # the net asked for the one-pass gradient (which declines other windows)


@pytest.fixture(params=[True, False], ids=["simd", "portable"])
def simd(request):
    from layerkit._backend import core

    previous = core.simd_kernels(request.param)
    yield request.param
    core.simd_kernels(previous)


@pytest.mark.parametrize("shape", [(2, 3, 6, 40), (1, 2, 5, 33), (3, 1, 4, 4), (1, 1, 2, 70)])
def test_float32_max_pooling_selects_exactly_as_float64_does(shape, simd):
    # the 2x2 windows run in vector lanes in float32 with AVX-512 (16 windows at once, masked at a row's
    # end), in plain loops otherwise: selections only, so float32 and float64 agree exactly, NaN, ties and
    # zeros included
    from layerkit._backend import core

    relu, pool = lk.ReLU(), lk.MaxPool2d(2)
    x64 = _relu_input(shape, np.float64, seed=3)
    x32 = x64.astype(np.float32)
    x64 = x32.astype(np.float64)
    dy32 = np.random.default_rng(4).standard_normal(pool.output_shape(shape)).astype(np.float32)
    dy64 = dy32.astype(np.float64)
    np.testing.assert_array_equal(pool.forward(x32), pool.forward(x64).astype(np.float32))
    np.testing.assert_array_equal(pool.backward(x32, dy32), pool.backward(x64, dy64).astype(np.float32))
    h32, h64 = relu.forward(x32), relu.forward(x64)
    fused32 = core.max_pool_relu_backward(pool._geometry(h32), h32, dy32, np.empty_like(h32))
    fused64 = core.max_pool_relu_backward(pool._geometry(h64), h64, dy64, np.empty_like(h64))
    np.testing.assert_array_equal(fused32, fused64.astype(np.float32))
    assert np.signbit(fused32).tobytes() == np.signbit(fused64).tobytes()

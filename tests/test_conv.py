"""Conv1d and Conv2d against torch.nn, forward and backward, for every option; layouts, errors, gradients."""
from __future__ import annotations

import re

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

torch = pytest.importorskip("torch")

# torch's note that its own "same" padding of an even kernel copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5)}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}

# (in, out, kernel, options, spatial input size)
CASES_2D = [
    (3, 4, 3, {}, (7, 6)),
    (3, 4, (3, 2), {"stride": 2}, (9, 8)),
    (2, 5, 3, {"stride": (2, 1), "padding": 1}, (6, 7)),
    (2, 4, (2, 3), {"padding": (1, 2), "dilation": (2, 1)}, (7, 6)),
    (4, 6, 3, {"groups": 2, "bias": False}, (5, 6)),
    (4, 4, 3, {"groups": 4, "padding": "same"}, (5, 6)),
    (3, 2, 4, {"padding": "same", "dilation": 2}, (9, 8)),
    (3, 2, (2, 4), {"padding": "same"}, (5, 6)),
    (3, 5, 3, {"padding": "valid", "stride": 3}, (10, 8)),
    (6, 4, 1, {}, (4, 5)),
    (6, 4, 1, {"groups": 2, "bias": False}, (4, 5)),
    (1, 6, 5, {"padding": 2}, (28, 28)),
    (1, 2, 7, {"padding": 3}, (1, 2)),  # taps that see only padding
    (2, 2, 3, {"padding": 3, "stride": 2, "dilation": 2}, (1, 3)),
]
CASES_1D = [
    (3, 4, 3, {}, (9,)),
    (2, 4, 4, {"stride": 3, "padding": 2}, (11,)),
    (4, 6, 3, {"groups": 2, "dilation": 2, "bias": False}, (10,)),
    (3, 3, 4, {"padding": "same"}, (8,)),
    (3, 2, 2, {"padding": "valid"}, (5,)),
    (4, 4, 1, {}, (6,)),
    (2, 3, 5, {"padding": 3, "stride": 3}, (1,)),  # taps that see only padding
]


def _pair(cls, torch_cls, c_in, c_out, kernel, options, dtype, seed=0):
    layer = cls(c_in, c_out, kernel, rng=seed, dtype=dtype, **options)
    ref = torch_cls(c_in, c_out, kernel, **options).to(TORCH_DTYPE[dtype])
    rng = np.random.default_rng(seed + 1)
    if layer.bias:
        layer.b[...] = rng.standard_normal(c_out)
        ref.bias.data = torch.tensor(layer.b)
    ref.weight.data = torch.tensor(layer.W)
    return layer, ref


def _compare(layer, ref, x, dtype):
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    y = layer.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    dy = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(dy))
    dx = layer.backward(x, dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(layer.dW, ref.weight.grad.numpy(), **TOL[dtype])
    if layer.bias:
        np.testing.assert_allclose(layer.db, ref.bias.grad.numpy(), **TOL[dtype])
    else:
        assert layer.b is None and "b" not in layer.params()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c_in, c_out, kernel, options, size", CASES_2D)
def test_conv2d_equals_torch_forward_and_backward(c_in, c_out, kernel, options, size, dtype):
    layer, ref = _pair(lk.Conv2d, torch.nn.Conv2d, c_in, c_out, kernel, options, dtype)
    x = np.random.default_rng(3).standard_normal((3, c_in) + size).astype(dtype)
    _compare(layer, ref, x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c_in, c_out, kernel, options, size", CASES_1D)
def test_conv1d_equals_torch_forward_and_backward(c_in, c_out, kernel, options, size, dtype):
    layer, ref = _pair(lk.Conv1d, torch.nn.Conv1d, c_in, c_out, kernel, options, dtype)
    x = np.random.default_rng(3).standard_normal((4, c_in) + size).astype(dtype)
    _compare(layer, ref, x, dtype)


@pytest.mark.parametrize("layout", ["fortran", "strided", "transposed_spatial", "int", "big_endian"])
def test_non_contiguous_and_other_dtypes_give_the_c_ordered_result(layout):
    layer = lk.Conv2d(2, 3, 3, padding=1, stride=(1, 2), rng=0)
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 5))
    if layout == "fortran":
        given = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros((6, 2, 12, 5))
        big[::2, :, ::2] = x
        given = big[::2, :, ::2]
    elif layout == "transposed_spatial":
        given = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    elif layout == "int":
        x = np.round(x * 3)
        given = x.astype(np.int32)
    else:
        given = x.astype(">f8")
    assert not given.flags.c_contiguous or given.dtype != np.float64
    expected = layer.forward(np.ascontiguousarray(x))
    dy = np.random.default_rng(1).standard_normal(expected.shape)
    expected_dx = layer.backward(np.ascontiguousarray(x), dy).copy()
    expected_dW = layer.dW.copy()
    np.testing.assert_array_equal(layer.forward(given), expected)
    np.testing.assert_array_equal(layer.backward(given, np.asfortranarray(dy)), expected_dx)
    np.testing.assert_array_equal(layer.dW, expected_dW)


@pytest.mark.parametrize("cls, kwargs, shape", [
    (lk.Conv2d, {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 2},
     (2, 2, 5, 6)),
    (lk.Conv2d, {"in_channels": 2, "out_channels": 3, "kernel_size": (2, 3), "dilation": (2, 1),
                 "padding": "same", "bias": False}, (2, 2, 5, 5)),
    (lk.Conv1d, {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1}, (3, 2, 7)),
    (lk.Conv1d, {"in_channels": 4, "out_channels": 2, "kernel_size": 2, "groups": 2, "padding": "same",
                 "dilation": 3}, (2, 4, 8)),
])
def test_gradients_match_central_differences(cls, kwargs, shape):
    layer = cls(**kwargs, rng=0)
    x = np.random.default_rng(1).standard_normal(shape)
    assert_grad(layer, x)


def test_the_first_layer_of_a_net_skips_its_input_gradient_and_keeps_its_parameter_gradients():
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8))
    net = lk.Net([lk.Conv2d(1, 3, 3, rng=0), lk.ReLU(), lk.Flatten(), lk.Linear(108, 2, rng=1)])
    y, trace = net.forward(x)
    dy = np.ones_like(y)
    assert net.backward(trace, dy, input_grad=False) is None
    dW = net[0].dW.copy()
    _, trace = net.forward(x)
    dx = net.backward(trace, dy, input_grad=True)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(net[0].dW, dW)


def test_weights_load_from_torch_without_transposes():
    ref = torch.nn.Conv2d(3, 8, (3, 5), stride=2, groups=1).double()
    layer = lk.Conv2d(3, 8, (3, 5), stride=2)
    assert layer.W.shape == tuple(ref.weight.shape) and layer.b.shape == tuple(ref.bias.shape)
    layer.W = ref.weight.detach().numpy()
    layer.b = ref.bias.detach().numpy()
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 11))
    np.testing.assert_allclose(layer.forward(x), ref(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_default_init_is_glorot_uniform_over_the_kernel_fans():
    layer = lk.Conv2d(16, 32, 3, rng=0)
    limit = np.sqrt(6.0 / (16 * 9 + 32 * 9))
    assert np.abs(layer.W).max() <= limit and np.abs(layer.W).max() > 0.95 * limit
    assert layer.W.shape == (32, 16, 3, 3) and not layer.b.any()
    he = lk.Conv2d(16, 32, 3, rng=0, init="he_normal")
    assert abs(he.W.std() - np.sqrt(2.0 / (16 * 9))) < 0.01


def test_a_custom_initialiser_gets_the_fans_and_must_return_their_shape():
    seen = []

    def ones(n_in, n_out, rng, dtype):
        seen.append((n_in, n_out))
        return np.ones((n_in, n_out))

    layer = lk.Conv1d(4, 6, 3, groups=2, init=ones)
    assert seen == [(2 * 3, 6 * 3)] and (layer.W == 1).all() and layer.W.shape == (6, 2, 3)
    with pytest.raises(ValueError, match=r"Conv1d.*returned shape \(2, 2\), expected \(fan_in, fan_out\)"):
        lk.Conv1d(4, 6, 3, init=lambda n_in, n_out, rng, dtype: np.ones((2, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_stays_float32_and_other_inputs_are_converted(dtype):
    layer = lk.Conv2d(1, 2, 2, dtype=dtype, rng=0)
    for x in (np.ones((2, 1, 3, 3), np.float32), np.ones((2, 1, 3, 3), np.float64), np.ones((2, 1, 3, 3), int)):
        y = layer.forward(x)
        assert y.dtype == dtype
        assert layer.backward(x, y).dtype == dtype and layer.dW.dtype == dtype


@pytest.mark.parametrize("make, x, message", [
    (lambda: lk.Conv2d(3, 4, 3), np.ones((2, 3, 5)), r"Conv2d\(3, 4, 3\): x must be 4-D .* got 3-D"),
    (lambda: lk.Conv1d(3, 4, 3), np.ones((2, 3, 5, 5)), r"Conv1d\(3, 4, 3\): x must be 3-D .* got 4-D"),
    (lambda: lk.Conv2d(3, 4, 3), np.ones((2, 2, 5, 5)), r"Conv2d\(3, 4, 3\): x must have 3 channels .* \(2, 2, 5, 5\)"),
    (lambda: lk.Conv2d(3, 4, 5), np.ones((2, 3, 4, 9)),
     r"Conv2d\(3, 4, 5\): the kernel .* is larger than the padded input \(4 \+ padding 0 = 4\)"),
    (lambda: lk.Conv2d(3, 4, 3, dilation=3, padding=1), np.ones((2, 3, 4, 9)),
     r"kernel \(size 3, dilation 3, spanning 7\) is larger than the padded input \(4 \+ padding 2 = 6\)"),
    (lambda: lk.Conv1d(3, 4, 3), np.ones((0, 3, 5)), r"Conv1d\(3, 4, 3\): x is an empty batch"),
])
def test_bad_inputs_are_refused_with_a_value_error_naming_the_layer(make, x, message):
    layer = make()
    with pytest.raises(ValueError, match=message):
        layer.forward(x)
    with pytest.raises(ValueError, match=message):
        layer.backward(x, np.ones((2, 4, 3, 3)))


def test_non_numeric_input_is_a_type_error_naming_the_layer():
    with pytest.raises(TypeError, match=r"Conv2d\(1, 2, 2\): x must hold real numbers .* complex128"):
        lk.Conv2d(1, 2, 2).forward(np.ones((1, 1, 3, 3), complex))
    with pytest.raises(ValueError, match=r"Conv2d\(1, 2, 2\): dy must have the shape of the layer's output \(1, 2, 2, 2\)"):
        lk.Conv2d(1, 2, 2).backward(np.ones((1, 1, 3, 3)), np.ones((1, 2, 3, 3)))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"kernel_size": 0}, ValueError, r"Conv2d: kernel_size: expected an integer >= 1, got 0"),
    ({"kernel_size": (3, 3, 3)}, ValueError, r"Conv2d: kernel_size: expected an integer or 2 integers"),
    ({"kernel_size": 3, "stride": 2, "padding": "same"}, ValueError, r"padding='same' needs stride 1"),
    ({"kernel_size": 3, "padding": "full"}, ValueError, r"Conv2d: padding: expected .* 'same' or 'valid', got 'full'"),
    ({"kernel_size": 3, "padding": -1}, ValueError, r"Conv2d: padding: expected an integer >= 0, got -1"),
    ({"kernel_size": 3, "groups": 3}, ValueError, r"in_channels \(4\) and out_channels \(6\) must both be divisible by groups \(3\)"),
    ({"kernel_size": 3, "bias": "yes"}, TypeError, r"Conv2d: bias must be True or False"),
    ({"kernel_size": 3, "dtype": np.int64}, TypeError, r"Conv2d: dtype: expected float32 or float64"),
    ({"kernel_size": 2.5}, TypeError, r"Conv2d: kernel_size: expected an integer, got float"),
])
def test_bad_arguments_are_refused_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        lk.Conv2d(4, 6, **kwargs)


def test_config_round_trip_rebuilds_the_same_architecture():
    layer = lk.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=[1, 0], dilation=2, groups=2, bias=False,
                      init="he_uniform", dtype="float32")
    config = layer.get_config()
    assert config == {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 2], "stride": [2, 1],
                      "padding": [1, 0], "dilation": 2, "groups": 2, "bias": False, "init": "he_uniform",
                      "dtype": "float32"}
    rebuilt = lk.Conv2d(**config)
    assert repr(rebuilt) == repr(layer)
    assert rebuilt.output_shape((1, 4, 9, 9)) == layer.output_shape((1, 4, 9, 9)) == (1, 6, 4, 7)
    assert repr(layer) == ("Conv2d(4, 6, [3, 2], stride=[2, 1], padding=[1, 0], dilation=2, groups=2, bias=False, "
                           "init='he_uniform', dtype='float32')")


def test_parameters_set_from_lists_are_converted_and_checked():
    layer = lk.Conv1d(1, 1, 2, rng=0)
    layer.W = [[[1.0, 2.0]]]
    np.testing.assert_array_equal(layer.forward(np.array([[[1.0, 1.0, 1.0]]])), [[[3.0, 3.0]]])
    layer.W = np.ones((1, 1, 3))
    with pytest.raises(ValueError, match=re.escape("Conv1d(1, 1, 2): parameter W must have shape (1, 1, 2)")):
        layer.forward(np.ones((1, 1, 3)))


@pytest.mark.parametrize("chunk_elements", [1, 500, 10**8])
def test_every_chunking_of_the_batch_gives_the_same_gradients(chunk_elements):
    from layerkit._backend import core

    layer = lk.Conv2d(4, 6, 3, padding=1, stride=(1, 2), groups=2, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 4, 7, 8))
    dy = np.random.default_rng(1).standard_normal(layer.output_shape(x.shape))
    y_ref, dx_ref = layer.forward(x), layer.backward(x, dy)
    dW_ref, db_ref = layer.dW.copy(), layer.db.copy()
    previous = core.conv_chunk_elements(chunk_elements)
    try:
        np.testing.assert_allclose(layer.forward(x), y_ref, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(layer.backward(x, dy), dx_ref, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(layer.dW, dW_ref, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(layer.db, db_ref, rtol=1e-13, atol=1e-13)
    finally:
        core.conv_chunk_elements(previous)


# geometries that reach every direct kernel: output channels a multiple of the float32 (16) or float64 (8)
# lanes, fewer than the lanes, or more but not a multiple; input channels that fill the lanes (the input
# gradient as a convolution of dy), padding beyond the kernel (it cannot), even kernels with "same" padding
DIRECT_CASES_2D = [
    (1, 6, 5, {"padding": 2}, (12, 11)),
    (6, 16, 5, {}, (9, 10)),
    (16, 16, 3, {"padding": 1, "bias": False}, (7, 6)),
    (16, 32, 3, {"padding": (0, 2)}, (5, 6)),
    (8, 8, 3, {"padding": 1}, (4, 5)),
    (3, 20, 3, {"padding": "same"}, (6, 5)),
    (16, 3, (2, 4), {"padding": "same"}, (5, 7)),
    (16, 16, 3, {"padding": 3}, (4, 4)),
    (32, 16, 1, {}, (3, 3)),
    (2, 16, 3, {"padding": 2}, (1, 1)),
]


@pytest.fixture(params=["im2col", "direct", "direct-portable", "winograd"])
def conv_algorithm(request):
    """Every product by im2col and gemm, then by the direct kernels (AVX-512 where the CPU has it), then by
    the direct kernels' portable C, then with Winograd's kernels wherever they run (3x3, float32, AVX-512)."""
    from layerkit._backend import core

    algorithm = request.param.split("-")[0]
    previous, simd = core.conv_algorithm(algorithm), core.simd_kernels(request.param != "direct-portable")
    yield request.param
    core.conv_algorithm(previous)
    core.simd_kernels(simd)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c_in, c_out, kernel, options, size", DIRECT_CASES_2D + CASES_2D[:4])
def test_direct_and_im2col_convolutions_both_equal_torch(conv_algorithm, c_in, c_out, kernel, options, size,
                                                          dtype):
    layer, ref = _pair(lk.Conv2d, torch.nn.Conv2d, c_in, c_out, kernel, options, dtype)
    x = np.random.default_rng(3).standard_normal((3, c_in) + size).astype(dtype)
    _compare(layer, ref, x, dtype)


@pytest.mark.parametrize("c_in, c_out, kernel, options, size", [(1, 6, 5, {"padding": 2}, (20,)),
                                                                (16, 16, 3, {"padding": 1}, (9,))])
def test_direct_conv1d_equals_torch(conv_algorithm, c_in, c_out, kernel, options, size):
    layer, ref = _pair(lk.Conv1d, torch.nn.Conv1d, c_in, c_out, kernel, options, np.float64)
    _compare(layer, ref, np.random.default_rng(3).standard_normal((4, c_in) + size), np.float64)


def test_direct_convolution_of_one_sample_equals_torch(conv_algorithm):
    layer, ref = _pair(lk.Conv2d, torch.nn.Conv2d, 16, 16, 3, {"padding": 1}, np.float32)
    _compare(layer, ref, np.random.default_rng(3).standard_normal((1, 16, 6, 6)).astype(np.float32), np.float32)


def test_conv_algorithm_names_the_choices_and_keeps_the_setting_on_a_bad_one():
    from layerkit._backend import core

    previous = core.conv_algorithm()
    assert previous in ("auto", "im2col", "direct", "winograd")
    with pytest.raises(ValueError, match=r"conv_algorithm expects one of \('auto', 'im2col', 'direct', 'winograd'\), "
                                         r"got 'fast'"):
        core.conv_algorithm("fast")
    assert core.conv_algorithm() == previous


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_auto_runs_the_direct_kernels_on_avx512_while_the_blas_runs_at_most_two_threads(threads):
    from threadpoolctl import threadpool_limits

    from layerkit._backend import core

    layer = lk.Conv2d(16, 16, 3, padding=1, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 16, 9, 9)).astype(np.float32)
    previous = core.conv_algorithm()
    try:
        outputs = {}
        for algorithm in ("direct", "im2col"):
            core.conv_algorithm(algorithm)
            outputs[algorithm] = layer.forward(x).copy()
        assert not np.array_equal(outputs["direct"], outputs["im2col"])  # (they add in other orders)
        core.conv_algorithm("auto")
        with threadpool_limits(threads):
            running = core.small_batch_blas_threads()
            auto = layer.forward(x)
    finally:
        core.conv_algorithm(previous)
    direct = core.simd_available() and (running is None or running <= 2)
    np.testing.assert_array_equal(auto, outputs["direct" if direct else "im2col"])


@pytest.mark.parametrize("algorithm", ["auto", "im2col", "direct", "winograd"])
@pytest.mark.parametrize("channels, size", [(512, 14), (256, 28), (128, 56)])
def test_scratch_counts_only_the_kernels_a_layer_can_run(algorithm, channels, size):
    """Wide layers take the channel kernels: the spatial kernels' sums (a vector per output channel and tap,
    150 MB at 512 channels) and Winograd's sums over channel pairs past their bound are not allocated."""
    from layerkit._backend import core

    previous = core.conv_algorithm(algorithm)
    try:
        geometry = (1, channels, size, size, channels, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)
        elements = core.conv_col_size(geometry)
        weights = channels * channels * 9
        assert elements <= 2 * weights + 16 * channels * channels + 4 * channels * size * size * 9, elements
        layer = lk.Conv2d(channels, channels, 3, padding=1, rng=0, dtype=np.float32)
        x = np.random.default_rng(0).standard_normal((1, channels, size, size)).astype(np.float32)
        y = layer.forward(x)
        dx = layer.backward(x, np.ones_like(y))
        assert np.isfinite(dx).all() and np.isfinite(layer.dW).all()
    finally:
        core.conv_algorithm(previous)

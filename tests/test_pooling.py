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

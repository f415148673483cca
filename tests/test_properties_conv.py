"""Property tests of the conv and pooling layers: any geometry equals torch.nn, forward and backward, in float64.

Derandomized, like tests/test_properties.py; ``LAYERKIT_PROPERTY_EXAMPLES=N`` draws more examples.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import layerkit as lk
from _property_examples import examples

torch = pytest.importorskip("torch")

# torch's note that its own "same" padding of an even kernel copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

SETTINGS = dict(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
TOL = dict(rtol=1e-11, atol=1e-12)


@st.composite
def conv_cases(draw):
    n_axes = draw(st.sampled_from([1, 2]))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(n_axes))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(n_axes))
    if draw(st.booleans()):
        stride, padding = (1,) * n_axes, draw(st.sampled_from(["same", "valid"]))
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(n_axes))
        padding = tuple(draw(st.integers(0, 3)) for _ in range(n_axes))
    size = tuple(draw(st.integers(1, 9)) for _ in range(n_axes))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))
    return n_axes, c_in, c_out, kernel, options, draw(st.integers(1, 3)), size, draw(st.integers(0, 2**16))


@settings(max_examples=examples(60), **SETTINGS)
@given(conv_cases())
def test_any_convolution_equals_torch_or_is_refused_naming_the_layer(case):
    n_axes, c_in, c_out, kernel, options, n, size, seed = case
    cls, torch_cls = (lk.Conv1d, torch.nn.Conv1d) if n_axes == 1 else (lk.Conv2d, torch.nn.Conv2d)
    layer = cls(c_in, c_out, kernel, rng=seed, **options)
    ref = torch_cls(c_in, c_out, kernel, **options).double()
    ref.weight.data = torch.tensor(layer.W)
    if layer.bias:
        layer.b[...] = np.random.default_rng(seed).standard_normal(c_out)
        ref.bias.data = torch.tensor(layer.b)
    x = np.random.default_rng(seed + 1).standard_normal((n, c_in) + size)
    spans = [d * (k - 1) + 1 for d, k in zip(options["dilation"], kernel)]
    pads = [0] * n_axes if options["padding"] == "valid" else (
        [s - 1 for s in spans] if options["padding"] == "same" else [2 * p for p in options["padding"]])
    if any(s + p < span for s, p, span in zip(size, pads, spans)):
        with pytest.raises(ValueError, match=rf"{cls.__name__}\(.*the kernel .* is larger than the padded input"):
            layer.forward(x)
        return
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    y = layer.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    dy = np.random.default_rng(seed + 2).standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(x, dy), xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(layer.dW, ref.weight.grad.numpy(), **TOL)
    if layer.bias:
        np.testing.assert_allclose(layer.db, ref.bias.grad.numpy(), **TOL)


@settings(max_examples=examples(60), **SETTINGS)
@given(st.sampled_from(["max", "avg"]), st.sampled_from([1, 2]), st.data())
def test_any_pooling_equals_torch(kind, n_axes, data):
    kernel = tuple(data.draw(st.integers(1, 4)) for _ in range(n_axes))
    stride = tuple(data.draw(st.integers(1, 4)) for _ in range(n_axes))
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(data.draw(st.integers(1, 9)) for _ in range(n_axes))
    assume(all(s + 2 * p >= k for s, p, k in zip(size, padding, kernel)))
    name = f"{'Max' if kind == 'max' else 'Avg'}Pool{n_axes}d"
    layer = getattr(lk, name)(kernel, stride=stride, padding=padding)
    ref = getattr(torch.nn, name)(kernel, stride=stride, padding=padding)
    seed = data.draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).standard_normal((2, 3) + size)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), **TOL)
    dy = np.random.default_rng(seed + 1).standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(x, dy), xt.grad.numpy(), **TOL)


@st.composite
def direct_cases(draw):
    """Stride 1, dilation 1, one group (what the direct kernels take), with channel counts that fill the
    vector lanes (8 in float64, 16 in float32), fall short of them or overrun them, and any padding."""
    channels = st.sampled_from([1, 2, 3, 5, 8, 12, 16, 20, 32])
    c_in, c_out = draw(channels), draw(channels)
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(2))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]),
                             st.tuples(st.integers(0, 4), st.integers(0, 4))))
    size = tuple(draw(st.integers(1, 12)) for _ in range(2))
    assume(padding == "same" or all(s + 2 * p >= k for s, p, k in zip(size, (0, 0) if padding == "valid"
                                                                          else padding, kernel)))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return c_in, c_out, kernel, padding, size, draw(st.integers(1, 3)), dtype, draw(st.booleans()), \
        draw(st.integers(0, 2**16))


@pytest.mark.parametrize("algorithm", ["direct", "direct-portable"])
@settings(max_examples=examples(40), **SETTINGS)
@given(direct_cases())
def test_the_direct_kernels_equal_torch_for_any_channels_and_padding(algorithm, case):
    from layerkit._backend import core

    c_in, c_out, kernel, padding, size, n, dtype, bias, seed = case
    layer = lk.Conv2d(c_in, c_out, kernel, padding=padding, bias=bias, rng=seed, dtype=dtype)
    ref = torch.nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=bias).double()
    ref.weight.data = torch.tensor(layer.W, dtype=torch.float64)
    if bias:
        layer.b[...] = np.random.default_rng(seed).standard_normal(c_out)
        ref.bias.data = torch.tensor(layer.b, dtype=torch.float64)
    x = np.random.default_rng(seed + 1).standard_normal((n, c_in) + size).astype(dtype)
    tol = TOL if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    previous, simd = core.conv_algorithm("direct"), core.simd_kernels(algorithm == "direct")
    try:
        y = layer.forward(x)
        dy = np.random.default_rng(seed + 2).standard_normal(y.shape).astype(dtype)
        dx = layer.backward(x, dy)
    finally:
        core.conv_algorithm(previous)
        core.simd_kernels(simd)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(dy.astype(np.float64)))
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.dW, ref.weight.grad.numpy(), **tol)
    if bias:
        np.testing.assert_allclose(layer.db, ref.bias.grad.numpy(), **tol)


@st.composite
def winograd_cases(draw):
    """3x3 float32 layers with 16k output channels (what Winograd's kernels take), any input channels,
    widths across one to three blocks of 16 tiles, any padding (beyond 2 the input gradient is direct)."""
    c_in = draw(st.sampled_from([1, 3, 8, 16, 20, 32]))
    c_out = draw(st.sampled_from([16, 32]))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.tuples(st.integers(0, 3), st.integers(0, 3))))
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 70)))
    assume(padding == "same" or all(s + 2 * p >= 3 for s, p in zip(size, (0, 0) if padding == "valid" else padding)))
    return c_in, c_out, padding, size, draw(st.integers(1, 3)), draw(st.booleans()), draw(st.integers(0, 2**16))


@pytest.mark.skipif(not lk._core.simd_available(), reason="the Winograd kernels run on AVX-512 only")
@settings(max_examples=examples(40), **SETTINGS)
@given(winograd_cases())
def test_winograd_equals_torch_for_any_size_and_padding(case):
    from layerkit._backend import core

    c_in, c_out, padding, size, n, bias, seed = case
    layer = lk.Conv2d(c_in, c_out, 3, padding=padding, bias=bias, rng=seed, dtype=np.float32)
    ref = torch.nn.Conv2d(c_in, c_out, 3, padding=padding, bias=bias).double()
    ref.weight.data = torch.tensor(layer.W, dtype=torch.float64)
    if bias:
        layer.b[...] = np.random.default_rng(seed).standard_normal(c_out)
        ref.bias.data = torch.tensor(layer.b, dtype=torch.float64)
    x = np.random.default_rng(seed + 1).standard_normal((n, c_in) + size).astype(np.float32)
    previous = core.conv_algorithm("winograd")
    try:
        y = layer.forward(x)
        dy = np.random.default_rng(seed + 2).standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(x, dy)
    finally:
        core.conv_algorithm(previous)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(dy.astype(np.float64)))
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.dW, ref.weight.grad.numpy(), **tol)

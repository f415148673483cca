"""Winograd's F(2x2, 3x3) and F(3x3, 2x2) for 3x3 float32 convolutions (layerkit/_kernels/conv_winograd.h):
equal to torch to float32 rounding."""
import numpy as np
import pytest

import layerkit as lk
from layerkit._backend import core

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not core.simd_available(), reason="the Winograd kernels run on AVX-512 only")


@pytest.fixture
def algorithm():
    """Run a test under a ``conv_algorithm`` setting it picks, restoring the previous one."""
    previous = core.conv_algorithm()
    yield core.conv_algorithm
    core.conv_algorithm(previous)


def _passes(layer, x, dy):
    y = layer.forward(x).copy()
    dx = layer.backward(x, dy)
    return y, dx.copy(), layer.dW.copy()


def _both(layer, x, dy, algorithm):
    """``_passes`` by Winograd's kernels, then by the direct ones."""
    algorithm("winograd")
    winograd = _passes(layer, x, dy)
    algorithm("direct")
    return winograd, _passes(layer, x, dy)


def _torch_passes(layer, x, dy):
    """torch in float64 on the same float32 numbers: the exact result to compare float32 kernels with."""
    conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=layer.padding, bias=layer.bias,
                           dtype=torch.float64)
    conv.weight.data = torch.tensor(layer.W, dtype=torch.float64)
    if layer.bias:
        conv.bias.data = torch.tensor(layer.b, dtype=torch.float64)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = conv(xt)
    yt.backward(torch.tensor(dy, dtype=torch.float64))
    return yt.detach().numpy(), xt.grad.numpy(), conv.weight.grad.numpy()


# (in, out, padding, bias, (height, width)): tile rows of 1 to 3 blocks of 16 tiles with partial blocks,
# odd output sizes (a last tile half outside), padding 0 to 2 (the input gradient pads dy by 2 to 0),
# a 1x1 output, more channels than the lanes
CASES = [
    (16, 16, 1, True, (28, 28)),
    (16, 16, 1, False, (7, 9)),
    (16, 32, 0, True, (5, 35)),
    (32, 16, 2, True, (3, 3)),
    (16, 16, 0, True, (3, 3)),
    (48, 16, 1, True, (6, 65)),
    (16, 48, (1, 2), False, (9, 33)),
    (8, 16, 1, True, (11, 31)),
    (12, 16, 1, True, (4, 4)),
    (16, 16, 1, True, (14, 14)),  # two rows of 7 tiles per block
    (16, 32, 1, False, (7, 16)),  # two rows of 8 tiles, an odd number of tile rows
    (32, 16, 0, True, (9, 11)),
    (16, 16, 1, True, (7, 7)),  # four rows of 4 tiles per block
    (16, 32, 1, False, (8, 8)),
    (32, 16, 1, True, (11, 5)),  # four rows of 3 tiles, the last block with three rows of tiles
    (16, 16, 0, True, (4, 4)),  # one tile row of one tile
]


@pytest.mark.parametrize("c_in, c_out, padding, bias, size", CASES)
def test_winograd_passes_equal_torch_to_float32_rounding(c_in, c_out, padding, bias, size, algorithm):
    layer = lk.Conv2d(c_in, c_out, 3, padding=padding, bias=bias, rng=0, dtype=np.float32)
    if bias:
        layer.b[...] = np.random.default_rng(1).standard_normal(c_out)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, c_in) + size).astype(np.float32)
    dy = rng.standard_normal(layer.output_shape(x.shape)).astype(np.float32)
    (y, dx, dW), (y_direct, dx_direct, dW_direct) = _both(layer, x, dy, algorithm)
    y_ref, dx_ref, dW_ref = _torch_passes(layer, x, dy)
    terms = {"y": c_in * 9, "dx": c_out * 9, "dW": x.shape[0] * y.shape[2] * y.shape[3]}
    ran = {"y": True, "dx": c_in % 16 == 0, "dW": c_in % 4 == 0}  # (padding at most 2 here)
    for name, got, direct, ref in (("y", y, y_direct, y_ref), ("dx", dx, dx_direct, dx_ref),
                                   ("dW", dW, dW_direct, dW_ref)):
        scale = np.abs(ref).max()
        # Winograd's error is of the direct kernel's order (a float32 rounding of sums of that many terms)
        assert np.abs(got - ref).max() <= 4e-7 * scale * np.sqrt(terms[name]), name
        assert np.abs(got - ref).max() <= 4 * np.abs(direct - ref).max() + 1e-30, name
        if ran[name]:  # (the Winograd kernels ran: other sums, other roundings)
            assert not np.array_equal(got, direct), name
        else:
            np.testing.assert_array_equal(got, direct)


def test_winograd_runs_where_asked_and_differs_from_the_direct_kernels(algorithm):
    """The kernels really run (their sums are in another order than the direct kernels')."""
    layer = lk.Conv2d(16, 16, 3, padding=1, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, 16, 6, 10)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((2, 16, 6, 10)).astype(np.float32)
    (y, dx, _), (y_direct, dx_direct, _) = _both(layer, x, dy, algorithm)
    assert not np.array_equal(y, y_direct) and not np.array_equal(dx, dx_direct)
    np.testing.assert_allclose(y, y_direct, rtol=1e-5, atol=1e-5)


def test_the_weight_gradient_needs_input_channels_in_fours(algorithm):
    """6 input channels: the forward pass by Winograd, the weight gradient by the direct kernel."""
    layer = lk.Conv2d(6, 16, 3, padding=1, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 7)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((2, 16, 5, 7)).astype(np.float32)
    (y, _, dW), (y_direct, _, dW_direct) = _both(layer, x, dy, algorithm)
    assert not np.array_equal(y, y_direct)
    np.testing.assert_array_equal(dW, dW_direct)


@pytest.mark.parametrize("c_in, c_out, dtype, padding, kernel", [
    (16, 8, np.float32, 1, 3),  # output channels not a multiple of 16
    (16, 16, np.float64, 1, 3),  # float64 keeps the exact-order kernels
    (16, 16, np.float32, 2, 5),  # not 3x3
])
def test_other_layers_keep_the_direct_kernels_under_winograd(c_in, c_out, dtype, padding, kernel, algorithm):
    layer = lk.Conv2d(c_in, c_out, kernel, padding=padding, rng=0, dtype=dtype)
    x = np.random.default_rng(0).standard_normal((2, c_in, 8, 8)).astype(dtype)
    algorithm("winograd")
    y = layer.forward(x).copy()
    algorithm("direct")
    np.testing.assert_array_equal(y, layer.forward(x))


def test_the_input_gradient_with_more_padding_than_the_kernel_keeps_the_direct_path(algorithm):
    """Padding 3 (more than 2): dx is no convolution of dy; only the forward pass runs by Winograd."""
    layer = lk.Conv2d(16, 16, 3, padding=3, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, 16, 5, 5)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal(layer.output_shape(x.shape)).astype(np.float32)
    (y, dx, _), (y_direct, dx_direct, _) = _both(layer, x, dy, algorithm)
    assert not np.array_equal(y, y_direct)
    np.testing.assert_array_equal(dx, dx_direct)
    y_ref, dx_ref, _ = _torch_passes(layer, x, dy)
    np.testing.assert_allclose(y, y_ref, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("width, winograd", [(28, True), (32, True), (24, True), (14, True), (16, True), (7, True),
                                             (8, True), (5, True), (20, False), (9, False), (3, False)])
def test_auto_takes_winograd_where_the_tiles_fill_the_lanes(width, winograd, algorithm):
    """Rows of tiles filling at least 70% of a block's lanes (16 tiles of a row, or 8 tiles of two rows, or 4
    of four, for narrow outputs): measured faster than the direct kernels; 8+ channels in."""
    from threadpoolctl import threadpool_limits

    layer = lk.Conv2d(16, 16, 3, padding=1, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, 16, 4, width)).astype(np.float32)
    outputs = {}
    for name in ("winograd", "direct"):
        algorithm(name)
        outputs[name] = layer.forward(x).copy()
    algorithm("auto")
    with threadpool_limits(1):
        auto = layer.forward(x)
    np.testing.assert_array_equal(auto, outputs["winograd" if winograd else "direct"])


def test_a_resnet_block_trains_alike_with_winograd(algorithm):
    """A basic block of 16 channels: a few SGD steps by Winograd stay within float32 rounding of direct."""
    def run(name):
        algorithm(name)
        rng = np.random.default_rng(0)
        net = lk.Net([lk.Conv2d(3, 16, 3, padding=1, rng=rng, dtype=np.float32), lk.ReLU(),
                      lk.Residual([lk.Conv2d(16, 16, 3, padding=1, bias=False, rng=rng, dtype=np.float32),
                                   lk.BatchNorm2d(16, dtype=np.float32), lk.ReLU(),
                                   lk.Conv2d(16, 16, 3, padding=1, bias=False, rng=rng, dtype=np.float32),
                                   lk.BatchNorm2d(16, dtype=np.float32)]),
                      lk.ReLU(), lk.GlobalAvgPool2d(), lk.Linear(16, 4, rng=rng, dtype=np.float32)])
        x = np.random.default_rng(1).standard_normal((8, 3, 12, 12)).astype(np.float32)
        t = np.random.default_rng(2).integers(0, 4, 8)
        for _ in range(3):
            y, trace = net.forward(x)
            net.backward(trace, lk.softmax_cross_entropy(y, t)[1])
            net.step(0.1)
        return [p.copy() for layer in net.walk() for p in getattr(layer[1], "params", lambda: {})().values()]
    for a, b in zip(run("winograd"), run("direct")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("c_in, winograd", [(16, True), (32, True), (8, False), (12, False)])
def test_auto_takes_winograd_for_the_weight_gradient_from_16_input_channels(c_in, winograd, algorithm):
    from threadpoolctl import threadpool_limits

    layer = lk.Conv2d(c_in, 16, 3, padding=1, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, c_in, 6, 28)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((2, 16, 6, 28)).astype(np.float32)
    by_winograd, by_direct = _both(layer, x, dy, algorithm)
    grads = {"winograd": by_winograd[2], "direct": by_direct[2]}
    assert not np.array_equal(grads["winograd"], grads["direct"])
    algorithm("auto")
    with threadpool_limits(1):
        auto = _passes(layer, x, dy)[2]
    np.testing.assert_array_equal(auto, grads["winograd" if winograd else "direct"])

"""Dropout against torch.nn.Dropout: inverted scaling, the mask per pass, modes, gradient checks, configs."""
import copy
import pickle

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")


class MaskSource:
    """Stands in for the layer's Generator: uniform numbers that keep exactly ``keep``'s elements."""

    def __init__(self, keep):
        self.keep = keep

    def random(self, shape):
        assert shape == self.keep.shape
        return np.where(self.keep, 0.9999, 0.0)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_same_mask_gives_torchs_output_and_gradient(rng, dtype, rtol, p):
    x = (rng.normal(size=(20, 7)) + 0.01).astype(dtype)
    dy = rng.normal(size=(20, 7)).astype(dtype)
    torch.manual_seed(0)
    module = torch.nn.Dropout(p)
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)
    yt.backward(torch.tensor(dy))
    keep = yt.detach().numpy() != 0
    assert 0 < keep.mean() < 1
    layer = lk.Dropout(p)
    layer.rng = MaskSource(keep)
    y, mask = layer.forward_pass(x, True)
    dx = layer.backward_pass(x, mask, dy)
    assert y.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=0)


def test_inference_mode_is_the_identity_like_torch_eval(rng):
    x = rng.normal(size=(4, 3))
    layer = lk.Dropout(0.5, rng=0)
    layer.training = False
    y = layer.forward(x)
    assert np.array_equal(y, torch.nn.Dropout(0.5).eval()(torch.from_numpy(x)).numpy())
    assert np.array_equal(layer.backward(x, 2 * x), 2 * x)
    y, ctx = lk.Dropout(0.5).forward_pass(x, False)
    assert y is x and ctx is None


def test_masks_are_drawn_from_the_rng_with_the_right_rate_and_scale(rng):
    layer = lk.Dropout(0.3, rng=1)
    x = np.ones((400, 250))
    y, mask = layer.forward_pass(x, True)
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    again, _ = lk.Dropout(0.3, rng=1).forward_pass(x, True)
    assert np.array_equal(again, y)  # a seed gives the same masks
    other, _ = layer.forward_pass(x, True)
    assert not np.array_equal(other, y)  # each pass draws its own


def test_p_zero_and_one():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    assert np.array_equal(lk.Dropout(0.0, rng=0).forward(x), x)
    y, mask = lk.Dropout(1.0, rng=0).forward_pass(x, True)
    assert np.array_equal(y, np.zeros_like(x)) and np.isfinite(mask).all()


def test_interleaved_passes_keep_their_own_masks(rng):
    net = lk.Net([lk.Linear(4, 6, rng=0), lk.Dropout(0.5, rng=3), lk.Linear(6, 2, rng=1)])
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    da, db = rng.normal(size=(5, 2)), rng.normal(size=(3, 2))
    sequential = []
    for x, dy in ((a, da), (b, db)):
        _, trace = net.forward(x)
        sequential.append((net.backward(trace, dy, input_grad=True), net[0].dW.copy()))
    for order in ((1, 0), (0, 1)):  # both passes forward first, then the backward passes in either order
        net[1].rng = np.random.default_rng(3)  # the same masks again
        traces = [net.forward(a)[1], net.forward(b)[1]]
        for i in order:
            assert np.array_equal(net.backward(traces[i], (da, db)[i], input_grad=True), sequential[i][0])
            assert np.array_equal(net[0].dW, sequential[i][1])
    trace_a = traces[0]
    assert isinstance(trace_a[1].ctx, np.ndarray) and trace_a[1].ctx.shape == (5, 6)


def test_backward_without_the_mask_in_training_mode_says_what_to_do():
    layer = lk.Dropout(0.5, rng=0)
    with pytest.raises(RuntimeError, match=r"Dropout\(p=0.5\).backward\(x, dy\) in training mode needs the mask its "
                                           r"forward pass drew, and x is not the array of the layer's last forward\(x\): "
                                           r"call forward\(x\) .* call backward_pass\(x, ctx, dy\)"):
        layer.backward(np.ones((2, 2)), np.ones((2, 2)))
    x = np.ones((2, 2))
    layer.forward(x)
    with pytest.raises(RuntimeError, match=r"x is not the array of the layer's last forward"):
        layer.backward(x.copy(), np.ones((2, 2)))  # equal values, another array: its mask is unknown
    with pytest.raises(ValueError, match=r"Dropout\(p=0.5\): ctx must be the mask of shape \(2, 2\)"):
        layer.backward_pass(np.ones((2, 2)), np.ones(3), np.ones((2, 2)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_stand_alone_forward_backward_pair_uses_the_mask_of_its_forward(rng, dtype):
    """Issue 21: the course API ``y = layer.forward(x); layer.backward(x, dy)`` raised RuntimeError in training mode."""
    layer = lk.Dropout(0.4, rng=7)
    x = rng.normal(size=(6, 5)).astype(dtype)
    dy = rng.normal(size=(6, 5)).astype(dtype)
    y = layer.forward(x)
    mask = lk.Dropout(0.4, rng=7).forward_pass(x, True)[1]  # the same generator draws the same mask
    assert np.array_equal(y, x * mask)
    dx = layer.backward(x, dy)
    assert dx.dtype == dtype and np.array_equal(dx, dy * mask)
    assert np.array_equal(layer.backward(x, dy), dx)  # as often as asked, until the next forward
    rows = [[1.0, 2.0, 3.0]]  # a list works too: the same object
    y_rows = layer.forward(rows)
    assert np.array_equal(layer.backward(rows, np.ones((1, 3))), y_rows / np.array(rows))
    # the layer keeps no reference to the caller's array, and copies or pickles carry no mask
    x2 = rng.normal(size=(3, 5))
    layer.forward(x2)
    assert copy.deepcopy(layer).__dict__.get("_standalone") is None
    assert pickle.loads(pickle.dumps(layer)).__dict__.get("_standalone") is None
    del x2
    with pytest.raises(RuntimeError, match="needs the mask"):
        layer.backward(np.ones((3, 5)), np.ones((3, 5)))


def test_the_stand_alone_mask_never_reaches_a_net():
    layer = lk.Dropout(0.5, rng=1)
    net = lk.Net([lk.Linear(3, 4, rng=0), layer, lk.Linear(4, 1, rng=2)])
    x = np.ones((5, 3))
    y, trace = net.forward(x)
    h = trace[1].x
    layer.forward(h)  # a stand-alone pass on the very array in the trace: another mask
    net.backward(trace, np.ones((5, 1)))
    expected = (np.ones((5, 1)) @ net[2].W.T) * trace[1].ctx  # the trace's mask, not the stand-alone one
    assert np.array_equal(net[0].db, expected.sum(axis=0))


def test_gradient_check_rewinds_the_generator(rng):
    layer = lk.Dropout(0.4, rng=5)
    state = layer.rng.bit_generator.state
    report = assert_grad(layer, rng.normal(size=(6, 5)), rtol=1e-6, atol=1e-8, max_coords=None)
    assert report["x"].n_checked == 30
    assert layer.rng.bit_generator.state == state  # rewound at the end too
    net = lk.Net([lk.Linear(3, 8, rng=0), lk.Dropout(0.5, rng=1), lk.Sigmoid(), lk.Linear(8, 2, rng=2)])
    assert_grad(net, rng.normal(size=(5, 3)), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True, float("nan")])
def test_bad_p(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got"):
        lk.Dropout(p)


def test_bad_rng_and_input():
    with pytest.raises(TypeError, match=r"Dropout: rng: expected None, an int seed or a numpy.random.Generator"):
        lk.Dropout(0.5, rng="seed")
    with pytest.raises(ValueError, match=r"Dropout\(p=0.5\): x must be 2-D"):
        lk.Dropout(0.5).forward(np.ones(3))


def test_float32_stays_float32_and_config_round_trips(tmp_path, rng):
    y, mask = lk.Dropout(0.5, rng=0).forward_pass(np.ones((3, 4), dtype=np.float32), True)
    assert y.dtype == np.float32 and mask.dtype == np.float32
    layer = lk.Dropout(0.25, rng=0)
    assert repr(layer) == "Dropout(p=0.25)" and layer.get_config() == {"p": 0.25}
    assert lk.registry.get("dropout") is lk.Dropout
    net = lk.Net.from_config([{"type": "linear", "n_in": 3, "n_out": 4}, {"type": "dropout", "p": 0.25},
                              {"type": "linear", "n_in": 4, "n_out": 1}], seed=0)
    assert isinstance(net[1].rng, np.random.Generator)
    net.save(tmp_path / "d.npz")
    loaded = lk.Net.load(tmp_path / "d.npz")
    x = rng.normal(size=(5, 3))
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()
    assert loaded.config() == net.config() == lk.Net.from_config(net.config()).config()
    assert pickle.loads(pickle.dumps(layer)).p == 0.25

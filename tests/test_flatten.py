"""Flatten against torch.nn.Flatten: shapes, gradients, layouts and errors."""
from __future__ import annotations

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 4), (3, 2, 5), (2, 3, 4, 5), (2, 1, 1, 1, 3)])
def test_flatten_equals_torch_and_keeps_the_batch_axis(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.Flatten()(xt)
    y = lk.Flatten().forward(x)
    assert y.dtype == dtype and y.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(lk.Flatten().backward(x, dy), xt.grad.numpy())


def test_forward_copies_and_a_workspace_pass_reshapes_without_a_copy():
    x = np.ones((2, 3, 4))
    assert not np.shares_memory(lk.Flatten().forward(x), x)
    net = lk.Net([lk.ReLU(), lk.Flatten()])
    workspace = net.workspace()
    y, trace = net.forward(x, workspace=workspace)
    assert np.shares_memory(y, trace[1][1]) and y.shape == (2, 12)


@pytest.mark.parametrize("layout", ["fortran", "strided", "int"])
def test_other_layouts_flatten_in_c_order(layout):
    x = np.arange(24.0).reshape(2, 3, 4)
    given = {"fortran": np.asfortranarray(x), "strided": np.repeat(x, 2, axis=2)[:, :, ::2],
             "int": x.astype(np.int64)}[layout]
    np.testing.assert_array_equal(lk.Flatten().forward(given), x.reshape(2, 12))


def test_gradient_matches_central_differences():
    assert_grad(lk.Flatten(), np.random.default_rng(0).standard_normal((2, 3, 2, 2)))


@pytest.mark.parametrize("x, error, message", [
    (np.ones(3), ValueError, r"Flatten\(\): x must have a batch axis and at least one more, got 1-D"),
    (np.ones((0, 3, 2)), ValueError, r"Flatten\(\): x is an empty batch"),
    (np.ones((2, 2), complex), TypeError, r"Flatten\(\): x must hold real numbers"),
])
def test_bad_inputs_are_refused_clearly(x, error, message):
    with pytest.raises(error, match=message):
        lk.Flatten().forward(x)


def test_a_wrong_dy_is_refused_naming_the_layer():
    with pytest.raises(ValueError, match=r"Flatten\(\): dy must have the shape of the layer's output \(2, 6\)"):
        lk.Flatten().backward(np.ones((2, 3, 2)), np.ones((2, 5)))

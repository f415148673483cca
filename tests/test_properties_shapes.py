"""Property-based suite (hypothesis) for BatchNorm2d, Embedding and inputs with more than two axes.

As in ``test_properties.py``: each property draws a structure (shape, dtype, byte order,
layout, mode, indices) and asserts either the float64 NumPy reference or a clear
``ValueError``/``TypeError`` naming the layer. Derandomized, ``deadline=None``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerkit as lk

from _property_examples import examples

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def arrange(a, layout, byteorder):
    """``a`` in another memory layout and byte order (same values)."""
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        a = big[..., ::2]
    if byteorder == "big":
        a = a.astype(a.dtype.newbyteorder(">"))
    return a


def close(actual, expected, dtype, what):
    tol = 1e-12 if dtype == "float64" else 2e-5
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


def reference_batch_norm(x, gamma, beta, mean, var, eps, training, dy):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    rstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * rstd.reshape(shape)
    y = xhat * gamma.reshape(shape) + beta.reshape(shape)
    g = dy * gamma.reshape(shape)
    if training:
        dx = rstd.reshape(shape) * (g - g.mean(axis=axes, keepdims=True)
                                    - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    else:
        dx = g * rstd.reshape(shape)
    return y, dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


@settings(max_examples=examples(60), **SETTINGS)
@given(cls=st.sampled_from([lk.BatchNorm2d, lk.BatchNorm1d]), n=st.integers(1, 4), c=st.integers(1, 3),
       positions=st.lists(st.integers(1, 4), min_size=1, max_size=2), dtype=st.sampled_from(["float32", "float64"]),
       layout=st.sampled_from(["C", "F", "strided"]), byteorder=st.sampled_from(["native", "big"]),
       training=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_norm_over_channels_matches_the_reference_or_refuses_clearly(cls, n, c, positions, dtype, layout,
                                                                             byteorder, training, seed):
    rng = np.random.default_rng(seed)
    rank = 4 if cls is lk.BatchNorm2d else 3
    positions = (positions * 2)[:rank - 2]
    shape = (n, c) + tuple(positions)
    layer = cls(c, dtype=dtype)
    layer.gamma = rng.normal(size=c).astype(dtype)
    layer.beta = rng.normal(size=c).astype(dtype)
    layer.running_mean = rng.normal(size=c).astype(dtype)
    layer.running_var = rng.uniform(0.5, 2, size=c).astype(dtype)
    x = (rng.normal(size=shape) * 2 + 1).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    values = n * int(np.prod(positions))
    expected_refusal = training and values < 2
    try:
        y, ctx = layer.forward_pass(arrange(x, layout, byteorder), training)
    except ValueError as error:
        assert expected_refusal and f"{cls.__name__}({c}" in str(error) and "1 value per channel" in str(error)
        return
    assert not expected_refusal
    dx = layer.backward_pass(arrange(x, layout, byteorder), ctx, arrange(dy, layout, byteorder))
    as64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    ref = reference_batch_norm(as64(x), as64(layer.gamma), as64(layer.beta),
                               as64(layer.running_mean) if not training else None,
                               as64(layer.running_var) if not training else None, layer.eps, training, as64(dy))
    for what, actual, expected in zip(("y", "dx", "dgamma", "dbeta"), (y, dx, layer.dgamma, layer.dbeta), ref):
        assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape, what
        close(actual, expected, dtype, what)


INDICES = st.sampled_from(["valid", "too large", "negative", "float", "bool", "3-D", "0-D"])


@settings(max_examples=examples(80), **SETTINGS)
@given(num=st.integers(1, 6), dim=st.integers(1, 4), shape=st.sampled_from([(0,), (5,), (3, 4), (2, 1)]),
       kind=INDICES, index_dtype=st.sampled_from(["int64", "int32", "uint8", "int16"]),
       layout=st.sampled_from(["C", "F", "strided"]), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_embedding_matches_the_reference_or_refuses_clearly(num, dim, shape, kind, index_dtype, layout, dtype, seed):
    rng = np.random.default_rng(seed)
    layer = lk.Embedding(num, dim, rng=seed, dtype=dtype)
    x = rng.integers(0, num, size=shape).astype(index_dtype)
    if kind == "too large" and x.size:
        x.flat[-1] = num
    elif kind == "negative" and x.size and np.dtype(index_dtype).kind == "i":
        x.flat[0] = -1
    elif kind == "float":
        x = x.astype(np.float64)
    elif kind == "bool":
        x = x.astype(bool)
    elif kind == "3-D":
        x = x.reshape(x.shape + (1, 1))
    elif kind == "0-D":
        x = np.array(0, dtype=index_dtype)
    dy = rng.normal(size=np.shape(x) + (dim,)).astype(dtype)
    arranged = arrange(x, layout, "native") if np.ndim(x) >= 1 else x
    try:
        y = layer.forward(arranged)
        layer.backward(arranged, dy)
    except (ValueError, TypeError) as error:
        assert f"Embedding({num}, {dim}" in str(error), str(error)
        valid = (x.dtype.kind in "iu" and x.ndim in (1, 2)
                 and (x.size == 0 or (int(x.min()) >= 0 and int(x.max()) < num)))
        assert not valid, f"refused valid indices: {error}"
        return
    np.testing.assert_array_equal(y, layer.W[x])
    expected = np.zeros((num, dim))
    np.add.at(expected, x.reshape(-1), dy.reshape(-1, dim).astype(np.float64))
    close(layer.dW, expected, dtype, "dW")


@settings(max_examples=examples(60), **SETTINGS)
@given(lead=st.lists(st.integers(0, 3), min_size=1, max_size=3), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       dtype=st.sampled_from(["float32", "float64"]), layout=st.sampled_from(["C", "F", "strided"]),
       byteorder=st.sampled_from(["native", "big"]),
       activation=st.sampled_from(["relu", "tanh", "softmax", "sigmoid"]), seed=st.integers(0, 2**16))
def test_nets_on_inputs_with_more_axes_equal_their_rows_as_a_2d_batch(lead, n_in, n_out, dtype, layout, byteorder,
                                                                       activation, seed):
    rng = np.random.default_rng(seed)
    net = lk.Net.from_config([{"type": "linear", "n_in": n_in, "n_out": n_out, "dtype": dtype}, activation,
                              {"type": "layer_norm", "n": n_out, "dtype": dtype}], seed=seed)
    x = rng.normal(size=tuple(lead) + (n_in,)).astype(dtype)
    y, trace = net.forward(arrange(x, layout, byteorder))
    dy = rng.normal(size=y.shape).astype(dtype)
    dx = net.backward(trace, dy, input_grad=True)
    rows = x.reshape(-1, n_in)
    y2, trace2 = net.forward(rows)
    dx2 = net.backward(trace2, dy.reshape(-1, n_out), input_grad=True)
    assert y.shape == tuple(lead) + (n_out,)
    close(y.reshape(-1, n_out), y2, dtype, "y")
    close(dx.reshape(-1, n_in), dx2, dtype, "dx")

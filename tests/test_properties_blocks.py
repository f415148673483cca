"""Property-based suite for blocks (hypothesis): random nestings of blocks and built-in layers.

Each example draws a spec tree (``Residual``, ``Concatenate``, ``Add`` and ``Net`` items
holding built-in layers and further blocks, widths that fit) and a seed, builds it with
``Net.from_config`` and checks it against a float64 NumPy reference that walks the built
layers (forward, input and parameter gradients), the fused path against the layer-by-layer
one (bit for bit), and the config and file round trips (bit-identical predictions).
Sizes come from ``tests/_property_examples.py`` (quick in CI).
"""
from __future__ import annotations

import copy
from unittest import mock

import numpy as np
import pytest
from _property_examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import expit

import layerkit as lk
from layerkit._plan import Plan
from layerkit.blocks import Add, Concatenate, Residual

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ACTIVATIONS = ("relu", "tanh", "sigmoid")


# --------------------------------------------------------------------------- specs
@st.composite
def chains(draw, width, depth, keep_width=False):
    """``(items, out_width)``: a non-empty chain of spec items from ``width`` features."""
    items, current = [], width
    for _ in range(draw(st.integers(1, 3))):
        items_left = depth > 0
        kind = draw(st.sampled_from(["linear", "act"] + (["residual", "concatenate", "add", "net"]
                                                         if items_left else [])))
        if kind == "linear":
            out = draw(st.integers(1, 5))
            items.append({"type": "linear", "n_in": current, "n_out": out})
            current = out
        elif kind == "act":
            items.append(draw(st.sampled_from(ACTIVATIONS)))
        elif kind == "residual":
            inner, _ = draw(chains(current, depth - 1, keep_width=True))
            items.append({"type": "residual", "layers": inner})
        elif kind == "net":
            inner, current = draw(chains(current, depth - 1))
            items.append({"type": "net", "layers": inner})
        else:
            branches, widths = [], []
            target = draw(st.integers(1, 4)) if kind == "add" else None
            for _ in range(draw(st.integers(1, 3))):
                inner, out = draw(chains(current, depth - 1))
                if target is not None and out != target:
                    inner, out = inner + [{"type": "linear", "n_in": out, "n_out": target}], target
                branches.append(inner)
                widths.append(out)
            items.append({"type": kind, "branches": branches})
            current = sum(widths) if kind == "concatenate" else target
    if keep_width and current != width:
        items.append({"type": "linear", "n_in": current, "n_out": width})
        current = width
    return items, current


@st.composite
def cases(draw):
    width = draw(st.integers(1, 4))
    spec, _ = draw(chains(width, depth=2))
    return spec, width, draw(st.integers(1, 6)), draw(st.integers(0, 2**31 - 1))


def build(spec, seed):
    net = lk.Net.from_config(spec, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for name in net.param_names:  # biases off zero: ReLU inputs off their kink
        value = getattr(net, name)
        value[...] = rng.normal(0.0, 0.7, size=value.shape)
    return net


# --------------------------------------------------------------------------- reference
def reference(layer, x):
    """``(y, backward)`` in float64; ``backward(dy)`` returns dx and fills ``grads[(id(layer), name)]``."""
    if isinstance(layer, lk.Linear):
        W, b = layer.W.astype(float), layer.b.astype(float)

        def backward(dy, grads):
            grads[(id(layer), "W")] = x.T @ dy
            grads[(id(layer), "b")] = dy.sum(axis=0)
            return dy @ W.T
        return x @ W + b, backward
    if isinstance(layer, lk.ReLU):
        return np.maximum(x, 0), lambda dy, grads: dy * (x > 0)
    if isinstance(layer, lk.Tanh):
        t = np.tanh(x)
        return t, lambda dy, grads: dy * (1 - t * t)
    if isinstance(layer, lk.Sigmoid):
        s = expit(x)
        return s, lambda dy, grads: dy * s * (1 - s)
    if isinstance(layer, lk.Net):
        return reference_chain(layer.layers, x)
    if isinstance(layer, Residual):
        fx, f_back = reference_chain(layer.f.layers, x)
        return x + fx, lambda dy, grads: dy + f_back(dy, grads)
    if isinstance(layer, (Concatenate, Add)):
        outs = [reference_chain(net.layers, x) for net in layer.branches]
        if isinstance(layer, Add):
            return sum(y for y, _ in outs), lambda dy, grads: sum(back(dy, grads) for _, back in outs)
        edges = np.cumsum([0] + [y.shape[1] for y, _ in outs])

        def backward(dy, grads):
            return sum(back(dy[:, a:b], grads) for (_, back), a, b in zip(outs, edges[:-1], edges[1:]))
        return np.hstack([y for y, _ in outs]), backward
    raise AssertionError(f"no reference for {layer!r}")


def reference_chain(layers, x):
    backs = []
    for layer in layers:
        x, back = reference(layer, x)
        backs.append(back)

    def backward(dy, grads):
        for back in reversed(backs):
            dy = back(dy, grads)
        return dy
    return x, backward


def owner_and_attr(net, name):
    path, _, attr = name.rpartition(".")
    return dict(net.walk())[path], attr


# --------------------------------------------------------------------------- properties
@settings(max_examples=examples(25), **SETTINGS)
@given(cases())
def test_random_nestings_equal_the_float64_reference(case):
    spec, width, rows, seed = case
    net = build(spec, seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width))
    y, trace = net.forward(x)
    y_ref, backward = reference_chain(net.layers, x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-11, atol=1e-12)
    dy = rng.normal(size=y.shape)
    grads = {}
    dx_ref = backward(dy, grads)
    np.testing.assert_allclose(net.backward(trace, dy, input_grad=True), dx_ref, rtol=1e-10, atol=1e-11)
    assert len(grads) == len(net.param_names)
    for name in net.param_names:
        owner, attr = owner_and_attr(net, name)
        np.testing.assert_allclose(getattr(net, "d" + name), grads[(id(owner), attr)], rtol=1e-10, atol=1e-11)


@settings(max_examples=examples(15), **SETTINGS)
@given(cases())
def test_fused_and_layer_by_layer_paths_agree_bit_for_bit(case):
    spec, width, rows, seed = case
    fused = build(spec, seed)
    with mock.patch.object(Plan, "compile", staticmethod(lambda *args: None)):
        slow = copy.deepcopy(fused)  # (a copy compiles its plans afresh: none here)
        x = np.random.default_rng(seed).normal(size=(rows, width))
        y_slow, trace_slow = slow.forward(x)
        dy = np.ones_like(y_slow)
        dx_slow = slow.backward(trace_slow, dy, input_grad=True)
        assert all(getattr(layer, "_plan", None) is None or type(layer._plan).__name__ == "_NoPlan"
                   for _, layer in slow.walk())
    y, trace = fused.forward(x)
    np.testing.assert_array_equal(y, y_slow)
    np.testing.assert_array_equal(fused.backward(trace, dy, input_grad=True), dx_slow)
    for name in fused.param_names:
        np.testing.assert_array_equal(getattr(fused, "d" + name), getattr(slow, "d" + name))


@settings(max_examples=examples(10), **SETTINGS)
@given(case=cases())
def test_config_and_file_round_trips_predict_bit_identically(case, tmp_path_factory):
    spec, width, rows, seed = case
    net = build(spec, seed)
    assert net.config() == lk.Net.from_config(spec).config()
    rebuilt = lk.Net.from_config(net.config(), seed=seed)
    assert rebuilt.param_names == net.param_names
    path = tmp_path_factory.mktemp("net") / "net.npz"
    net.save(path)
    loaded = lk.Net.load(path)
    x = np.random.default_rng(seed).normal(size=(rows, width))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.config() == net.config()


@settings(max_examples=examples(10), **SETTINGS)
@given(case=cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_onnx_export_of_random_nestings_equals_predict_in_onnxruntime(case, dtype):
    ort = pytest.importorskip("onnxruntime", reason="the 'onnx' extra runs exported models")
    from layerkit.onnx import to_onnx

    spec, width, rows, seed = case
    net = build(spec, seed)
    if dtype is np.float32:
        net = lk.Net.from_config(_with_dtype(net.config(), "float32"), seed=seed)
        for name in net.param_names:  # the float64 net's values, rounded
            getattr(net, name)[...] = getattr(build(spec, seed), name)
    dtype = net.dtype.type  # a net without a Linear (no declared dtype) computes in float64
    x = np.random.default_rng(seed).normal(size=(rows, width)).astype(dtype)
    session = ort.InferenceSession(to_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    tolerance = dict(rtol=2e-4, atol=2e-5) if dtype is np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(got, net.predict(x), **tolerance)


def _with_dtype(spec, dtype):
    """``spec`` with ``"dtype": dtype`` on every linear item, nested ones included."""
    if isinstance(spec, list):
        return [_with_dtype(item, dtype) for item in spec]
    if isinstance(spec, dict):
        out = {key: _with_dtype(value, dtype) for key, value in spec.items()}
        if out.get("type") == "linear":
            out["dtype"] = dtype
        return out
    return spec


@settings(max_examples=examples(20), **SETTINGS)
@given(width=st.integers(1, 5), other=st.integers(1, 5), kind=st.sampled_from(["residual", "add"]),
       declared=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_bad_nesting_is_refused_clearly_naming_the_block(width, other, kind, declared, seed):
    """A Residual whose f changes the width, or Add branches of different widths: a ValueError naming the block,
    at construction when the layers declare their widths, else at the first forward pass; never a result."""
    if other == width:
        other = width + 1
    if declared:
        f = [lk.Linear(width, other, rng=seed)]
    else:  # a Python layer that declares no width and changes it
        f = [_Widen(other)]
    x = np.random.default_rng(seed).normal(size=(3, width))
    with pytest.raises(ValueError) as caught:
        block = (lk.Residual(f) if kind == "residual"
                 else lk.Add([f, [lk.Linear(width, width, rng=seed + 1)]]))
        lk.Net([block]).forward(x)
    message = str(caught.value)
    assert ("Residual" if kind == "residual" else "Add") in message, message
    assert str(other) in message and str(width) in message, message


class _Widen(lk.Layer):
    """Repeats the first column ``n_out`` times: a width change no config can see."""

    def __init__(self, n_out):
        self.n_out = n_out

    def forward(self, x):
        return np.repeat(x[:, :1], self.n_out, axis=1)

    def backward(self, x, dy):
        dx = np.zeros_like(x)
        dx[:, 0] = dy.sum(axis=1)
        return dx

"""Property-based suite (hypothesis): the public API against a float64 NumPy reference.

Each property draws a structure (a net of built-in layers, batch size, dtype, byte order,
memory layout, a loss and its targets, an optimizer and a state, a config) and a seed for
the numbers, and asserts one of two outcomes: the result equals the float64 reference
(within the rounding of the dtype), or the call raises ``ValueError``/``TypeError`` (or a
layerkit error class, all subclasses of them) whose message names the culprit. Any other
exception is a crash and fails the test; so does an unclear message or a wrong number.

The runs are derandomized (the same examples on every run) and ``deadline=None`` (the
machine is shared). ``CASES`` counts the examples run; ``pytest -s`` prints the totals.
"""
from __future__ import annotations

import collections
import copy
import json
import math
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import erf, expit

import layerkit as lk
from layerkit import losses, optim
from layerkit.config import ConfigError

from _property_examples import examples

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CASES: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    yield
    total = sum(CASES.values())
    # any crash, unclear error or wrong result fails its test: a green run means 0 of each
    print(f"\nproperty suite: {total} cases run ({dict(CASES)})")


def expect_clear(call, *culprits):
    """Run ``call``; an exception must be a ValueError/TypeError naming one of ``culprits``."""
    try:
        return True, call()
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(word in message for word in culprits), f"unclear {type(error).__name__}: {message}"
        return False, error


# --------------------------------------------------------------------------- reference
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu_tanh(x):
    inner = SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
    t = np.tanh(inner)
    y = 0.5 * x * (1 + t)
    d = 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x ** 2)
    return y, d


def reference_activation(spec, x):
    """``(y, dy/dx)`` elementwise in float64 (softmax handled by the caller)."""
    name, args = spec
    if name == "relu":  # the derivative as torch.threshold_backward: 0 where x <= 0, else 1 (also at NaN)
        return np.maximum(x, 0), np.where(x <= 0, 0.0, 1.0)
    if name == "sigmoid":
        s = expit(x)
        return s, s * (1 - s)
    if name == "tanh":
        t = np.tanh(x)
        return t, 1 - t * t
    if name == "leaky_relu":
        a = args["negative_slope"]
        return np.where(x > 0, x, a * x), np.where(x > 0, 1.0, a)
    if name == "elu":
        a = args["alpha"]
        return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))), np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))
    if name == "gelu":
        if args["approximate"] == "tanh":
            return _gelu_tanh(x)
        cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
        return x * cdf, cdf + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    if name == "softplus":
        beta, threshold = args["beta"], args["threshold"]
        bx = beta * x
        linear = bx > threshold
        return (np.where(linear, x, np.logaddexp(0, bx) / beta),
                np.where(linear, 1.0, expit(bx)))
    if name == "identity":
        return x.copy(), np.ones_like(x)
    raise AssertionError(name)


def reference_activation_backward(spec, x, g):
    """``dx`` of an element-wise activation: ``g * dy/dx``, except ReLU's, a select as ``torch.threshold_backward``:
    0 where ``x <= 0`` whatever ``g`` holds (a NaN arriving from above stops there), ``g`` elsewhere."""
    if spec[0] == "relu":
        return np.where(x <= 0, 0.0, g)
    return g * reference_activation(spec, x)[1]


def reference_passes(stages, x, dy):
    """Forward output, dx, and per-Linear (dW, db), all in float64."""
    inputs, h = [], x.astype(np.float64)
    for kind, payload in stages:
        inputs.append(h)
        if kind == "linear":
            W, b = payload
            h = h @ W + b
        elif payload[0] == "softmax":
            e = np.exp(h - h.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        else:
            h = reference_activation(payload, h)[0]
    y, g, grads = h, dy.astype(np.float64), []
    for (kind, payload), xin in zip(reversed(stages), reversed(inputs)):
        if kind == "linear":
            W, _ = payload
            grads.append((xin.T @ g, g.sum(axis=0)))
            g = g @ W.T
        elif payload[0] == "softmax":
            e = np.exp(xin - xin.max(axis=1, keepdims=True))
            s = e / e.sum(axis=1, keepdims=True)
            g = s * (g - np.sum(g * s, axis=1, keepdims=True))
        else:
            g = reference_activation_backward(payload, xin, g)
    return y, g, grads[::-1]


ACTIVATIONS = {
    "relu": st.just({}),
    "sigmoid": st.just({}),
    "tanh": st.just({}),
    "identity": st.just({}),
    "leaky_relu": st.fixed_dictionaries({"negative_slope": st.sampled_from([0.01, 0.2, 1.5])}),
    "elu": st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5, 2.0])}),
    "gelu": st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])}),
    "softplus": st.fixed_dictionaries({"beta": st.sampled_from([1.0, 2.0]), "threshold": st.sampled_from([20.0, 2.0])}),
}
CLASSES = {"relu": lk.ReLU, "sigmoid": lk.Sigmoid, "tanh": lk.Tanh, "identity": lk.Identity,
           "leaky_relu": lk.LeakyReLU, "elu": lk.ELU, "gelu": lk.GELU, "softplus": lk.Softplus}


@st.composite
def net_specs(draw):
    """A list of stages: ("linear", (n_in, n_out)) and ("act", (name, args)), optionally ending in softmax."""
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    stages = []
    for n_in, n_out in zip(widths, widths[1:]):
        stages.append(("linear", (n_in, n_out)))
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(ACTIVATIONS)))
            stages.append(("act", (name, draw(ACTIVATIONS[name]))))
    if draw(st.booleans()):
        stages.append(("act", ("softmax", {})))
    return stages


def arrange(a, layout, byteorder):
    """``a`` with the given memory layout (C, F, strided) and byte order ('=', '>', '<')."""
    dtype = a.dtype.newbyteorder(byteorder)
    if layout == "strided":
        buffer = np.zeros((a.shape[0] * 2 + 1, a.shape[1] * 3 + 1), dtype=dtype)
        view = buffer[1::2, 1::3]
        view[...] = a
        return view
    return np.array(a, dtype=dtype, order=layout)


def build(stages, dtype, rng):
    layers, ref_stages = [], []
    for kind, payload in stages:
        if kind == "linear":
            layer = lk.Linear(*payload, rng=rng, dtype=dtype)
            layer.b[...] = rng.normal(size=layer.b.shape)  # non-zero biases, so db and b are exercised
            layers.append(layer)
        elif payload[0] == "softmax":
            layers.append(lk.Softmax())
        else:
            layers.append(CLASSES[payload[0]](**payload[1]))
    return lk.Net(layers), layers


def reference_of(layers, stages):
    out = []
    for layer, (kind, payload) in zip(layers, stages):
        if kind == "linear":
            out.append(("linear", (np.asarray(layer.W, np.float64), np.asarray(layer.b, np.float64))))
        else:
            out.append(("act", payload))
    return out


def assert_close(actual, expected, dtype, what, slack=None):
    """``actual`` has ``dtype`` and the shape of ``expected``, and equals it within the rounding of ``dtype``.

    ``slack``: an extra tolerance per element, for results whose conditioning amplifies rounding
    (``Slack`` measures it); the rest of the tolerance is fixed per dtype.
    """
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    scale = 1.0 + float(np.max(np.abs(expected), initial=0.0))
    rtol, atol = (2e-4, 2e-5 * scale) if np.dtype(dtype) == np.float32 else (1e-9, 1e-12 * scale)
    if slack is None:
        np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol, err_msg=what)
        return
    error = np.abs(actual.astype(np.float64) - expected)
    bound = rtol * np.abs(expected) + atol + slack
    bad = ~(error <= bound)
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {bad.size} entries off by more than the dtype's rounding"
                           f" allows; actual {actual[bad][:4]}, expected {expected[bad][:4]}, bound {bound[bad][:4]}")


def assert_same_ieee(actual, expected, dtype, what, slack=None):
    """NaN where the reference is NaN, the same infinities, and the finite entries close to it."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape and actual.dtype == np.dtype(dtype), (what, actual.shape, actual.dtype)
    a64 = actual.astype(np.float64)
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(a64), test(expected), err_msg=f"{what}: {test.__name__} pattern")
    finite = np.isfinite(expected)
    assert_close(a64[finite].astype(dtype), expected[finite], dtype, f"{what}: finite entries",
                 None if slack is None else np.asarray(slack)[finite])


LAYOUTS = st.sampled_from(["C", "F", "strided"])
BYTEORDERS = st.sampled_from(["=", ">"])


# --------------------------------------------------------------------------- passes
@settings(max_examples=examples(300), **SETTINGS)
@given(stages=net_specs(), batch=st.sampled_from([1, 2, 3, 7]), dtype=st.sampled_from(["float32", "float64"]),
       layout=LAYOUTS, byteorder=BYTEORDERS, dy_layout=LAYOUTS, dy_byteorder=BYTEORDERS,
       replace_params=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_fused_and_layer_by_layer_passes_match_the_float64_reference(
        stages, batch, dtype, layout, byteorder, dy_layout, dy_byteorder, replace_params, seed):
    CASES["passes"] += 1
    rng = np.random.default_rng(seed)
    net, layers = build(stages, dtype, rng)
    if replace_params:  # parameters replaced by arrays of another layout or byte order
        for layer in layers:
            if isinstance(layer, lk.Linear):
                layer.W = arrange(layer.W, "F", byteorder)
                layer.b = layer.b.astype(layer.b.dtype.newbyteorder(byteorder))
    ref_stages = reference_of(layers, stages)
    n_in, n_out = stages[0][1][0], [p for k, p in stages if k == "linear"][-1][1]
    x = rng.normal(scale=1.5, size=(batch, n_in)).astype(dtype)
    dy = rng.normal(size=(batch, n_out)).astype(dtype)
    y_ref, dx_ref, grads_ref = reference_passes(ref_stages, x, dy)

    xs, dys = arrange(x, layout, byteorder), arrange(dy, dy_layout, dy_byteorder)
    y, trace = net.forward(xs)
    assert_close(y, y_ref, dtype, "fused forward")
    assert_close(net.predict(xs), y_ref, dtype, "predict")
    dx = net.backward(trace, dys, input_grad=True)
    assert_close(dx, dx_ref, dtype, "fused dx")
    linears = [layer for layer in layers if isinstance(layer, lk.Linear)]
    for index, (layer, (dW, db)) in enumerate(zip(linears, grads_ref)):
        assert_close(layer.dW, dW, dtype, f"fused dW of Linear {index}")
        assert_close(layer.db, db, dtype, f"fused db of Linear {index}")

    # layer by layer, through each layer's own forward/backward
    inputs, h = [], xs
    for layer in layers:
        inputs.append(h)
        h = layer.forward(h)
    assert_close(h, y_ref, dtype, "layer-by-layer forward")
    g = dys
    for layer, xin in zip(reversed(layers), reversed(inputs)):
        g = layer.backward(xin, g)
    assert_close(g, dx_ref, dtype, "layer-by-layer dx")
    for index, (layer, (dW, db)) in enumerate(zip(linears, grads_ref)):
        assert_close(layer.dW, dW, dtype, f"layer-by-layer dW of Linear {index}")
        assert_close(layer.db, db, dtype, f"layer-by-layer db of Linear {index}")


@settings(max_examples=examples(100), **SETTINGS)
@given(stages=net_specs(), batch=st.integers(2, 6), dtype=st.sampled_from(["float32", "float64"]),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), seed=st.integers(0, 2 ** 32 - 1))
def test_nan_propagates_to_the_rows_it_touches_and_no_other(stages, batch, dtype, value, seed):
    CASES["nan propagation"] += 1
    rng = np.random.default_rng(seed)
    net, layers = build(stages, dtype, rng)
    n_in = stages[0][1][0]
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    row = int(rng.integers(batch))
    x[row, int(rng.integers(n_in))] = value
    with np.errstate(all="ignore"):
        y = net.predict(x)
        y_layers = x
        for layer in layers:
            y_layers = layer.forward(y_layers)
    clean = np.delete(np.arange(batch), row)
    with np.errstate(all="ignore"):
        y_ref = reference_passes(reference_of(layers, stages), x[row:row + 1], np.zeros((1, y.shape[1])))[0][0]
    for name, out in (("fused", y), ("layer by layer", y_layers)):
        if value != value:  # NaN: the whole row is NaN, never a plausible number
            assert np.isnan(out[row]).all(), f"{name}: NaN input row gave {out[row]}"
        else:  # +-inf: what NumPy's float64 arithmetic gives (inf, a saturated value or NaN)
            np.testing.assert_array_equal(np.isnan(out[row]), np.isnan(y_ref), err_msg=f"{name}: NaN pattern")
            finite = np.isfinite(y_ref)
            np.testing.assert_array_equal(np.isinf(out[row]), np.isinf(y_ref), err_msg=f"{name}: inf pattern")
            assert_close(out[row][finite], y_ref[finite], dtype, f"{name}: finite entries of an inf row")
        np.testing.assert_array_equal(out[clean], net.predict(x[clean]), err_msg=f"{name}: clean rows")


# --------------------------------------------------------------------------- losses
BAD_TARGETS = st.sampled_from(["ok", "nan", "inf", "-inf", "shape", "strings", "out of range", "fraction",
                               "soft", "negative", "1-d"])


def _targets(kind, loss_name, n, k, rng):
    if loss_name == "softmax_cross_entropy":
        t = rng.integers(0, k, size=n)
        if kind == "soft":
            return rng.dirichlet(np.ones(k), size=n)
        if kind == "out of range":
            t[0] = k
        elif kind == "negative":
            t[0] = -1
        elif kind == "fraction":
            return t + 0.5
        elif kind in ("nan", "inf", "-inf"):
            t = t.astype(float)
            t[0] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
        elif kind == "shape":
            return t[:-1] if n > 1 else np.zeros((n, k + 1))
        elif kind == "strings":
            return t.astype(str)
        return t
    t = rng.integers(0, 2, size=(n, k)).astype(float) if loss_name == "bce" else rng.normal(size=(n, k))
    if kind in ("nan", "inf", "-inf"):
        t[0, 0] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
    elif kind == "shape":
        return np.zeros((n, k + 1))
    elif kind == "strings":
        return t.astype(str)
    elif kind == "soft":
        return rng.uniform(size=(n, k))
    elif kind == "negative":
        t[0, 0] = -1.0
    elif kind == "1-d" and k == 1:
        return t[:, 0]
    return t


@settings(max_examples=examples(300), **SETTINGS)
@given(loss_name=st.sampled_from(["mse", "bce", "softmax_cross_entropy"]), kind=BAD_TARGETS,
       n=st.integers(1, 6), k=st.integers(1, 4), dtype=st.sampled_from(["float32", "float64"]),
       bad_prediction=st.sampled_from([None, "nan", "inf", "out of [0, 1]"]), weighted=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_fused_and_direct_losses_agree_on_every_input(loss_name, kind, n, k, dtype, bad_prediction, weighted, seed):
    CASES["losses"] += 1
    rng = np.random.default_rng(seed)
    loss = losses.get_loss(loss_name)
    y = (rng.uniform(0.01, 0.99, size=(n, k)) if loss_name == "bce" else rng.normal(size=(n, k))).astype(dtype)
    if bad_prediction == "nan":
        y[-1, -1] = np.nan
    elif bad_prediction == "inf":
        y[-1, -1] = np.inf
    elif bad_prediction == "out of [0, 1]":
        y[-1, -1] = 1.5
    t = _targets(kind, loss_name, n, k, rng)
    weights = rng.uniform(0, 2, size=n) if weighted else None
    culprits = (loss_name if loss_name != "bce" else "binary_cross_entropy", "predictions", "targets", "labels")

    ok_direct, direct = expect_clear(lambda: loss(y, t, sample_weight=weights), *culprits)
    prepared = loss.prepare_targets(t, np.dtype(dtype))
    ok_fused, fused = expect_clear(lambda: loss.batch(y, prepared, np.empty_like(y), weights), *culprits)
    assert ok_direct == ok_fused, f"direct {'returned' if ok_direct else direct!r}, fused {'returned' if ok_fused else fused!r}"
    if not ok_direct:
        assert (type(direct), str(direct)) == (type(fused), str(fused))
        return
    value, grad = direct
    assert math.isfinite(value), f"{loss_name}: a finite loss was expected, got {value}"
    assert fused[0] == pytest.approx(value, rel=1e-5 if dtype == "float32" else 1e-12, abs=1e-7)
    assert_close(fused[1], np.asarray(grad, np.float64), dtype, f"{loss_name} fused gradient")
    # the gradient is that of the loss returned (central differences in float64)
    y64 = y.astype(np.float64)
    probe = rng.normal(size=y.shape)
    eps = 1e-6
    if loss_name == "bce":
        eps = min(eps, float(np.min(np.minimum(y64, 1 - y64))) / 2)
    up = loss(y64 + eps * probe, t, sample_weight=weights)[0]
    down = loss(y64 - eps * probe, t, sample_weight=weights)[0]
    numeric = (up - down) / (2 * eps)
    analytic = float(np.sum(np.asarray(loss(y64, t, sample_weight=weights)[1]) * probe))
    assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6), f"{loss_name} with {kind} targets"


# --------------------------------------------------------------------------- optimizers
OPTIMIZERS = st.sampled_from([
    lambda: optim.SGD(lr=0.05), lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: optim.Adam(lr=0.01, amsgrad=True), lambda: optim.AdamW(lr=0.01),
    lambda: optim.RMSprop(lr=0.01, centered=True, momentum=0.5), lambda: optim.AdaGrad(lr=0.1),
    lambda: optim.SGD(lr=optim.CosineDecay(0.1, 50)),
])


def _steps(net, opt, rng, count):
    for _ in range(count):
        x = rng.normal(size=(4, 3))
        y, trace = net.forward(x)
        net.backward(trace, y - 1.0)
        net.step(opt)


def _small_net(seed):
    return lk.Net([lk.Linear(3, 4, rng=seed), lk.Tanh(), lk.Linear(4, 2, rng=seed + 1)])


@settings(max_examples=examples(60), **SETTINGS)
@given(make=OPTIMIZERS, before=st.integers(0, 4), after=st.integers(1, 4), through_json=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_optimizer_state_round_trips_bit_identically(make, before, after, through_json, seed):
    CASES["optimizer round trips"] += 1
    net, opt = _small_net(seed), make()
    _steps(net, opt, np.random.default_rng(seed), before)
    saved = opt.state_dict()
    if through_json:
        saved = {"config": json.loads(json.dumps(saved["config"])), "arrays": saved["arrays"]}
    twin_net = lk.Net.from_config(net.config())
    for a, b in zip(twin_net.layers, net.layers):
        for name in getattr(b, "param_names", ()):
            getattr(a, name)[...] = getattr(b, name)
    twin = optim.optimizer_from_state_dict(saved)
    _steps(net, opt, np.random.default_rng(seed + 1), after)
    _steps(twin_net, twin, np.random.default_rng(seed + 1), after)
    for a, b in zip(twin_net.layers, net.layers):
        for name in getattr(b, "param_names", ()):
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes()


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=32)
                           | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=5)


@settings(max_examples=examples(150), **SETTINGS)
@given(make=OPTIMIZERS, target=st.sampled_from(["config", "arrays", "config key", "array", "step", "whole"]),
       value=JSON_VALUES | st.sampled_from([-1, 2 ** 70, np.array([1.0, 2.0]), np.array("x"), np.array(-5)]),
       seed=st.integers(0, 2 ** 16))
def test_malformed_optimizer_state_is_refused_clearly_or_works(make, target, value, seed):
    CASES["malformed optimizer states"] += 1
    net, opt = _small_net(seed), make()
    _steps(net, opt, np.random.default_rng(seed), 2)
    state = opt.state_dict()
    keys = sorted(state["arrays"])
    if target == "whole":
        state = value
    elif target == "config":
        state["config"] = value
    elif target == "arrays":
        state["arrays"] = value
    elif target == "config key":
        key = sorted(state["config"])[seed % len(state["config"])]
        state["config"][key] = value
    elif keys:
        name = [k for k in keys if k.endswith("/step") == (target == "step")] or keys
        state["arrays"][name[seed % len(name)]] = value
    fresh = type(opt)()
    ok, _ = expect_clear(lambda: fresh.load_state_dict(state), "load_state_dict")
    if ok:  # accepted: the next steps must run and stay finite, or refuse clearly
        with np.errstate(all="ignore"):
            ok, _ = expect_clear(lambda: _steps(net, fresh, np.random.default_rng(seed), 2),
                                 type(opt).__name__, "lr", "state")
        if ok:
            for layer in net.layers:
                for name in getattr(layer, "param_names", ()):
                    assert np.isfinite(getattr(layer, name)).all() or target == "config key"


# --------------------------------------------------------------------------- configs
ITEM = st.one_of(
    st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "identity", "nope", "", "Linear"]),
    st.fixed_dictionaries({"type": st.just("linear"),
                           "n_in": st.one_of(st.integers(-2, 5), st.just(2 ** 40), st.just("3"), st.none(), st.just(2.0)),
                           "n_out": st.one_of(st.integers(-2, 5), st.just(2 ** 62), st.just([3]))},
                          optional={"init": st.sampled_from(["he", "xavier", "bogus", 3]),
                                    "dtype": st.sampled_from(["float32", "float64", "int8", None]),
                                    "extra": st.integers()}),
    st.fixed_dictionaries({"type": st.sampled_from(["leaky_relu", "elu", "gelu", "softplus", "dropout"])},
                          optional={"negative_slope": st.floats(-1, 2) | st.just(math.nan), "alpha": st.floats(allow_nan=True),
                                    "approximate": st.sampled_from(["tanh", "none", "erf", 1]),
                                    "beta": st.floats(-1, 3), "p": st.floats(-0.5, 1.5) | st.just(math.nan)}),
    st.fixed_dictionaries({"type": st.sampled_from(["layer_norm", "batch_norm"]),
                           "n": st.one_of(st.integers(-1, 5), st.just("3"), st.none(), st.just(2.0))},
                          optional={"eps": st.floats(-1, 1) | st.just(math.nan) | st.just(math.inf),
                                    "momentum": st.floats(-0.5, 1.5) | st.just(math.nan),
                                    "dtype": st.sampled_from(["float32", "float64", "int8"])}),
    st.integers(), st.none(), st.lists(st.integers(), max_size=2),
)


@settings(max_examples=examples(150), **SETTINGS)
@given(spec=st.lists(ITEM, max_size=4), as_dict=st.booleans(), seed=st.one_of(st.none(), st.integers(0, 9)))
def test_configs_build_a_working_net_or_raise_config_error_naming_the_item(spec, as_dict, seed):
    CASES["configs"] += 1
    given_spec = {"layers": spec} if as_dict else spec
    try:
        net = lk.Net.from_config(given_spec, seed=seed)
    except ConfigError as error:
        assert "item" in str(error) or "spec" in str(error) or "layers" in str(error), str(error)
        return
    assert lk.Net.from_config(net.config()).config() == net.config()  # a net built is a net that round-trips
    widths = [item.get("n_in" if item.get("type") == "linear" else "n") for item in spec
              if isinstance(item, dict) and item.get("type") in ("linear", "layer_norm", "batch_norm")]
    if widths:
        x = np.random.default_rng(0).normal(size=(2, widths[0]))
        assert net.predict(x).shape[0] == 2


# --------------------------------------------------------------------------- workspaces
@settings(max_examples=examples(60), **SETTINGS)
@given(depth=st.integers(1, 3), width=st.integers(1, 5), batch=st.integers(1, 5),
       dtype=st.sampled_from(["float32", "float64"]), activation=st.sampled_from([None, "relu", "tanh", "sigmoid"]),
       seed=st.integers(0, 2 ** 16))
def test_feeding_a_workspace_output_back_in_gives_the_reference(depth, width, batch, dtype, activation, seed):
    """Issue 15 item 3: the output of a workspace pass fed back into the same workspace."""
    CASES["workspace aliasing"] += 1
    rng = np.random.default_rng(seed)
    stages = []
    for _ in range(depth):
        stages.append(("linear", (width, width)))
        if activation:
            stages.append(("act", (activation, {})))
    net, layers = build(stages, dtype, rng)
    x = rng.normal(size=(batch, width)).astype(dtype)
    dy = rng.normal(size=(batch, width)).astype(dtype)
    workspace = net.workspace()
    y1, _ = net.forward(x, workspace=workspace)
    fed = np.array(y1, copy=True)
    y_ref, dx_ref, grads_ref = reference_passes(reference_of(layers, stages), fed, dy)
    y2, trace = net.forward(y1, workspace=workspace)
    assert_close(y2, y_ref, dtype, "forward of a workspace output")
    assert_close(net.backward(trace, dy, input_grad=True), dx_ref, dtype, "dx")
    for index, (layer, (dW, db)) in enumerate(zip([l for l in layers if isinstance(l, lk.Linear)], grads_ref)):
        assert_close(layer.dW, dW, dtype, f"dW of Linear {index}")
        assert_close(layer.db, db, dtype, f"db of Linear {index}")


# --------------------------------------------------------------------------- fit
@settings(max_examples=examples(30), **SETTINGS)
@given(kind=st.sampled_from(["labels", "binary", "regression", "wrong"]), k=st.integers(1, 4),
       lr=st.sampled_from([0.05, 1e6]), seed=st.integers(0, 2 ** 16))
def test_fit_trains_warns_or_raises_clearly(kind, k, lr, seed):
    CASES["fit"] += 1
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, 3))
    y = {"labels": rng.integers(0, max(k, 2), size=12), "binary": rng.integers(0, 2, size=12),
         "regression": rng.normal(size=(12, k)), "wrong": rng.normal(size=(12, k + 1))}[kind]
    net = lk.Net([lk.Linear(3, 5, rng=seed), lk.ReLU(), lk.Linear(5, k, rng=seed + 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lk.warnings.LayerkitWarning)
        try:
            history = lk.fit(net, x, y, epochs=3, lr=lr, verbose=False)
        except FloatingPointError as error:
            assert "lower the learning rate" in str(error) and isinstance(error.history, lk.History)
            return
        except (ValueError, TypeError) as error:
            assert "fit" in str(error) or "loss" in str(error) or "predictions" in str(error), str(error)
            return
    assert all(np.isfinite(history["train_loss"]))


# =========================================================================== issue 21: the suite grows
# All 13 built-in layers (dropout and batch norm in both modes) and a custom Python layer, in nets
# that mix fused segments with layers called in between; sparse input; fit from every container;
# configs and files; ONNX. One float64 reference for all of them.
class PyScale(lk.Layer):
    """A custom Python layer (``y = x * gamma``): the plan calls it between fused segments."""

    param_names = ("gamma",)

    def __init__(self, n, dtype, rng):
        self.gamma = rng.uniform(0.5, 1.5, size=n).astype(dtype)

    def forward(self, x):
        return np.asarray(x) * self.gamma

    def backward(self, x, dy):
        self.dgamma = np.sum(np.asarray(x) * dy, axis=0)
        return np.asarray(dy) * self.gamma


BUILTIN_NAMES = ("linear", "relu", "sigmoid", "softmax", "tanh", "leaky_relu", "elu", "gelu", "softplus",
                 "identity", "dropout", "layer_norm", "batch_norm")
ALL_KINDS = BUILTIN_NAMES + ("py_scale",)


@st.composite
def mixed_specs(draw, kinds=ALL_KINDS, min_size=1):
    """``(n_in, [(kind, args), ...])`` over ``kinds``: any order, so fused runs, Python layers and leading
    activations all occur; a ``linear`` item holds its output width."""
    n_in = draw(st.integers(1, 5))
    items = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=min_size, max_size=6)):
        if kind == "linear":
            args = {"n_out": draw(st.integers(1, 5))}
        elif kind in ACTIVATIONS:
            args = draw(ACTIVATIONS[kind])
        elif kind == "dropout":
            args = {"p": draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])), "training": draw(st.booleans())}
        elif kind == "batch_norm":
            args = {"eps": draw(st.sampled_from([1e-3, 0.1])), "momentum": draw(st.sampled_from([0.1, 0.5, 1.0])),
                    "training": draw(st.booleans())}
        elif kind == "layer_norm":
            args = {"eps": draw(st.sampled_from([1e-3, 0.1]))}
        else:
            args = {}
        items.append((kind, args))
    return n_in, items


def build_mixed(n_in, items, dtype, rng):
    """The layers of a ``mixed_specs`` net, with random parameters and running statistics."""
    layers, width = [], n_in
    for index, (kind, args) in enumerate(items):
        if kind == "linear":
            layer = lk.Linear(width, args["n_out"], rng=rng, dtype=dtype)
            layer.b[...] = rng.normal(size=layer.b.shape)
            width = args["n_out"]
        elif kind in CLASSES:
            layer = CLASSES[kind](**args)
        elif kind == "softmax":
            layer = lk.Softmax()
        elif kind == "dropout":
            layer = lk.Dropout(args["p"], rng=int(rng.integers(2 ** 31)))
            layer.training = args["training"]
        elif kind == "layer_norm":
            layer = lk.LayerNorm(width, eps=args["eps"], dtype=dtype)
        elif kind == "batch_norm":
            layer = lk.BatchNorm1d(width, eps=args["eps"], momentum=args["momentum"], dtype=dtype)
            layer.running_mean[...] = rng.normal(0, 0.5, size=width)
            layer.running_var[...] = rng.uniform(0.3, 2.0, size=width)
            layer.training = args["training"]
        else:
            layer = PyScale(width, dtype, rng)
        for name in ("gamma", "beta"):
            if kind in ("layer_norm", "batch_norm"):
                getattr(layer, name)[...] = rng.normal(1.0 if name == "gamma" else 0.0, 0.5, size=width)
        layers.append(layer)
    return layers, width


def snapshot(layers):
    """What a pass may change on the layers (running statistics, generators), to put back between paths."""
    return [(layer, {name: np.array(getattr(layer, name)) for name in getattr(layer, "state_names", ())},
             copy.deepcopy(layer.rng.bit_generator.state) if isinstance(layer, lk.Dropout) else None)
            for layer in layers]


def restore(saved):
    for layer, state, rng_state in saved:
        for name, value in state.items():
            setattr(layer, name, value.copy())
        if rng_state is not None:
            layer.rng.bit_generator.state = copy.deepcopy(rng_state)


def _normalise_ref(x, axis, eps):
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axis, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    return (x - mean) * rstd, rstd, mean, var


def reference_mixed(layers, x, dy, masks, training_override=None):
    """Forward output, dx, each layer's parameter gradients and batch norm's new running statistics, in float64.

    ``masks[i]``: dropout layer i's mask (None: the identity); ``training_override`` False: inference mode.
    """
    h, inputs, ctxs = np.asarray(x, dtype=np.float64), [], []
    for i, layer in enumerate(layers):
        inputs.append(h)
        training = getattr(layer, "training", True) if training_override is None else training_override
        ctx = None
        if isinstance(layer, lk.Linear):
            h = h @ np.asarray(layer.W, dtype=np.float64) + np.asarray(layer.b, dtype=np.float64)
        elif isinstance(layer, lk.Softmax):
            e = np.exp(h - h.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        elif type(layer) in CLASSES.values():
            name = next(key for key, cls in CLASSES.items() if type(layer) is cls)
            ctx = (name, layer.get_config())  # the constructor's arguments: what reference_activation reads
            h = reference_activation(ctx, h)[0]
        elif isinstance(layer, lk.Dropout):
            ctx = masks[i] if training else None
            h = h if ctx is None else h * np.asarray(ctx, dtype=np.float64)
        elif isinstance(layer, lk.LayerNorm):
            xhat, rstd, _, _ = _normalise_ref(h, 1, layer.eps)
            ctx = (xhat, rstd)
            h = xhat * np.asarray(layer.gamma, dtype=np.float64) + np.asarray(layer.beta, dtype=np.float64)
        elif isinstance(layer, lk.BatchNorm1d):
            if training:
                xhat, rstd, mean, var = _normalise_ref(h, 0, layer.eps)
                m, rows = layer.momentum, h.shape[0]
                running = ((1 - m) * np.asarray(layer.running_mean, dtype=np.float64) + m * mean[0],
                           (1 - m) * np.asarray(layer.running_var, dtype=np.float64) + m * var[0] * rows / (rows - 1))
            else:
                rstd = 1.0 / np.sqrt(np.asarray(layer.running_var, dtype=np.float64) + layer.eps)
                xhat, running = (h - np.asarray(layer.running_mean, dtype=np.float64)) * rstd, None
            ctx = (xhat, rstd, training, running)
            h = xhat * np.asarray(layer.gamma, dtype=np.float64) + np.asarray(layer.beta, dtype=np.float64)
        else:  # PyScale
            h = h * np.asarray(layer.gamma, dtype=np.float64)
        ctxs.append(ctx)
    y, g, grads = h, np.asarray(dy, dtype=np.float64), {}
    for i in reversed(range(len(layers))):
        layer, xin, ctx = layers[i], inputs[i], ctxs[i]
        if isinstance(layer, lk.Linear):
            grads[i] = {"dW": xin.T @ g, "db": g.sum(axis=0)}
            g = g @ np.asarray(layer.W, dtype=np.float64).T
        elif isinstance(layer, lk.Softmax):
            e = np.exp(xin - xin.max(axis=1, keepdims=True))
            s = e / e.sum(axis=1, keepdims=True)
            g = s * (g - np.sum(g * s, axis=1, keepdims=True))
        elif isinstance(layer, lk.Dropout):
            g = g if ctx is None else g * np.asarray(ctx, dtype=np.float64)
        elif isinstance(layer, (lk.LayerNorm, lk.BatchNorm1d)):
            xhat, rstd = ctx[0], ctx[1]
            grads[i] = {"dgamma": np.sum(g * xhat, axis=0), "dbeta": g.sum(axis=0)}
            gh = g * np.asarray(layer.gamma, dtype=np.float64)
            axis = 1 if isinstance(layer, lk.LayerNorm) else 0
            if isinstance(layer, lk.BatchNorm1d) and not ctx[2]:
                g = gh * rstd
            else:
                g = rstd * (gh - gh.mean(axis=axis, keepdims=True) - xhat * (gh * xhat).mean(axis=axis, keepdims=True))
        elif isinstance(layer, PyScale):
            grads[i] = {"dgamma": np.sum(xin * g, axis=0)}
            g = g * np.asarray(layer.gamma, dtype=np.float64)
        else:
            g = reference_activation_backward(ctx, xin, g)
    running = {i: ctxs[i][3] for i, layer in enumerate(layers)
               if isinstance(layer, lk.BatchNorm1d) and ctxs[i][3] is not None}
    return y, g, grads, running


class Slack:
    """How far float32 rounding can move each result of ``reference_mixed``: its conditioning, measured.

    A chain of normalisations (batch norm over two rows, say) amplifies the rounding of its
    inputs far beyond a fixed tolerance. The reference is run again with the input, ``dy`` and
    every parameter and running statistic moved by a random relative 2**-23 (float32's rounding),
    twice; ``SAFETY`` times the largest change of each entry is its extra tolerance. float64
    results get none.
    """

    SAFETY = 30.0

    def __init__(self, layers, x, dy, masks, dtype, training_override=None):
        self.y = self.dx = None
        self.grads, self.running = {}, {}
        if np.dtype(dtype) != np.float32:
            return
        base = reference_mixed(layers, x, dy, masks, training_override)
        rng = np.random.default_rng(0)
        wobble = lambda a: np.asarray(a, dtype=np.float64) * (1 + 2.0 ** -23 * rng.uniform(-1, 1, np.shape(a)))
        changes = []
        for _ in range(2):
            saved = {}
            for i, layer in enumerate(layers):
                for name in tuple(getattr(layer, "param_names", ())) + tuple(getattr(layer, "state_names", ())):
                    saved[i, name] = getattr(layer, name)
                    setattr(layer, name, wobble(saved[i, name]))
            try:
                changes.append(reference_mixed(layers, wobble(x), wobble(dy), masks, training_override))
            finally:
                for (i, name), value in saved.items():
                    setattr(layers[i], name, value)
        with np.errstate(invalid="ignore"):
            spread = lambda pick: self.SAFETY * np.nan_to_num(np.max([np.abs(pick(c) - pick(base)) for c in changes],
                                                                     axis=0), nan=0.0)
            self.y, self.dx = spread(lambda r: r[0]), spread(lambda r: r[1])
            self.grads = {i: {name: spread(lambda r, i=i, name=name: r[2][i][name]) for name in named}
                          for i, named in base[2].items()}
            self.running = {i: tuple(spread(lambda r, i=i, k=k: r[3][i][k]) for k in range(2)) for i in base[3]}


def check_grads(layers, grads_ref, dtype, path, slack=None):
    for i, expected in grads_ref.items():
        for name, value in expected.items():
            extra = None if slack is None or not slack.grads else slack.grads[i][name]
            assert_same_ieee(getattr(layers[i], name), value, dtype, f"{path}: {name} of layer {i} ({layers[i]!r})",
                             extra)


def check_every_path(net, layers, x, xs, dy, dys, dtype, initial, y, trace):
    """``net.forward(xs)`` gave ``(y, trace)`` from the layers' state ``initial``: check it, ``net.backward``,
    ``net.predict`` (which changes no state) and each layer's own ``forward``/``backward`` (restarted from
    ``initial``, so dropout draws the same masks) against ``reference_mixed`` of ``x`` and ``dy``
    (``xs``, ``dys``: the same values in the layout and byte order given to the net)."""
    masks = {i: entry.ctx for i, entry in enumerate(trace) if isinstance(entry.layer, lk.Dropout)}
    after = snapshot(layers)
    restore(initial)  # the reference reads the running statistics the pass started from
    y_ref, dx_ref, grads_ref, running_ref = reference_mixed(layers, x, dy, masks)
    slack = Slack(layers, x, dy, masks, dtype)
    restore(after)
    assert_same_ieee(y, y_ref, dtype, "net forward", slack.y)
    for i, (mean, var) in running_ref.items():
        extra = slack.running.get(i, (None, None))
        assert_same_ieee(layers[i].running_mean, mean, dtype, f"running_mean of layer {i}", extra[0])
        assert_same_ieee(layers[i].running_var, var, dtype, f"running_var of layer {i}", extra[1])
    assert_same_ieee(net.backward(trace, dys, input_grad=True), dx_ref, dtype, "net dx", slack.dx)
    check_grads(layers, grads_ref, dtype, "net", slack)
    state_before = snapshot(layers)  # inference mode: the running statistics as they are now, nothing updated
    assert_same_ieee(net.predict(xs), reference_mixed(layers, x, dy, masks, training_override=False)[0], dtype,
                     "predict", Slack(layers, x, dy, masks, dtype, training_override=False).y)
    for (layer, state, _), (_, state_now, _) in zip(state_before, snapshot(layers)):
        for name in state:
            assert np.array_equal(state[name], state_now[name], equal_nan=True), f"predict changed {name} of {layer!r}"
    restore(initial)
    inputs, h = [], xs
    for layer in layers:
        inputs.append(h)
        h = layer.forward(h)
    assert_same_ieee(h, y_ref, dtype, "layer-by-layer forward", slack.y)
    g = dys
    for layer, xin in zip(reversed(layers), reversed(inputs)):
        g = layer.backward(xin, g)
    assert_same_ieee(g, dx_ref, dtype, "layer-by-layer dx", slack.dx)
    check_grads(layers, grads_ref, dtype, "layer by layer", slack)


def bn_refuses_one_row(layers, batch):
    return batch < 2 and any(isinstance(layer, lk.BatchNorm1d) and layer.training for layer in layers)


@settings(max_examples=examples(250), **SETTINGS)
@given(spec=mixed_specs(), batch=st.sampled_from([1, 2, 3, 6]), dtype=st.sampled_from(["float32", "float64"]),
       layout=LAYOUTS, byteorder=BYTEORDERS, seed=st.integers(0, 2 ** 32 - 1))
def test_every_layer_in_mixed_nets_matches_the_reference_fused_segmented_and_layer_by_layer(
        spec, batch, dtype, layout, byteorder, seed):
    """All 13 built-ins (dropout and batch norm in both modes) and a Python layer, in any order."""
    CASES["mixed nets"] += 1
    rng = np.random.default_rng(seed)
    n_in, items = spec
    layers, n_out = build_mixed(n_in, items, dtype, rng)
    net = lk.Net(layers)
    x = rng.normal(scale=1.5, size=(batch, n_in)).astype(dtype)
    dy = rng.normal(size=(batch, n_out)).astype(dtype)
    xs = arrange(x, layout, byteorder)
    initial = snapshot(layers)

    ok, out = expect_clear(lambda: net.forward(xs), "BatchNorm1d")
    if not ok:  # the one clear refusal these nets may give: batch norm over one row in training mode
        assert bn_refuses_one_row(layers, batch) and "more than 1 value per feature" in str(out), str(out)
        return
    assert not bn_refuses_one_row(layers, batch)
    y, trace = out
    masks = {i: entry.ctx for i, entry in enumerate(trace) if isinstance(entry.layer, lk.Dropout)}
    for i, mask in masks.items():  # inverted dropout: 0 or 1 / (1 - p), and none in inference mode
        p = layers[i].p
        if not layers[i].training or p == 0:
            assert mask is None
        else:
            assert set(np.unique(mask).tolist()) <= {0.0, float(mask.dtype.type(1 / (1 - p)) if p < 1 else 0.0)}
    check_every_path(net, layers, x, xs, dy, arrange(dy, layout, byteorder), dtype, initial, y, trace)


SPARSE_FORMATS = st.sampled_from(["csr", "csc"])


@settings(max_examples=examples(80), **SETTINGS)
@given(spec=mixed_specs(kinds=BUILTIN_NAMES, min_size=0), fmt=SPARSE_FORMATS, batch=st.integers(1, 6),
       density=st.sampled_from([0.0, 0.3, 1.0]), dtype=st.sampled_from(["float32", "float64"]),
       data_dtype=st.sampled_from(["float32", "float64", "int64"]), seed=st.integers(0, 2 ** 32 - 1))
def test_sparse_csr_and_csc_input_matches_the_dense_reference(spec, fmt, batch, density, dtype, data_dtype, seed):
    CASES["sparse input"] += 1
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_in, items = spec
    items = [("linear", {"n_out": int(rng.integers(1, 5))})] + items  # sparse input needs a Linear first
    layers, n_out = build_mixed(n_in, items, dtype, rng)
    net = lk.Net(layers)
    dense = sp.random(batch, n_in, density=density, format=fmt, random_state=int(seed % 2 ** 31),
                      data_rvs=lambda k: rng.integers(-3, 4, size=k)).toarray().astype(data_dtype)
    x = sp.csr_matrix(dense) if fmt == "csr" else sp.csc_matrix(dense)
    dy = rng.normal(size=(batch, n_out)).astype(dtype)
    initial = snapshot(layers)
    ok, out = expect_clear(lambda: net.forward(x), "BatchNorm1d")
    if not ok:
        assert bn_refuses_one_row(layers, batch) and "more than 1 value per feature" in str(out), str(out)
        return
    y, trace = out
    masks = {i: entry.ctx for i, entry in enumerate(trace) if isinstance(entry.layer, lk.Dropout)}
    after = snapshot(layers)
    restore(initial)
    y_ref, dx_ref, grads_ref, _ = reference_mixed(layers, dense, dy, masks)
    slack = Slack(layers, dense, dy, masks, dtype)
    restore(after)
    assert_close(y, y_ref, dtype, "sparse forward", slack.y)
    dx = net.backward(trace, dy, input_grad=True)
    assert_close(dx, dx_ref, dtype, "sparse dx", slack.dx)
    check_grads(layers, grads_ref, dtype, "sparse", slack)
    assert_close(net.predict(x), reference_mixed(layers, dense, dy, masks, training_override=False)[0],
                 dtype, "sparse predict", Slack(layers, dense, dy, masks, dtype, training_override=False).y)


class RowsByIndex:
    """An array-like read through ``__getitem__`` alone (as an HDF5 dataset)."""

    def __init__(self, array):
        self.array, self.shape, self.dtype = array, array.shape, array.dtype

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        return self.array[index].copy()


CONTAINERS = st.sampled_from(["ndarray", "fortran", "big-endian", "int", "list", "memmap", "array-like",
                              "csr", "csc"])


def contain(x, kind, directory):
    if kind == "fortran":
        return np.asfortranarray(x)
    if kind == "big-endian":
        return x.astype(x.dtype.newbyteorder(">"))
    if kind == "int":
        return x.astype(np.int64)
    if kind == "list":
        return x.tolist()
    if kind == "memmap":
        path = f"{directory}/x.dat"
        mm = np.memmap(path, dtype=x.dtype, mode="w+", shape=x.shape)
        mm[...] = x
        mm.flush()
        return np.memmap(path, dtype=x.dtype, mode="r", shape=x.shape)
    if kind == "array-like":
        return RowsByIndex(x)
    if kind in ("csr", "csc"):
        import scipy.sparse as sp

        return sp.csr_matrix(x) if kind == "csr" else sp.csc_matrix(x)
    return x


@settings(max_examples=examples(60), **SETTINGS)
@given(kind=CONTAINERS, n=st.integers(2, 12), m=st.integers(1, 4), k=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "float64"]), batch_size=st.integers(1, 13), shuffle=st.booleans(),
       epochs=st.integers(1, 2), middle=st.sampled_from(["tanh", "relu", "dropout", "layer_norm"]),
       seed=st.integers(0, 2 ** 16))
def test_fit_from_every_container_matches_the_float64_reference_trajectory(
        kind, n, m, k, dtype, batch_size, shuffle, epochs, middle, seed):
    """fit from ndarrays of every layout, lists, memmaps, array-likes and sparse matrices: the SGD trajectory
    replayed in float64 (same shuffles, same minibatches)."""
    CASES["fit containers"] += 1
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, m)).astype(dtype)  # small integers: every container holds them exactly
    t = rng.normal(size=(n, k))
    hidden = {"tanh": lk.Tanh(), "relu": lk.ReLU(), "dropout": lk.Dropout(0.5, rng=seed + 7),
              "layer_norm": lk.LayerNorm(3, eps=0.1, dtype=dtype)}[middle]
    hidden.training = False  # fit trains in training mode (dropout drops) and puts this mode back
    layers = [lk.Linear(m, 3, rng=seed, dtype=dtype), hidden, lk.Linear(3, k, rng=seed + 1, dtype=dtype)]
    net = lk.Net(layers)
    lr = 0.02
    # the reference first: the same minibatches in float64, plain SGD on the mean loss of each
    shuffler, masks = np.random.default_rng(seed), np.random.default_rng(seed + 7)  # fit's and the dropout's draws
    ref_layers = copy.deepcopy(layers)
    for layer in ref_layers:
        for name in getattr(layer, "param_names", ()):
            setattr(layer, name, np.array(getattr(layer, name), dtype=np.float64))
    losses_ref = []
    with np.errstate(all="ignore"):
        for _ in range(epochs):
            order = shuffler.permutation(n) if shuffle else np.arange(n)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                mask = {1: (masks.random((len(idx), 3)) >= 0.5) * 2.0} if middle == "dropout" else {}
                pred = reference_mixed(ref_layers, x[idx], np.zeros((len(idx), k)), mask, training_override=True)[0]
                if not np.isfinite(pred).all() or np.abs(pred).max() > 1e6:
                    total = math.inf
                    break
                value, grad = lk.mean_squared_error(pred, t[idx])
                total += value * len(idx)
                _, _, grads, _ = reference_mixed(ref_layers, x[idx], grad, mask, training_override=True)
                for i, named in grads.items():
                    for name, g in named.items():
                        setattr(ref_layers[i], name[1:], getattr(ref_layers[i], name[1:]) - lr * g)
            losses_ref.append(total / n)
    diverged = not all(math.isfinite(value) and value < 1e6 for value in losses_ref)
    with tempfile.TemporaryDirectory() as directory:
        data = contain(x, kind, directory)
        try:
            history = lk.fit(net, data, t, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             lr=lr, loss="mse", verbose=0)
        except FloatingPointError as error:  # the clear error of a diverging fit, only where the reference diverges
            assert diverged and "lower the learning rate" in str(error), str(error)
            return
        finally:
            del data
    assert [layer.training for layer in layers] == [True, False, True]  # the modes it found
    if diverged:
        return
    for i, (layer, ref) in enumerate(zip(layers, ref_layers)):
        for name in getattr(layer, "param_names", ()):
            assert_close(getattr(layer, name), getattr(ref, name), dtype, f"fit from {kind}: {name} of layer {i}")
    np.testing.assert_allclose(history["train_loss"], losses_ref, rtol=1e-3 if dtype == "float32" else 1e-9)


@settings(max_examples=examples(60), **SETTINGS)
@given(spec=mixed_specs(kinds=BUILTIN_NAMES), dtype=st.sampled_from(["float32", "float64"]),
       through_json=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_configs_and_files_hold_every_layer(spec, dtype, through_json, seed):
    """net.config() and Net.save/Net.load with all 13 built-ins: the same architecture, bit-identical predictions."""
    CASES["configs and files"] += 1
    rng = np.random.default_rng(seed)
    n_in, items = spec
    layers, _ = build_mixed(n_in, items, dtype, rng)
    net = lk.Net(layers)
    config = net.config()
    if through_json:
        config = json.loads(json.dumps(config))
    rebuilt = lk.Net.from_config(config)
    assert rebuilt.config() == net.config()
    assert [repr(layer) for layer in rebuilt] == [repr(layer) for layer in net]
    x = rng.normal(size=(3, n_in)).astype(dtype)
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/net.npz"
        net.save(path)
        loaded = lk.Net.load(path)
    assert loaded.config() == net.config()
    for a, b in zip(loaded, net):
        for name in tuple(getattr(b, "param_names", ())) + tuple(getattr(b, "state_names", ())):
            assert np.array_equal(getattr(a, name), getattr(b, name)), f"{name} of {b!r}"
    assert np.array_equal(loaded.predict(x), net.predict(x))


@settings(max_examples=examples(60), **SETTINGS)
@given(spec=mixed_specs(kinds=BUILTIN_NAMES), dtype=st.sampled_from(["float32", "float64"]),
       batch=st.integers(1, 5), seed=st.integers(0, 2 ** 32 - 1))
def test_onnx_export_runs_in_onnxruntime_like_predict(spec, dtype, batch, seed):
    CASES["onnx"] += 1
    ort = pytest.importorskip("onnxruntime")
    from layerkit.onnx import to_onnx

    rng = np.random.default_rng(seed)
    n_in, items = spec
    if not any(kind in ("linear", "layer_norm", "batch_norm") for kind, _ in items):
        dtype = "float64"  # a net without a layer that declares a dtype exports as float64
    layers, _ = build_mixed(n_in, items, dtype, rng)
    net = lk.Net(layers)
    x = rng.normal(scale=1.5, size=(batch, n_in)).astype(dtype)
    model = to_onnx(net)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    want = net.predict(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    reference = reference_mixed(layers, x, np.zeros(want.shape), {}, training_override=False)[0]
    assert_close(got, reference, dtype, "onnxruntime against the float64 reference",
                 Slack(layers, x, np.zeros(want.shape), {}, dtype, training_override=False).y)
    rtol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * (1 + float(np.abs(want).max())),
                               err_msg="onnxruntime against predict")


@settings(max_examples=examples(150), **SETTINGS)
@given(spec=mixed_specs(), batch=st.integers(2, 5), dtype=st.sampled_from(["float32", "float64"]),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), layout=LAYOUTS, seed=st.integers(0, 2 ** 32 - 1))
def test_nan_and_inf_inputs_give_what_ieee_arithmetic_gives_on_every_path(spec, batch, dtype, value, layout, seed):
    """Issue 21: the NaN conventions (docs/guide/layers.md), forward and backward, for every built-in layer.

    No layer masks a non-finite value: outputs, input gradients and parameter gradients are what the
    float64 reference formulas give in IEEE arithmetic (PyTorch's formulas, ReLU's derivative as
    ``threshold_backward``), on the fused and segmented paths of ``Net`` and layer by layer alike.
    """
    CASES["nan and inf, forward and backward"] += 1
    rng = np.random.default_rng(seed)
    n_in, items = spec
    layers, n_out = build_mixed(n_in, items, dtype, rng)
    net = lk.Net(layers)
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    x[int(rng.integers(batch)), int(rng.integers(n_in))] = value
    dy = rng.normal(size=(batch, n_out)).astype(dtype)
    xs = arrange(x, layout, "=")
    initial = snapshot(layers)
    with np.errstate(all="ignore"):
        y, trace = net.forward(xs)
        check_every_path(net, layers, x, xs, dy, dy, dtype, initial, y, trace)


BAD_INPUTS = st.sampled_from(["x width", "x 1-D", "x 3-D", "x strings", "x object", "x complex", "x sparse width",
                              "dy shape", "dy strings", "dy 1-D", "trace of another net", "trace rows",
                              "trace short", "fit dict", "fit string", "fit set", "fit 1-D memmap",
                              "fit y rows", "fit ragged"])


@settings(max_examples=examples(150), **SETTINGS)
@given(spec=mixed_specs(kinds=BUILTIN_NAMES), bad=BAD_INPUTS, batch=st.integers(2, 5),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2 ** 32 - 1))
def test_bad_inputs_to_any_net_are_refused_clearly(spec, bad, batch, dtype, seed):
    """Every kind of wrong input to forward, backward and fit: a ValueError/TypeError naming the argument
    or the layer (its repr), never another exception, never a result."""
    CASES["bad inputs"] += 1
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_in, items = spec
    items = [("linear", {"n_out": int(rng.integers(1, 5))})] + items  # fit and sparse input need a Linear first
    layers, n_out = build_mixed(n_in, items, dtype, rng)
    net = lk.Net(layers)
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    culprits = ["x", "dy", "trace", "Net"] + [repr(layer) for layer in layers]
    kind, _, what = bad.partition(" ")
    if kind == "x":
        wrong = {"width": lambda: rng.normal(size=(batch, n_in + 1)), "1-D": lambda: x[0],
                 "3-D": lambda: rng.normal(size=(batch, 2, n_in + 1)),  # more axes, a wrong last one
                 "strings": lambda: x.astype(str), "object": lambda: np.array([[object()] * n_in] * batch),
                 "complex": lambda: x.astype(complex),
                 "sparse width": lambda: sp.csr_matrix(rng.normal(size=(batch, n_in + 1)))}[what]()
        for call in (lambda: net.forward(wrong), lambda: net.predict(wrong)):
            ok, error = expect_clear(call, *culprits)
            assert not ok, f"{bad}: accepted"
        return
    if kind == "dy":
        y, trace = net.forward(x)
        wrong = {"shape": lambda: np.zeros((batch, n_out + 1)), "strings": lambda: np.zeros(y.shape).astype(str),
                 "1-D": lambda: np.zeros(batch * n_out)}[what]()
        ok, _ = expect_clear(lambda: net.backward(trace, wrong, input_grad=True), *culprits)
        assert not ok, f"{bad}: accepted"
        return
    if kind == "trace":
        y, trace = net.forward(x)
        if what == "of another net":
            other = lk.Net(build_mixed(n_in, items, dtype, rng)[0])
            trace = other.forward(x)[1]
        elif what == "rows":
            trace = [(layer, np.asarray(h)[:-1] if i == len(trace) - 1 else h) for i, (layer, h) in enumerate(trace)]
        else:
            trace = list(trace)[:-1]
        ok, _ = expect_clear(lambda: net.backward(trace, np.zeros(y.shape, dtype), input_grad=True), *culprits)
        assert not ok, f"{bad}: accepted"
        return
    t = rng.normal(size=(batch, n_out))
    with tempfile.TemporaryDirectory() as directory:
        data = {"dict": lambda: {"a": x}, "string": lambda: "x", "set": lambda: {1.0, 2.0},
                "1-D memmap": lambda: contain(x[:, 0].copy(), "memmap", directory),
                "y rows": lambda: x, "ragged": lambda: [[1.0] * n_in] * (batch - 1) + [[1.0] * (n_in + 1)]}[what]()
        if what == "y rows":
            t = t[:-1]
        ok, _ = expect_clear(lambda: lk.fit(net, data, t, epochs=1, verbose=0, loss="mse"), "fit")
        del data
    assert not ok, f"{bad}: accepted"

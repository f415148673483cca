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
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import erf, expit

import layerkit as lk
from layerkit import losses, optim
from layerkit.config import ConfigError

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
    if name == "relu":
        return np.maximum(x, 0), (x > 0).astype(float)
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
            g = g * reference_activation(payload, xin)[1]
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


def assert_close(actual, expected, dtype, what):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    scale = 1.0 + float(np.max(np.abs(expected), initial=0.0))
    rtol, atol = (2e-4, 2e-5 * scale) if np.dtype(dtype) == np.float32 else (1e-9, 1e-12 * scale)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol, err_msg=what)


LAYOUTS = st.sampled_from(["C", "F", "strided"])
BYTEORDERS = st.sampled_from(["=", ">"])


# --------------------------------------------------------------------------- passes
@settings(max_examples=300, **SETTINGS)
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
    dx = net.backward(trace, dys)
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


@settings(max_examples=100, **SETTINGS)
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


@settings(max_examples=300, **SETTINGS)
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


@settings(max_examples=60, **SETTINGS)
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


@settings(max_examples=150, **SETTINGS)
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
    st.integers(), st.none(), st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, **SETTINGS)
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
    widths = [item.get("n_in") for item in spec if isinstance(item, dict) and item.get("type") == "linear"]
    if widths:
        x = np.random.default_rng(0).normal(size=(2, widths[0]))
        assert net.predict(x).shape[0] == 2


# --------------------------------------------------------------------------- workspaces
@settings(max_examples=60, **SETTINGS)
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
    assert_close(net.backward(trace, dy), dx_ref, dtype, "dx")
    for index, (layer, (dW, db)) in enumerate(zip([l for l in layers if isinstance(l, lk.Linear)], grads_ref)):
        assert_close(layer.dW, dW, dtype, f"dW of Linear {index}")
        assert_close(layer.db, db, dtype, f"db of Linear {index}")


# --------------------------------------------------------------------------- fit
@settings(max_examples=30, **SETTINGS)
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

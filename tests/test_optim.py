"""layerkit.optim: state keys, the net/layer hand-off, saving and bad input."""
import gc
import json

import numpy as np
import pytest

import layerkit as lk
from layerkit import optim

from custom_layers import Scale


def _train(net, opt, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.normal(size=(8, 3))
        y, trace = net.forward(x)
        net.backward(trace, y - 1.0)
        net.step(opt)


def _net(seed=0):
    return lk.Net([lk.Linear(3, 4, rng=seed), lk.ReLU(), Scale(4)])


ALL = [optim.SGD(lr=0.01, momentum=0.9), optim.Adam(amsgrad=True), optim.AdamW(), optim.RMSprop(centered=True, momentum=0.5),
       optim.AdaGrad()]


def test_net_step_keys_state_by_layer_index_and_parameter_name():
    net = _net()
    opt = optim.Adam()
    _train(net, opt, 2)
    assert set(opt.state) == {"0.W", "0.b", "2.beta"}
    assert opt.state["2.beta"]["step"] == 2
    assert opt.state["0.W"]["exp_avg"].shape == (3, 4)


def test_layer_step_alone_names_the_layer_and_matches_net_step():
    a, b = Scale(4), Scale(4)
    opt_layers, opt_net = optim.Adam(lr=0.1), optim.Adam(lr=0.1)
    net = lk.Net([Scale(4)])
    for step in range(5):
        grad = np.full(4, step - 2.0)
        a.dbeta, b.dbeta, net[0].dbeta = grad, -grad, grad
        a.step(opt_layers)
        b.step(opt_layers)
        net.step(opt_net)
    assert set(opt_layers.state) == {"layer0.beta", "layer1.beta"}
    np.testing.assert_array_equal(a.beta, net[0].beta)
    assert not np.allclose(a.beta, b.beta)


def test_layer_names_are_never_reused_for_a_new_object():
    opt = optim.SGD(lr=0.1, momentum=0.9)
    layer = Scale(2)
    layer.dbeta = np.ones(2)
    layer.step(opt)
    del layer
    gc.collect()
    fresh = Scale(3)
    fresh.dbeta = np.ones(3)
    fresh.step(opt)  # a new object must not inherit the dead layer's (2,) momentum buffer
    assert fresh.beta.shape == (3,)
    assert opt.name_layer(fresh) in {"layer0", "layer1"}


def test_explicit_layer_name():
    opt = optim.SGD(lr=0.1, momentum=0.5)
    layer = Scale(2)
    opt.name_layer(layer, "scale")
    layer.dbeta = np.ones(2)
    layer.step(opt)
    assert list(opt.state) == ["scale.beta"]
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        opt.name_layer(layer, "a/b")


@pytest.mark.parametrize("opt", ALL, ids=lambda o: type(o).__name__)
def test_updates_in_place(opt):
    net = _net()
    W = net[0].W
    before = W.copy()
    _train(net, opt, 3)
    assert net[0].W is W
    assert not np.allclose(W, before)


@pytest.mark.parametrize("make", [
    lambda: optim.SGD(lr=optim.Warmup(optim.CosineDecay(0.05, 20), 3), momentum=0.9, nesterov=True),
    lambda: optim.Adam(lr=optim.StepDecay(0.01, 4), amsgrad=True, weight_decay=0.1),
    lambda: optim.AdamW(lr=optim.ExponentialDecay(0.01, 0.9)),
    lambda: optim.RMSprop(lr=0.01, centered=True, momentum=0.3),
    lambda: optim.AdaGrad(lr=0.05, lr_decay=0.1, initial_accumulator_value=0.2),
], ids=["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_state_dict_round_trip_resumes_exactly(make):
    straight, resumed = _net(), _net()
    opt = make()
    _train(straight, opt, 10)
    first = make()
    _train(resumed, first, 5)
    saved = first.state_dict()
    text = json.dumps(saved["config"])  # JSON-able
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in saved["arrays"].items())
    restored = type(first)(lr=1.0)  # every hyperparameter must come back from the dict
    restored.load_state_dict({"config": json.loads(text), "arrays": saved["arrays"]})
    assert restored.config() == first.config()
    # continue with the same data as the uninterrupted run's steps 5..9
    rng = np.random.default_rng(0)
    for step in range(10):
        x = rng.normal(size=(8, 3))
        if step < 5:
            continue
        y, trace = resumed.forward(x)
        resumed.backward(trace, y - 1.0)
        resumed.step(restored)
    for a, b in zip((straight[0].W, straight[2].beta), (resumed[0].W, resumed[2].beta)):
        np.testing.assert_array_equal(a, b)


def test_state_dict_holds_copies():
    net = _net()
    opt = optim.Adam()
    _train(net, opt, 1)
    saved = opt.state_dict()
    _train(net, opt, 1)
    assert int(saved["arrays"]["0.W/step"]) == 1
    assert not np.array_equal(saved["arrays"]["0.W/exp_avg"], opt.state["0.W"]["exp_avg"])


def test_optimizer_from_state_dict_rebuilds_the_type():
    opt = optim.RMSprop(lr=optim.CosineDecay(0.1, 10), centered=True)
    _train(_net(), opt, 2)
    copy = optim.optimizer_from_state_dict(opt.state_dict())
    assert isinstance(copy, optim.RMSprop) and copy.centered and copy.lr == opt.lr
    np.testing.assert_array_equal(copy.state["0.W"]["grad_avg"], opt.state["0.W"]["grad_avg"])


def test_load_state_dict_rejects_other_types_and_broken_dicts():
    saved = optim.SGD(lr=0.1).state_dict()
    with pytest.raises(ValueError, match="comes from 'SGD', not Adam"):
        optim.Adam().load_state_dict(saved)
    with pytest.raises(ValueError, match="keys 'config' and 'arrays'"):
        optim.Adam().load_state_dict({"config": {}})
    adam = optim.Adam()
    _train(_net(), adam, 1)
    broken = adam.state_dict()
    del broken["arrays"]["0.W/exp_avg_sq"]
    with pytest.raises(ValueError, match=r"'0.W' misses \['exp_avg_sq'\]"):
        optim.Adam().load_state_dict(broken)
    with pytest.raises(ValueError, match="unknown optimizer type 'Nope'"):
        optim.optimizer_from_state_dict({"config": {"type": "Nope"}, "arrays": {}})


def test_float32_parameters_stay_float32():
    net = lk.Net([lk.Linear(3, 2, rng=0, dtype=np.float32)])
    opt = optim.Adam(lr=0.1)
    y, trace = net.forward(np.ones((4, 3), dtype=np.float32))
    net.backward(trace, y)
    net.step(opt)
    assert net[0].W.dtype == np.float32
    assert opt.state["0.W"]["exp_avg"].dtype == np.float32


def test_one_optimizer_for_two_different_nets_is_refused_clearly():
    opt = optim.Adam()
    _train(_net(), opt, 1)
    other = lk.Net([lk.Linear(5, 2, rng=0)])
    y, trace = other.forward(np.ones((2, 5)))
    other.backward(trace, y)
    with pytest.raises(ValueError, match=r"state '0.W' was made for an array of shape \(3, 4\)"):
        other.step(opt)


def test_step_before_backward_names_the_missing_gradient():
    with pytest.raises(RuntimeError, match="no gradient dbeta yet"):
        Scale(2).step(optim.SGD())


def test_bad_hyperparameters_name_the_argument():
    with pytest.raises(ValueError, match=r"SGD: momentum must be in \[0, 1\), got 1.0"):
        optim.SGD(momentum=1.0)
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        optim.SGD(nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas must be in \[0, 1\)"):
        optim.Adam(betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="Adam: betas must be a pair"):
        optim.Adam(betas=0.9)
    with pytest.raises(ValueError, match="RMSprop: weight_decay: expected a number >= 0.0, got -1.0"):
        optim.RMSprop(weight_decay=-1)
    with pytest.raises(TypeError, match="AdaGrad: lr: expected a learning rate .* got str"):
        optim.AdaGrad(lr="fast")
    with pytest.raises(TypeError, match="expected a learning rate \\(float\\) or an optimizer"):
        Scale(2).step("fast")


def test_non_array_parameter_is_refused():
    layer = Scale(2)
    layer.beta = [1.0, 2.0]
    layer.dbeta = np.ones(2)
    with pytest.raises(TypeError, match=r"parameter Scale\(\).beta must be a writeable float ndarray"):
        layer.step(optim.SGD())


def test_float_step_still_plain_gradient_descent():
    layer = Scale(2)
    layer.dbeta = np.array([1.0, -2.0])
    before = layer.beta.copy()
    layer.step(0.5)
    np.testing.assert_allclose(layer.beta, before - 0.5 * layer.dbeta)


def test_sgd_formula_by_hand():
    layer = Scale(1)
    layer.beta[:] = 1.0
    opt = optim.SGD(lr=0.1, momentum=0.5, weight_decay=0.2)
    for _ in range(2):
        layer.dbeta = np.array([1.0])
        layer.step(opt)
    # g1 = 1 + 0.2*1 = 1.2; v1 = 1.2; p1 = 1 - 0.12 = 0.88
    # g2 = 1 + 0.176 = 1.176; v2 = 0.6 + 1.176 = 1.776; p2 = 0.88 - 0.1776
    assert layer.beta[0] == pytest.approx(0.88 - 0.1776, abs=1e-15)


def test_global_grad_norm_and_clipping_leave_small_gradients_alone():
    layer = Scale(2)
    layer.dbeta = np.array([3.0, 4.0])
    assert optim.global_grad_norm([layer]) == pytest.approx(5.0)
    assert optim.clip_grad_norm(layer, 10.0) == pytest.approx(5.0)
    np.testing.assert_array_equal(layer.dbeta, [3.0, 4.0])
    optim.clip_grad_norm(layer, 1.0)
    assert np.linalg.norm(layer.dbeta) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm: expected a number > 0.0"):
        optim.clip_grad_norm(layer, 0)


def test_duck_typed_layer_in_a_net_is_trained_without_subclassing():
    class Offset:  # not a layerkit.Layer: forward, backward and param_names are enough
        param_names = ("c",)

        def __init__(self):
            self.c = np.zeros(2)

        def forward(self, x):
            return x + self.c

        def backward(self, x, dy):
            self.dc = dy.sum(axis=0)
            return dy

    net = lk.Net([Offset()])
    opt = optim.SGD(lr=0.5, momentum=0.5)
    for _ in range(2):
        y, trace = net.forward(np.ones((4, 2)))
        net.backward(trace, np.ones_like(y))
        net.step(opt)
    np.testing.assert_allclose(net[0].c, -(2.0 + 3.0))  # v1 = 4, v2 = 0.5 * 4 + 4 = 6; 0.5 * (4 + 6)
    assert list(opt.state) == ["0.c"]


def test_optimizers_pickle_with_their_layers_and_resume_identically():
    """A pickled (optimizer, net, lone layer) triple continues exactly like the original."""
    import pickle

    import layerkit as lk

    def batch(seed):
        rng = np.random.default_rng(seed)
        return rng.normal(size=(8, 3)), rng.normal(size=(8, 2))

    def train(opt, net, lone, steps):
        for seed in range(steps):
            x, dy = batch(seed)
            _, trace = net.forward(x)
            net.backward(trace, dy)
            net.step(opt)
            lone.backward(x, dy)
            lone.step(opt)  # keyed by the name the optimizer gave the lone layer

    opt = lk.optim.Adam(lr=0.01)
    net = lk.Net([lk.Linear(3, 2, rng=0)])
    lone = lk.Linear(3, 2, rng=1)
    train(opt, net, lone, 3)
    opt2, net2, lone2 = pickle.loads(pickle.dumps((opt, net, lone)))
    assert opt2.name_layer(lone2) == opt.name_layer(lone) == "layer0"
    train(opt, net, lone, 3)
    train(opt2, net2, lone2, 3)
    np.testing.assert_array_equal(net2[0].W, net[0].W)
    np.testing.assert_array_equal(lone2.W, lone.W)


# ---------------------------------------------------------------- issue 15, item 7
def _sgd_config():
    return optim.SGD(lr=0.1).config()


@pytest.mark.parametrize("state, error, message", [
    ({"config": None, "arrays": {}}, TypeError, r"'config' must be a dict .*got NoneType"),
    ({"config": [], "arrays": {}}, TypeError, r"'config' must be a dict .*got list"),
    ({"config": "SGD", "arrays": {}}, TypeError, r"'config' must be a dict .*got str"),
    ({"config": _sgd_config(), "arrays": None}, TypeError, r"'arrays' must be a dict .*got NoneType"),
    ({"config": _sgd_config(), "arrays": []}, TypeError, r"'arrays' must be a dict .*got list"),
    ({"config": _sgd_config(), "arrays": {1: np.zeros(2)}}, TypeError, r"keys of 'arrays' must be strings"),
    ({"config": {**_sgd_config(), 3: 1}, "arrays": {}}, TypeError, r"keys of 'config' must be strings"),
    ({"config": {"type": "SGD"}, "arrays": {}}, ValueError, r"'config' has no 'lr'"),
    ({"config": {**_sgd_config(), "lr": [1]}, "arrays": {}}, (TypeError, ValueError), r"lr"),
    ({"config": {**_sgd_config(), "bogus": 1}, "arrays": {}}, ValueError, r"does not fit SGD .*bogus"),
    ({"config": {**_sgd_config(), "type": 5}, "arrays": {}}, ValueError, r"'type' \(a str\), got 5"),
    ({"config": _sgd_config(), "arrays": {"0.W/step": "one"}}, ValueError, r"'0.W/step'.*integer scalar"),
    # issue 21's long property run: ragged lists gave NumPy's "inhomogeneous shape" ValueError
    ({"config": _sgd_config(), "arrays": {"0.W/step": [None, []]}}, ValueError,
     r"SGD.load_state_dict: '0.W/step': the update count must be an integer scalar, got \[None, \[\]\]"),
])
def test_malformed_optimizer_state_gives_clear_errors(state, error, message):
    """Issue 15 item 7: these raised AttributeError or KeyError."""
    with pytest.raises(error, match=message):
        optim.SGD().load_state_dict(state)
    if isinstance(state["config"], dict) and state["config"].get("type") == "SGD":
        with pytest.raises(error, match=message):
            optim.optimizer_from_state_dict(state)


def test_adam_state_with_negative_step_is_refused():
    """Issue 15 item 7: step = -1 was accepted, then raised ZeroDivisionError at the next update."""
    adam = optim.Adam()
    _train(_net(), adam, 1)
    saved = adam.state_dict()
    saved["arrays"]["0.W/step"] = np.array(-1)
    with pytest.raises(ValueError, match=r"'0.W/step': the update count must be >= 0, got -1"):
        optim.Adam().load_state_dict(saved)


@pytest.mark.parametrize("slot_value, message", [
    (None, r"'0.W/exp_avg': expected a float array, got NoneType"),
    ("abc", r"'0.W/exp_avg': expected a float array, got str"),
    (np.array(["a", "b"]), r"'0.W/exp_avg': expected a float array, got dtype <U1"),
])
def test_adam_state_with_non_float_slot_is_refused(slot_value, message):
    adam = optim.Adam()
    _train(_net(), adam, 1)
    saved = adam.state_dict()
    saved["arrays"]["0.W/exp_avg"] = slot_value
    with pytest.raises(TypeError, match=message):
        optim.Adam().load_state_dict(saved)


def test_adam_update_needs_one_scratch_array_of_the_parameter_size():
    import tracemalloc

    layer = lk.Linear(1000, 250, rng=0)
    layer.dW, layer.db = np.ones_like(layer.W), np.ones_like(layer.b)
    opt = optim.Adam(lr=1e-3)
    layer.step(opt)  # creates the moments
    tracemalloc.start()
    layer.step(opt)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.5 * layer.W.nbytes  # five temporaries of W's size before

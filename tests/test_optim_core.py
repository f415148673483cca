"""The optimizers' compiled updates (layerkit/_kernels/optim.pxi): bit for bit their NumPy rules."""
import copy

import numpy as np
import pytest

import layerkit as lk
from layerkit import optim
from layerkit._backend import core

CASES = {
    "sgd": lambda: optim.SGD(lr=0.05),
    "sgd-momentum": lambda: optim.SGD(lr=0.05, momentum=0.9),
    "sgd-dampening-wd": lambda: optim.SGD(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    "sgd-nesterov-wd": lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
    "adam": lambda: optim.Adam(lr=0.01),
    "adam-wd-amsgrad": lambda: optim.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
    "adamw": lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
    "adamw-amsgrad-schedule": lambda: optim.AdamW(lr=optim.CosineDecay(0.01, 20), amsgrad=True),
    "rmsprop": lambda: optim.RMSprop(lr=0.01),
    "rmsprop-centered-momentum-wd": lambda: optim.RMSprop(lr=0.005, alpha=0.9, momentum=0.5, centered=True,
                                                          weight_decay=0.05),
    "rmsprop-momentum": lambda: optim.RMSprop(lr=0.005, momentum=0.9),
    "adagrad": lambda: optim.AdaGrad(lr=0.1),
    "adagrad-options": lambda: optim.AdaGrad(lr=0.1, lr_decay=0.01, weight_decay=0.05,
                                             initial_accumulator_value=0.1, eps=1e-8),
}


def _numpy_reference(optimizer, key, param, grad):
    """One update by the optimizer's NumPy rule (``_update``), as ``update_param`` counted it before the core."""
    state = optimizer.state.get(key)
    if state is None:
        state = optimizer.state[key] = {"step": 0, **optimizer._initial_state(param)}
    lr = optimizer.lr(state["step"])
    state["step"] += 1
    optimizer._update(param, grad.astype(param.dtype), state, lr, state["step"])


def _bytes(optimizer, key, param):
    return [param.tobytes()] + [optimizer.state[key][slot].tobytes() for slot in optimizer.slots]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(33, 17), (17,), (2, 3, 4)])
def test_compiled_update_equals_the_numpy_rule_bit_for_bit(name, dtype, shape, monkeypatch):
    calls = []
    real = core.optim_update
    monkeypatch.setattr(core, "optim_update", lambda *args: (calls.append(args), real(*args)))
    rng = np.random.default_rng(7)
    compiled, reference = CASES[name](), CASES[name]()
    p_compiled = rng.normal(size=shape).astype(dtype)
    p_reference = p_compiled.copy()
    start = p_compiled.copy()
    for _ in range(25):
        grad = rng.normal(size=shape).astype(dtype)
        compiled.update_param("p", p_compiled, grad)
        _numpy_reference(reference, "p", p_reference, grad)
    assert len(calls) == 25  # every update ran in the core
    assert not np.array_equal(p_compiled, start)
    assert _bytes(compiled, "p", p_compiled) == _bytes(reference, "p", p_reference)
    assert compiled.state["p"]["step"] == reference.state["p"]["step"] == 25


@pytest.mark.parametrize("name", ["adam-wd-amsgrad", "rmsprop-centered-momentum-wd", "sgd-nesterov-wd"])
def test_views_and_other_dtypes_take_the_numpy_rule_with_the_same_result(name, monkeypatch):
    """A Fortran-ordered or strided parameter, a big-endian one, a float64 gradient of a float32 parameter."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(6, 5))
    params = {"fortran": np.asfortranarray(base), "strided": base.copy()[:, ::2], "big-endian": base.astype(">f8"),
              "float32, float64 gradient": base.astype(np.float32)}
    for label, param in params.items():
        compiled, reference = CASES[name](), CASES[name]()
        mine, theirs = param.copy(order="K"), param.copy(order="K")
        if label == "strided":
            mine, theirs = base.copy()[:, ::2], base.copy()[:, ::2]
        for _ in range(5):
            grad = rng.normal(size=param.shape)
            compiled.update_param("p", mine, grad)
            _numpy_reference(reference, "p", theirs, grad)
        assert mine.tobytes() == theirs.tobytes(), label


def _net(dtype=np.float64):
    return lk.Net([lk.Linear(4, 6, rng=0, dtype=dtype), lk.Tanh(), lk.Linear(6, 3, rng=1, dtype=dtype)])


def _backward(net, seed):
    x = np.random.default_rng(seed).normal(size=(5, 4)).astype(net.dtype)
    y, trace = net.forward(x)
    net.backward(trace, y - 0.5, input_grad=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_net_step_updates_every_parameter_in_one_call(name, monkeypatch):
    calls = []
    real = core.optim_update
    monkeypatch.setattr(core, "optim_update", lambda kind, hyper, items: (calls.append(len(items)),
                                                                          real(kind, hyper, items)))
    net, reference = _net(np.float32), _net(np.float32)
    compiled_opt, reference_opt = CASES[name](), CASES[name]()
    for step in range(4):
        _backward(net, step)
        net.step(compiled_opt)
        _backward(reference, step)
        for index, layer in enumerate(reference.layers):
            for param in getattr(layer, "param_names", ()):
                _numpy_reference(reference_opt, f"{index}.{param}", getattr(layer, param), getattr(layer, "d" + param))
    assert calls == [4] * 4  # W and b of both Linear layers, one call per step
    for a, b in zip(net.layers, reference.layers):
        for param in getattr(a, "param_names", ()):
            assert getattr(a, param).tobytes() == getattr(b, param).tobytes()
    assert sorted(compiled_opt.state) == ["0.W", "0.b", "2.W", "2.b"]


def test_a_subclass_with_its_own_rule_keeps_it(monkeypatch):
    class Halved(optim.SGD):
        def _update(self, param, grad, state, lr, step):
            param -= 0.5 * lr * grad

    monkeypatch.setattr(core, "optim_update", lambda *args: pytest.fail("the subclass's rule must run"))
    param = np.ones(3)
    Halved(lr=0.2).update_param("p", param, np.ones(3))
    np.testing.assert_array_equal(param, np.full(3, 0.9))


def test_a_layer_without_gradient_stops_the_step_after_the_layers_before_it():
    """As one by one: the parameters before the bad layer are updated and counted, none after."""
    net = _net()
    _backward(net, 0)
    net[2].dW = None
    opt = optim.Adam(lr=0.01)
    before = net[0].W.copy()
    with pytest.raises(RuntimeError, match="no gradient dW"):
        net.step(opt)
    assert not np.array_equal(net[0].W, before)
    assert opt.state["0.W"]["step"] == opt.state["0.b"]["step"] == 1
    assert "2.W" not in opt.state


def test_decay_biases_false_leaves_biases_undecayed_in_both_rules():
    rng = np.random.default_rng(0)
    for make in (lambda: optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.5),
                 lambda: optim.AdamW(lr=0.1, weight_decay=0.5)):
        compiled, reference = make(), make()
        compiled.decay_biases = reference.decay_biases = False
        bias, bias_ref = np.ones(4), np.ones(4)
        plain = make()
        bias_plain = np.ones(4)
        plain.weight_decay = 0.0
        for _ in range(3):
            grad = rng.normal(size=4)
            compiled.update_param("b", bias, grad)
            _numpy_reference(reference, "b", bias_ref, grad)
            plain.update_param("b", bias_plain, grad)
        assert bias.tobytes() == bias_ref.tobytes() == bias_plain.tobytes()
        assert compiled.decay_for(np.ones((2, 2))) == 0.5 and compiled.decay_for(bias) == 0.0


def test_state_dict_after_compiled_steps_resumes_bit_for_bit():
    net = _net(np.float32)
    opt = optim.Adam(lr=optim.ExponentialDecay(0.01, 0.9), amsgrad=True)
    for step in range(3):
        _backward(net, step)
        net.step(opt)
    twin = copy.deepcopy(net)
    resumed = optim.optimizer_from_state_dict(opt.state_dict())
    for step in range(3, 6):
        _backward(net, step)
        net.step(opt)
        _backward(twin, step)
        twin.step(resumed)
    for a, b in zip(net.layers, twin.layers):
        for param in getattr(a, "param_names", ()):
            assert getattr(a, param).tobytes() == getattr(b, param).tobytes()
    assert resumed.state["0.W"]["step"] == opt.state["0.W"]["step"] == 6


def test_the_kernel_refuses_operands_that_break_its_contract():
    p = np.zeros(4)
    with pytest.raises(ValueError, match="dtype and size"):
        core.optim_update(core.OPT_SGD, (0.0, 0.0, 0.0), [(p, np.zeros(4, np.float32), (None,), 0.1, 1, 0.0)])
    with pytest.raises(ValueError, match="dtype and size"):
        core.optim_update(core.OPT_ADAM, (0.9, 0.999, 1e-8, 0.0),
                          [(p, np.zeros(4), (np.zeros(3), np.zeros(4), None), 0.1, 1, 0.0)])
    with pytest.raises(ValueError, match="read-only"):
        frozen = np.zeros(4)
        frozen.flags.writeable = False
        core.optim_update(core.OPT_SGD, (0.0, 0.0, 0.0), [(frozen, np.zeros(4), (None,), 0.1, 1, 0.0)])
    with pytest.raises(ValueError, match="unknown optimizer"):
        core.optim_update(17, (), [])

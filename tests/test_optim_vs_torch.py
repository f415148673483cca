"""layerkit.optim against torch.optim: same start, same gradients, 50 steps, float64."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import optim

from custom_layers import Scale

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra, torch==2.13.0) is needed to compare "
                                            "layerkit.optim with torch.optim")

STEPS = 50


def _net():
    return lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), Scale(4)])


def _gradients(arrays, step):
    """Gradients that depend on the parameters and the step, the same for both libraries."""
    rng = np.random.default_rng(step)
    return [0.3 * np.tanh(a) + a ** 3 * 0.05 + rng.normal(size=a.shape) for a in arrays]


def _run_layerkit(optimizer, net=None):
    net = net or _net()
    params = [net[0].W, net[0].b, net[2].beta]
    for step in range(STEPS):
        net[0].dW, net[0].db, net[2].dbeta = _gradients(params, step)
        net.step(optimizer)
    return [p.copy() for p in params]


def _run_torch(make_optimizer, make_scheduler=None):
    net = _net()
    params = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True)
              for a in (net[0].W, net[0].b, net[2].beta)]
    optimizer = make_optimizer(params)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    for step in range(STEPS):
        grads = _gradients([p.detach().numpy() for p in params], step)
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return [p.detach().numpy().copy() for p in params]


CASES = [
    ("sgd", lambda: optim.SGD(lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    ("sgd-momentum", lambda: optim.SGD(lr=0.05, momentum=0.9),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("sgd-dampening-wd", lambda: optim.SGD(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("sgd-nesterov-wd", lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("adam", lambda: optim.Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    ("adam-wd-amsgrad", lambda: optim.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
     lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("adamw", lambda: optim.AdamW(lr=0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    ("adamw-amsgrad", lambda: optim.AdamW(lr=0.01, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=0.01, amsgrad=True)),
    ("rmsprop", lambda: optim.RMSprop(lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    ("rmsprop-centered-momentum-wd",
     lambda: optim.RMSprop(lr=0.005, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.05),
     lambda p: torch.optim.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.05)),
    ("rmsprop-momentum", lambda: optim.RMSprop(lr=0.005, momentum=0.9),
     lambda p: torch.optim.RMSprop(p, lr=0.005, momentum=0.9)),
    ("adagrad", lambda: optim.AdaGrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    ("adagrad-options",
     lambda: optim.AdaGrad(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-8),
     lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.05,
                                   initial_accumulator_value=0.1, eps=1e-8)),
]


@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[case[0] for case in CASES])
def test_matches_torch_optim_for_50_steps(name, ours, theirs):
    start = [a.copy() for a in (_net()[0].W, _net()[0].b, _net()[2].beta)]
    mine = _run_layerkit(ours())
    reference = _run_torch(theirs)
    for before, a, b in zip(start, mine, reference):
        assert not np.allclose(a, before)  # the run moved the parameters
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


SCHEDULE_CASES = [
    ("exponential", lambda: optim.ExponentialDecay(0.1, 0.95),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.95)),
    ("step", lambda: optim.StepDecay(0.1, step_size=7, gamma=0.5),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    ("cosine", lambda: optim.CosineDecay(0.1, total_steps=STEPS, min_lr=0.001),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.001)),
    ("warmup", lambda: optim.Warmup(0.1, steps=10, start_factor=0.25),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=10)),
]


@pytest.mark.parametrize("name, ours, theirs", SCHEDULE_CASES, ids=[case[0] for case in SCHEDULE_CASES])
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_schedules_match_torch_lr_scheduler(name, ours, theirs, optimizer):
    kwargs = {"momentum": 0.9} if optimizer == "SGD" else {}
    mine = _run_layerkit(getattr(optim, optimizer)(lr=ours(), **kwargs))
    reference = _run_torch(lambda p: getattr(torch.optim, optimizer)(p, lr=0.1, **kwargs), theirs)
    constant = _run_layerkit(getattr(optim, optimizer)(lr=0.1, **kwargs))
    for a, b, c in zip(mine, reference, constant):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
        assert not np.allclose(a, c)  # the schedule changed the result


def test_schedule_values_match_torch():
    for _, ours, theirs in SCHEDULE_CASES:
        schedule = ours()
        param = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([param], lr=0.1)
        scheduler = theirs(opt)
        for t in range(STEPS):
            assert schedule(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
            opt.step()
            scheduler.step()


def test_clip_grad_norm_matches_torch():
    net = _net()
    grads = _gradients([net[0].W, net[0].b, net[2].beta], 0)
    net[0].dW, net[0].db, net[2].dbeta = [g.copy() for g in grads]
    tensors = [torch.zeros(g.shape, dtype=torch.float64) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g.copy())
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm=1.0)
    norm = optim.clip_grad_norm(net, 1.0)
    assert norm == pytest.approx(float(expected_norm), rel=1e-12)
    assert norm > 1.0
    for mine, t in zip((net[0].dW, net[0].db, net[2].dbeta), tensors):
        np.testing.assert_allclose(mine, t.grad.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[case[0] for case in CASES])
def test_float32_matches_torch_optim_within_rounding(name, ours, theirs):
    """The compiled float32 updates against torch.optim's in float32: 50 steps, differences of rounding only."""
    net = lk.Net([lk.Linear(3, 4, rng=0, dtype=np.float32), lk.ReLU(), lk.Linear(4, 2, rng=1, dtype=np.float32)])
    params = [net[0].W, net[0].b, net[2].W]
    tensors = [torch.tensor(a.copy(), requires_grad=True) for a in params]
    optimizer, reference = ours(), theirs(tensors)
    start = [a.copy() for a in params]
    for step in range(STEPS):
        grads = [g.astype(np.float32) for g in _gradients(params, step)]
        net[0].dW, net[0].db, net[2].dW = grads
        net[2].db = np.zeros(2, np.float32)
        net.step(optimizer)
        for t, g in zip(tensors, grads):
            t.grad = torch.from_numpy(g.copy())
        reference.step()
    for before, a, t in zip(start, params, tensors):
        assert a.dtype == np.float32 and not np.allclose(a, before)
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=2e-5, atol=2e-5)

"""binary_cross_entropy_with_logits, huber_loss and l1_loss: equal to torch, stable, checked, usable by fit."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import losses
from layerkit._epoch import EpochRunner

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def _numeric_gradient(loss, y, t, w, h=1e-6):
    """Central differences of the mean loss in float64."""
    grad = np.zeros_like(y)
    for index in np.ndindex(y.shape):
        up, down = y.copy(), y.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (loss(up, t, sample_weight=w)[0] - loss(down, t, sample_weight=w)[0]) / (2 * h)
    return grad


def _case(name, dtype, rng, shape=(7, 3)):
    if name == "bce_with_logits":
        y = rng.normal(scale=3, size=shape)
        t = rng.uniform(size=shape)
        t[0] = (t[0] > 0.5)  # hard labels too
    else:
        y = rng.normal(size=shape)
        t = y + rng.normal(scale=1.5, size=shape)  # residuals on both sides of delta
    return y.astype(dtype), t.astype(dtype)


LOSSES = {
    "bce_with_logits": (losses.binary_cross_entropy_with_logits, lambda torch, w: torch.nn.BCEWithLogitsLoss(weight=w)),
    "huber": (losses.huber_loss, lambda torch, w: _weighted(torch, torch.nn.HuberLoss(reduction="none"), w)),
    "huber delta 0.5": (losses.HuberLoss(0.5),
                        lambda torch, w: _weighted(torch, torch.nn.HuberLoss(delta=0.5, reduction="none"), w)),
    "l1": (losses.l1_loss, lambda torch, w: _weighted(torch, torch.nn.L1Loss(reduction="none"), w)),
}


def _weighted(torch, elementwise, w):
    """torch's mean of an unreduced loss, each row scaled by its weight (HuberLoss and L1Loss take no weight)."""
    def loss(y, t):
        values = elementwise(y, t)
        return (values if w is None else values * w).mean()
    return loss


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_gradient_equal_torch(name, dtype, weighted):
    torch = pytest.importorskip("torch")
    loss, make_torch = LOSSES[name]
    rng = np.random.default_rng(len(name) + weighted)
    y, t = _case(name.split()[0], dtype, rng)
    w = rng.uniform(0, 2, size=y.shape[0]).astype(dtype) if weighted else None
    value, grad = loss(y, t, sample_weight=w)
    y_torch = torch.tensor(y.astype(np.float64), requires_grad=True)
    w_torch = None if w is None else torch.tensor(w.astype(np.float64)[:, None])
    expected = make_torch(torch, w_torch)(y_torch, torch.tensor(t.astype(np.float64)))
    expected.backward()
    assert grad.dtype == dtype and grad.shape == y.shape
    assert value == pytest.approx(expected.item(), rel=TOL[dtype], abs=1e-12)
    np.testing.assert_allclose(grad, y_torch.grad.numpy(), rtol=TOL[dtype] * 4, atol=TOL[dtype] / y.size)


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradient_is_that_of_the_value_by_central_differences(name):
    loss, _ = LOSSES[name]
    rng = np.random.default_rng(11)
    y, t = _case(name.split()[0], np.float64, rng, shape=(5, 2))
    w = rng.uniform(0.5, 2, size=5)
    _, grad = loss(y, t, sample_weight=w)
    np.testing.assert_allclose(grad, _numeric_gradient(loss, y, t, w), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_stable_for_confident_logits(dtype):
    z = np.array([[1e4], [-1e4], [80.0], [-80.0], [0.0]], dtype=dtype)
    t = np.array([1, 0, 0, 1, 1], dtype=dtype)
    with np.errstate(all="raise"):
        value, grad = lk.binary_cross_entropy_with_logits(z, t)
    expected = (0 + 0 + 80 + 80 + np.log(2)) / 5  # the exact losses: 0 when right, |z| when confidently wrong
    assert value == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(grad.ravel(), np.array([0, 0, 1, -1, -0.5]) / 5, atol=1e-7)


def test_bce_with_logits_equals_bce_of_the_sigmoid():
    rng = np.random.default_rng(4)
    z, t = rng.normal(size=(6, 2)), (rng.random((6, 2)) < 0.5).astype(float)
    p = 1 / (1 + np.exp(-z))
    value, grad = lk.binary_cross_entropy_with_logits(z, t)
    bce_value, bce_grad = lk.binary_cross_entropy(p, t)
    assert value == pytest.approx(bce_value, rel=1e-12)
    np.testing.assert_allclose(grad, bce_grad * p * (1 - p), rtol=1e-10)  # the chain rule through the sigmoid
    assert losses.binary_cross_entropy_with_logits.accuracy(z, t) == losses.binary_cross_entropy.accuracy(p, t)


def test_huber_is_half_the_squared_error_inside_delta_and_linear_beyond():
    y, t = np.array([[0.5], [3.0], [-4.0]]), np.zeros(3)
    value, grad = losses.HuberLoss(2.0)(y, t)
    assert value == pytest.approx((0.125 + 2 * (3 - 1) + 2 * (4 - 1)) / 3)
    np.testing.assert_array_equal(grad.ravel(), np.array([0.5, 2.0, -2.0]) / 3)


def test_l1_gradient_is_zero_where_the_prediction_is_exact():
    value, grad = lk.l1_loss(np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([[1.0, 0.0], [4.0, -1.0]]))
    assert value == pytest.approx(3 / 4)
    np.testing.assert_array_equal(grad, np.array([[0, 1], [-1, 0]]) / 4)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_fortran_ordered_and_strided_inputs_give_the_same_result(name, dtype):
    loss, _ = LOSSES[name]
    y, t = _case(name.split()[0], dtype, np.random.default_rng(2), shape=(6, 4))
    w = np.linspace(0, 2, 6)
    expected_value, expected_grad = loss(y, t, sample_weight=w)
    for pred, target in ((np.asfortranarray(y), np.asfortranarray(t)),
                         (np.repeat(y, 2, axis=1)[:, ::2], t.astype(np.float64).tolist())):
        value, grad = loss(pred, target, sample_weight=w[::-1][::-1])
        assert value == pytest.approx(expected_value, rel=TOL[dtype])
        np.testing.assert_allclose(grad, expected_grad, rtol=TOL[dtype])


@pytest.mark.parametrize("loss, y, t, error, message", [
    (lk.binary_cross_entropy_with_logits, np.zeros((2, 1)), np.array([2.0, 0.0]), ValueError,
     r"binary_cross_entropy_with_logits: targets must be in \[0, 1\]"),
    (lk.binary_cross_entropy_with_logits, np.array([[np.nan], [0.0]]), np.zeros(2),
     losses.NonFinitePredictionsError, "binary_cross_entropy_with_logits: predictions contains 1 NaN"),
    (lk.huber_loss, np.zeros((2, 2)), np.zeros((2, 3)), ValueError,
     r"huber_loss: targets must have the prediction's shape \(2, 2\), got \(2, 3\)"),
    (lk.l1_loss, np.zeros((2, 1)), np.array([np.inf, 0.0]), ValueError, "l1_loss: targets contains 1 NaN or infinite"),
    (lk.l1_loss, np.zeros((2, 1)), np.array(["a", "b"]), TypeError, "l1_loss: targets must be real numbers"),
])
def test_bad_input_names_the_loss_and_the_problem(loss, y, t, error, message):
    with pytest.raises(error, match=message):
        loss(y, t)
    with pytest.raises(error, match=message):
        loss.batch(y, loss.prepare_targets(t, y.dtype), np.empty_like(y))


@pytest.mark.parametrize("loss", [lk.binary_cross_entropy_with_logits, lk.huber_loss, lk.l1_loss])
def test_bad_sample_weights_are_refused(loss):
    with pytest.raises(ValueError, match="sample_weight must be non-negative, got minimum -1"):
        loss(np.zeros((3, 1)), np.zeros(3), sample_weight=np.array([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("delta, error, message", [
    (0, ValueError, "HuberLoss: delta must be a positive finite number, got 0"),
    (np.inf, ValueError, "got inf"),
    ("1", TypeError, "HuberLoss: delta must be a positive number, got str '1'"),
])
def test_huber_delta_is_checked(delta, error, message):
    with pytest.raises(error, match=message):
        losses.HuberLoss(delta)


@pytest.mark.parametrize("name, kind", [
    ("bce_with_logits", losses.BinaryCrossEntropyWithLogits), ("binary_cross_entropy_with_logits",
                                                               losses.BinaryCrossEntropyWithLogits),
    ("huber", losses.HuberLoss), ("HUBER_LOSS", losses.HuberLoss), ("l1", losses.L1Loss), ("mae", losses.L1Loss),
    ("mean_absolute_error", losses.L1Loss), ("l1_loss", losses.L1Loss),
])
def test_registered_by_name(name, kind):
    assert type(lk.losses.get_loss(name)) is kind


def _logistic_problem(dtype, n=53):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(dtype)
    y = (x[:, 0] - x[:, 1] > 0).astype(float)
    r = np.random.default_rng(1)
    return lk.Net([lk.Linear(4, 6, rng=r, dtype=dtype), lk.Tanh(), lk.Linear(6, 1, rng=r, dtype=dtype)]), x, y


@pytest.mark.parametrize("loss", ["bce_with_logits", "l1", "huber"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_in_the_core_equals_the_python_loop(loss, dtype, monkeypatch):
    runs = []
    for in_core in (True, False):
        net, x, y = _logistic_problem(dtype)
        with monkeypatch.context() as patch:
            if not in_core:
                patch.setattr(EpochRunner, "for_fit", classmethod(lambda cls, *a, **k: None))
            history = lk.fit(net, x, y, loss=loss, epochs=3, lr=0.1, batch_size=15, seed=2, verbose=False,
                             sample_weight=np.linspace(0.5, 1.5, len(x)))
        runs.append((net, history))
    (net_a, history_a), (net_b, history_b) = runs
    for layer_a, layer_b in zip(net_a.layers, net_b.layers):
        for name in getattr(layer_a, "param_names", ()):
            assert getattr(layer_a, name).tobytes() == getattr(layer_b, name).tobytes()
    assert history_a.metrics == history_b.metrics
    assert ("train_accuracy" in history_a) == (loss == "bce_with_logits")


def test_logits_l1_and_huber_run_in_the_core():
    for loss in ("bce_with_logits", "l1", "huber", lk.losses.HuberLoss(delta=0.25)):
        net, x, y = _logistic_problem(np.float64)
        assert lk._epoch._loss_code(lk.losses.get_loss(loss), y) is not None


@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_epochs_in_the_core_take_its_delta(dtype, monkeypatch):
    """Whole epochs in the core with delta != 1: bit for bit the Python loop, and not the fit of delta=1."""
    calls, runs = [], []
    run = EpochRunner.run

    def counted(self, order):
        result = run(self, order)
        calls.append(None if result is None else result[0])
        return result

    for in_core, delta in ((True, 0.2), (False, 0.2), (True, 1.0)):
        net, x, y = _logistic_problem(dtype)
        y = 3 * (y - 0.5)  # residuals beyond 0.2 and within it
        with monkeypatch.context() as patch:
            if in_core:
                patch.setattr(EpochRunner, "run", counted)
            else:
                patch.setattr(EpochRunner, "for_fit", classmethod(lambda cls, *a, **k: None))
            history = lk.fit(net, x, y, loss=lk.losses.HuberLoss(delta=delta), epochs=3, lr=0.1, batch_size=15,
                             seed=2, verbose=False)
        runs.append((net, history))
    assert calls and all(done is not None and done > 0 for done in calls)  # every epoch in the core
    (net_a, history_a), (net_b, history_b), (net_c, history_c) = runs
    for layer_a, layer_b in zip(net_a.layers, net_b.layers):
        for name in getattr(layer_a, "param_names", ()):
            assert getattr(layer_a, name).tobytes() == getattr(layer_b, name).tobytes()
    assert history_a.metrics == history_b.metrics and "train_accuracy" not in history_a
    assert history_a["train_loss"] == history_b["train_loss"]
    assert history_a["train_loss"] != history_c["train_loss"]  # delta reached the core


def test_a_huber_delta_set_after_construction_trains_as_the_python_loop_does():
    loss = lk.losses.HuberLoss(delta=0.5)
    loss.delta = 2.0  # the kernel keeps 0.5: the core must not train with 2.0
    net, x, y = _logistic_problem(np.float64)
    assert lk._epoch._loss_code(loss, y) is None


def test_a_net_ending_in_linear_learns_with_logits_and_no_sigmoid():
    net, x, y = _logistic_problem(np.float64, n=200)
    history = lk.fit(net, x, y, loss="bce_with_logits", epochs=40, lr=0.5, batch_size=20, seed=0, verbose=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert np.mean((net.predict(x).ravel() > 0) == (y > 0.5)) > 0.9
    assert history["train_accuracy"][-1] > 0.9

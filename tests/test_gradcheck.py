"""Tests of layerkit.testing.gradcheck: check_grad, assert_grad and the GradReport they return."""
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

import layerkit as lk
from layerkit.testing import GradcheckError, GradReport, assert_grad, check_grad, random_input


# ----------------------------------------------------------------- layers under test
class DoubledDx(lk.Linear):
    """Backward off by a factor: dx is twice the truth."""

    def backward(self, x, dy):
        return 2 * super().backward(x, dy)

    def __repr__(self):
        return f"DoubledDx({self.n_in}, {self.n_out})"


class ScaledDW(lk.Linear):
    """Backward off by a factor in one parameter: dW is 1.01 times the truth."""

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        self.dW = self.dW * 1.01
        return dx

    def __repr__(self):
        return f"ScaledDW({self.n_in}, {self.n_out})"


class ForgetsDb(lk.Linear):
    """Missing parameter gradient: never stores db."""

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        del self.db
        return dx

    def __repr__(self):
        return f"ForgetsDb({self.n_in}, {self.n_out})"


class TransposedDW(lk.Linear):
    """Transposed gradient: dW = (x.T @ dy).T, which only has the right shape when W is square."""

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        self.dW = np.ascontiguousarray(self.dW.T)
        return dx

    def __repr__(self):
        return f"TransposedDW({self.n_in}, {self.n_out})"


class OneSignWrong(lk.Linear):
    """Wrong sign in one entry of dW."""

    entry = (1, 2)

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        self.dW = self.dW.copy()
        self.dW[self.entry] *= -1
        return dx

    def __repr__(self):
        return f"OneSignWrong({self.n_in}, {self.n_out})"


class Square(lk.Layer):
    """x ** 2, written as a user would: forward and backward only."""

    def forward(self, x):
        return np.asarray(x, dtype=float) ** 2

    def backward(self, x, dy):
        return 2 * np.asarray(x, dtype=float) * dy


class SigmoidSignSlip(lk.Sigmoid):
    """Wrong sign in one entry of dx of a parameterless layer."""

    def backward(self, x, dy):
        dx = super().backward(x, dy).copy()
        dx[0, 1] *= -1
        return dx

    def __repr__(self):
        return "SigmoidSignSlip()"


def builtin_layers():
    return {
        "linear64": lambda n_in: lk.Linear(n_in, 3, rng=0),
        "linear32": lambda n_in: lk.Linear(n_in, 3, rng=0, dtype=np.float32),
        "sigmoid": lambda n_in: lk.Sigmoid(),
        "relu": lambda n_in: lk.ReLU(),
        "softmax": lambda n_in: lk.Softmax(),
    }


# ----------------------------------------------------------------- passes on what is right
@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("kind", sorted(builtin_layers()))
def test_assert_grad_passes_on_builtin_layers(kind, batch):
    layer = builtin_layers()[kind](4)
    x = random_input((batch, 4), kinks=layer.kinks, seed=batch)
    report = assert_grad(layer, x, seed=1)
    expected = ["x", "W", "b"] if kind.startswith("linear") else ["x"]
    assert list(report.tensors) == expected
    assert report["x"].n_checked == min(batch * 4, 200)
    assert report.max_abs_error < 1e-7


def test_float32_layer_is_checked_through_a_float64_copy_and_left_untouched():
    layer = lk.Linear(4, 3, rng=0, dtype=np.float32)
    before = layer.W.copy()
    report = assert_grad(layer, random_input((6, 4), seed=0), seed=0)
    assert report.converted_from == "float32"
    assert "float64 copy of a float32 layer" in str(report)
    assert layer.W.dtype == np.float32 and np.array_equal(layer.W, before)
    assert getattr(layer, "dW", None) is None  # backward ran on the copy


def test_float32_input_is_checked_in_float64_and_noted():
    report = assert_grad(lk.Sigmoid(), random_input((3, 4), seed=0).astype(np.float32), seed=0)
    assert any("float32" in note for note in report.notes)


@pytest.mark.parametrize("seed", range(5))
def test_assert_grad_passes_on_random_nets(seed):
    net, x = random_net(seed)
    report = assert_grad(net, x, seed=seed)
    linear_positions = [i for i, layer in enumerate(net) if isinstance(layer, lk.Linear)]
    assert [name for name in report.tensors if name != "x"] == [
        f"layers[{i}].{p}" for i in linear_positions for p in ("W", "b")]


def random_net(seed, batch=None):
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(2, 7, size=rng.integers(2, 4) + 1)]
    layers = []
    for n_in, n_out in zip(widths, widths[1:]):
        linear = lk.Linear(n_in, n_out, rng=rng)
        linear.b[...] = rng.normal(scale=0.1, size=n_out)  # zero biases put dead ReLU rows on a kink
        layers.append(linear)
        layers.append([lk.Sigmoid, lk.ReLU][int(rng.integers(2))]())
    layers.append(lk.Softmax())
    b = batch or int(rng.integers(1, 20))
    return lk.Net(layers), rng.normal(size=(b, widths[0]))


def test_float32_net_is_checked_through_a_float64_copy():
    net = lk.Net([lk.Linear(4, 5, rng=0, dtype=np.float32), lk.Sigmoid(), lk.Linear(5, 2, rng=1, dtype=np.float32)])
    report = assert_grad(net, random_input((7, 4), seed=0), seed=1)
    assert report.converted_from == "float32"
    assert list(report.tensors) == ["x", "layers[0].W", "layers[0].b", "layers[2].W", "layers[2].b"]
    assert net[0].W.dtype == np.float32 and getattr(net[0], "dW", None) is None


def test_parameters_are_perturbed_in_place_and_restored_bit_for_bit():
    layer = lk.Linear(5, 4, rng=3)
    layer.b = np.random.default_rng(0).normal(size=4) / 3  # values whose +eps-eps does not round-trip
    W, b = layer.W, layer.b
    W_bytes, b_bytes = W.tobytes(), b.tobytes()
    assert_grad(layer, random_input((8, 5), seed=0), seed=0)
    assert layer.W is W and layer.b is b
    assert W.tobytes() == W_bytes and b.tobytes() == b_bytes


def test_fortran_ordered_parameter_is_perturbed_and_restored():
    layer = lk.Linear(4, 3, rng=0)
    layer.W = np.asfortranarray(layer.W)
    before = layer.W.copy(order="A")
    report = assert_grad(layer, random_input((5, 4), seed=0), seed=0)
    assert report["W"].n_checked == 12
    assert layer.W.flags.f_contiguous and np.array_equal(layer.W, before)


# ----------------------------------------------------------------- fails on what is wrong
def failing_tensors(layer, x, **options):
    with pytest.raises(AssertionError) as info:
        assert_grad(layer, x, seed=0, **options)
    return info.value


def test_backward_off_by_a_factor_in_dx_is_named_x():
    layer = DoubledDx(4, 3, rng=0)
    error = failing_tensors(layer, random_input((5, 4), seed=0))
    message = str(error)
    assert "gradient check failed for DoubledDx(4, 3)" in message
    assert "\n  x: worst at index (" in message
    assert "\n  W:" not in message and "\n  b:" not in message
    assert [t.name for t in check_grad(layer, random_input((5, 4), seed=0), seed=0).failures()] == ["x"]


def test_parameter_gradient_off_by_a_factor_is_named_W_with_both_values():
    layer = ScaledDW(4, 3, rng=0)
    report = check_grad(layer, random_input((5, 4), seed=0), seed=0)
    assert [t.name for t in report.failures()] == ["W"]
    index, analytic, numeric = report["W"].worst(1e-5, 1e-7)
    assert analytic == pytest.approx(1.01 * numeric, rel=1e-6)
    message = str(failing_tensors(layer, random_input((5, 4), seed=0)))
    assert f"W: worst at index {index}: analytic {analytic:.10g} vs numeric {numeric:.10g}" in message


def test_missing_parameter_gradient_is_named():
    with pytest.raises(AssertionError, match=r"ForgetsDb\(4, 3\).*\n  b: backward stored no gradient db"):
        assert_grad(ForgetsDb(4, 3, rng=0), random_input((5, 4), seed=0), seed=0)


def test_stale_gradient_from_an_earlier_backward_does_not_hide_a_missing_one():
    layer = ForgetsDb(4, 3, rng=0)
    layer.db = np.zeros(3)
    report = check_grad(layer, random_input((5, 4), seed=0), seed=0)
    assert report["b"].problem == "backward stored no gradient db"


def test_transposed_gradient_of_a_square_weight_is_named_W():
    report = check_grad(TransposedDW(4, 4, rng=0), random_input((5, 4), seed=0), seed=1)
    assert [t.name for t in report.failures()] == ["W"]
    index, analytic, numeric = report["W"].worst(1e-5, 1e-7)
    assert index[0] != index[1]


def test_transposed_gradient_of_a_rectangular_weight_reports_the_shape():
    with pytest.raises(AssertionError, match=r"W: dW has shape \(3, 4\), expected \(4, 3\) \(transposed\?\)"):
        assert_grad(TransposedDW(4, 3, rng=0), random_input((5, 4), seed=0), seed=0)


def test_wrong_sign_in_one_entry_is_found_at_that_index():
    message = str(failing_tensors(OneSignWrong(4, 3, rng=0), random_input((5, 4), seed=0)))
    assert "W: worst at index (1, 2)" in message
    assert "1 of 12 checked coordinates out of tolerance" in message


def test_wrong_sign_in_one_dx_entry_of_an_activation_is_found():
    message = str(failing_tensors(SigmoidSignSlip(), random_input((3, 4), seed=0)))
    assert "SigmoidSignSlip()" in message and "x: worst at index (0, 1)" in message


def test_wrong_entry_outside_the_coordinate_sample_is_caught_by_the_directional_check():
    layer = OneSignWrong(40, 30, rng=0)
    layer.entry = (17, 11)
    x = random_input((6, 40), seed=0)
    report = None
    for seed in range(20):  # find a sample of 10 coordinates that misses the wrong entry
        report = check_grad(layer, x, seed=seed, max_coords=10, directions=1)
        if np.ravel_multi_index(layer.entry, (40, 30)) not in report["W"].indices:
            break
    assert report["W"].n_failed() == 0
    assert [t.name for t in report.failures()] == ["W"]
    assert "derivative along a random direction" in report["W"].describe_failure()


def test_a_directional_derivative_that_cancels_to_near_zero_is_judged_by_the_size_of_its_terms():
    # 256 input gradients of size ~10 sum along this direction to 0.00135: rounding in the
    # central difference (~2e-8) is tiny next to the terms, though not next to the result
    rng = np.random.default_rng(20261128)
    net = lk.Net([lk.Linear(4, 3, rng=rng), Square(), lk.Linear(3, 3, rng=rng), lk.ReLU(),
                  lk.Linear(3, 2, rng=rng), Square()])
    for layer in net:
        if isinstance(layer, lk.Linear):
            layer.b = rng.normal(size=layer.b.shape)
    x, dy = rng.normal(size=(64, 4)), rng.normal(size=(64, 2))
    report = check_grad(net, x, dy=dy, max_coords=None, seed=332696330911146464)
    (analytic, numeric), = report["x"].directional
    assert abs(numeric) < 0.01 and abs(analytic - numeric) > 1e-8 + 1e-6 * abs(numeric)
    assert report["x"].directional_scale[0] > 10
    assert report.passed(rtol=1e-6, atol=1e-8)


def test_a_wrong_layer_inside_a_net_is_named_by_its_position():
    net = lk.Net([lk.Linear(4, 5, rng=0), lk.Sigmoid(), ScaledDW(5, 2, rng=1), lk.Softmax()])
    with pytest.raises(AssertionError, match=r"\n  layers\[2\]\.W: worst at index") as info:
        assert_grad(net, random_input((7, 4), seed=0), seed=0)
    assert "layers[0]" not in str(info.value).split("\n", 1)[1].split("GradReport")[0]


# ----------------------------------------------------------------- agreement with references
def test_agrees_with_scipy_check_grad_on_a_sigmoid():
    x0 = random_input((3, 4), seed=0)
    dy = np.random.default_rng(1).normal(size=x0.shape)
    layer = lk.Sigmoid()
    func = lambda flat: float(np.sum(layer.forward(flat.reshape(x0.shape)) * dy))
    grad = lambda flat: layer.backward(flat.reshape(x0.shape), dy).ravel()
    assert scipy.optimize.check_grad(func, grad, x0.ravel()) < 1e-6
    report = assert_grad(layer, x0, dy=dy, seed=0)
    reference = scipy.optimize.approx_fprime(x0.ravel(), func, 1e-7)
    assert np.allclose(report["x"].numeric, reference[report["x"].indices], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer_cls, verdict", [(lk.Linear, True), (ScaledDW, False)])
def test_same_verdict_as_scipy_check_grad_on_a_weight(layer_cls, verdict):
    layer = layer_cls(3, 2, rng=0)
    x = random_input((4, 3), seed=0)
    dy = np.random.default_rng(2).normal(size=(4, 2))
    W0 = layer.W.copy()

    def func(flat):
        layer.W[...] = flat.reshape(W0.shape)
        return float(np.sum(layer.forward(x) * dy))

    def grad(flat):
        layer.W[...] = flat.reshape(W0.shape)
        layer.backward(x, dy)
        return layer.dW.ravel()

    scipy_error = scipy.optimize.check_grad(func, grad, W0.ravel())
    layer.W[...] = W0
    report = check_grad(layer, x, dy=dy, seed=0)
    assert bool(scipy_error < 1e-5) is verdict
    assert report["W"].passed() is verdict
    assert report["b"].passed()


def autograd_forward(anp, net, params, x):
    """The net's forward pass in autograd.numpy, with ``params`` in place of its W and b."""
    h = x
    for i, layer in enumerate(net):
        if isinstance(layer, lk.Linear):
            h = anp.dot(h, params[f"layers[{i}].W"]) + params[f"layers[{i}].b"]
        elif isinstance(layer, lk.Sigmoid):
            h = 1 / (1 + anp.exp(-h))
        elif isinstance(layer, lk.ReLU):
            h = anp.maximum(h, 0)
        elif isinstance(layer, lk.Softmax):
            e = anp.exp(h - anp.max(h, axis=1, keepdims=True))
            h = e / anp.sum(e, axis=1, keepdims=True)
    return h


@pytest.mark.parametrize("seed", range(4))
def test_numeric_gradients_agree_with_autograd_on_random_nets(seed):
    autograd = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")
    net, x = random_net(seed, batch=9)
    dy = np.random.default_rng(seed + 100).normal(size=net.predict(x).shape)
    report = assert_grad(net, x, dy=dy, seed=seed, max_coords=None)
    params = {f"layers[{i}].{p}": getattr(layer, p) for i, layer in enumerate(net) for p in layer.param_names}
    scalar = lambda inputs: anp.sum(autograd_forward(anp, net, inputs[1], inputs[0]) * dy)
    dx, dparams = autograd.grad(scalar)((x, params))
    references = {"x": dx, **dparams}
    assert set(references) == set(report.tensors)
    for name, reference in references.items():
        tensor = report[name]
        assert tensor.n_checked + tensor.n_kinks == reference.size
        assert np.allclose(tensor.numeric, reference.ravel()[tensor.indices], rtol=1e-6, atol=1e-8), name
        assert np.allclose(tensor.analytic, reference.ravel()[tensor.indices], rtol=1e-12, atol=1e-12), name


# ----------------------------------------------------------------- kinks
def test_random_input_keeps_a_margin_from_every_kink():
    x = random_input((200, 50), kinks=(0.0, 1.0), margin=1e-3, seed=0)
    assert np.abs(x).min() >= 1e-3 * (1 - 1e-12) and np.abs(x - 1.0).min() >= 1e-3 * (1 - 1e-12)
    assert x.dtype == np.float64 and x.shape == (200, 50)


def test_given_input_on_a_relu_kink_is_nudged_and_reported():
    x = random_input((4, 5), seed=0)
    x[0, 0], x[1, 2], x[2, 3] = 0.0, 3e-7, -1e-9
    report = assert_grad(lk.ReLU(), x, seed=0)
    assert any("3 entries of x were within" in note for note in report.notes)
    assert x[0, 0] == 0.0  # the caller's array is not modified


def test_given_input_on_a_kink_is_refused_without_nudging():
    x = np.zeros((2, 3))
    with pytest.raises(GradcheckError, match=r"6 entries of x are within 10\*eps=1e-05 of a kink of ReLU\(\)"):
        check_grad(lk.ReLU(), x, nudge_kinks=False)


def test_kinks_inside_a_net_are_left_out_instead_of_failing():
    net = lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)])
    net[0].b[...] = [0.0, 0.5, -0.5, 0.25]
    x = random_input((5, 3), seed=0)
    x[2] = 0.0  # the first pre-activation of row 2 is b[0] == 0: on the ReLU kink
    report = assert_grad(net, x, seed=1, max_coords=None)
    assert report["x"].n_kinks == 3  # the three entries of row 2
    assert report["layers[0].b"].n_kinks == 1 and report["layers[0].b"].n_checked == 3
    assert report["x"].n_checked + report["x"].n_kinks == x.size
    assert "at kinks" in str(report)


# ----------------------------------------------------------------- random layers
class GeneratorDropout(lk.Layer):
    """Dropout that draws its mask from a Generator attribute (backward redraws the same mask)."""

    def __init__(self, p=0.5, seed=0):
        self.p = p
        self.rng = np.random.default_rng(seed)

    def _mask(self, shape):
        return (self.rng.random(shape) >= self.p) / (1 - self.p)

    def forward(self, x):
        return x * self._mask(x.shape)

    def backward(self, x, dy):
        return dy * self._mask(x.shape)


class GlobalDropout(GeneratorDropout):
    """Dropout on numpy's global random state, which the checker cannot rewind by itself."""

    def _mask(self, shape):
        return (np.random.random(shape) >= self.p) / (1 - self.p)


def test_dropout_with_a_generator_attribute_is_checked_with_a_fixed_stream():
    layer = GeneratorDropout()
    before = layer.rng.bit_generator.state
    report = assert_grad(layer, random_input((6, 5), seed=0), seed=0)
    assert report["x"].n_checked == 30
    assert layer.rng.bit_generator.state == before


def test_dropout_on_global_state_is_refused_then_checked_with_reset():
    x = random_input((6, 5), seed=0)
    with pytest.raises(GradcheckError, match=r"forward gave different outputs for the same x.*reset="):
        check_grad(GlobalDropout(), x, seed=0)
    report = assert_grad(GlobalDropout(), x, seed=0, reset=lambda layer: np.random.seed(7))
    assert report.passed()


# ----------------------------------------------------------------- refusals
class CountsCalls(lk.Layer):
    def __init__(self):
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 2 * x

    def backward(self, x, dy):
        return 2 * dy


class CachesInput(lk.Sigmoid):
    def forward(self, x):
        self.last_x = x
        return super().forward(x)


class DriftingWeights(lk.Linear):
    def forward(self, x):
        y = super().forward(x)
        self.W += 1e-3
        return y


class ScalesInputInPlace(lk.Layer):
    def forward(self, x):
        x *= 2
        return x

    def backward(self, x, dy):
        return 2 * dy


class AlwaysFloat32(lk.Layer):
    def forward(self, x):
        return np.asarray(x, dtype=np.float32) * 2

    def backward(self, x, dy):
        return 2 * dy


@pytest.mark.parametrize("layer, match", [
    (CountsCalls(), r"refusing CountsCalls\(\): its forward changes its own state between calls \(attributes calls\)"),
    (CachesInput(), r"changes its own state between calls \(attributes last_x\)"),
    (DriftingWeights(4, 3, rng=0), r"changes its own state between calls \(attributes W\)"),
    (ScalesInputInPlace(), r"forward modified its input x in place"),
    (AlwaysFloat32(), r"forward returned float32 for a float64 input"),
])
def test_layers_that_break_the_contract_are_refused(layer, match):
    with pytest.raises(GradcheckError, match=match):
        check_grad(layer, random_input((5, 4), seed=0), seed=0)


def test_float32_layer_that_cannot_be_copied_is_refused_with_the_reason():
    import threading

    layer = lk.Linear(4, 3, rng=0, dtype=np.float32)
    layer.lock = threading.Lock()
    with pytest.raises(GradcheckError, match=r"Linear\(4, 3, dtype='float32'\) computes in float32 \(dtype is "
                                             r"float32\) and could not be deep-copied.*TypeError"):
        check_grad(layer, random_input((2, 4), seed=0))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"eps must be a float in \(0, 1\), got 0"):
        check_grad(lk.ReLU(), np.ones((2, 2)), eps=0)
    with pytest.raises(ValueError, match=r"max_coords must be a positive int or None"):
        check_grad(lk.ReLU(), np.ones((2, 2)), max_coords=0)
    with pytest.raises(ValueError, match=r"dy must have the shape of Linear\(4, 3\)'s output \(5, 3\), got \(5, 4\)"):
        check_grad(lk.Linear(4, 3, rng=0), np.ones((5, 4)), dy=np.ones((5, 4)))
    with pytest.raises(TypeError, match=r"expected a layer or a layerkit.Net .* got str without forward\(\)"):
        check_grad("relu", np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"x for ReLU\(\) must hold real numbers, got dtype <U1"):
        check_grad(lk.ReLU(), np.array([["a"]]))


# ----------------------------------------------------------------- cost and report
class CountingLinear(lk.Linear):
    forward_calls = 0

    def forward(self, x):
        type(self).forward_calls += 1
        return super().forward(x)


def test_large_tensors_are_sampled_so_the_cost_is_bounded():
    layer = CountingLinear(50, 40, rng=0)
    CountingLinear.forward_calls = 0
    report = assert_grad(layer, random_input((64, 50), seed=0), seed=0, max_coords=200, directions=1)
    assert [report[name].n_checked for name in ("x", "W", "b")] == [200, 200, 40]
    # two warm-up passes, then two passes per coordinate and per direction
    assert CountingLinear.forward_calls == 2 + 2 * (200 + 200 + 40) + 2 * 3
    full = check_grad(layer, random_input((2, 50), seed=0), seed=0, max_coords=None)
    assert full["W"].n_checked == 2000


def test_same_seed_gives_the_same_report_and_a_drawn_seed_is_recorded():
    layer, x = lk.Linear(6, 5, rng=0), random_input((20, 6), seed=0)
    first, second = check_grad(layer, x, seed=5, max_coords=10), check_grad(layer, x, seed=5, max_coords=10)
    assert np.array_equal(first["x"].indices, second["x"].indices)
    assert np.array_equal(first["W"].numeric, second["W"].numeric)
    drawn = check_grad(layer, x, max_coords=10)
    again = check_grad(layer, x, seed=drawn.seed, max_coords=10)
    assert np.array_equal(drawn["W"].indices, again["W"].indices)
    assert np.array_equal(drawn["W"].numeric, again["W"].numeric)


def test_report_prints_one_row_per_tensor_with_errors_and_worst_values():
    report = check_grad(lk.Linear(4, 3, rng=0), random_input((5, 4), seed=0), seed=3)
    assert isinstance(report, GradReport)
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == "GradReport for Linear(4, 3) (central differences in float64, eps=1e-06, seed=3)"
    assert lines[1].split()[:5] == ["tensor", "shape", "checked", "max", "abs"]
    for name, shape, checked in [("x", "(5, 4)", "20/20"), ("W", "(4, 3)", "12/12"), ("b", "(3,)", "3/3")]:
        row = next(line for line in lines if line.split()[0] == name)
        assert shape in row and checked in row
        worst = report[name].worst()
        assert str(worst[0]) in row and f"{worst[1]:.8g}" in row
    assert report["W"].worst_index == report["W"].worst()[0]
    assert report["W"].max_abs_error == pytest.approx(np.abs(report["W"].analytic - report["W"].numeric).max(), rel=1)
    with pytest.raises(KeyError, match=r"no tensor 'beta'.*\['x', 'W', 'b'\]"):
        report["beta"]


def test_guide_checking_gradients_example_runs():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "gradcheck.md").read_text()
    code = guide.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code, "docs/guide/gradcheck.md", "exec"), namespace)
    report = check_grad(namespace["Scale"](4), seed=0)
    assert list(report.tensors) == ["x", "gamma"] and report.passed()


class _CountsBatches(lk.Layer):
    """``y = x * w``; its training-mode forward pass counts the rows it saw in a state array."""

    param_names = ("w",)
    state_names = ("rows_seen",)

    def __init__(self):
        self.w = np.array([1.5, -0.5, 2.0])
        self.rows_seen = np.zeros(1)

    def forward_pass(self, x, training):
        if training:
            self.rows_seen = self.rows_seen + len(x)
        return x * self.w, ("scale", self.w.copy())

    def backward_pass(self, x, ctx, dy):
        assert ctx[0] == "scale"  # the checker hands each backward pass its forward pass's ctx
        self.dw = (x * dy).sum(axis=0)
        return dy * ctx[1]

    def forward(self, x):
        return self.forward_pass(x, self.training)[0]

    def backward(self, x, dy):
        raise AssertionError("the checker must go through backward_pass")


class _Undeclared(_CountsBatches):
    state_names = ()


def test_declared_state_is_restored_around_every_pass_and_undeclared_state_still_refused():
    layer = _CountsBatches()
    before = layer.rows_seen
    assert_grad(layer, random_input((4, 3), seed=0), seed=0)
    assert layer.rows_seen is before and before[0] == 0  # put back as it was
    with pytest.raises(GradcheckError, match=r"changes its own state between calls \(attributes rows_seen\)"):
        assert_grad(_Undeclared(), random_input((4, 3), seed=0), seed=0)
    layer.training = False  # checked in its current mode: nothing to restore, same gradients
    assert_grad(layer, random_input((4, 3), seed=0), seed=0)

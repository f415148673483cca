"""layerkit.testing.compare_with_autodiff: backward against autograd/JAX differentiation of a reference forward."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import AutodiffReport, compare_with_autodiff

anp = pytest.importorskip("autograd.numpy", reason="autograd (the 'test' extra) is needed")

def _backends():
    try:
        import jax  # noqa: F401
    except ImportError:
        return ["autograd"]
    return ["autograd", "jax"]


def _batch_norm_in_inference_mode():
    layer = lk.BatchNorm1d(4)
    layer.training = False
    layer.running_mean[:] = [0.5, -0.2, 0.1, 0.0]
    layer.running_var[:] = [2.0, 0.5, 1.0, 3.0]
    return layer


BUILT_INS = [lk.Linear(4, 3, rng=0), lk.Linear(4, 3, rng=1, dtype=np.float32), lk.ReLU(), lk.LeakyReLU(0.2),
             lk.ELU(0.5), lk.Sigmoid(), lk.Tanh(), lk.Softmax(), lk.Softplus(beta=2.0), lk.GELU(),
             lk.GELU("tanh"), lk.Identity(), lk.LayerNorm(4), lk.BatchNorm1d(4), _batch_norm_in_inference_mode()]


class Scale(lk.Layer):
    """y = x * gamma, hand-written backward (the course's kind of layer)."""
    param_names = ("gamma",)

    def __init__(self, n, error=0.0, wrong_dx=False):
        self.gamma = np.linspace(0.5, 1.5, n)
        self.error, self.wrong_dx = error, wrong_dx

    def forward(self, x):
        return x * self.gamma

    def backward(self, x, dy):
        self.dgamma = (x * dy).sum(axis=0) * (1 + self.error)
        return dy if self.wrong_dx else dy * self.gamma

    def __repr__(self):
        return "Scale()"


def scale_reference(params, x):
    return x * params["gamma"]


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("layer", BUILT_INS, ids=repr)
def test_built_in_layers_pass_with_their_reference(layer, backend, rng):
    report = compare_with_autodiff(layer, rng.normal(size=(5, 4)), backend=backend, seed=0)
    assert isinstance(report, AutodiffReport) and report.backend == backend
    assert set(report.tensors) == {"y", "x", *layer.param_names}
    assert report.passed(rtol=1e-12, atol=1e-14)
    assert report.gradcheck is not None and report.gradcheck.passed()


@pytest.mark.parametrize("backend", _backends())
def test_a_net_with_an_explicit_reference(backend, rng):
    xnp = anp if backend == "autograd" else pytest.importorskip("jax.numpy")
    net = lk.Net([lk.Linear(4, 5, rng=0), lk.Tanh(), lk.Linear(5, 2, rng=1)])

    def reference(p, x):
        return xnp.tanh(x @ p["layers[0].W"] + p["layers[0].b"]) @ p["layers[2].W"] + p["layers[2].b"]

    report = compare_with_autodiff(net, rng.normal(size=(6, 4)), forward=reference, backend=backend, seed=2)
    assert set(report.tensors) == {"y", "x", "layers[0].W", "layers[0].b", "layers[2].W", "layers[2].b"}
    # and the chained built-in references give the same verdict
    assert compare_with_autodiff(net, rng.normal(size=(6, 4)), backend=backend, seed=2).passed()


def test_custom_layer_with_a_correct_reference_passes(rng):
    report = compare_with_autodiff(Scale(4), rng.normal(size=(5, 4)), forward=scale_reference, seed=0)
    assert report["gamma"].max_abs_error < 1e-14
    assert "Scale()" in str(report) and "gamma" in str(report)


def test_wrong_parameter_gradient_fails_with_a_clear_report(rng):
    with pytest.raises(AssertionError) as failure:
        compare_with_autodiff(Scale(4, error=0.1), rng.normal(size=(5, 4)), forward=scale_reference, seed=0)
    message = str(failure.value)
    assert message.startswith("autodiff check failed for Scale() (backend autograd")
    assert "gamma: gradient of gamma differs, worst at index (" in message
    assert "x:" not in message.splitlines()[1]  # dx is right, only gamma is named
    assert "AutodiffReport for Scale()" in message


def test_wrong_input_gradient_fails(rng):
    with pytest.raises(AssertionError, match=r"x: gradient of x differs.*4 of 20|x: gradient of x differs"):
        compare_with_autodiff(Scale(4, wrong_dx=True), rng.normal(size=(5, 4)), forward=scale_reference, seed=0)


def test_catches_an_error_below_finite_difference_tolerance(rng):
    """A gradient 1e-6 off (relative) passes central differences (rtol 1e-5) but not the exact comparison."""
    layer = Scale(4, error=1e-6)
    x = rng.normal(size=(5, 4))
    assert lk.testing.check_grad(layer, x, seed=0).passed()
    with pytest.raises(AssertionError, match="gamma: gradient of gamma differs"):
        compare_with_autodiff(layer, x, forward=scale_reference, seed=0, finite_differences=False)


def test_a_reference_of_another_function_is_reported_as_such(rng):
    with pytest.raises(AssertionError, match="reference forward computes another function"):
        compare_with_autodiff(Scale(4), rng.normal(size=(5, 4)), forward=lambda p, x: x * p["gamma"] + 1, seed=0)


def test_missing_gradient_is_named(rng):
    class Forgetful(Scale):
        def backward(self, x, dy):
            return dy * self.gamma

    with pytest.raises(AssertionError, match="gamma: backward stored no dgamma"):
        compare_with_autodiff(Forgetful(4), rng.normal(size=(5, 4)), forward=scale_reference, seed=0,
                              finite_differences=False)


def test_wrapped_layers_against_an_independent_reference(rng):
    """A JaxLayer's and a TorchLayer's gradients against autograd's: two frameworks agree with a third."""
    x = rng.normal(size=(5, 4))
    reference = lambda p, x: anp.tanh(x @ p["W"] + p["b"])  # noqa: E731
    try:
        import jax.numpy as jnp

        from layerkit.interop import JaxLayer
    except ImportError:
        pass
    else:
        layer = JaxLayer(lambda p, x: jnp.tanh(x @ p["W"] + p["b"]), {"W": rng.normal(size=(4, 3)),
                                                                       "b": rng.normal(size=3)})
        assert compare_with_autodiff(layer, x, forward=reference, seed=0).passed(rtol=1e-12, atol=1e-14)
    torch = pytest.importorskip("torch")
    from layerkit.interop import TorchLayer

    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).double()
    layer = TorchLayer(module)
    torch_reference = lambda p, x: anp.tanh(x @ p["0_weight"].T + p["0_bias"])  # noqa: E731
    assert compare_with_autodiff(layer, x, forward=torch_reference, seed=0).passed(rtol=1e-12, atol=1e-14)


def test_arguments_are_checked(rng):
    with pytest.raises(TypeError, match="no built-in reference forward for Scale"):
        compare_with_autodiff(Scale(4), rng.normal(size=(5, 4)))
    with pytest.raises(TypeError, match=r"layer 1 \(Scale\(\)\)"):
        compare_with_autodiff(lk.Net([lk.Linear(4, 4, rng=0), Scale(4)]), rng.normal(size=(5, 4)))
    with pytest.raises(ValueError, match="backend must be one of"):
        compare_with_autodiff(lk.ReLU(), backend="torch")
    with pytest.raises(TypeError, match="forward must be a callable"):
        compare_with_autodiff(lk.ReLU(), forward="relu")


def test_a_nan_gradient_fails_without_finite_differences(rng):
    class Poisoned(Scale):
        def backward(self, x, dy):
            dx = super().backward(x, dy)
            self.dgamma[0] = np.nan
            return dx

    with pytest.raises(AssertionError, match="gamma: dgamma contains NaN or infinite values"):
        compare_with_autodiff(Poisoned(4), rng.normal(size=(5, 4)), forward=scale_reference, seed=0,
                              finite_differences=False)


@pytest.mark.parametrize("seed", range(8))
def test_a_float32_batch_norm_in_inference_mode_is_compared_through_a_float64_copy(seed):
    """Every parameter and buffer (the running statistics too) goes through the float64 copy: with the
    float32 statistics in the reference, running_var + eps rounded in float32 and y was off by ~3e-8."""
    rng = np.random.default_rng(seed)
    bn = lk.BatchNorm1d(5, dtype=np.float32)
    bn.gamma[...] = rng.uniform(0.5, 2.0, 5)
    bn.beta[...] = rng.normal(size=5)
    bn.running_mean[...] = rng.normal(size=5)
    bn.running_var[...] = rng.uniform(0.1, 3.0, 5)
    bn.training = False
    before = {name: getattr(bn, name).copy() for name in bn.param_names + bn.state_names}
    report = compare_with_autodiff(bn, rng.normal(size=(6, 5)).astype(np.float32), finite_differences=False,
                                   seed=seed)
    assert any("float64 copy" in note for note in report.notes)
    for name, value in before.items():  # the layer itself untouched
        assert getattr(bn, name).dtype == np.float32
        np.testing.assert_array_equal(getattr(bn, name), value)

"""One seed reproduces a whole net: Net(rng=...) refuses layers it cannot reach, net.reset_parameters(seed)
redraws every parameter (blocks and nested nets included), and a layer's repr shows its get_config."""
import numpy as np
import pytest

import layerkit as lk


def _built_layers():
    return [lk.Linear(4, 6), lk.ReLU(), lk.Dropout(0.25),
            lk.Residual([lk.Linear(6, 6), lk.Tanh(), lk.Linear(6, 6, init="he")]),
            lk.Concatenate([[lk.Linear(6, 2)], lk.Net([lk.Linear(6, 3), lk.GELU()])]),
            lk.BatchNorm1d(5), lk.Linear(5, 1, bias_init=0.5)]


def _params(net):
    return {name: np.array(value) for name, value in net.params().items()}


def test_net_rng_with_built_layers_is_refused_naming_them():
    with pytest.raises(ValueError, match=r"Net: rng=0 seeds only the spec items .* items 0 \(Linear\(4, 6\)\), "
                                         r"2 \(Dropout\(p=0.25\)\), 3 \(Residual.*net.reset_parameters\(seed\)"):
        lk.Net(_built_layers(), rng=0)


def test_net_rng_still_seeds_spec_items_and_takes_layers_without_draws():
    spec = [{"type": "linear", "n_in": 4, "n_out": 3}, "relu", {"type": "linear", "n_in": 3, "n_out": 1}]
    a = lk.Net([*spec[:2], lk.Tanh(), spec[2]], rng=7)
    b = lk.Net([*spec[:2], lk.Tanh(), spec[2]], rng=7)
    assert all(np.array_equal(a.params()[k], b.params()[k]) for k in a.params())
    lk.Net([lk.ReLU(), lk.BatchNorm1d(3)], rng=0)  # nothing drawn: accepted
    seeded = lk.Net([lk.Linear(4, 3, rng=1), lk.Dropout(0.5, rng=2), spec[2]], rng=0)  # their own seeds: kept
    np.testing.assert_array_equal(seeded.layers[0].W, lk.Linear(4, 3, rng=1).W)


def test_reset_parameters_makes_one_seed_reproduce_the_whole_net():
    a, b = lk.Net(_built_layers()), lk.Net(_built_layers())
    assert not np.array_equal(a.params()["0.W"], b.params()["0.W"])  # fresh entropy differs
    a.reset_parameters(3)
    b.reset_parameters(3)
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys() and {"3.f.0.W", "4.branches.1.0.W", "5.gamma", "6.b"} <= pa.keys()
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
    np.testing.assert_array_equal(pa["6.b"], np.full(1, 0.5))  # bias_init kept
    x = np.random.default_rng(0).normal(size=(8, 4))
    a.train(), b.train()
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])  # dropout's masks too


def test_reset_parameters_equals_building_from_the_config_with_that_seed():
    net = lk.Net(_built_layers())
    net.reset_parameters(11)
    rebuilt = lk.Net.from_config(net.config(), seed=11)
    for name, value in _params(rebuilt).items():
        np.testing.assert_array_equal(_params(net)[name], value, err_msg=name)


def test_reset_parameters_redraws_in_place_and_the_compiled_net_sees_it():
    net = lk.Net([lk.Linear(4, 5, rng=0), lk.ReLU(), lk.Linear(5, 2, rng=1)])
    x = np.ones((3, 4))
    before = net.predict(x)  # compiles the fused plan
    weights = net.layers[0].W
    net.reset_parameters(5)
    assert net.layers[0].W is weights  # the same array, new values (optimizers keep their references)
    after = net.predict(x)
    assert not np.allclose(before, after)
    fresh = lk.Net([lk.Linear(4, 5, rng=0), lk.ReLU(), lk.Linear(5, 2, rng=1)])
    fresh.reset_parameters(5)
    np.testing.assert_array_equal(after, fresh.predict(x))


def test_reset_parameters_resets_batch_norm_statistics():
    layer = lk.BatchNorm1d(3)
    net = lk.Net([layer])
    net.forward(np.random.default_rng(0).normal(3, 2, size=(10, 3)))
    layer.gamma += 1
    assert not np.allclose(layer.running_mean, 0)
    net.reset_parameters(0)
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    np.testing.assert_array_equal(layer.gamma, np.ones(3))


class Scale(lk.Layer):
    """A plugin-style layer with a parameter and a get_config."""

    param_names = ("s",)

    def __init__(self, n, start=1.0, *, dtype="float64"):
        self.n, self.start, self.dtype = n, start, dtype
        self.s = np.full(n, start, dtype=dtype)

    def forward(self, x):
        return x * self.s

    def backward(self, x, dy):
        self.ds = (dy * x).sum(axis=0)
        return dy * self.s

    def get_config(self):
        return {"n": self.n, "start": self.start, "dtype": self.dtype}


class Opaque(lk.Layer):
    param_names = ("w",)

    def __init__(self, n):
        self.w = np.zeros(n)

    def forward(self, x):
        return x

    def backward(self, x, dy):
        return dy


def test_custom_layers_are_reset_from_their_config_and_refused_without_one():
    layer = Scale(3, 2.0)
    layer.s += 5
    lk.Net([layer]).reset_parameters(0)
    np.testing.assert_array_equal(layer.s, np.full(3, 2.0))
    with pytest.raises(TypeError, match=r"Opaque\(\)\.reset_parameters: cannot rebuild the layer from its "
                                        r"get_config\(\) \{\}.*override reset_parameters\(rng\)"):
        lk.Net([Opaque(2)]).reset_parameters(0)


def test_reset_parameters_checks_its_rng():
    with pytest.raises(TypeError, match="Net.reset_parameters: rng"):
        lk.Net([lk.Linear(2, 2)]).reset_parameters("seed")


@pytest.mark.parametrize("layer, text", [
    (Scale(16), "Scale(16)"),
    (Scale(4, 0.5), "Scale(4, start=0.5)"),
    (Scale(4, dtype="float32"), "Scale(4, dtype='float32')"),
    (Opaque(3), "Opaque()"),
    (lk.Linear(4, 3), "Linear(4, 3)"),
])
def test_repr_shows_the_config(layer, text):
    assert repr(layer) == text
    assert text in str(lk.Net([layer]))


def test_repr_never_fails_on_a_config_that_raises():
    class Broken(Opaque):
        def get_config(self):
            raise RuntimeError("no config")

    assert repr(Broken(2)) == "Broken()"

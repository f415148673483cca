"""layerkit.init: each initialiser's statistics, factories, callables, configs and files."""
import json

import numpy as np
import pytest

import layerkit as lk
from layerkit.config import ConfigError

N_IN, N_OUT = 400, 300


def weights(init, n_in=N_IN, n_out=N_OUT, seed=0, dtype=np.float64):
    return lk.Linear(n_in, n_out, rng=seed, init=init, dtype=dtype).W


@pytest.mark.parametrize("names, std, bound", [
    (("xavier", "glorot"), np.sqrt(2 / (N_IN + N_OUT)), np.sqrt(6 / (N_IN + N_OUT))),
    (("xavier_normal",), np.sqrt(2 / (N_IN + N_OUT)), None),
    (("he", "he_normal"), np.sqrt(2 / N_IN), None),
    (("he_uniform",), np.sqrt(2 / N_IN), np.sqrt(6 / N_IN)),
    (("lecun_normal",), np.sqrt(1 / N_IN), None),
    (("lecun_uniform",), np.sqrt(1 / N_IN), np.sqrt(3 / N_IN)),
])
def test_each_named_initialiser_has_its_mean_std_and_bound(names, std, bound):
    first = weights(names[0])
    for name in names:  # aliases draw the same weights
        assert np.array_equal(weights(name), first)
    assert abs(first.mean()) < 5 * std / np.sqrt(first.size)  # five standard errors
    assert first.std() == pytest.approx(std, rel=0.01)
    if bound is None:
        assert np.abs(first).max() > 3.5 * std  # a normal's tails, not a uniform's
    else:
        assert np.abs(first).max() <= bound and np.abs(first).max() > 0.99 * bound
    assert not np.array_equal(weights(names[0], seed=1), first)


@pytest.mark.parametrize("n_in, n_out", [(50, 20), (20, 50), (30, 30)])
def test_orthogonal_is_orthogonal(n_in, n_out):
    w = weights("orthogonal", n_in, n_out)
    gram = w.T @ w if n_in >= n_out else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(n_in, n_out)), atol=1e-12)
    assert w.shape == (n_in, n_out) and w.flags.c_contiguous
    assert not np.array_equal(weights("orthogonal", n_in, n_out, seed=1), w)


def test_zeros_and_bias_init():
    layer = lk.Linear(3, 4, init="zeros", bias_init=0.1)
    assert np.array_equal(layer.W, np.zeros((3, 4))) and np.array_equal(layer.b, np.full(4, 0.1))
    assert layer.get_config() == {"n_in": 3, "n_out": 4, "init": "zeros", "dtype": "float64", "bias_init": 0.1}
    assert repr(layer) == "Linear(3, 4, init='zeros', bias_init=0.1)"
    assert "bias_init" not in lk.Linear(3, 4).get_config()


def test_the_seeds_initialiser_keeps_the_variance_through_a_linear_layer():
    x = np.random.default_rng(0).normal(size=(2000, 256))
    out = x @ weights("lecun_normal", 256, 256)
    assert out.var() == pytest.approx(1.0, rel=0.05)  # seed 004, 2.(b): sigma^2 = 1 / n_in


@pytest.mark.parametrize("factory, std", [(lk.init.normal(0.05), 0.05), (lk.init.uniform(0.3), 0.3 / np.sqrt(3))])
def test_factories(factory, std):
    w = weights(factory)
    assert w.std() == pytest.approx(std, rel=0.01) and abs(w.mean()) < 5 * std / np.sqrt(w.size)
    if isinstance(factory, lk.init.Uniform):
        assert np.abs(w).max() <= 0.3
    assert np.array_equal(weights(factory.get_config()), w)  # the config form builds the same weights
    assert factory == type(factory)(*factory.arguments().values())
    assert repr(factory) in ("layerkit.init.normal(0.05)", "layerkit.init.uniform(0.3)")


def test_a_callable_is_called_with_the_layers_arguments_and_its_result_used():
    seen = []

    def custom(n_in, n_out, rng, dtype):
        seen.append((n_in, n_out, type(rng), np.dtype(dtype)))
        return np.arange(n_in * n_out, dtype=np.int64).reshape(n_in, n_out)

    layer = lk.Linear(2, 3, init=custom, dtype="float32")
    assert seen == [(2, 3, np.random.Generator, np.dtype(np.float32))]
    assert layer.W.dtype == np.float32 and layer.W.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert repr(layer) == "Linear(2, 3, init=test_a_callable_is_called_with_the_layers_arguments_and_its_result_used" \
                          ".<locals>.custom, dtype='float32')"
    y, trace = lk.Net([layer]).forward(np.ones((1, 2)))
    assert y.tolist() == [[3, 5, 7]]


@pytest.mark.parametrize("result, error, message", [
    (np.ones((3, 2)), ValueError, r"Linear\(2, 3\): init .* returned shape \(3, 2\), expected \(n_in, n_out\) = \(2, 3\)"),
    (np.full((2, 3), np.nan), ValueError, r"Linear\(2, 3\): init .* returned NaN or infinite weights"),
    (np.ones((2, 3), dtype=complex), TypeError, r"Linear\(2, 3\): init .* returned dtype complex128, expected real"),
    ([["a"] * 3] * 2, TypeError, r"returned dtype <U1, expected real numbers"),
])
def test_a_callables_result_is_checked(result, error, message):
    with pytest.raises(error, match=message):
        lk.Linear(2, 3, init=lambda n_in, n_out, rng, dtype: result)


@pytest.mark.parametrize("init, error, message", [
    ("lecun", ValueError, r"Linear: init: init must be one of \[.*'orthogonal'.*\], layerkit.init.normal\(std\)"),
    (3, TypeError, r"Linear: init: init must be a name \(str\), .* got int 3"),
    ({"type": "cauchy"}, ValueError, r"a factory's config with 'type' one of \['normal', 'uniform'\]"),
    ({"type": "normal", "sd": 1}, ValueError, r"bad arguments for layerkit.init.normal: .*'sd'"),
])
def test_bad_init_arguments(init, error, message):
    with pytest.raises(error, match=message):
        lk.Linear(2, 3, init=init)


@pytest.mark.parametrize("call, message", [
    (lambda: lk.init.normal(0), r"layerkit.init.normal: std: expected a finite real number > 0, got int 0"),
    (lambda: lk.init.uniform(float("inf")), r"layerkit.init.uniform: limit: expected a finite real number > 0"),
    (lambda: lk.Linear(2, 3, bias_init="0"), r"Linear: bias_init must be a finite real number, got str '0'"),
    (lambda: lk.Linear(2, 3, bias_init=float("nan")), r"Linear: bias_init must be a finite real number, got float nan"),
])
def test_bad_factory_and_bias_arguments(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_names_and_factories_survive_configs_and_files(tmp_path):
    net = lk.Net([lk.Linear(4, 5, init="orthogonal", rng=0), lk.ReLU(),
                  lk.Linear(5, 3, init=lk.init.normal(0.02), bias_init=0.5, rng=1), lk.Sigmoid(),
                  lk.Linear(3, 1, init="he_uniform", rng=2)])
    config = net.config()
    assert [item["init"] for item in config if isinstance(item, dict)] == [
        "orthogonal", {"type": "normal", "std": 0.02}, "he_uniform"]
    assert config[2]["bias_init"] == 0.5
    rebuilt = lk.Net.from_config(json.loads(json.dumps(config)), seed=0)
    assert rebuilt.config() == config and rebuilt[2].init == lk.init.normal(0.02)
    assert np.array_equal(rebuilt[2].b, np.full(3, 0.5))
    net.save(tmp_path / "init.npz")
    loaded = lk.Net.load(tmp_path / "init.npz")
    assert loaded.config() == config
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()


def test_a_callable_cannot_go_into_a_config_and_the_error_names_the_layer(tmp_path):
    def my_init(n_in, n_out, rng, dtype):
        return rng.normal(size=(n_in, n_out))

    net = lk.Net([lk.Linear(3, 2, init=lk.init.uniform(0.1)), lk.ReLU(), lk.Linear(2, 1, init=my_init)])
    message = (r"Net.config: layer 2 \(Linear\(2, 1, init=.*my_init\)\): get_config\(\) failed: .*is a plain "
               r"callable, which a config or file cannot keep; use an initialiser name, layerkit.init.normal\(std\)")
    with pytest.raises(ConfigError, match=message):
        net.config()
    with pytest.raises(ConfigError, match=message):
        net.save(tmp_path / "no.npz")
    assert not (tmp_path / "no.npz").exists()


def test_float32_weights():
    for init in ("xavier", "orthogonal", "lecun_normal", lk.init.normal(0.1)):
        w = weights(init, 20, 10, dtype=np.float32)
        assert w.dtype == np.float32 and w.flags.c_contiguous



@pytest.mark.parametrize("init", sorted(lk.init.INITIALIZERS) + [lk.init.normal(0.1), lk.init.uniform(0.2)])
def test_float32_weights_are_the_float64_draw_cast(init):
    # the same seed gives the same net in either dtype (issue 19): drawn in float64, then rounded
    w64 = lk.Linear(13, 7, rng=5, init=init).W
    w32 = lk.Linear(13, 7, rng=5, init=init, dtype="float32").W
    assert w64.dtype == np.float64 and w32.dtype == np.float32
    np.testing.assert_array_equal(w64.astype(np.float32), w32)

def test_a_layer_keeps_only_the_name_of_a_callable_and_pickles(tmp_path):
    import pickle

    layer = lk.Linear(2, 2, init=lambda n_in, n_out, rng, dtype: np.eye(n_in, n_out))
    assert isinstance(layer.init, lk.init.Custom) and repr(layer).endswith(".<locals>.<lambda>)")
    again = pickle.loads(pickle.dumps(layer))  # a lambda itself would not pickle
    assert np.array_equal(again.W, np.eye(2)) and again.init == layer.init
    with pytest.raises(TypeError, match=r"Linear\(2, 2, init=.*<lambda>\): its init .*<lambda> is a plain callable"):
        again.get_config()

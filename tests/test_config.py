"""Nets from configs: ``Net.from_config``, ``net.config()``, ``load_spec`` and their errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

import layerkit as lk
from layerkit import registry
from layerkit.config import ConfigError, build_layers, layer_config, load_spec

SPEC = [{"type": "linear", "n_in": 4, "n_out": 8}, "relu", {"type": "Linear", "n_in": 8, "n_out": 3},
        "softmax"]


def builtin_net(dtype: str, seed: int = 0) -> lk.Net:
    return lk.Net.from_config([
        {"type": "linear", "n_in": 4, "n_out": 6, "dtype": dtype},
        "relu",
        {"type": "linear", "n_in": 6, "n_out": 5, "init": "he", "dtype": dtype},
        "sigmoid",
        {"type": "linear", "n_in": 5, "n_out": 3, "dtype": dtype},
        "softmax",
    ], seed=seed)


class Scale(lk.Layer):
    """A run-time registered layer with a constructor argument."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def forward(self, x):
        return self.factor * np.asarray(x, dtype=float)

    def backward(self, x, dy):
        return self.factor * np.asarray(dy, dtype=float)

    def get_config(self):
        return {"factor": self.factor}


@pytest.fixture
def scale_registered():
    registry.register("scale", Scale)
    yield
    registry.unregister("scale")


# ------------------------------------------------------------------ building
def test_from_config_builds_names_and_dicts_in_order():
    net = lk.Net.from_config(SPEC, seed=0)
    assert [type(layer) for layer in net] == [lk.Linear, lk.ReLU, lk.Linear, lk.Softmax]
    assert (net[0].n_in, net[0].n_out, net[2].n_in, net[2].n_out) == (4, 8, 8, 3)
    assert net.predict(np.ones((2, 4))).shape == (2, 3)


def test_seed_shares_one_generator_like_building_by_hand():
    rng = np.random.default_rng(7)
    by_hand = [lk.Linear(4, 8, rng=rng), lk.Linear(8, 3, rng=rng)]
    net = lk.Net.from_config(SPEC, seed=7)
    np.testing.assert_array_equal(net[0].W, by_hand[0].W)
    np.testing.assert_array_equal(net[2].W, by_hand[1].W)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (lk.Net.from_config(SPEC, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a[0].W, b[0].W)
    assert not np.array_equal(a[0].W, c[0].W)


def test_layers_of_one_net_get_different_weights_from_the_shared_generator():
    net = lk.Net.from_config([{"type": "linear", "n_in": 3, "n_out": 3}] * 2, seed=0)
    assert not np.array_equal(net[0].W, net[1].W)


def test_seed_accepts_a_generator():
    a = lk.Net.from_config(SPEC, seed=np.random.default_rng(3))
    b = lk.Net.from_config(SPEC, seed=3)
    np.testing.assert_array_equal(a[0].W, b[0].W)


def test_an_items_own_rng_wins_over_the_net_seed():
    net = lk.Net.from_config([{"type": "linear", "n_in": 4, "n_out": 2, "rng": 5}], seed=0)
    np.testing.assert_array_equal(net[0].W, lk.Linear(4, 2, rng=5).W)


def test_spec_table_with_seed_and_keyword_override():
    table = {"seed": 4, "layers": SPEC}
    np.testing.assert_array_equal(lk.Net.from_config(table)[0].W, lk.Net.from_config(SPEC, seed=4)[0].W)
    np.testing.assert_array_equal(lk.Net.from_config(table, seed=5)[0].W, lk.Net.from_config(SPEC, seed=5)[0].W)


def test_from_config_on_a_subclass_builds_the_subclass():
    class MyNet(lk.Net):
        pass

    net = MyNet.from_config(SPEC, seed=0)
    assert type(net) is MyNet and len(net) == 4


def test_build_layers_is_what_from_config_calls():
    np.testing.assert_array_equal(build_layers(SPEC, seed=0)[2].W, lk.Net.from_config(SPEC, seed=0)[2].W)


# ------------------------------------------------------------------ reporting
def test_linear_get_config_and_base_default():
    assert lk.Linear(3, 2, init="he", dtype=np.float32).get_config() == {
        "n_in": 3, "n_out": 2, "init": "he", "dtype": "float32"}
    assert lk.ReLU().get_config() == {}


def test_config_lists_dicts_for_layers_with_arguments_and_names_for_the_rest():
    assert builtin_net("float64").config() == [
        {"type": "linear", "n_in": 4, "n_out": 6, "init": "xavier", "dtype": "float64"},
        "relu",
        {"type": "linear", "n_in": 6, "n_out": 5, "init": "he", "dtype": "float64"},
        "sigmoid",
        {"type": "linear", "n_in": 5, "n_out": 3, "init": "xavier", "dtype": "float64"},
        "softmax",
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_config_of_config_rebuilds_the_architecture(dtype):
    net = builtin_net(dtype)
    config = net.config()
    assert json.loads(json.dumps(config)) == config  # JSON-able as it is
    again = lk.Net.from_config(config, seed=0)
    assert again.config() == config
    assert [type(layer) for layer in again] == [type(layer) for layer in net]
    for old, new in zip(net, again):
        assert {k: (v.shape, v.dtype) for k, v in old.params().items()} == \
               {k: (v.shape, v.dtype) for k, v in new.params().items()}
    assert again.predict(np.ones((2, 4))).dtype == np.dtype(dtype)
    # and with the same seed, the same initial weights
    np.testing.assert_array_equal(again.predict(np.ones((2, 4))), builtin_net(dtype).predict(np.ones((2, 4))))


def test_runtime_registered_layer_round_trips(scale_registered):
    net = lk.Net([lk.Linear(2, 2, rng=0), Scale(3.0)])
    assert net.config()[1] == {"type": "scale", "factor": 3.0}
    assert lk.Net.from_config(net.config())[1].factor == 3.0


def test_config_of_an_unregistered_layer_names_it_and_says_how_to_register():
    net = lk.Net([lk.ReLU(), Scale()])
    with pytest.raises(ConfigError, match=r"Net.config: layer 1 \(.*Scale.*\): layer class .*Scale is not "
                                          r"registered; .*layerkit.registry.register"):
        net.config()


def test_config_rejects_values_that_are_not_json(scale_registered):
    with pytest.raises(ConfigError, match=r"layer 0 .*get_config\(\): value <object .*> of type object cannot be "
                                          r"written to a config"):
        lk.Net([Scale(object())]).config()
    with pytest.raises(ConfigError, match=r"nan cannot be written to a config \(not finite\)"):
        lk.Net([Scale(float("nan"))]).config()


def test_config_normalises_numpy_scalars(scale_registered):
    item = layer_config(Scale(np.float32(0.5)))
    assert item == {"type": "scale", "factor": 0.5} and type(item["factor"]) is float


def test_get_config_that_does_not_fit_the_constructor_is_caught(scale_registered):
    class Wrong(Scale):
        def get_config(self):
            return {"scale": 2.0}

    registry.register("wrong", Wrong)
    try:
        with pytest.raises(ConfigError, match=r"layer 0 .*get_config\(\) returned \{'scale': 2.0\} which does not "
                                              r"fit the constructor Wrong\(factor.*unexpected keyword argument 'scale'"):
            lk.Net([Wrong()]).config()
    finally:
        registry.unregister("wrong")


# ------------------------------------------------------------------ bad specs
@pytest.mark.parametrize("spec, message", [
    (["relu", 3], r"item 1 must be a layer name \(str\) or a dict with a 'type' key, got int 3"),
    (["relu", ["linear"]], r"item 1 must be a layer name .* got list"),
    (["relu", "sigmoidd"], r"item 1 \('sigmoidd'\): unknown layer 'sigmoidd'; did you mean 'sigmoid'"),
    ([{"type": "lnear", "n_in": 2, "n_out": 2}], r"item 0 \('lnear'\): unknown layer 'lnear'; did you mean 'linear'"),
    ([{"n_in": 2}], r"item 0 \(\{'n_in': 2\}\) has no 'type' key"),
    ([{"type": 7}], r"item 0: 'type' must be a layer name \(non-empty str\), got 7"),
    (["relu", {"type": "linear", "n_in": 4}], r"item 1 \('linear'\): missing a required argument: 'n_out' "
                                              r"\(required: n_in, n_out; optional: rng, init, bias_init, dtype\)"),
    ([{"type": "linear", "n_in": 4, "n_out": 2, "bias": False}], r"item 0 \('linear'\): got an unexpected keyword "
                                                                 r"argument 'bias'"),
    ([{"type": "relu", "alpha": 0.1}], r"item 0 \('relu'\): got an unexpected keyword argument 'alpha'"),
    ([{"type": "linear", "n_in": 0, "n_out": 2}], r"item 0 \('linear'\): bad argument: Linear: n_in: expected an "
                                                  r"integer >= 1, got 0"),
    ([{"type": "linear", "n_in": "4", "n_out": 2}], r"item 0 \('linear'\): bad argument: Linear: n_in: expected an "
                                                    r"integer, got str '4'"),
    ([{"type": "linear", "n_in": 4, "n_out": 2, "dtype": "int8"}], r"item 0 \('linear'\): bad argument: Linear: "
                                                                   r"dtype: expected float32 or float64, got int8"),
    ([{"type": "linear", "n_in": 4, "n_out": 2, "init": "lecun"}], r"item 0 \('linear'\): bad argument: .*init must "
                                                                   r"be one of"),
    ([{"type": "linear", "n_in": 4, "n_out": 3}, "relu", {"type": "linear", "n_in": 2, "n_out": 1}],
     r"item 2 \(Linear\(2, 1\)\) expects 2 input features but the layers before it output 3"),
    # a normalisation first: its own width is the width after it
    ([{"type": "layer_norm", "n": 1}, {"type": "layer_norm", "n": 2}],
     r"item 1 \(LayerNorm\(2\)\) expects 2 input features but the layers before it output 1"),
    ([{"type": "batch_norm", "n": 3}, "relu", {"type": "linear", "n_in": 2, "n_out": 1}],
     r"item 2 \(Linear\(2, 1\)\) expects 2 input features but the layers before it output 3"),
    ("relu", r"spec must be a list of layer names or dicts, got str"),
    (5, r"spec must be a list of layer names or dicts, got int"),
    ({"layer": ["relu"]}, r"a spec table must have the key 'layers' \(and optionally 'seed'\), got keys \['layer'\]"),
])
def test_bad_specs_name_the_item_and_the_problem(spec, message):
    with pytest.raises(ConfigError, match=r"Net.from_config: " + message):
        lk.Net.from_config(spec)


@pytest.mark.parametrize("seed", ["0", 1.5, True])
def test_bad_seed(seed):
    with pytest.raises(ConfigError, match="seed must be None, an int or a numpy.random.Generator"):
        lk.Net.from_config(SPEC, seed=seed)


def test_config_errors_are_value_errors_chained_to_the_cause():
    with pytest.raises(ValueError) as info:
        lk.Net.from_config(["sigmoidd"])
    assert isinstance(info.value.__cause__, registry.UnknownLayerError)


# ------------------------------------------------------------------ files
def test_load_spec_json(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(SPEC))
    assert load_spec(path) == SPEC
    np.testing.assert_array_equal(lk.Net.from_config(load_spec(path), seed=0)[0].W,
                                  lk.Net.from_config(SPEC, seed=0)[0].W)


def test_load_spec_toml_with_seed(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text('seed = 7\n\n[[layers]]\ntype = "linear"\nn_in = 4\nn_out = 8\n\n'
                    '[[layers]]\ntype = "relu"\n\n[[layers]]\ntype = "Linear"\nn_in = 8\nn_out = 3\n\n'
                    '[[layers]]\ntype = "softmax"\n')
    spec = load_spec(path)
    net = lk.Net.from_config(spec)
    np.testing.assert_array_equal(net[2].W, lk.Net.from_config(SPEC, seed=7)[2].W)
    assert [type(layer) for layer in net] == [lk.Linear, lk.ReLU, lk.Linear, lk.Softmax]


def test_load_spec_writes_back_from_config_json(tmp_path):
    path = tmp_path / "saved.json"
    net = builtin_net("float32")
    path.write_text(json.dumps(net.config()))
    assert lk.Net.from_config(load_spec(path)).config() == net.config()


def test_load_spec_bad_files(tmp_path):
    (tmp_path / "a.yaml").write_text("- relu\n")
    with pytest.raises(ConfigError, match=r"a.yaml must end in .json or .toml, got '.yaml'"):
        load_spec(tmp_path / "a.yaml")
    (tmp_path / "b.json").write_text('["relu",')
    with pytest.raises(ConfigError, match=r"b.json is not valid JSON: .*line 1 column 9"):
        load_spec(tmp_path / "b.json")
    (tmp_path / "c.toml").write_text("[[layers]\n")
    with pytest.raises(ConfigError, match=r"c.toml is not valid TOML"):
        load_spec(tmp_path / "c.toml")
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "missing.json")


def test_empty_layer_name_is_a_config_error():
    """Found by tests/test_properties.py: an empty name escaped from_config as the registry's TypeError."""
    with pytest.raises(ConfigError, match=r"item 1: a layer name must be a non-empty str, got ''"):
        lk.Net.from_config(["relu", ""])

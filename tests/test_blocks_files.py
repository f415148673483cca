"""Blocks in configs (JSON, TOML, nested lists) and files: round trips with bit-identical predictions."""
import json

import numpy as np
import pytest

import layerkit as lk
from layerkit.blocks import Add, Concatenate, Residual
from layerkit.config import ConfigError, load_spec
from layerkit.io import ModelFileError

TOML = """
seed = 3

[[layers]]
type = "linear"
n_in = 4
n_out = 6

[[layers]]
type = "residual"

[[layers.layers]]
type = "linear"
n_in = 6
n_out = 6

[[layers.layers]]
type = "relu"

[[layers]]
type = "concatenate"
branches = [[{type = "linear", n_in = 6, n_out = 2}],
            [{type = "linear", n_in = 6, n_out = 3}, "tanh", {type = "net", layers = ["sigmoid"]}]]

[[layers]]
type = "add"
branches = [[{type = "linear", n_in = 5, n_out = 1}], [{type = "linear", n_in = 5, n_out = 1}]]
"""


def mixed_net():
    """Every block, batch norm and dropout nested, a float32-free float64 net."""
    return lk.Net([
        lk.Linear(4, 6, rng=0),
        Residual([lk.BatchNorm1d(6), lk.Linear(6, 6, rng=1), lk.ReLU(), lk.Dropout(0.2, rng=2)]),
        Concatenate([[lk.Linear(6, 2, rng=3)], [lk.Net([lk.Linear(6, 3, rng=4), lk.Tanh()])]]),
        Add([[lk.Linear(5, 2, rng=5)], [lk.LayerNorm(5), lk.Linear(5, 2, rng=6)]]),
    ])


def trained(net):
    x = np.random.default_rng(0).standard_normal((10, 4))
    for _ in range(2):
        y, trace = net.forward(x)
        net.backward(trace, y)
        net.step(0.05)
    return net


def test_toml_spec_with_nested_lists_builds_the_blocks(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text(TOML)
    net = lk.Net.from_config(load_spec(path))
    assert [type(layer) for layer in net] == [lk.Linear, Residual, Concatenate, Add]
    assert type(net[2].branches[1][2]) is lk.Net
    assert net.predict(np.ones((3, 4))).shape == (3, 1)
    again = lk.Net.from_config(load_spec(path))
    for name in net.param_names:  # the spec's seed reaches the nested layers: same weights
        np.testing.assert_array_equal(getattr(again, name), getattr(net, name))


def test_json_config_round_trip_rebuilds_the_architecture(tmp_path):
    net = mixed_net()
    spec = net.config()
    assert spec[1]["type"] == "residual" and spec[2]["branches"][1][0]["type"] == "net"
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    rebuilt = lk.Net.from_config(load_spec(path), seed=0)
    assert rebuilt.config() == spec
    assert rebuilt.param_names == net.param_names


def test_seed_gives_each_nested_layer_its_own_weights():
    spec = [{"type": "residual", "layers": [{"type": "linear", "n_in": 3, "n_out": 3}] * 2}]
    net = lk.Net.from_config(spec, seed=0)
    assert not np.array_equal(net[0].f[0].W, net[0].f[1].W)
    np.testing.assert_array_equal(lk.Net.from_config(spec, seed=0)[0].f[1].W, net[0].f[1].W)


def test_save_and_load_predict_bit_identically(tmp_path):
    net = trained(mixed_net())
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = lk.Net.load(path)
    x = np.random.default_rng(1).standard_normal((7, 4))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    np.testing.assert_array_equal(loaded[1].f[0].running_var, net[1].f[0].running_var)
    with np.load(path) as stored:
        assert "layers/1/f.0.running_mean" in stored.files and "layers/2/branches.1.0.0.W" in stored.files


def test_nested_config_errors_name_the_item():
    with pytest.raises(ConfigError, match=r"item 0 \('residual'\).*item 1 \('relux'\).*did you mean 'relu'"):
        lk.Net.from_config([{"type": "residual", "layers": ["tanh", "relux"]}])
    with pytest.raises(ConfigError, match=r"item 0 \('residual'\).*maps 3 features to 2"):
        lk.Net.from_config([{"type": "residual", "layers": [{"type": "linear", "n_in": 3, "n_out": 2}]}])
    with pytest.raises(ConfigError, match=r"item 1 \(Linear\(3, 1\)\) expects 3 input features but the layers "
                                          r"before it output 4"):
        lk.Net.from_config([{"type": "concatenate", "branches": [[{"type": "linear", "n_in": 2, "n_out": 2}],
                                                                 [{"type": "linear", "n_in": 2, "n_out": 2}]]},
                            {"type": "linear", "n_in": 3, "n_out": 1}])


def test_a_file_with_a_missing_nested_layer_says_it_is_not_installed(tmp_path):
    net = lk.Net([Residual([lk.Linear(2, 2, rng=0)])])
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path) as stored:
        entries = dict(stored)
    entries["config"] = np.array(json.dumps([{"type": "residual", "layers": [{"type": "mystery"}]}]))
    with open(path, "wb") as handle:
        np.savez(handle, **entries)
    with pytest.raises(ModelFileError, match="holds a layer that is not installed.*mystery"):
        lk.Net.load(path)

"""Names renamed when nets became layers keep working for a release, with a FutureWarning."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import config, io


def test_build_net_warns_and_builds_the_same_net_as_from_config():
    spec = [{"type": "linear", "n_in": 3, "n_out": 2}, "relu"]
    with pytest.warns(FutureWarning, match="Net.from_config"):
        net = config.build_net(spec, seed=0)
    assert type(net) is lk.Net
    x = np.linspace(-1, 1, 12).reshape(4, 3)
    np.testing.assert_array_equal(net.predict(x), lk.Net.from_config(spec, seed=0).predict(x))


def test_load_net_warns_and_loads_the_same_net_as_net_load(tmp_path):
    net = lk.Net([lk.Linear(3, 2, rng=0), lk.Sigmoid()])
    path = tmp_path / "net.npz"
    net.save(path)
    with pytest.warns(FutureWarning, match="Net.load"):
        loaded = io.load_net(path)
    assert type(loaded) is lk.Net
    x = np.linspace(-1, 1, 12).reshape(4, 3)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))

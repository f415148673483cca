"""Save and load (``layerkit.io``): bit-identical round trips, atomic writes, clear errors on bad files."""
from __future__ import annotations

import io as _stdio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import layerkit as lk
from layerkit import registry
from layerkit.config import ConfigError
from layerkit.io import FORMAT_VERSION, ModelFileError

from fake_plugins import fake_site  # noqa: F401  (fixture)


def trained_net(dtype: str = "float64", seed: int = 0) -> lk.Net:
    """A net with every built-in layer, trained a few steps so no parameter is at its initial value."""
    net = lk.Net.from_config([
        {"type": "linear", "n_in": 4, "n_out": 6, "dtype": dtype}, "relu",
        {"type": "linear", "n_in": 6, "n_out": 5, "init": "he", "dtype": dtype}, "sigmoid",
        {"type": "linear", "n_in": 5, "n_out": 3, "dtype": dtype}, "softmax",
    ], seed=seed)
    rng = np.random.default_rng(seed)
    x, t = rng.normal(size=(16, 4)).astype(dtype), rng.normal(size=(16, 3)).astype(dtype)
    for _ in range(3):
        y, trace = net.forward(x)
        net.backward(trace, y - t)
        net.step(0.1)
    return net


def inputs(dtype: str = "float64") -> np.ndarray:
    return np.random.default_rng(99).normal(size=(7, 4)).astype(dtype)


def read_entries(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_entries(path: Path, entries: dict[str, np.ndarray]) -> None:
    np.savez(path, **entries)


@pytest.fixture
def saved(tmp_path) -> tuple[lk.Net, Path]:
    net = trained_net()
    path = tmp_path / "net.npz"
    net.save(path)
    return net, path


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_identical(tmp_path, dtype):
    net = trained_net(dtype)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = lk.Net.load(path)
    assert loaded.config() == net.config()
    expected, got = net.predict(inputs(dtype)), loaded.predict(inputs(dtype))
    assert got.dtype == np.dtype(dtype)
    assert got.tobytes() == expected.tobytes()
    for old, new in zip(net, loaded):
        for name, value in old.params().items():
            assert new.params()[name].tobytes() == value.tobytes()
            assert new.params()[name] is not value


def test_file_layout(saved):
    _, path = saved
    entries = read_entries(path)
    assert str(entries["format"]) == "layerkit.net" and int(entries["format_version"]) == FORMAT_VERSION
    assert json.loads(str(entries["config"]))[1] == "relu"
    assert sorted(k for k in entries if k.startswith("layers/")) == [
        "layers/0/W", "layers/0/b", "layers/2/W", "layers/2/b", "layers/4/W", "layers/4/b"]


def test_fortran_ordered_weights_round_trip_bit_identically(tmp_path):
    net = trained_net()
    net[0].W = np.asfortranarray(net[0].W)
    net.save(tmp_path / "f.npz")
    assert lk.Net.load(tmp_path / "f.npz").predict(inputs()).tobytes() == net.predict(inputs()).tobytes()


def test_loaded_net_keeps_training(saved):
    net, path = saved
    loaded = lk.Net.load(path)
    for model in (net, loaded):
        y, trace = model.forward(inputs())
        model.backward(trace, y)
        model.step(0.05)
    assert loaded.predict(inputs()).tobytes() == net.predict(inputs()).tobytes()


def test_load_on_a_subclass_returns_the_subclass(saved):
    class MyNet(lk.Net):
        pass

    net, path = saved
    loaded = MyNet.load(path)
    assert type(loaded) is MyNet
    assert loaded.predict(inputs()).tobytes() == net.predict(inputs()).tobytes()


def test_saves_exactly_at_the_given_path_str_or_path(tmp_path):
    net = trained_net()
    net.save(str(tmp_path / "model.bin"))
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
    assert lk.Net.load(str(tmp_path / "model.bin")).predict(inputs()).tobytes() == net.predict(inputs()).tobytes()


def test_runtime_registered_layer_saves_and_loads(tmp_path):
    class Shift(lk.Layer):
        param_names = ("c",)

        def __init__(self, n: int = 2):
            self.n, self.c = n, np.arange(n, dtype=float)

        def forward(self, x):
            return np.asarray(x) + self.c

        def backward(self, x, dy):
            self.dc = np.asarray(dy).sum(0)
            return dy

        def get_config(self):
            return {"n": self.n}

    registry.register("shift", Shift)
    try:
        net = lk.Net([lk.Linear(4, 3, rng=0), Shift(3)])
        net[1].c = np.array([0.5, -1.0, 2.0])
        net.save(tmp_path / "s.npz")
        loaded = lk.Net.load(tmp_path / "s.npz")
        np.testing.assert_array_equal(loaded[1].c, [0.5, -1.0, 2.0])
        assert loaded.predict(inputs()).tobytes() == net.predict(inputs()).tobytes()
    finally:
        registry.unregister("shift")


# ------------------------------------------------------------------ atomic writes
def test_failure_mid_write_leaves_the_old_file_intact(saved, monkeypatch):
    net, path = saved
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_crash(handle, **entries):
        buffer = _stdio.BytesIO()
        real_savez(buffer, **entries)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # half the file is on disk ...
        raise OSError("No space left on device")                       # ... when the disk fills up

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="No space left"):
        trained_net(seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["net.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert lk.Net.load(path).predict(inputs()).tobytes() == net.predict(inputs()).tobytes()


def test_unregistered_layer_fails_before_writing(tmp_path):
    class Loose(lk.Layer):
        def forward(self, x):
            return x

        def backward(self, x, dy):
            return dy

    with pytest.raises(ConfigError, match=r"layer 1 .*Loose is not registered"):
        lk.Net([lk.ReLU(), Loose()]).save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_non_numeric_parameter_is_refused(tmp_path):
    net = trained_net()
    net[0].b = np.array(["a", "b"], dtype=object)
    with pytest.raises(TypeError, match=r"save: layers/0/b of Linear\(4, 6\): only numeric arrays can be saved "
                                        r"\(no pickling\), got dtype object"):
        net.save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ corrupt and foreign files
def test_every_truncation_fails_clearly(saved, tmp_path):
    net, path = saved
    data = path.read_bytes()
    broken = tmp_path / "broken.npz"
    for length in list(range(0, len(data), 7)) + [len(data) - 1]:
        broken.write_bytes(data[:length])
        with pytest.raises(ModelFileError, match=r"broken.npz is not a (readable )?layerkit model file"):
            lk.Net.load(broken)


def test_every_flipped_byte_fails_clearly_or_changes_nothing(tmp_path):
    """The zip's CRC-32 covers every array: a flipped byte either fails or hit a byte nobody reads."""
    net = lk.Net.from_config([{"type": "linear", "n_in": 3, "n_out": 2}, "sigmoid"], seed=0)
    path = tmp_path / "small.npz"
    net.save(path)
    data = path.read_bytes()
    x = inputs()[:, :3]
    expected = net.predict(x).tobytes()
    outcomes = {"error": 0, "harmless": 0}
    for position in range(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            loaded = lk.Net.load(path)
        except ModelFileError:
            outcomes["error"] += 1
        else:
            assert loaded.predict(x).tobytes() == expected, f"flipped byte {position} changed the predictions"
            outcomes["harmless"] += 1
    assert outcomes["error"] > len(data) // 2  # most bytes matter, and each of those was caught


@pytest.mark.parametrize("content, message", [
    (b"", r"is not a readable layerkit model file"),
    (b"hello, this is text\n", r"is not a readable layerkit model file \(truncated, corrupt or another format\)"),
])
def test_files_of_other_kinds(tmp_path, content, message):
    path = tmp_path / "other.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        lk.Net.load(path)


def test_a_single_npy_array_is_not_a_model(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.ones(3))
    with pytest.raises(ModelFileError, match=r"holds a single NumPy array, not an .npz archive"):
        lk.Net.load(path)


_unpickled = []


class _Payload:
    def __reduce__(self):
        return (_unpickled.append, ("code ran",))


def test_loading_never_unpickles(tmp_path, saved):
    _, path = saved
    entries = read_entries(path)
    entries["layers/0/W"] = np.array([_Payload()], dtype=object)
    np.savez(tmp_path / "evil.npz", allow_pickle=True, **entries)
    with pytest.raises(ModelFileError, match=r"evil.npz is not a readable layerkit model file"):
        lk.Net.load(tmp_path / "evil.npz")
    assert _unpickled == []


def test_npz_of_another_program(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, W=np.ones((2, 2)), b=np.zeros(2))
    with pytest.raises(ModelFileError, match=r"weights.npz is not a layerkit model file: it has no 'format' entry "
                                             r"\(it holds W, b\)"):
        lk.Net.load(path)


@pytest.mark.parametrize("change, message", [
    ({"format": np.array("keras.model")}, r"is not a layerkit model file: its format is 'keras.model', expected "
                                          r"'layerkit.net'"),
    ({"format": np.array([1, 2])}, r"entry 'format' must be a string, got array of shape \(2,\) and dtype int64"),
    ({"format_version": np.array(FORMAT_VERSION + 1)}, rf"was written by a newer layerkit \(format version "
                                                       rf"{FORMAT_VERSION + 1}\); this layerkit reads format versions "
                                                       rf"up to {FORMAT_VERSION}: upgrade layerkit"),
    ({"format_version": np.array(0)}, r"invalid format version 0"),
    ({"format_version": np.array("1")}, r"'format_version' must be an integer, got array of shape \(\) and dtype <U1"),
    ({"format_version": None}, r"'format_version' must be an integer, got nothing"),
    ({"config": None}, r"missing entry 'config'"),
    ({"config": np.array("[{'type': 'relu'}")}, r"entry 'config' is not valid JSON"),
    ({"config": np.array(1.5)}, r"entry 'config' must be a string"),
    ({"config": np.array("[" * 100_000)}, r"entry 'config' is not valid JSON"),
    ({"config": np.array('"relu"')}, r"its config cannot be built: Net.from_config: spec must be a list"),
    ({"config": np.array('[{"type": "linear", "n_in": 4}]')},
     r"its config cannot be built: .*item 0 \('linear'\): missing a required argument: 'n_out'"),
    ({"layers/2/W": None}, r"missing parameter arrays \['layers/2/W'\]"),
    ({"layers/0/b": None, "layers/4/W": None}, r"missing parameter arrays \['layers/0/b', 'layers/4/W'\]"),
    ({"layers/1/W": np.ones(2)}, r"unexpected arrays \['layers/1/W'\] that no layer of its config has"),
    ({"layers/0/W": np.ones((6, 4))}, r"array 'layers/0/W' of Linear\(4, 6\) must have shape \(4, 6\) and dtype "
                                      r"float64, got array of shape \(6, 4\) and dtype float64"),
    ({"layers/2/b": np.ones(5, dtype=np.float32)}, r"array 'layers/2/b' of Linear\(6, 5, init='he'\) must have "
                                                   r"shape \(5,\) and dtype float64, got .*dtype float32"),
    ({"layers/4/b": np.ones(3, dtype=np.int64)}, r"array 'layers/4/b' .*got array of shape \(3,\) and dtype int64"),
])
def test_wrong_contents_say_which(saved, tmp_path, change, message):
    _, path = saved
    entries = read_entries(path)
    for key, value in change.items():
        if value is None:
            del entries[key]
        else:
            entries[key] = value
    bad = tmp_path / "bad.npz"
    write_entries(bad, entries)
    with pytest.raises(ModelFileError, match=message):
        lk.Net.load(bad)


def test_layer_from_a_plugin_that_is_not_installed(fake_site, tmp_path):
    info = fake_site("gone-layers", {"gone": "gone_mod:Gone"}, {"gone_mod": """
        import numpy as np
        from layerkit import Layer

        class Gone(Layer):
            def forward(self, x):
                return -np.asarray(x)

            def backward(self, x, dy):
                return -np.asarray(dy)
    """})
    net = lk.Net([lk.Linear(4, 2, rng=0), registry.create("gone")])
    net.save(tmp_path / "gone.npz")
    assert lk.Net.load(tmp_path / "gone.npz").predict(inputs()).tobytes() == net.predict(inputs()).tobytes()
    shutil.rmtree(info)  # pip uninstall gone-layers
    registry.refresh()
    with pytest.raises(ModelFileError, match=r"gone.npz holds a layer that is not installed: Net.from_config: item 1 "
                                             r"\('gone'\): unknown layer 'gone'.*Install the plugin package"):
        lk.Net.load(tmp_path / "gone.npz")


def test_error_classes_are_reachable_from_the_package():
    assert lk.io.ModelFileError is ModelFileError and issubclass(ModelFileError, ValueError)
    assert lk.config.ConfigError is ConfigError and issubclass(ConfigError, ValueError)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        lk.Net.load(tmp_path / "nowhere.npz")


# ------------------------------------------------------------------ optimizer state
class FakeOptimizer:
    """The optimizer contract: ``state_dict() -> {"config": JSON-able, "arrays": {str: ndarray}}``."""

    def __init__(self, lr=0.1, momentum=0.9, velocity=None, steps=0):
        self.lr, self.momentum, self.steps = lr, momentum, steps
        self.velocity = velocity if velocity is not None else {}

    def state_dict(self):
        return {"config": {"lr": self.lr, "momentum": self.momentum, "steps": self.steps},
                "arrays": {f"velocity/{k}": v for k, v in self.velocity.items()}}

    def load_state_dict(self, state):
        config = state["config"]
        if config["momentum"] < 0:
            raise ValueError(f"momentum must be >= 0, got {config['momentum']}")
        self.lr, self.momentum, self.steps = config["lr"], config["momentum"], config["steps"]
        self.velocity = {k[len("velocity/"):]: v for k, v in state["arrays"].items()}


def test_optimizer_state_round_trips(saved, tmp_path):
    net, _ = saved
    rng = np.random.default_rng(0)
    optimizer = FakeOptimizer(lr=0.03, momentum=0.5, steps=17,
                              velocity={"0/W": rng.normal(size=(4, 6)), "0/b": rng.normal(size=6).astype(np.float32)})
    path = tmp_path / "with_opt.npz"
    net.save(path, optimizer=optimizer)
    assert {"optimizer/velocity/0/W", "optimizer/velocity/0/b", "optimizer_config"} <= set(read_entries(path))
    fresh = FakeOptimizer()
    loaded = lk.Net.load(path, optimizer=fresh)
    assert (fresh.lr, fresh.momentum, fresh.steps) == (0.03, 0.5, 17)
    assert set(fresh.velocity) == {"0/W", "0/b"}
    for key, value in optimizer.velocity.items():
        assert fresh.velocity[key].dtype == value.dtype and fresh.velocity[key].tobytes() == value.tobytes()
    assert loaded.predict(inputs()).tobytes() == net.predict(inputs()).tobytes()
    assert lk.Net.load(path).predict(inputs()).tobytes() == net.predict(inputs()).tobytes()  # optimizer optional


def test_asking_for_optimizer_state_that_was_not_saved(saved):
    _, path = saved
    with pytest.raises(ModelFileError, match=r"net.npz holds no optimizer state \(it was saved without optimizer=\)"):
        lk.Net.load(path, optimizer=FakeOptimizer())


def test_optimizer_rejecting_its_state_is_a_model_file_error(saved, tmp_path):
    net, _ = saved
    path = tmp_path / "neg.npz"
    net.save(path, optimizer=FakeOptimizer(momentum=-1.0))
    with pytest.raises(ModelFileError, match=r"FakeOptimizer.load_state_dict rejected the stored optimizer state: "
                                             r"momentum must be >= 0, got -1.0"):
        lk.Net.load(path, optimizer=FakeOptimizer())


@pytest.mark.parametrize("state, message", [
    ({"config": {"lr": object()}, "arrays": {}}, r"state_dict\(\)\['config'\] is not JSON-able"),
    ({"config": {"lr": float("nan")}, "arrays": {}}, r"state_dict\(\)\['config'\] is not JSON-able"),
    ({"config": {}, "arrays": {"v": np.array([None])}}, r"array 'v': only numeric arrays can be saved"),
    ({"config": {}, "arrays": {3: np.ones(2)}}, r"keys must be non-empty strings, got 3"),
    ({"config": {}}, r"state_dict\(\) must return \{'config': dict, 'arrays'"),
    ([1, 2], r"state_dict\(\) must return"),
])
def test_bad_optimizer_state_is_refused_before_writing(saved, tmp_path, state, message):
    net, path = saved
    before = path.read_bytes()

    class Odd:
        def state_dict(self):
            return state

    with pytest.raises(TypeError, match=r"save: optimizer Odd.*" + message):
        net.save(path, optimizer=Odd())
    assert path.read_bytes() == before


def test_optimizer_without_state_dict(saved, tmp_path):
    net, _ = saved
    with pytest.raises(TypeError, match=r"save: optimizer object has no state_dict\(\) method"):
        net.save(tmp_path / "x.npz", optimizer=object())


@pytest.mark.parametrize("make_optimizer", [
    lambda: lk.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: lk.optim.Adam(lr=0.01, amsgrad=True),
    lambda: lk.optim.AdamW(lr=0.01, weight_decay=0.1),
    lambda: lk.optim.RMSprop(lr=0.01, momentum=0.5, centered=True),
    lambda: lk.optim.AdaGrad(lr=0.1),
])
def test_training_resumes_identically_from_a_saved_net_and_real_optimizer(make_optimizer, tmp_path):
    """Save mid-training with the optimizer's state; the loaded pair continues bit for bit."""
    rng = np.random.default_rng(3)
    x, labels = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    net = lk.Net([lk.Linear(4, 6, rng=rng), lk.Sigmoid(), lk.Linear(6, 3, rng=rng)])
    optimizer = make_optimizer()
    train = dict(epochs=2, batch_size=8, loss="softmax_cross_entropy", shuffle=False, verbose=False)
    lk.fit(net, x, labels, optimizer=optimizer, **train)
    path = tmp_path / "checkpoint.npz"
    net.save(path, optimizer=optimizer)
    resumed_optimizer = make_optimizer()
    resumed = lk.Net.load(path, optimizer=resumed_optimizer)
    lk.fit(net, x, labels, optimizer=optimizer, **train)
    lk.fit(resumed, x, labels, optimizer=resumed_optimizer, **train)
    assert resumed.predict(x).tobytes() == net.predict(x).tobytes()
    fresh = lk.Net.load(path)  # the same file without restoring the optimizer state diverges
    lk.fit(fresh, x, labels, optimizer=make_optimizer(), **train)
    assert fresh.predict(x).tobytes() != net.predict(x).tobytes()


@pytest.mark.parametrize("stored_config", ["5", "null", "[1, 2]", '"SGD"', '{"type": "SGD"}', '{"type": "Adam", "lr": 0.1}'])
def test_malformed_stored_optimizer_config_is_a_model_file_error(saved, tmp_path, stored_config):
    """Issue 15 item 7: an ``optimizer_config`` of JSON ``5`` raised AttributeError."""
    net, _ = saved
    path = tmp_path / "opt.npz"
    net.save(path, optimizer=lk.optim.SGD(lr=0.1))
    entries = read_entries(path)
    entries["optimizer_config"] = np.array(stored_config)
    write_entries(path, entries)
    with pytest.raises(ModelFileError, match=r"opt.npz: SGD.load_state_dict rejected the stored optimizer state: "
                                             r"SGD.load_state_dict: ('config'|the state comes from 'Adam')"):
        lk.Net.load(path, optimizer=lk.optim.SGD())


def test_huge_layer_in_a_file_and_in_a_config_give_their_error_classes(saved, tmp_path):
    """Issue 15 item 9: a config asking for a 2**40-row weight raised MemoryError from Net.from_config."""
    spec = [{"type": "linear", "n_in": 2 ** 40, "n_out": 1}]
    with pytest.raises(ConfigError, match=r"item 0 \('linear'\): the layer is too large to build with "
                                          r"\{'n_in': 1099511627776, 'n_out': 1\}"):
        lk.Net.from_config(spec)
    net, path = saved
    entries = read_entries(path)
    entries["config"] = np.array(json.dumps(spec))
    write_entries(path, entries)
    with pytest.raises(ModelFileError, match=r"too large"):
        lk.Net.load(path)


def test_load_with_optimizer_true_rebuilds_the_stored_optimizer(tmp_path):
    from layerkit.optim import RMSprop

    net = lk.Net([lk.Linear(3, 2, rng=0)])
    optimizer = RMSprop(0.01, momentum=0.5)
    x = np.random.default_rng(0).normal(size=(4, 3))
    y, trace = net.forward(x)
    net.backward(trace, np.ones_like(y))
    net.step(optimizer)
    net.save(tmp_path / "m.npz", optimizer=optimizer)
    loaded, rebuilt = lk.Net.load(tmp_path / "m.npz", optimizer=True)
    assert type(rebuilt) is RMSprop and rebuilt.config() == optimizer.config()
    np.testing.assert_array_equal(rebuilt.state["0.W"]["square_avg"], optimizer.state["0.W"]["square_avg"])
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    net.save(tmp_path / "plain.npz")
    with pytest.raises(ModelFileError, match=r"holds no optimizer state \(it was saved without optimizer=\)"):
        lk.Net.load(tmp_path / "plain.npz", optimizer=True)
    with pytest.raises(TypeError, match=r"optimizer must be True .* got <class"):
        lk.Net.load(tmp_path / "m.npz", optimizer=RMSprop)

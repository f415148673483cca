"""layerkit.onnx.to_onnx: every layer kind, both dtypes, checked by onnx's checker and run by onnxruntime.

Agreement is relative to the output's scale: ``|onnx - predict| <= rtol * (|predict| + max|predict|)``
element by element (an output that cancels to ~0 is compared on the net's scale, not its own).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import layerkit as lk
from layerkit import registry
from layerkit.layers import (ELU, GELU, BatchNorm1d, Dropout, Identity, LayerNorm, LeakyReLU, Softplus, Tanh)
from layerkit.onnx import Builder, to_onnx

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
BATCHES = (1, 7, 256)
WIDTH = 9


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_agrees(got: np.ndarray, want: np.ndarray, dtype) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = RTOL[dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


def randomise(layer, rng) -> None:
    """Non-trivial learned values and running statistics, so that exporting them wrongly shows."""
    for name in ("gamma", "beta"):
        if isinstance(getattr(layer, name, None), np.ndarray):
            value = getattr(layer, name)
            value[...] = rng.normal(1.0 if name == "gamma" else 0.0, 0.5, size=value.shape)
    if isinstance(layer, BatchNorm1d):
        layer.running_mean[...] = rng.normal(0.0, 0.5, size=WIDTH)
        layer.running_var[...] = rng.uniform(0.3, 2.0, size=WIDTH)


KINDS = {
    "relu": lambda dt: lk.ReLU(),
    "sigmoid": lambda dt: lk.Sigmoid(),
    "softmax": lambda dt: lk.Softmax(),
    "tanh": lambda dt: Tanh(),
    "leaky_relu": lambda dt: LeakyReLU(negative_slope=0.07),
    "elu": lambda dt: ELU(alpha=1.3),
    "gelu": lambda dt: GELU(),
    "gelu_tanh": lambda dt: GELU(approximate="tanh"),
    "softplus": lambda dt: Softplus(beta=1.5, threshold=3.0),
    "identity": lambda dt: Identity(),
    "dropout": lambda dt: Dropout(p=0.3, rng=0),
    "layer_norm": lambda dt: LayerNorm(WIDTH, eps=1e-4, dtype=dt),
    "batch_norm": lambda dt: BatchNorm1d(WIDTH, eps=1e-3, dtype=dt),
}


def random_net(kind: str, dtype, seed: int) -> lk.Net:
    """Linear, the layer, Linear, the layer again as the output (so its own output is compared too)."""
    rng = np.random.default_rng(seed)
    layers = [lk.Linear(6, WIDTH, rng=rng, dtype=dtype), KINDS[kind](dtype),
              lk.Linear(WIDTH, WIDTH, rng=rng, dtype=dtype), KINDS[kind](dtype)]
    for layer in layers:
        randomise(layer, rng)
        if isinstance(layer, lk.Linear):
            layer.b[...] = rng.normal(0, 0.5, size=layer.b.shape)
    return lk.Net(layers)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_layer_kind_matches_predict(kind, dtype):
    net = random_net(kind, dtype, seed=len(kind))
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(1)
    for batch in BATCHES:
        x = (rng.normal(size=(batch, 6)) * 3).astype(dtype)
        assert_agrees(run(model, x), net.predict(x), dtype)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_nan_propagates_as_in_numpy(kind):
    """A NaN input reaches the output of its row (every layer after the first Linear mixes the row)."""
    net = random_net(kind, np.float64, seed=3)
    x = np.random.default_rng(0).normal(size=(4, 6))
    x[1, 2] = np.nan
    got, want = run(to_onnx(net), x), net.predict(x)
    assert np.isnan(got[1]).all() and not np.isnan(got[[0, 2, 3]]).any()
    assert_agrees(got[[0, 2, 3]], want[[0, 2, 3]], np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_net_of_every_layer_at_once(dtype):
    rng = np.random.default_rng(5)
    layers = [lk.Linear(6, WIDTH, rng=rng, dtype=dtype)]
    for kind in sorted(KINDS):
        if kind != "softmax":
            layers += [KINDS[kind](dtype), lk.Linear(WIDTH, WIDTH, rng=rng, dtype=dtype)]
    layers.append(lk.Softmax())
    for layer in layers:
        randomise(layer, rng)
    net = lk.Net(layers)
    model = to_onnx(net)
    for batch in BATCHES:
        x = rng.normal(size=(batch, 6)).astype(dtype)
        assert_agrees(run(model, x), net.predict(x), dtype)


@pytest.mark.parametrize("opset", [13, 17, 18, 20, 21])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_opsets_choose_their_ops_and_agree(opset, dtype):
    net = lk.Net([lk.Linear(6, WIDTH, rng=0, dtype=dtype), GELU(), LayerNorm(WIDTH, dtype=dtype),
                  GELU(approximate="tanh"), lk.Linear(WIDTH, 3, rng=1, dtype=dtype)])
    model = to_onnx(net, opset=opset)
    assert model.opset_import[0].version == opset
    ops = {node.op_type for node in model.graph.node}
    assert ("Gelu" in ops) == (dtype == np.float32 and opset >= 20)
    assert "Erf" not in ops or dtype == np.float32  # onnxruntime has no float64 Erf
    x = np.random.default_rng(2).normal(size=(7, 6)).astype(dtype)
    assert_agrees(run(model, x), net.predict(x), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_functions_keep_relative_precision_in_their_tails(dtype):
    """Tiny outputs (sigmoid of -30, softplus of -20, expm1 near 0) agree to the dtype's precision, element by element."""
    x = np.concatenate([np.linspace(-30, 30, 601), [-1e-9, 1e-9, -1e-4, 0.0]]).astype(dtype)[:, None]
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for layer in (lk.Sigmoid(), Softplus(), Softplus(beta=2.0, threshold=10.0), ELU(alpha=0.5)):
        net = lk.Net([lk.Linear(1, 1, dtype=dtype), layer])  # the Linear (W = 1, b = 0) sets the dtype
        net[0].W[...] = 1.0
        want = net.predict(x)
        got = run(to_onnx(net), x)
        tiny = np.abs(want) > 1e-30
        np.testing.assert_allclose(got[tiny], want[tiny], rtol=rtol, err_msg=repr(layer))


def test_gelu_float64_matches_torch_where_erf_does_not_cancel():
    torch = pytest.importorskip("torch")
    x = np.linspace(-3, 8, 2001)[:, None]  # below -3, 1 + erf cancels in torch itself
    got = run(to_onnx(lk.Net([GELU()])), x)
    want = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_and_batch_norm_export_inference_mode_even_from_a_training_net(dtype):
    rng = np.random.default_rng(3)
    net = lk.Net([lk.Linear(6, WIDTH, rng=rng, dtype=dtype), BatchNorm1d(WIDTH, dtype=dtype), Dropout(p=0.5, rng=1),
                  lk.Linear(WIDTH, 2, rng=rng, dtype=dtype)])
    net.train()
    lk.fit(net, rng.normal(size=(64, 6)).astype(dtype), rng.normal(size=(64, 2)).astype(dtype), epochs=3, lr=0.05,
           batch_size=16, loss="mse", seed=0)
    assert not np.allclose(net[1].running_mean, 0.0)  # training moved the statistics the export must carry
    model = to_onnx(net)
    ops = [node.op_type for node in model.graph.node]
    assert "Dropout" not in ops
    assert ("BatchNormalization" in ops) == (dtype == np.float32)  # float64: composed (float32 epsilon attribute)
    x = rng.normal(size=(7, 6)).astype(dtype)
    assert_agrees(run(model, x), net.predict(x), dtype)
    assert all(layer.training for layer in net)  # export leaves the modes alone


def test_signature_dynamic_batch_and_names():
    net = lk.Net([lk.Linear(4, 3, rng=0, dtype="float32"), lk.Softmax()])
    model = to_onnx(net, input_name="features", output_name="probabilities")
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("features", "probabilities")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT == out.type.tensor_type.elem_type
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 4]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 3]
    assert model.producer_name == "layerkit"


def test_path_is_written_atomically(tmp_path, monkeypatch):
    net = lk.Net([lk.Linear(4, 2, rng=0)])
    target = tmp_path / "net.onnx"
    model = to_onnx(net, path=target)
    assert onnx.load(str(target)) == model
    old = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(onnx, "save_model", crash)
    with pytest.raises(OSError, match="disk full"):
        to_onnx(lk.Net([lk.Linear(4, 5, rng=1)]), path=target)
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]


# ---------------------------------------------------------------------- plugin hook and errors
class Cube(lk.Layer):
    """A plugin-style layer with the hook: y = x**3."""

    def forward(self, x):
        return np.asarray(x) ** 3

    def backward(self, x, dy):
        return 3 * np.asarray(x) ** 2 * dy

    def to_onnx(self, builder, input_name):
        return builder.add_node("Mul", [builder.add_node("Mul", [input_name, input_name]), input_name])


class NoHook(lk.Layer):
    def forward(self, x):
        return x

    def backward(self, x, dy):
        return dy


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_a_layer_with_the_hook_exports():
    net = lk.Net([lk.Linear(3, 4, rng=0), Cube(), lk.Linear(4, 2, rng=1)])
    x = np.random.default_rng(0).normal(size=(7, 3))
    assert_agrees(run(to_onnx(net), x), net.predict(x), np.float64)
    # widths are declared where built-in layers tell them; a plugin layer may change them unannounced
    model = to_onnx(lk.Net([lk.ReLU(), Cube(), lk.Linear(4, 2, rng=1), Tanh()]))
    assert dims(model.graph.input[0]) == ["batch", "n_in"] and dims(model.graph.output[0]) == ["batch", 2]
    model = to_onnx(lk.Net([lk.ReLU(), LayerNorm(4), Cube()]))
    assert dims(model.graph.input[0]) == ["batch", 4] and dims(model.graph.output[0]) == ["batch", "n_out"]


def test_a_layer_without_the_hook_is_named_in_the_error():
    net = lk.Net([lk.Linear(3, 4, rng=0), NoHook()])
    with pytest.raises(TypeError, match=r"layer 1 \(NoHook\(\).*to_onnx\(self, builder, input_name\) -> output_name"):
        to_onnx(net)


def test_a_hook_must_return_a_tensor_name():
    class Bad(NoHook):
        def to_onnx(self, builder, input_name):
            return None

    with pytest.raises(TypeError, match=r"layer 0 .*returned None, not the name of its output tensor"):
        to_onnx(lk.Net([Bad()]))


def test_subclasses_of_built_ins_need_their_own_hook():
    class Shifted(lk.ReLU):  # changes forward: exporting it as ReLU would be silently wrong
        def forward(self, x):
            return super().forward(x) + 1

    with pytest.raises(TypeError, match="Shifted"):
        to_onnx(lk.Net([Shifted()]))


@pytest.mark.parametrize("opset", [12, 0, "17", 10_000, True])
def test_opset_out_of_range(opset):
    with pytest.raises(ValueError, match=f"opset must be an int from 13 to .*got {opset!r}"):
        to_onnx(lk.Net([lk.ReLU()]), opset=opset)


def test_net_argument_is_checked():
    with pytest.raises(TypeError, match="net must be a layerkit Net .* got int"):
        to_onnx(3)
    with pytest.raises(ValueError, match="input_name and output_name must differ"):
        to_onnx(lk.Net([lk.ReLU()]), input_name="y")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plugin_package_layers_export_through_their_hooks(dtype):
    registry.refresh()
    swish = registry.get("swish")
    rng = np.random.default_rng(4)
    layers = [lk.Linear(5, WIDTH, rng=rng, dtype=dtype), swish(WIDTH, beta=0.7, dtype=dtype),
              lk.Linear(WIDTH, WIDTH, rng=rng, dtype=dtype), swish(dtype=dtype)]
    layers += [registry.get("mish")(), lk.Linear(WIDTH, 3, rng=rng, dtype=dtype)]
    layers[1].beta[...] = rng.uniform(0.2, 2.0, size=WIDTH)  # learned, per feature
    net = lk.Net(layers)
    model = to_onnx(net)
    for batch in BATCHES:
        x = (rng.normal(size=(batch, 5)) * 3).astype(dtype)
        assert_agrees(run(model, x), net.predict(x), dtype)


# ---------------------------------------------------------------------- builder
def test_builder_names_are_unique_and_constants_take_its_dtype():
    builder = Builder(np.float32, 17, reserved=("x",))
    names = {builder.unique_name("x") for _ in range(5)} | {builder.add_initializer([1.0, 2.0], "x")}
    assert len(names) == 6 and "x" not in names
    assert builder.initializers[0].data_type == onnx.TensorProto.FLOAT
    assert builder.scalar(0.5) == builder.scalar(0.5) != builder.scalar(1.5)
    axes = builder.add_initializer([-1], "axes", dtype=np.int64)
    assert onnx.numpy_helper.to_array(builder.initializers[-1]).dtype == np.int64 and axes.startswith("axes")
    out = builder.add_node("Relu", ["x"])
    assert builder.nodes[-1].input == ["x"] and builder.nodes[-1].output == [out]
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        Builder(np.int32, 17)


def test_big_endian_and_fortran_parameters_export_their_values():
    net = lk.Net([lk.Linear(3, 2, rng=0)])
    W = net[0].W.copy()
    builder = Builder(np.float64, 17)
    name = builder.add_initializer(np.asfortranarray(W).astype(">f8"), "W")
    assert name and np.array_equal(onnx.numpy_helper.to_array(builder.initializers[0]), W)


def test_import_layerkit_does_not_import_onnx():
    code = ("import sys, layerkit, layerkit.sklearn\n"
            "bad = [m for m in ('onnx', 'onnxruntime', 'skl2onnx') if m in sys.modules]\n"
            "print('LOADED', bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in result.stdout


# ---------------------------------------------------------------------- images, indices, more axes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm2d_exports_and_equals_predict(dtype):
    rng = np.random.default_rng(0)
    layer = lk.BatchNorm2d(3, eps=1e-3, dtype=dtype)
    for name in ("gamma", "beta", "running_mean"):
        getattr(layer, name)[...] = rng.normal(size=3)
    layer.running_var[...] = rng.uniform(0.3, 2.0, size=3)
    net = lk.Net([layer, lk.ReLU(), lk.BatchNorm2d(3, dtype=dtype)])
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert ("BatchNormalization" in ops) == (dtype == np.float32)
    for batch in (1, 5):
        x = (rng.normal(size=(batch, 3, 4, 6)) * 2 + 1).astype(dtype)
        assert_agrees(run(model, x), net.predict(x), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (4, 5)])
def test_embedding_exports_as_gather_and_takes_int64_indices(dtype, shape):
    rng = np.random.default_rng(1)
    net = lk.Net([lk.Embedding(9, 4, rng=0, dtype=dtype), lk.Tanh(), lk.Linear(4, 2, rng=1, dtype=dtype)])
    model = to_onnx(net, input_rank=len(shape))
    onnx.checker.check_model(model, full_check=True)
    assert "Gather" in {node.op_type for node in model.graph.node}
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    x = rng.integers(0, 9, size=shape).astype(np.int64)
    got = run(model, x)
    want = net.predict(x)
    assert got.shape == shape + (2,)
    assert_agrees(got, want, dtype)


def test_input_rank_defaults_to_the_lowest_and_is_checked():
    net = lk.Net([lk.Embedding(9, 4, rng=0), lk.Linear(4, 2, rng=1)])
    assert len(to_onnx(net).graph.input[0].type.tensor_type.shape.dim) == 1
    assert len(to_onnx(net).graph.output[0].type.tensor_type.shape.dim) == 2
    assert len(to_onnx(net, input_rank=2).graph.output[0].type.tensor_type.shape.dim) == 3
    with pytest.raises(ValueError, match=r"layerkit.onnx: input_rank must be an int from 1 to 2 for "
                                         r"Embedding\(9, 4\), got 3"):
        to_onnx(net, input_rank=3)


def test_a_linear_net_on_sequences_exports_with_the_rank_asked_for():
    rng = np.random.default_rng(2)
    net = lk.Net([lk.Linear(5, 3, rng=0), lk.ReLU()])
    model = to_onnx(net)  # Gemm: 2-D batches, as before
    assert "Gemm" in {node.op_type for node in model.graph.node}
    x = rng.normal(size=(4, 5))
    assert_agrees(run(model, x), net.predict(x), np.float64)
    model = to_onnx(net, input_rank=3)  # MatMul over the last axis
    assert "Gemm" not in {node.op_type for node in model.graph.node}
    x = rng.normal(size=(4, 6, 5))
    assert_agrees(run(model, x), net.predict(x), np.float64)


def _batch_norm1d(n, dtype, rng):
    layer = BatchNorm1d(n, eps=1e-3, dtype=dtype)
    for name in ("gamma", "beta", "running_mean"):
        getattr(layer, name)[...] = rng.normal(size=n)
    layer.running_var[...] = rng.uniform(0.3, 2.0, size=n)
    return layer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm1d_on_sequences_exports_and_equals_predict(dtype):
    """(n, C, L) input: each channel normalised over its positions, as predict does (float64 too)."""
    rng = np.random.default_rng(3)
    net = lk.Net([_batch_norm1d(3, dtype, rng), lk.ReLU(), _batch_norm1d(3, dtype, rng)])
    model = to_onnx(net, input_rank=3)
    onnx.checker.check_model(model, full_check=True)
    assert dims(model.graph.input[0]) == dims(model.graph.output[0]) == ["batch", 3, "length"]
    ops = {node.op_type for node in model.graph.node}
    assert ("BatchNormalization" in ops) == (dtype == np.float32)
    for batch, length in ((1, 6), (5, 3), (4, 1)):  # L == C: a vector broadcast over L instead of C would not fail
        x = (rng.normal(size=(batch, 3, length)) * 2 + 1).astype(dtype)
        assert_agrees(run(model, x), net.predict(x), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank_known", [True, False], ids=["rank inferred", "rank at run time"])
def test_batch_norm1d_after_conv1d_and_pooling_equals_predict(dtype, rank_known, monkeypatch):
    """BatchNorm1d on (n, C, L) after a Conv1d and on (n, C) after pooling, in one graph of 3-D input."""
    if not rank_known:  # the graph then reshapes the per-channel vectors by the input's rank when it runs
        monkeypatch.setattr(Builder, "rank", lambda self, name: None)
    rng = np.random.default_rng(4)
    net = lk.Net([lk.Conv1d(2, 4, 3, padding="same", rng=0, dtype=dtype), _batch_norm1d(4, dtype, rng), lk.Tanh(),
                  lk.GlobalAvgPool1d(), _batch_norm1d(4, dtype, rng), lk.Linear(4, 2, rng=1, dtype=dtype)])
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    for batch, length in ((1, 4), (6, 9)):
        x = rng.normal(size=(batch, 2, length)).astype(dtype)
        assert_agrees(run(model, x), net.predict(x), dtype)

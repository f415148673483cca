"""layerkit.onnx.to_onnx of BatchNorm2d (BatchNormalization), Embedding (Gather) and nets of inputs with more axes."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import layerkit as lk
from layerkit.onnx import to_onnx

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_agrees(got: np.ndarray, want: np.ndarray, dtype) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = RTOL[dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


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

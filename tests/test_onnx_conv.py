"""ONNX export of conv, pooling and Flatten layers equals predict in onnxruntime, in float32 and float64."""
from __future__ import annotations

import numpy as np
import pytest

import layerkit as lk

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def run(net, x):
    model = lk.onnx.to_onnx(net)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def nets_2d(dtype):
    rng = np.random.default_rng(0)

    def conv(*args, **kwargs):
        layer = lk.Conv2d(*args, rng=rng, dtype=dtype, **kwargs)
        if layer.bias:
            layer.b[...] = rng.standard_normal(layer.b.shape)
        return layer

    return {
        "lenet_like": [conv(2, 4, 3, padding=1), lk.ReLU(), lk.MaxPool2d(2), conv(4, 6, (2, 3), stride=(1, 2)),
                       lk.Tanh(), lk.AvgPool2d(2, stride=1, padding=1), lk.Flatten(),
                       lk.Linear(6 * 4 * 2, 3, rng=1, dtype=dtype)],
        "same_dilated_grouped": [conv(2, 4, 4, padding="same", dilation=2, groups=2, bias=False),
                                 lk.MaxPool2d(3, stride=2, padding=1), conv(4, 4, 1, groups=4),
                                 lk.GlobalAvgPool2d()],
        "strided_valid": [conv(2, 3, 3, stride=2, padding="valid"), lk.AvgPool2d((2, 1)), lk.Flatten()],
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["lenet_like", "same_dilated_grouped", "strided_valid"])
def test_2d_nets_match_predict(name, dtype):
    net = lk.Net(nets_2d(dtype)[name])
    x = np.random.default_rng(1).standard_normal((3, 2, 8, 9)).astype(dtype)
    np.testing.assert_allclose(run(net, x), net.predict(x), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_1d_nets_match_predict(dtype):
    rng = np.random.default_rng(2)
    net = lk.Net([lk.Conv1d(3, 4, 3, padding="same", rng=rng, dtype=dtype), lk.ReLU(),
                  lk.MaxPool1d(2, stride=1, padding=1), lk.Conv1d(4, 4, 2, stride=2, dilation=2, groups=2,
                                                                  rng=rng, dtype=dtype),
                  lk.AvgPool1d(2, padding=1), lk.GlobalAvgPool1d(), lk.Linear(4, 2, rng=rng, dtype=dtype)])
    net[0].b[...] = 0.3
    x = rng.standard_normal((4, 3, 11)).astype(dtype)
    np.testing.assert_allclose(run(net, x), net.predict(x), **TOL[dtype])


def test_float32_uses_the_onnx_ops_and_declares_an_image_input():
    net = lk.Net(nets_2d(np.float32)["lenet_like"])
    model = lk.onnx.to_onnx(net)
    ops = {node.op_type for node in model.graph.node}
    assert {"Conv", "MaxPool", "AveragePool", "Flatten"} <= ops
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 2, "height", "width"]
    gap = lk.onnx.to_onnx(lk.Net([lk.Conv2d(1, 2, 1, dtype=np.float32), lk.GlobalAvgPool2d()]))
    assert "GlobalAveragePool" in {node.op_type for node in gap.graph.node}
    composed = lk.onnx.to_onnx(lk.Net([lk.Conv2d(1, 2, 1), lk.GlobalAvgPool2d()]))
    assert not {"Conv", "GlobalAveragePool"} & {node.op_type for node in composed.graph.node}

"""layerkit.onnx.to_onnx of nets with blocks: onnxruntime equals net.predict, in both dtypes."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.blocks import Add, Concatenate, Residual

ort = pytest.importorskip("onnxruntime", reason="the 'onnx' extra is needed to run exported models")
from layerkit.onnx import to_onnx  # noqa: E402

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def nested(dtype):
    def lin(n_in, n_out, seed):
        return lk.Linear(n_in, n_out, rng=seed, dtype=dtype)

    return lk.Net([
        lin(5, 6, 0),
        Residual([lk.BatchNorm1d(6, dtype=dtype), lin(6, 6, 1), lk.ReLU(), lk.Dropout(0.5, rng=0)]),
        Concatenate([[lin(6, 2, 2)], [lk.Net([lin(6, 3, 3), lk.Tanh()]), Residual([lin(3, 3, 4)])]]),
        Add([[lin(5, 4, 5), lk.GELU()], [lin(5, 4, 6)], [lk.LayerNorm(5, dtype=dtype), lin(5, 4, 7)]]),
        lk.Softmax(),
    ])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_export_and_onnxruntime_agrees(dtype):
    net = nested(dtype)
    net[1].f[0].running_mean[...] = 0.3
    net[1].f[0].running_var[...] = 1.7
    model = to_onnx(net)
    ops = {node.op_type for node in model.graph.node}
    assert {"Add", "Concat", "Sum"} <= ops
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(dtype)
    want = net.predict(x)
    got = run(model, x)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * float(np.abs(want).max()))


def test_a_nested_layer_without_a_converter_is_named():
    class Custom(lk.Layer):
        def forward(self, x):
            return x

        def backward(self, x, dy):
            return dy

    with pytest.raises(TypeError, match=r"Custom\(\).*cannot be exported"):
        to_onnx(lk.Net([lk.Linear(2, 2, rng=0), Residual([Custom()])]))

"""examples/export_onnx.py: the exported digits net agrees with net.predict in onnxruntime, and both timings are printed."""
import onnx
import pytest
from example_loader import load_example


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-5), ("float64", 1e-12)])
def test_export_onnx_example_agrees(tmp_path, capsys, dtype, rtol):
    results = load_example("export_onnx").main(["--epochs", "5", "--quiet", "--repeats", "1", "--dtype", dtype,
                                                "--out", str(tmp_path)])
    assert results["test_accuracy"] >= 0.9
    assert results["label_agreement"] == 1.0
    assert results["max_relative_difference"] <= rtol
    model = onnx.load(str(tmp_path / "digits.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == (onnx.TensorProto.FLOAT if dtype == "float32"
                                                               else onnx.TensorProto.DOUBLE)
    out = capsys.readouterr().out
    assert "labels agree on 100.00% of 450 test rows" in out
    for key in ("batch_us_per_row_onnxruntime", "batch_us_per_row_layerkit", "single_row_us_onnxruntime",
                "single_row_us_layerkit"):
        assert f"{results[key]:.3f} us" in out

"""examples/notebooks/*.ipynb run in a real Jupyter kernel (nbclient, ipykernel of this environment).

The kernel is this test's own Python (``sys.executable``): a kernel spec
written to a temporary Jupyter data directory names it, so the test runs the
same in a fresh virtual environment (CI) as on a machine with other kernels.
"""
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the 'test' extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the 'test' extra")
pytest.importorskip("ipykernel", reason="ipykernel is in the 'test' extra")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebooks" / "first_net.ipynb"
KERNEL = "layerkit-test-python"


@pytest.fixture
def kernel_of_this_python(tmp_path, monkeypatch):
    """A kernel spec running ``sys.executable -m ipykernel_launcher``, the only one Jupyter sees."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "layerkit test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def _outputs(cell, kind):
    return [output for output in cell.outputs if output.output_type == kind]


def _html(cell):
    return "".join(output.data.get("text/html", "") for output in _outputs(cell, "execute_result"))


def test_first_net_runs_in_a_kernel_and_shows_tables_and_a_live_curve(kernel_of_this_python, tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    client = nbclient.NotebookClient(notebook, kernel_name=kernel_of_this_python, timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert not _outputs(cell, "error"), cell.source
    net_cell, fit_cell, history_cell, accuracy_cell, report_cell = code[:5]
    assert "<table" in _html(net_cell) and "Net of 3 layers" in _html(net_cell) and "total params: 2113" in _html(net_cell)
    # the curve is one display, redrawn in place (5 drawings for 10 epochs, every 2), not 5 images
    images = [output for output in _outputs(fit_cell, "display_data") if "image/png" in output.data]
    assert len(images) == 1
    assert "drawn 5 times" in "".join(output.text for output in _outputs(fit_cell, "stream"))
    assert "History of 10 epochs" in _html(history_cell) and "val_accuracy" in _html(history_cell)
    accuracy = float("".join(o.text for o in _outputs(accuracy_cell, "stream")).split()[-1])
    assert accuracy > 0.85
    assert "GradReport for Linear(4, 3): passed" in _html(report_cell)

"""examples/dask_out_of_core.py at a small size: the blocks trained on a two-worker LocalCluster, and its printout."""
import re

import pytest
from example_loader import load_example

pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'layerkit[dask]'")
pytest.importorskip("dask_ml", reason="dask-ml is in the optional extra 'layerkit[dask]'")

SMALL = ["--gigabytes", "0.004", "--chunk-mb", "1", "--features", "8", "--hidden", "8", "--learning-rate", "0.01",
         "--blocks-per-call", "3"]


def test_small_run_trains_block_by_block_and_prints_its_figures(capsys):
    results = load_example("dask_out_of_core").main(SMALL)
    out = capsys.readouterr().out
    n_rows = 125_000  # 4 MB of 8 float32 features
    assert results["n_rows"] == n_rows and results["gigabytes"] == pytest.approx(0.004)
    assert f"data: {n_rows:,} rows x 8 float32 features = 0.004 GB in 4 blocks of 31,250 rows" in out
    assert (f"2 worker processes (1 thread each): 2 Incremental.partial_fit calls of 3 blocks (the last of 1), "
            f"4 NetClassifier."
            f"partial_fit calls, {n_rows:,} rows in") in out
    peaks = [float(p) for p in re.findall(r"worker \d: peak memory (\d+) MiB", out)]
    assert len(peaks) == 2 and len(results["worker_peak_mib"]) == 2 and min(peaks) > 0
    assert results["accuracy"] > 0.8 and results["in_memory_accuracy"] > 0.8  # chance: about 0.5
    assert re.search(r"held-out accuracy \(31,250 rows, ParallelPostFit\): 0\.\d{4}", out)
    assert re.search(r"in memory, this process: the same rows generated in [\d.]+ s, one partial_fit", out)
    assert re.search(r"out of core / in memory \(training \+ generating\): [\d.]+$", out.strip())


@pytest.mark.parametrize("n_blocks, per_call, text", [
    (1, 4, "1 Incremental.partial_fit call of 1 block"),
    (2, 4, "1 Incremental.partial_fit call of 2 blocks"),
    (4, 4, "1 Incremental.partial_fit call of 4 blocks"),
    (8, 4, "2 Incremental.partial_fit calls of 4 blocks"),
    (9, 4, "3 Incremental.partial_fit calls of 4 blocks (the last of 1)"),
])
def test_the_calls_are_counted_from_the_blocks_there_are(n_blocks, per_call, text):
    assert load_example("dask_out_of_core").describe_calls(n_blocks, per_call) == text


def test_the_default_size_is_2_gb_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("LAYERKIT_DASK_EXAMPLE_GB", raising=False)
    assert load_example("dask_out_of_core").DEFAULT_GIGABYTES == 2.0
    monkeypatch.setenv("LAYERKIT_DASK_EXAMPLE_GB", "0.01")  # what the documentation build sets
    assert load_example("dask_out_of_core").DEFAULT_GIGABYTES == 0.01


def test_the_documentation_build_runs_it_small():
    from test_docs_gallery import ROOT

    conf = (ROOT / "docs" / "conf.py").read_text()
    assert 'os.environ.setdefault("LAYERKIT_DASK_EXAMPLE_GB", "0.01")' in conf

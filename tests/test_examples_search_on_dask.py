"""examples/search_on_dask.py with small settings: on its own local cluster, and on a given scheduler address."""
import logging
import re

import pytest
from example_loader import load_example

distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'layerkit[dask]'")

SMALL = ["--n-samples", "300", "--widths", "8", "24", "--learning-rates", "0.0001", "0.02", "--epochs", "4",
         "--cv", "2"]


def _check_output(search, out):
    assert len(search.cv_results_["params"]) == 4
    best = search.best_params_
    assert best["netclassifier__learning_rate_init"] == 0.02  # 1e-4 barely trains in 4 epochs
    width = best["netclassifier__hidden_layers"][0]["n_out"]
    line = out.strip().splitlines()[-1]
    assert re.fullmatch(rf"best: width={width} learning_rate_init=0.02 CV accuracy={search.best_score_:.4f} "
                        r"test accuracy=0\.\d{4}", line), line
    assert "4 configurations x 2 folds" in out


def test_search_on_its_own_local_cluster(capsys):
    search = load_example("search_on_dask").main(SMALL + ["--workers", "1"])
    out = capsys.readouterr().out
    assert "with 1 workers" in out
    _check_output(search, out)


def test_search_on_a_scheduler_address(capsys):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        search = load_example("search_on_dask").main(SMALL + ["--scheduler", cluster.scheduler_address])
        out = capsys.readouterr().out
        assert f"cluster: {cluster.scheduler_address} with 2 workers" in out
    _check_output(search, out)

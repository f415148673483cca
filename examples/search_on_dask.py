"""A grid search on a Dask cluster
===============================

A grid search over hidden widths and learning rates for the ten digits, run on a Dask cluster.

scikit-learn's ``GridSearchCV`` over a ``StandardScaler`` + ``NetClassifier``
pipeline (one hidden ReLU layer, Adam, softmax cross-entropy), stratified
k-fold cross-validation on 1347 training rows of the 8x8 digits, then the best
configuration is refit and scored on the 450 held-out rows. Each
(configuration, fold) fit is one task on the cluster: joblib hands them to
Dask through ``joblib.parallel_backend("dask")``.

By default the script starts a ``LocalCluster`` of worker processes on this
machine; ``--scheduler tcp://HOST:8786`` uses a running cluster instead (its
workers need layerkit installed). Run ``python examples/search_on_dask.py --help``.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import time
import warnings
from typing import Any, Iterator

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from layerkit.sklearn import NetClassifier


def load_data(seed: int, n_samples: int | None = None) -> tuple[Any, Any, Any, Any]:
    """Stratified train/test split of the digits (a quarter held out), optionally of the first ``n_samples``."""
    X, y = load_digits(return_X_y=True)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)


def make_search(widths: list[int], learning_rates: list[float], *, epochs: int, cv: int, seed: int) -> GridSearchCV:
    """The grid search: every width with every learning rate, ``cv`` folds each."""
    pipeline = make_pipeline(StandardScaler(), NetClassifier(solver="adam", max_iter=epochs, random_state=seed))
    grid = {"netclassifier__hidden_layers": [({"type": "linear", "n_out": w}, "relu") for w in widths],
            "netclassifier__learning_rate_init": learning_rates}
    return GridSearchCV(pipeline, grid, cv=cv, n_jobs=-1)


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a new local cluster of ``workers`` processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:  # pragma: no cover - dask is an optional extra
        raise SystemExit("this example needs Dask: pip install 'layerkit[dask]'") from error
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def quiet_convergence() -> None:
    """Every configuration trains a fixed budget of epochs: their ConvergenceWarning says nothing new here."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def width_of(hidden_layers: Any) -> int:
    return hidden_layers[0]["n_out"]


def main(argv: list[str] | None = None) -> GridSearchCV:
    """Run the search, print the table of results and the best configuration; return the fitted search."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="address of a running Dask scheduler (tcp://host:8786); default: a local cluster")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[0.001, 0.003, 0.01, 0.03])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cv", type=int, default=3, help="cross-validation folds")
    parser.add_argument("--n-samples", type=int, default=None, help="use only the first N digits (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from joblib import parallel_backend

    X_train, X_test, y_train, y_test = load_data(args.seed, args.n_samples)
    search = make_search(args.widths, args.learning_rates, epochs=args.epochs, cv=args.cv, seed=args.seed)
    with dask_client(args.scheduler, args.workers) as client:
        print(f"cluster: {client.scheduler.address} with {len(client.scheduler_info()['workers'])} workers")
        client.run(quiet_convergence)  # in the workers (the CV fits) ...
        start = time.perf_counter()
        with parallel_backend("dask"), warnings.catch_warnings():
            quiet_convergence()  # ... and here (the refit of the best configuration)
            search.fit(X_train, y_train)
        elapsed = time.perf_counter() - start
    results = search.cv_results_
    print(f"{len(results['params'])} configurations x {args.cv} folds in {elapsed:.1f} s")
    print("width  learning_rate_init  mean CV accuracy")
    for params, score in zip(results["params"], results["mean_test_score"]):
        print(f"{width_of(params['netclassifier__hidden_layers']):5d}  {params['netclassifier__learning_rate_init']:18g}"
              f"  {score:.4f}")
    best = search.best_params_
    print(f"best: width={width_of(best['netclassifier__hidden_layers'])} "
          f"learning_rate_init={best['netclassifier__learning_rate_init']:g} "
          f"CV accuracy={search.best_score_:.4f} test accuracy={search.score(X_test, y_test):.4f}")
    return search


if __name__ == "__main__":
    main()

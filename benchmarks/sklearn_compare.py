"""NetClassifier and NetRegressor against scikit-learn's MLPClassifier and MLPRegressor, solver by solver.

Two tasks: the ten digits (1797 8x8 images) for classification and
``make_friedman1(n_samples=2000, noise=1.0)`` for regression; a quarter of the
rows held out, features standardised on the training rows. For each solver
("lbfgs", "sgd", "adam") both libraries get the same parameters (scikit-learn's
defaults: one hidden layer of 100 ReLU units, ``alpha=1e-4``, ``tol=1e-4``,
``max_iter=200``, ...) and the same ``random_state``. Reported per solver:
the mean and standard deviation over the seeds of the test accuracy (R^2 for
regression), the mean fit time (CPU time) and layerkit's time over scikit-learn's
(the runs of the two libraries interleaved, BLAS on one thread).

``python benchmarks/sklearn_compare.py`` (5 seeds); ``--quick``: 2 seeds and
``--max-iter 50``; ``--only classification`` or ``--only regression``.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from layerkit.sklearn import NetClassifier, NetRegressor

SOLVERS = ("lbfgs", "sgd", "adam")


def load_task(task: str, seed: int = 0) -> tuple:
    """``(X_train, X_test, y_train, y_test)``, standardised on the training rows."""
    if task == "classification":
        X, y = load_digits(return_X_y=True)
        stratify = y
    else:
        X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
        stratify = None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=stratify, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def pair(task: str, solver: str, max_iter: int, seed: int) -> dict:
    """The two estimators with the same parameters."""
    params = dict(solver=solver, max_iter=max_iter, random_state=seed)
    if task == "classification":
        return {"layerkit": NetClassifier(**params), "scikit-learn": MLPClassifier(**params)}
    return {"layerkit": NetRegressor(**params), "scikit-learn": MLPRegressor(**params)}


def timed(fit) -> float:
    """The CPU time of ``fit()`` in seconds: less disturbed than the wall clock by other work on the machine."""
    start = time.process_time()
    fit()
    return time.process_time() - start


def compare(task: str, seeds: int, max_iter: int) -> dict:
    """``{(solver, library): (mean score, std score, mean fit time)}``, printed as a Markdown table."""
    X_train, X_test, y_train, y_test = load_task(task)
    metric = "accuracy" if task == "classification" else "R^2"
    print(f"\n{task}: {len(X_train)} training and {len(X_test)} test rows, {X_train.shape[1]} features; "
          f"{seeds} seeds, max_iter={max_iter}")
    print(f"| solver | library | test {metric} (mean ± std) | fit time (mean) | time / scikit-learn's |")
    print("|---|---|---|---|---|")
    results: dict = {}
    for solver in SOLVERS:
        scores: dict = {"layerkit": [], "scikit-learn": []}
        times: dict = {"layerkit": [], "scikit-learn": []}
        for seed in range(seeds):
            for library, model in pair(task, solver, max_iter, seed).items():
                times[library].append(timed(lambda: model.fit(X_train, y_train)))
                scores[library].append(model.score(X_test, y_test))
        reference = np.mean(times["scikit-learn"])
        for library in ("layerkit", "scikit-learn"):
            mean, std, seconds = np.mean(scores[library]), np.std(scores[library]), np.mean(times[library])
            results[(solver, library)] = (mean, std, seconds)
            print(f"| {solver} | {library} | {mean:.4f} ± {std:.4f} | {seconds * 1e3:.0f} ms | "
                  f"x{seconds / reference:.2f} |")
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2 seeds, max_iter 50")
    parser.add_argument("--only", choices=["classification", "regression"])
    args = parser.parse_args(argv)
    seeds, max_iter = (2, 50) if args.quick else (args.seeds, args.max_iter)
    results: dict = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # both libraries at max_iter, as asked
        for task in ("classification", "regression"):
            if args.only in (None, task):
                results[task] = compare(task, seeds, max_iter)
    return results


if __name__ == "__main__":
    main()

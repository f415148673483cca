"""layerkit's NetClassifier against scikit-learn's MLPClassifier, and against ``layerkit.fit`` itself.

The ten-class digits task (1797 8x8 images; a stratified quarter held out;
pixels standardised on the training rows). Both classifiers get the same net
(64 - 32 ReLU - 10 softmax, Glorot-uniform weights), the same loss (softmax
cross-entropy), the same optimizer (plain SGD: one learning rate, momentum 0,
no Nesterov, no L2 penalty), the same minibatch size and number of epochs,
and shuffle the rows every epoch; only the random seeds differ between the libraries.

The second table times ``NetClassifier.fit`` against ``layerkit.fit`` on the
very net the estimator builds (``Net.from_config(clf.spec_)``) and the same
encoded data, to show what the scikit-learn wrapper costs.

The third table compares the defaults: ``NetClassifier`` and
``MLPClassifier`` with nothing set but one hidden layer of 64 and the seed,
on the digits and on ``make_multilabel_classification(1000, 20, n_classes=5,
random_state=0)`` (a quarter held out; subset accuracy), with the estimator's
former defaults (``learning_rate=0.01, batch_size=32, epochs=50``)
as a third row. The ratio is the fit time over ``MLPClassifier``'s, in the
same run.

A time is the best of ``--repeats`` runs, the runs of the contenders
interleaved. ``python benchmarks/sklearn_compare.py`` (``--quick``: fewer
repeats; ``--only sgd`` or ``--only defaults``: one part).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import layerkit as lk
from layerkit.sklearn import NetClassifier


def load_data(seed: int = 0):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def contenders(hidden: int, lr: float, batch_size: int, epochs: int, seed: int) -> dict:
    layerkit = NetClassifier(hidden_layers=({"type": "linear", "n_out": hidden}, "relu"), optimizer="sgd",
                             learning_rate=lr, momentum=0.0, batch_size=batch_size, epochs=epochs, tol=0.0,
                             n_iter_no_change=epochs + 1, random_state=seed)  # every epoch, as MLPClassifier below
    sklearn = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="sgd", learning_rate="constant",
                            learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                            batch_size=batch_size, max_iter=epochs, shuffle=True, tol=0.0,
                            n_iter_no_change=epochs + 1, early_stopping=False, random_state=seed)
    return {"layerkit NetClassifier": layerkit, "scikit-learn MLPClassifier": sklearn}


def default_contenders(seed: int) -> dict:
    """Each classifier with its defaults, but one hidden layer of 64 and the seed."""
    return {"layerkit NetClassifier, defaults": NetClassifier(hidden_layer_sizes=(64,), random_state=seed),
            "layerkit NetClassifier, former defaults": NetClassifier(
                hidden_layer_sizes=(64,), learning_rate=0.01, batch_size=32, epochs=50, random_state=seed),
            "scikit-learn MLPClassifier, defaults": MLPClassifier(hidden_layer_sizes=(64,), random_state=seed)}


def defaults_comparison(repeats: int, seed: int) -> dict:
    """The fit time, epochs run and test (subset) accuracy of each classifier with its defaults."""
    X, Y = make_multilabel_classification(1000, 20, n_classes=5, random_state=0)
    tasks = {"digits (10 classes)": load_data(seed),
             "multi-label (1000 x 20, 5 labels)": train_test_split(X, Y, test_size=0.25, random_state=seed)}
    results: dict = {}
    print("\n| task | classifier | test accuracy | epochs | fit time | per epoch | time / MLPClassifier's |")
    print("|---|---|---|---|---|---|---|")
    for task, (X_train, X_test, y_train, y_test) in tasks.items():
        models = default_contenders(seed)
        times = {name: [] for name in models}
        for _ in range(repeats):
            for name, model in models.items():
                times[name].append(timed(lambda: model.fit(X_train, y_train)))
        reference = min(times["scikit-learn MLPClassifier, defaults"])
        for name, model in models.items():
            best = min(times[name])
            accuracy = model.score(X_test, y_test)  # subset accuracy for multi-label targets
            results[(task, name)] = (accuracy, model.n_iter_, best, best / reference)
            print(f"| {task} | {name} | {accuracy:.3f} | {model.n_iter_} | {best * 1e3:.1f} ms | "
                  f"{best / model.n_iter_ * 1e3:.2f} ms | x{best / reference:.2f} |")
    return results


def timed(fit) -> float:
    start = time.perf_counter()
    fit()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["sgd", "defaults"], help="run one part: the SGD tables or the defaults")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    results: dict = {}
    if args.only != "defaults":
        results.update(sgd_comparison(args, repeats))
    if args.only != "sgd":
        print("\nwith each classifier's defaults, one hidden layer of 64 (ReLU); BLAS on 1 thread")
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # MLPClassifier at max_iter
            results["defaults"] = defaults_comparison(repeats, args.seed)
    return results


def sgd_comparison(args: argparse.Namespace, repeats: int) -> dict:
    """The same SGD run in both libraries, then NetClassifier.fit against layerkit.fit."""
    X_train, X_test, y_train, y_test = load_data(args.seed)
    print(f"digits, 10 classes: {len(X_train)} training and {len(X_test)} test rows; 64-{args.hidden}-10, "
          f"SGD lr={args.lr} momentum=0, batch {args.batch_size}, {args.epochs} epochs; BLAS on 1 thread")
    results: dict = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # MLPClassifier: max_iter reached, as asked
        models = contenders(args.hidden, args.lr, args.batch_size, args.epochs, args.seed)
        times = {name: [] for name in models}
        for _ in range(repeats):
            for name, model in models.items():
                times[name].append(timed(lambda: model.fit(X_train, y_train)))
        print("\n| classifier | test accuracy | fit time |")
        print("|---|---|---|")
        for name, model in models.items():
            accuracy = model.score(X_test, y_test)
            results[name] = (accuracy, min(times[name]))
            print(f"| {name} | {accuracy:.4f} | {min(times[name]) * 1e3:.1f} ms |")

        clf = models["layerkit NetClassifier"]
        seeds = np.random.RandomState(args.seed)  # the estimator's own draws: net weights, then shuffling
        net_seed, fit_seed = seeds.randint(2 ** 31 - 1), seeds.randint(2 ** 31 - 1)
        y_encoded = np.searchsorted(clf.classes_, y_train)

        def plain_fit():
            net = lk.Net.from_config(clf.spec_, seed=net_seed)
            lk.fit(net, X_train, y_encoded, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                   loss="softmax_cross_entropy", seed=fit_seed, verbose=False)
            return net

        same = np.array_equal(plain_fit().predict(X_test), clf.net_.predict(X_test))
        wrapper, plain = [], []
        for _ in range(max(repeats, 5)):
            wrapper.append(timed(lambda: clf.fit(X_train, y_train)))
            plain.append(timed(plain_fit))
        ratio = min(wrapper) / min(plain)
        results["ratio"] = ratio
        print("\n| | fit time |")
        print("|---|---|")
        print(f"| layerkit.fit on the same net and data | {min(plain) * 1e3:.1f} ms |")
        print(f"| NetClassifier.fit | {min(wrapper) * 1e3:.1f} ms (x{ratio:.2f}) |")
        print(f"same trained weights: {same}")
    return results


if __name__ == "__main__":
    main()

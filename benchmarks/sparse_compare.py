"""NetClassifier against MLPClassifier on a hashed bag-of-words: epoch time and peak memory on sparse input.

The data: ``--rows`` documents (20,000) of about ``--tokens`` (100) random
tokens from a Zipf-like vocabulary of 50,000 words, hashed by scikit-learn's
``FeatureHasher`` into ``2**18`` columns (CSR, float32 or float64); the label
of a document is the arg-max of a hidden linear function of its tokens (5
classes). Both classifiers get the same net (``--width`` ReLU units, softmax
output), Adam with the same learning rate, the same minibatch size, shuffling,
and ``--epochs`` epochs with the stopping rules off (``tol=0``).

Printed: the time of an epoch (fit time over epochs trained, best of
``--repeats``), and the peak memory that ``tracemalloc`` sees during one
``fit`` beside the sizes it is made of: the sparse data, the weights (and
Adam's two moments and the gradient, each weight-sized), and a minibatch's
activations (batch x width). Neither library densifies the data.

``python benchmarks/sparse_compare.py`` (``--rows 4000`` for a quick run).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction import FeatureHasher
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from layerkit.sklearn import NetClassifier


def make_data(rows: int, tokens: int, dtype: type, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """A hashed bag-of-words ``(rows, 2**18)`` CSR matrix and 5-class labels."""
    rng = np.random.default_rng(seed)
    vocabulary = 50_000
    weights = 1.0 / np.arange(1, vocabulary + 1) ** 0.8
    weights /= weights.sum()
    documents = rng.choice(vocabulary, size=(rows, tokens), p=weights)
    hasher = FeatureHasher(n_features=2 ** 18, input_type="string", dtype=dtype, alternate_sign=False)
    X = hasher.transform([f"w{t}" for t in doc] for doc in documents).tocsr()
    X.data = np.log1p(X.data).astype(dtype)  # damped counts
    topic = rng.normal(size=(vocabulary, 5))
    y = np.argmax(np.stack([topic[doc].sum(axis=0) for doc in documents]), axis=1)
    return X, y


def sparse_bytes(X: sp.csr_matrix) -> int:
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def contenders(args: argparse.Namespace) -> dict:
    common = dict(random_state=0, batch_size=args.batch, shuffle=True, tol=0.0, n_iter_no_change=10 ** 6)
    return {
        "layerkit NetClassifier": lambda: NetClassifier(hidden_layer_sizes=(args.width,), activation="relu",
                                                        optimizer="adam", learning_rate=1e-3,
                                                        epochs=args.epochs, **common),
        "scikit-learn MLPClassifier": lambda: MLPClassifier(hidden_layer_sizes=(args.width,), activation="relu",
                                                            solver="adam", learning_rate_init=1e-3, alpha=0.0,
                                                            max_iter=args.epochs, **common),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype).type
    X, y = make_data(args.rows, args.tokens, dtype)
    itemsize = np.dtype(dtype).itemsize
    weights = (X.shape[1] * args.width + args.width + args.width * 5 + 5) * itemsize
    print(f"data: {X.shape[0]} x {X.shape[1]} CSR {args.dtype}, {X.nnz / X.shape[0]:.1f} non-zeros a row, "
          f"{sparse_bytes(X) / 2**20:.1f} MiB (dense it would be {X.shape[0] * X.shape[1] * itemsize / 2**30:.1f} GiB)")
    print(f"net: {X.shape[1]} - {args.width} ReLU - 5 softmax; weights {weights / 2**20:.1f} MiB "
          f"(x4 with Adam's moments and the gradient); a minibatch's activations "
          f"{args.batch * args.width * itemsize / 2**10:.0f} KiB; {args.threads} BLAS thread(s)")
    made = contenders(args)
    times: dict[str, float] = {name: np.inf for name in made}
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(args.repeats):
            for name, make in made.items():
                model = make()
                start = time.perf_counter()
                model.fit(X, y)
                times[name] = min(times[name], (time.perf_counter() - start) / model.n_iter_)
        peaks = {}
        for name, make in made.items():
            model = make()
            tracemalloc.start()
            model.fit(X, y)
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            peaks[name] = (peaks[name], model.score(X, y))
    print(f"\n{'':28s} {'epoch (s)':>10s} {'peak (MiB)':>11s} {'peak / weights':>15s} {'train acc':>10s}")
    for name in made:
        peak, accuracy = peaks[name]
        print(f"{name:28s} {times[name]:10.3f} {peak / 2**20:11.1f} {peak / weights:15.2f} {accuracy:10.3f}")


if __name__ == "__main__":
    main()

"""The digits classifier in onnxruntime
=====================================

Train the digits classifier, export it to ONNX, and run it in onnxruntime.

The net and data are those of ``digits_multiclass.py`` (``Linear(64, 64) -
ReLU - Linear(64, 10)`` on standardised 8x8 digits). The script writes
``digits.onnx``, runs the test set through onnxruntime and through
``net.predict``, and prints how well they agree (labels, largest logit
difference) and the inference time per row of each, for the whole test set in
one call and for one row at a time, both on ``--threads`` threads (1 by
default: on a shared machine, a multi-threaded BLAS waiting for its threads can
cost more than these small products).

Needs the ``onnx`` extra: ``pip install "layerkit[onnx]"``.
Run ``python examples/export_onnx.py --help`` for the options.
"""
from __future__ import annotations

import argparse
import timeit
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from threadpoolctl import threadpool_limits

import layerkit as lk
from digits_multiclass import load_data
from layerkit.onnx import to_onnx


def per_row_seconds(run, rows: int, repeats: int) -> float:
    """Best time of ``repeats`` batches of calls to ``run`` (about 0.05 s each), per row."""
    calls = max(1, int(0.05 / max(timeit.timeit(run, number=1), 1e-7)))
    return min(timeit.repeat(run, number=calls, repeat=repeats)) / calls / rows


def main(argv: list[str] | None = None) -> dict:
    """Train, export, compare; print the figures and return them as a dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.002, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float32",
                        help="dtype of the net and of the exported model")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (the best is kept)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of onnxruntime and of layerkit's BLAS while timing (threadpoolctl)")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for digits.onnx")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    dtype = np.dtype(args.dtype)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    x_train, x_test = x_train.astype(dtype), x_test.astype(dtype)
    rng = np.random.default_rng(args.seed)  # digits_multiclass.build_net's net, in the chosen dtype
    net = lk.Net([lk.Linear(64, 64, rng=rng, init="he", dtype=dtype), lk.ReLU(),
                  lk.Linear(64, 10, rng=rng, dtype=dtype)])
    lk.fit(net, x_train, y_train, epochs=args.epochs, optimizer=lk.optim.Adam(lr=args.lr), batch_size=32,
           loss="softmax_cross_entropy", seed=args.seed, verbose=not args.quiet)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "digits.onnx"
    to_onnx(net, path=path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    logits_lk = net.predict(x_test)
    (logits_ort,) = session.run(None, {"x": x_test})
    labels_lk, labels_ort = logits_lk.argmax(axis=1), logits_ort.argmax(axis=1)
    results = {
        "dtype": dtype.name,
        "test_accuracy": float(np.mean(labels_lk == y_test)),
        "label_agreement": float(np.mean(labels_lk == labels_ort)),
        "max_logit_difference": float(np.abs(logits_ort - logits_lk).max()),
        "max_relative_difference": float(np.abs(logits_ort - logits_lk).max() / np.abs(logits_lk).max()),
    }
    one = x_test[:1]
    with threadpool_limits(args.threads):  # the same number of threads for both runtimes
        results["batch_us_per_row_onnxruntime"] = 1e6 * per_row_seconds(
            lambda: session.run(None, {"x": x_test}), len(x_test), args.repeats)
        results["batch_us_per_row_layerkit"] = 1e6 * per_row_seconds(lambda: net.predict(x_test), len(x_test),
                                                                     args.repeats)
        results["single_row_us_onnxruntime"] = 1e6 * per_row_seconds(lambda: session.run(None, {"x": one}), 1,
                                                                     args.repeats)
        results["single_row_us_layerkit"] = 1e6 * per_row_seconds(lambda: net.predict(one), 1, args.repeats)

    print(f"wrote {path} ({path.stat().st_size} bytes), {dtype.name}, opset {model.opset_import[0].version}")
    print(f"test accuracy: {results['test_accuracy']:.4f}")
    print(f"labels agree on {results['label_agreement']:.2%} of {len(x_test)} test rows; largest logit "
          f"difference {results['max_logit_difference']:.3g} ({results['max_relative_difference']:.2g} of the "
          "largest logit)")
    print(f"{f'per-row inference time, {args.threads} thread(s)':<36}{'onnxruntime':>14}{'net.predict':>14}")
    print(f"{'  450 rows in one call':<36}{results['batch_us_per_row_onnxruntime']:>11.3f} us"
          f"{results['batch_us_per_row_layerkit']:>11.3f} us")
    print(f"{'  one row per call':<36}{results['single_row_us_onnxruntime']:>11.3f} us"
          f"{results['single_row_us_layerkit']:>11.3f} us")
    return results


if __name__ == "__main__":
    main()

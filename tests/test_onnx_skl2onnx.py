"""Pipelines with NetClassifier / NetRegressor converted by skl2onnx (converters from layerkit.onnx) and run by onnxruntime."""
from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import skl2onnx
from sklearn.datasets import load_breast_cancer, load_iris, make_regression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import layerkit.onnx  # noqa: F401  (registers the converters)
from layerkit.sklearn import NetClassifier, NetRegressor

HIDDEN = ({"type": "linear", "n_out": 16}, "gelu", {"type": "linear", "n_out": 8}, "relu")


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def outputs(model, X):
    sess = session(model)
    return sess.run(None, {sess.get_inputs()[0].name: X})


def proba_columns(proba, classes):
    """ZipMap's list of {label: p} as an array in the order of ``classes``."""
    if isinstance(proba, list):
        return np.array([[row[c] for c in classes.tolist()] for row in proba])
    return proba


def pipeline(estimator, X, y):
    return Pipeline([("scale", StandardScaler()), ("net", estimator)]).fit(X, y)


DATA = {
    "binary": load_breast_cancer(return_X_y=True),
    "multiclass": load_iris(return_X_y=True),
}


@pytest.mark.parametrize("net_dtype", ["float64", "float32"])
@pytest.mark.parametrize("task", sorted(DATA))
def test_classifier_pipeline_in_float64(task, net_dtype):
    X, y = DATA[task]
    pipe = pipeline(NetClassifier(hidden_layers=HIDDEN, max_iter=20, random_state=0, dtype=net_dtype), X, y)
    model = skl2onnx.to_onnx(pipe, X[:1])
    labels, proba = outputs(model, X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    assert proba.dtype == np.float64 and proba.shape == (len(X), len(pipe.classes_))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-5, atol=1e-7 if net_dtype == "float32" else 1e-14)


@pytest.mark.parametrize("zipmap", [True, False])
@pytest.mark.parametrize("task", sorted(DATA))
def test_classifier_pipeline_in_float32_with_and_without_zipmap(task, zipmap):
    X, y = DATA[task]
    X = X.astype(np.float32)
    clf = NetClassifier(hidden_layers=HIDDEN, max_iter=20, random_state=1)
    pipe = pipeline(clf, X, y)
    model = skl2onnx.to_onnx(pipe, X[:1], options={id(clf): {"zipmap": zipmap}})
    labels, proba = outputs(model, X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    assert isinstance(proba, list) == zipmap
    np.testing.assert_allclose(proba_columns(proba, pipe.classes_), pipe.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_string_labels_and_the_nocl_option():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NetClassifier(max_iter=10, random_state=0)
    pipe = pipeline(clf, X, names)
    labels, proba = outputs(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-5, atol=1e-14)
    indices, _ = outputs(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), options={id(clf): {"nocl": True,
                                                                                            "zipmap": False}}),
                         X.astype(np.float32))
    np.testing.assert_array_equal(pipe.classes_[indices], pipe.predict(X.astype(np.float32)))


@pytest.mark.parametrize("X_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_pipeline(n_targets, X_dtype):
    X, y = make_regression(n_samples=300, n_features=6, n_targets=n_targets, noise=0.1, random_state=0)
    X = X.astype(X_dtype)
    pipe = pipeline(NetRegressor(hidden_layers=HIDDEN, max_iter=10, random_state=0), X, y)
    (pred,) = outputs(skl2onnx.to_onnx(pipe, X[:1]), X)
    want = pipe.predict(X).reshape(len(X), n_targets)
    assert pred.dtype == X_dtype and pred.shape == (len(X), n_targets)
    rtol = 1e-12 if X_dtype == np.float64 else 1e-5
    np.testing.assert_allclose(pred, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_batch_of_one_and_dynamic_batch():
    X, y = DATA["multiclass"]
    pipe = pipeline(NetClassifier(max_iter=5, random_state=0), X, y)
    model = skl2onnx.to_onnx(pipe, X[:1])
    for rows in (X[:1], X[:7], X):
        labels, _ = outputs(model, rows)
        np.testing.assert_array_equal(labels, pipe.predict(rows))


def test_plugin_layers_inside_an_estimator_export_through_their_hook():
    X, y = DATA["multiclass"]
    pipe = pipeline(NetClassifier(hidden_layers=({"type": "linear", "n_out": 8}, {"type": "swish", "n_features": 8}),
                                  max_iter=10, random_state=0), X, y)
    labels, proba = outputs(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-5, atol=1e-14)


def test_old_opsets_are_refused_with_the_estimator_named():
    X, y = DATA["multiclass"]
    pipe = pipeline(NetClassifier(max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match=r"layerkit.onnx \(NetClassifier\): opset must be an int from 13"):
        skl2onnx.to_onnx(pipe, X[:1], target_opset=11)


@pytest.mark.parametrize("X_dtype", [np.float64, np.float32])
def test_multilabel_classifier_pipeline(X_dtype):
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=4, random_state=0)
    X = X.astype(X_dtype)
    clf = NetClassifier(hidden_layers=HIDDEN, max_iter=20, random_state=0)
    pipe = pipeline(clf, X, Y)
    model = skl2onnx.to_onnx(pipe, X[:1])  # no ZipMap for multi-label, whatever the input type
    labels, proba = outputs(model, X)
    want = pipe.predict(X)
    assert labels.dtype == np.int64 and labels.shape == want.shape == (len(X), 4)
    np.testing.assert_array_equal(labels, want)
    assert 0 < want.mean() < 1  # both values occur: the threshold is exercised
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("zipmap", [True, False, "columns"])
@pytest.mark.parametrize("labels", ["int", "str"])
def test_zipmap_options_give_the_outputs_of_skl2onnx_own_classifiers(zipmap, labels):
    from sklearn.linear_model import LogisticRegression

    X, y = DATA["multiclass"]
    X = X.astype(np.float32)
    y = np.array(["setosa", "versicolor", "virginica"])[y] if labels == "str" else y
    clf = NetClassifier(hidden_layers=HIDDEN, max_iter=20, random_state=0)
    pipe = pipeline(clf, X, y)
    ours = skl2onnx.to_onnx(pipe, X[:1], options={id(clf): {"zipmap": zipmap}})
    logistic = LogisticRegression()
    theirs = skl2onnx.to_onnx(pipeline(logistic, X, y), X[:1], options={id(logistic): {"zipmap": zipmap}})
    assert [o.name for o in ours.graph.output] == [o.name for o in theirs.graph.output]
    assert [o.type for o in ours.graph.output] == [o.type for o in theirs.graph.output]
    got = outputs(ours, X)
    np.testing.assert_array_equal(got[0], pipe.predict(X))
    proba = np.column_stack(got[1:]) if zipmap == "columns" else proba_columns(got[1], pipe.classes_)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_the_converters_use_no_private_skl2onnx_name():
    import ast
    import inspect

    import layerkit.onnx._skl2onnx as module

    imported = [node.module for node in ast.walk(ast.parse(inspect.getsource(module)))
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("skl2onnx")]
    assert imported and not [name for name in imported if any(part.startswith("_") for part in name.split("."))]
    names = [alias.name for node in ast.walk(ast.parse(inspect.getsource(module)))
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skl2onnx") for alias in node.names]
    assert not [name for name in names if name.startswith("_")]


def test_poisson_regressor_is_refused_with_what_to_do_instead():
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    reg = NetRegressor(loss="poisson", hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, np.abs(y))
    with pytest.raises(ValueError, match=r"loss='poisson'\) predicts exp\(\) of its net's output"):
        skl2onnx.to_onnx(reg, X[:1].astype(np.float32))

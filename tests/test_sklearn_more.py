"""The estimators as an MLPClassifier user meets them: stopping rules, parameters, multi-label,
warm start, dtypes and sparse input."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_iris, make_blobs, make_multilabel_classification
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import layerkit as lk
from layerkit.sklearn import NetClassifier, NetRegressor


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _mlp_stop(losses, tol, n_iter_no_change):
    """The epoch count at which MLPClassifier's training-loss rule stops on these losses."""
    best, count = np.inf, 0
    for epoch, loss in enumerate(losses):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > n_iter_no_change:
            return epoch + 1
    return len(losses)


# ---------------------------------------------------------------------- stopping rules (issue 15, 17-18)
def test_tol_stops_on_easy_data_after_a_handful_of_epochs():
    X, y = make_blobs(n_samples=100, centers=2, cluster_std=0.5, random_state=0)
    clf = NetClassifier(max_iter=3000, learning_rate_init=0.05, random_state=0).fit(X, y)
    assert clf.history_.stopped_early and clf.n_iter_ < 100 and clf.score(X, y) == 1.0
    assert clf.n_iter_ == _mlp_stop(clf.loss_curve_, clf.tol, clf.n_iter_no_change)
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None
    assert clf.t_ == 100 * clf.n_iter_
    # tol=0 with a patience longer than the run: every epoch runs
    full = NetClassifier(max_iter=40, tol=0.0, n_iter_no_change=1000, random_state=0).fit(X, y)
    assert full.n_iter_ == 40 and not full.history_.stopped_early


def test_refit_clears_the_validation_curves(iris):
    X, y = iris
    clf = NetClassifier(early_stopping=True, max_iter=8, n_iter_no_change=50, random_state=0).fit(X, y)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == 8
    clf.set_params(early_stopping=False, max_iter=3).fit(X, y)
    assert clf.n_iter_ == len(clf.loss_curve_) == 3
    assert clf.validation_loss_curve_ is None and clf.validation_scores_ is None
    assert clf.best_validation_score_ is None and np.isfinite(clf.best_loss_)



def test_running_out_of_epochs_warns_as_mlp_classifiers_max_iter(iris):
    from sklearn.exceptions import ConvergenceWarning

    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Stochastic Optimizer: Maximum iterations \(3\) reached and the "
                                                r"optimization hasn't converged yet"):
        NetClassifier(max_iter=3, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match=r"Stochastic Optimizer: Maximum iterations \(4\)"):
        NetRegressor(max_iter=4, early_stopping=True, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        NetClassifier(solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = NetClassifier(max_iter=500, tol=1.0, n_iter_no_change=2, random_state=0).fit(X, y)
        assert stopped.n_iter_ == 4  # the stop rule ended it (epoch 1 improves on inf, 3 more do not): no warning
        NetClassifier(max_iter=3, random_state=0).partial_fit(X, y, classes=[0, 1, 2])  # one epoch by design


def test_divergence_raises_mlp_classifiers_value_error_or_scores_nan_with_early_stopping(iris):
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", learning_rate_init=1.0,
                  max_iter=20, random_state=0)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights") as raised:
            NetRegressor(**params).fit(X, y)
        # as MLPClassifier: a diverged epoch scores NaN on the validation set and the best weights come back
        early = NetRegressor(early_stopping=True, **params).fit(X, y)
    assert isinstance(raised.value, FloatingPointError)  # layerkit.fit's error too
    message = str(raised.value)
    assert "NetRegressor: " in message and "lower learning_rate_init (now 1.0)" in message
    assert "clip_norm" not in message and "StandardScaler" in message
    assert isinstance(raised.value.history, lk.History)  # fit's record of the epochs completed
    assert np.isnan(early.validation_scores_[-1]) and isinstance(early.validation_scores_[-1], float)
    assert all(np.all(np.isfinite(w)) for w in early.coefs_)


# ---------------------------------------------------------------------- parameters (issue 15, 19-20)
def test_schedule_as_learning_rate_init(iris):
    X, y = iris
    params = dict(solver="sgd", momentum=0.0, alpha=0.0, max_iter=5, random_state=0)
    constant = NetRegressor(learning_rate_init=lk.optim.Constant(0.05), **params)
    plain = NetRegressor(learning_rate_init=0.05, **params)
    np.testing.assert_allclose(constant.fit(X, y).predict(X), plain.fit(X, y).predict(X), rtol=1e-10)
    cosine = NetRegressor(learning_rate_init=lk.optim.CosineDecay(.02, 1000), random_state=0).fit(X, y)
    assert cosine._optimizer.optimizer.lr is cosine.learning_rate_init and cosine.score(X, y) > 0.9


def test_old_spellings_warn_and_still_work(iris):
    X, y = iris
    with pytest.warns(FutureWarning, match="epochs is renamed max_iter, as in MLPClassifier; write max_iter=3"):
        old = NetClassifier(epochs=3, random_state=0).fit(X, y)
    new = NetClassifier(max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(old.predict_proba(X), new.predict_proba(X))
    with pytest.warns(FutureWarning, match=r"learning_rate now names the schedule.*write learning_rate_init=0.01"):
        old = NetClassifier(learning_rate=0.01, max_iter=3, random_state=0).fit(X, y)
    new = NetClassifier(learning_rate_init=0.01, max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(old.predict_proba(X), new.predict_proba(X))
    spec = ({"type": "linear", "n_out": 8}, "relu")
    with pytest.warns(FutureWarning, match=r"pass layers and blocks as hidden_layers="):
        old = NetClassifier(spec, max_iter=3, random_state=0).fit(X, y)
    new = NetClassifier(hidden_layers=spec, max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(old.predict_proba(X), new.predict_proba(X))
    with pytest.raises(ValueError, match="give max_iter, not epochs"):
        NetClassifier(epochs=3, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="give the rate as learning_rate_init only"):
        NetClassifier(learning_rate=0.1, learning_rate_init=0.2).fit(X, y)


@pytest.mark.parametrize("activation, layer", [("identity", lk.Identity), ("logistic", lk.Sigmoid),
                                               ("tanh", lk.Tanh), ("relu", lk.ReLU)])
def test_hidden_layer_sizes_shorthand_starts_and_trains_as_mlp_classifier(iris, activation, layer):
    X, y = iris
    params = dict(hidden_layer_sizes=(16, 8), activation=activation, solver="lbfgs", max_iter=30, random_state=0)
    short = NetClassifier(**params).fit(X, y)
    assert [type(x) for x in short.net_] == [lk.Linear, layer, lk.Linear, layer, lk.Linear]
    # MLPClassifier's initialisation from the same random_state and the same L-BFGS objective: the same weights
    mlp = MLPClassifier(**params).fit(X, y)
    assert short.n_iter_ == mlp.n_iter_ and short.loss_ == pytest.approx(mlp.loss_, rel=1e-9)
    for ours, theirs in zip(short.coefs_ + short.intercepts_, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)
    assert short.n_layers_ == mlp.n_layers_ == 4 and short.out_activation_ == mlp.out_activation_


# ---------------------------------------------------------------------- multi-label (issue 13)
@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(n_samples=1000, n_features=20, n_classes=5, random_state=0)
    return train_test_split(X, Y, test_size=0.25, random_state=0)


def test_multilabel_as_mlpclassifier(multilabel):
    X_train, X_test, Y_train, Y_test = multilabel
    ours, theirs = [], []
    for seed in range(3):
        clf = NetClassifier(hidden_layer_sizes=(100,), learning_rate_init=0.001, batch_size=200, max_iter=200,
                            random_state=seed).fit(X_train, Y_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
            mlp = MLPClassifier(hidden_layer_sizes=(100,), learning_rate_init=0.001, batch_size=200, max_iter=200,
                                random_state=seed).fit(X_train, Y_train)
        ours.append(clf.score(X_test, Y_test))
        theirs.append(mlp.score(X_test, Y_test))
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.02, (ours, theirs)
    np.testing.assert_array_equal(clf.classes_, mlp.classes_)
    assert isinstance(clf.net_[-1], lk.Sigmoid) and clf.net_[-2].n_out == 5
    proba = clf.predict_proba(X_test)
    assert proba.shape == (250, 5) and np.all((proba >= 0) & (proba <= 1))
    predicted = clf.predict(X_test)
    assert predicted.shape == (250, 5) and predicted.dtype.kind == "i"
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))


def test_multilabel_sparse_y_partial_fit_and_errors(multilabel):
    X_train, X_test, Y_train, _ = multilabel
    dense = NetClassifier(max_iter=3, random_state=0).fit(X_train, Y_train)
    sparse_y = NetClassifier(max_iter=3, random_state=0).fit(X_train, sp.csr_matrix(Y_train))
    np.testing.assert_array_equal(dense.predict_proba(X_test), sparse_y.predict_proba(X_test))
    assert sp.issparse(sparse_y.predict(X_test))  # as MLPClassifier's LabelBinarizer gives it
    steps = NetClassifier(random_state=0)
    for _ in range(2):
        steps.partial_fit(X_train, Y_train, classes=np.arange(5))
    assert len(steps.loss_curve_) == 2 and steps.predict(X_test).shape == (250, 5)
    with pytest.raises(ValueError, match="partial_fit: y is a multi-label matrix of 3 labels, but the first call had 5"):
        steps.partial_fit(X_train, Y_train[:, :3])
    with pytest.raises(ValueError, match="multi-label y trains with binary cross-entropy"):
        NetClassifier(loss="softmax_cross_entropy").fit(X_train, Y_train)


def test_multilabel_converts_to_onnx(multilabel):
    import onnxruntime as ort
    from skl2onnx import to_onnx

    import layerkit.onnx  # noqa: F401 - registers the converters

    X_train, X_test, Y_train, _ = multilabel
    clf = NetClassifier(max_iter=5, random_state=0).fit(X_train.astype(np.float32), Y_train)
    model = to_onnx(clf, X_train[:1].astype(np.float32))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {session.get_inputs()[0].name: X_test.astype(np.float32)})
    np.testing.assert_array_equal(labels, clf.predict(X_test.astype(np.float32)))
    np.testing.assert_allclose(proba, clf.predict_proba(X_test.astype(np.float32)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- warm start (issue 13)
def test_warm_start_continues_or_starts_afresh(iris):
    X, y = iris
    clf = NetClassifier(warm_start=True, max_iter=4, tol=0.0, n_iter_no_change=100, random_state=0).fit(X, y)
    net, first_curve = clf.net_, list(clf.loss_curve_)
    weights = net[0].W.copy()
    clf.fit(X, y)
    assert clf.net_ is net and not np.array_equal(net[0].W, weights)  # continued from the trained weights
    # as MLPClassifier: n_iter_ counts this call's epochs, loss_curve_ and t_ all of them
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 8 and clf.loss_curve_[:4] == first_curve
    assert clf.t_ == 8 * 150
    assert clf.loss_curve_[4] < first_curve[0]
    clf.set_params(hidden_layer_sizes=(7,)).fit(X, y)  # another architecture: a new net
    assert clf.net_ is not net and clf.net_[0].n_out == 7 and clf.n_iter_ == 4
    cold = NetClassifier(warm_start=False, max_iter=4, random_state=0).fit(X, y)
    net = cold.net_
    assert cold.fit(X, y).net_ is not net and cold.n_iter_ == 4
    with pytest.raises(ValueError, match=r"warm_start can only be used where `y` has the same classes as in the "
                                         r"previous call to fit. Previously got \[0 1 2\], `y` has \[0 1\]"):
        clf.fit(X[y < 2], y[y < 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])  # the fitted estimator is left as it was
    assert clf.predict_proba(X).shape == (150, 3)


def test_partial_fit_refuses_early_stopping_and_lbfgs_as_mlp_classifier(iris):
    X, y = iris
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        NetClassifier(early_stopping=True, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    clf = NetClassifier(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    assert clf.t_ == 150 and clf.n_iter_ == 1
    assert not hasattr(NetClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(NetRegressor(solver="lbfgs"), "partial_fit")


# ---------------------------------------------------------------------- dtypes (issue 13)
def test_dtype_auto_follows_the_data(iris):
    X, y = iris
    clf = NetClassifier(max_iter=2, random_state=0).fit(X.astype(np.float32), y)
    assert clf.net_.dtype == np.float32 and clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    reg = NetRegressor(max_iter=2, random_state=0).fit(X.astype(np.float32), y.astype(np.float32))
    assert reg.predict(X.astype(np.float32)).dtype == np.float32
    assert NetRegressor(max_iter=2).fit(X, y).predict(X).dtype == np.float64
    assert NetRegressor(max_iter=2).fit(np.round(X * 10).astype(np.int64), y).net_.dtype == np.float64
    explicit = NetRegressor(dtype="float64", max_iter=2).fit(X.astype(np.float32), y)
    assert explicit.net_.dtype == np.float64 and explicit.predict(X.astype(np.float32)).dtype == np.float64
    assert NetRegressor(dtype=np.float32, max_iter=2).fit(X, y).net_.dtype == np.float32



# ---------------------------------------------------------------------- same seed, either dtype (issue 19)
def _parameters(net):
    return [np.array(p) for layer in net for p in (getattr(layer, "W", None), getattr(layer, "b", None))
            if p is not None]


@pytest.mark.parametrize("Estimator", [NetClassifier, NetRegressor])
def test_same_random_state_starts_float32_from_the_float64_weights_cast(iris, Estimator):
    X, y = iris
    # a rate far below any weight's rounding: the fitted weights are the initial ones
    params = dict(hidden_layers=({"type": "linear", "n_out": 16}, "relu", {"type": "linear", "n_out": 8}, "tanh",
                                 {"type": "linear", "n_out": 8, "init": "orthogonal"}, "relu"),
                  learning_rate_init=1e-300, max_iter=1, random_state=3)
    w64 = _parameters(Estimator(dtype="float64", **params).fit(X, y).net_)
    w32 = _parameters(Estimator(dtype="float32", **params).fit(X, y).net_)
    assert len(w64) == 8 and [w.dtype for w in w32] == [np.float32] * 8
    for a, b in zip(w64, w32):
        np.testing.assert_array_equal(a.astype(np.float32), b)


def test_float32_and_float64_train_alike_as_in_scikit_learns_mlp_dtype_test():
    # scikit-learn's test_mlp_classifier_dtypes_casting and test_mlp_regressor_dtypes_casting, ported
    X_digits, y_digits = load_digits(n_class=2, return_X_y=True)
    params = dict(hidden_layer_sizes=(5, 3), random_state=1)
    clf_64 = NetClassifier(max_iter=100, tol=1e-1, **params).fit(X_digits[:300], y_digits[:300])
    clf_32 = NetClassifier(max_iter=100, tol=1e-1, **params).fit(X_digits[:300].astype(np.float32), y_digits[:300])
    assert clf_32.net_.dtype == np.float32 and clf_64.n_iter_ == clf_32.n_iter_
    np.testing.assert_array_equal(clf_64.predict(X_digits[300:]), clf_32.predict(X_digits[300:].astype(np.float32)))
    np.testing.assert_allclose(clf_64.predict_proba(X_digits[300:]),
                               clf_32.predict_proba(X_digits[300:].astype(np.float32)), rtol=1e-2)
    reg_64 = NetRegressor(max_iter=150, tol=1e-3, **params).fit(X_digits[:300], y_digits[:300])
    reg_32 = NetRegressor(max_iter=150, tol=1e-3, **params).fit(X_digits[:300].astype(np.float32), y_digits[:300])
    assert reg_32.net_.dtype == np.float32
    np.testing.assert_allclose(reg_64.predict(X_digits[300:]), reg_32.predict(X_digits[300:].astype(np.float32)),
                               rtol=5e-4)


# ---------------------------------------------------------------------- sparse input (issue 13)
@pytest.fixture
def no_densifying(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("the sparse X was densified")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array):
        monkeypatch.setattr(cls, "toarray", refuse)


@pytest.fixture(scope="module")
def sparse_data():
    rng = np.random.default_rng(0)
    X = sp.random(300, 200, density=0.05, format="csr", random_state=np.random.RandomState(0))
    y = (X @ rng.normal(size=200) > 0).astype(int) + (X[:, :10].sum(axis=1).A1 > 0.3)
    return X, y, X.toarray()


@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array])
def test_sparse_input_gives_the_dense_results(sparse_data, fmt, no_densifying):
    X, y, dense = sparse_data
    params = dict(optimizer="adam", max_iter=5, batch_size=16, random_state=0)
    weights = np.linspace(0.5, 2, 300)
    on_sparse = NetClassifier(**params).fit(fmt(X), y, sample_weight=weights)
    on_dense = NetClassifier(**params).fit(dense, y, sample_weight=weights)
    np.testing.assert_allclose(on_sparse.loss_curve_, on_dense.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(on_sparse.predict_proba(fmt(X)), on_dense.predict_proba(dense), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(on_sparse.predict(fmt(X)), on_dense.predict(dense))
    on_sparse.partial_fit(fmt(X), y)
    on_dense.partial_fit(dense, y)
    np.testing.assert_allclose(on_sparse.predict_proba(fmt(X)), on_dense.predict_proba(dense), rtol=1e-8, atol=1e-12)


def test_sparse_regressor_with_early_stopping(sparse_data, no_densifying):
    X, y, dense = sparse_data
    params = dict(optimizer="sgd", learning_rate_init=0.1, early_stopping=True, max_iter=6, random_state=0)
    on_sparse = NetRegressor(**params).fit(X, y.astype(float))
    on_dense = NetRegressor(**params).fit(dense, y.astype(float))
    np.testing.assert_allclose(on_sparse.validation_scores_, on_dense.validation_scores_, rtol=1e-9)
    np.testing.assert_allclose(on_sparse.predict(X), on_dense.predict(dense), rtol=1e-9, atol=1e-12)


def test_sparse_input_needs_a_linear_first(sparse_data):
    X, y, _ = sparse_data
    with pytest.raises(TypeError, match=r"scipy\.sparse .* only a Linear layer takes"):
        NetClassifier(hidden_layers=("relu",), max_iter=1).fit(X, y)


def test_multilabel_partial_fit_refuses_classes_that_do_not_match_the_labels():
    Y = np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]])
    X = np.arange(12, dtype=float).reshape(4, 3)
    with pytest.raises(ValueError, match=r"multi-label y of 3 labels has the classes \[0, 1, 2\], got classes=\[0, 1\]"):
        NetClassifier(max_iter=1).partial_fit(X, Y, classes=[0, 1])
    assert NetClassifier(max_iter=1).partial_fit(X, Y, classes=[0, 1, 2]).classes_.tolist() == [0, 1, 2]

"""``layerkit.sklearn``: the estimators pass scikit-learn's checks and behave as a user expects."""
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import layerkit as lk
from layerkit.sklearn import NetClassifier, NetRegressor


# a faster rate and smaller batches than MLPClassifier's defaults (0.001, 200): a few epochs suffice on iris
FAST = dict(learning_rate_init=0.01, batch_size=32)


@parametrize_with_checks([NetClassifier(random_state=0), NetRegressor(random_state=0)])  # the defaults
def test_sklearn_compatible_estimator(estimator, check):
    # no expected failures: sample weights average over each minibatch, so a row of weight 2 is the row repeated
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _encoded_fit_reference(clf, X, y_encoded, random_state):
    """The net ``clf.fit`` should produce, trained by ``layerkit.fit`` itself with the same seeds."""
    seeds = np.random.RandomState(random_state)
    net = lk.Net.from_config(clf.spec_, seed=seeds.randint(2 ** 31 - 1))
    lk.fit(net, X, y_encoded, epochs=clf.max_iter, lr=clf.learning_rate_init, batch_size=clf.batch_size,
           loss="softmax_cross_entropy" if len(clf.classes_) > 2 else "bce",
           seed=seeds.randint(2 ** 31 - 1), verbose=False)
    return net


def test_classifier_is_layerkit_fit_on_the_net_of_its_spec(iris):
    X, y = iris
    # plain SGD (no momentum, no alpha): the estimator's training is layerkit.fit's
    clf = NetClassifier(hidden_layers=({"type": "linear", "n_out": 32}, "relu"), solver="sgd", momentum=0.0, alpha=0.0,
                        learning_rate_init=0.1, max_iter=5, batch_size=16, random_state=7).fit(X, y)
    assert clf.spec_ == [{"type": "linear", "n_out": 32, "n_in": 4, "dtype": "float64"}, "relu",
                         {"type": "linear", "n_in": 32, "n_out": 3, "dtype": "float64"}]
    reference = _encoded_fit_reference(clf, X, y, 7)
    np.testing.assert_array_equal(clf.net_.predict(X), reference.predict(X))
    assert clf.loss_curve_ == clf.history_["train_loss"] and clf.n_iter_ == 5


def test_multiclass_with_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NetClassifier(max_iter=40, random_state=0, **FAST).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, names) > 0.9
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


def test_binary_uses_one_sigmoid_output_or_two_logits(iris):
    X, y = iris
    labels = np.where(y == 0, "setosa", "other")
    clf = NetClassifier(max_iter=10, random_state=0, **FAST).fit(X, labels)
    assert isinstance(clf.net_[-1], lk.Sigmoid) and clf.net_[-2].n_out == 1
    assert list(clf.classes_) == ["other", "setosa"]
    assert clf.score(X, labels) == 1.0
    two = NetClassifier(loss="softmax_cross_entropy", max_iter=10, random_state=0, **FAST).fit(X, labels)
    assert isinstance(two.net_[-1], lk.Linear) and two.net_[-1].n_out == 2
    assert two.predict_proba(X).shape == (150, 2) and two.score(X, labels) == 1.0


def test_hidden_layers_take_plugin_layers_and_float32(iris):
    X, y = iris
    clf = NetClassifier(hidden_layers=({"type": "linear", "n_out": 8}, "mish", {"type": "linear", "n_out": 5}, "swish"),
                        dtype="float32", max_iter=30, random_state=0, **FAST).fit(X, y)
    assert [type(layer).__name__ for layer in clf.net_] == ["Linear", "Mish", "Linear", "Swish", "Linear"]
    assert [layer.n_in for layer in clf.net_ if isinstance(layer, lk.Linear)] == [4, 8, 5]
    assert clf.net_.dtype == np.float32 and clf.score(X, y) > 0.8
    logistic = NetClassifier(hidden_layers=(), max_iter=30, random_state=0, **FAST).fit(X, y)
    assert len(logistic.net_) == 1 and logistic.score(X, y) > 0.8


def test_regressor_one_and_several_targets():
    X, y = make_regression(n_samples=120, n_features=5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(axis=0)
    two = NetRegressor(max_iter=60, random_state=0, **FAST).fit(X, y)
    assert two.predict(X).shape == (120, 2) and two.n_outputs_ == 2 and two.score(X, y) > 0.95
    one = NetRegressor(loss="mse", max_iter=60, random_state=0, **FAST).fit(X, y[:, 0])
    assert one.predict(X).shape == (120,) and one.score(X, y[:, 0]) > 0.95
    as_object = NetRegressor(loss=lk.losses.MeanSquaredError(), max_iter=60, random_state=0, **FAST).fit(X, y[:, 0])
    np.testing.assert_array_equal(as_object.predict(X), one.predict(X))


def test_partial_fit_continues_net_and_optimizer_state(iris):
    X, y = iris
    params = dict(solver="adam", learning_rate_init=0.01, max_iter=3, shuffle=False, random_state=1)
    whole = NetClassifier(**params).fit(X, y)
    steps = NetClassifier(**params)
    for _ in range(3):
        steps.partial_fit(X, y, classes=[0, 1, 2])
    # equal only if the Adam moments and step counts carried over between the calls
    np.testing.assert_allclose(steps.predict_proba(X), whole.predict_proba(X), rtol=1e-12)
    assert len(steps.loss_curve_) == 3 and steps.n_iter_ == 1  # as MLPClassifier: the last call's epochs
    np.testing.assert_allclose(steps.loss_curve_, whole.loss_curve_, rtol=1e-12)


def test_partial_fit_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="NetClassifier.partial_fit: classes must be passed on the first call"):
        NetClassifier().partial_fit(X, y)
    clf = NetClassifier(random_state=0).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.predict_proba(X).shape == (150, 3)
    with pytest.raises(ValueError, match=r"NetClassifier.partial_fit: classes \[.*\] differ from those of the first"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"NetClassifier: y has labels \[7\] not among classes"):
        clf.partial_fit(X[:3], [0, 1, 7])


def test_sample_weight_is_passed_to_the_loss(iris):
    X, y = iris
    # a minibatch's loss is the weighted average of its rows' losses: uniform weights change nothing (without
    # alpha, whose penalty MLPClassifier divides by the minibatch's total weight)
    params = dict(solver="sgd", alpha=0.0, learning_rate_init=0.05, max_iter=4, random_state=3)
    doubled = NetClassifier(**params).fit(X, y, sample_weight=np.full(150, 2.0))
    plain = NetClassifier(**params).fit(X, y)
    np.testing.assert_allclose(doubled.predict_proba(X), plain.predict_proba(X), rtol=1e-10)
    # in one minibatch, a row of weight 2 is the row repeated
    weights = np.random.default_rng(0).integers(0, 3, size=40)
    whole = dict(params, batch_size=200, shuffle=False)
    rows = np.arange(0, 150, 4)[:40]  # every class
    weights = weights[:rows.size]
    weighted = NetClassifier(**whole).fit(X[rows], y[rows], sample_weight=weights)
    repeated = NetClassifier(**whole).fit(np.repeat(X[rows], weights, axis=0), np.repeat(y[rows], weights))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9)
    # no weight on class 0: nothing pulls its logit up, so the net never predicts it
    unweighted = NetClassifier(max_iter=10, random_state=0, **FAST).fit(X, y)
    without_zero = NetClassifier(max_iter=10, random_state=0, **FAST).fit(X, y, sample_weight=(y != 0).astype(float))
    assert np.sum(unweighted.predict(X) == 0) == 50 and np.sum(without_zero.predict(X) == 0) == 0


def test_early_stopping_holds_out_a_validation_set(rng):
    X = rng.normal(size=(200, 5))
    y = rng.integers(0, 2, size=200)  # noise: the validation loss stops improving quickly
    clf = NetClassifier(early_stopping=True, n_iter_no_change=3, max_iter=300, learning_rate_init=0.05,
                        random_state=0).fit(X, y)
    assert clf.history_.stopped_early and clf.n_iter_ < 300
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) and clf.best_loss_ is None
    # MLPClassifier's rule: stop after more than n_iter_no_change epochs without a score above best + tol
    best = int(np.argmax(clf.validation_scores_))
    assert clf.n_iter_ == best + 1 + 4


def test_feature_names_in(iris):
    pd = pytest.importorskip("pandas", reason="feature names come from a DataFrame; pandas is in the test extra")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = NetClassifier(max_iter=2, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"] and clf.n_features_in_ == 4
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        clf.predict(frame.rename(columns={"a": "z"}))
    assert not hasattr(NetClassifier(max_iter=2).fit(X, y), "feature_names_in_")


@pytest.mark.parametrize("params, X_shape, y, message", [
    ({"optimizer": "nope"}, (6, 2), [0, 1] * 3, r"The 'optimizer' parameter of NetClassifier must be None, a str among"),
    ({"solver": "lbfgs", "optimizer": "adamw"}, (6, 2), [0, 1] * 3, "does not combine with solver='lbfgs'"),
    ({"solver": "newton"}, (6, 2), [0, 1] * 3, r"The 'solver' parameter of NetClassifier must be a str among"),
    ({"learning_rate": "cosine"}, (6, 2), [0, 1] * 3, r"The 'learning_rate' parameter of NetClassifier must be"),
    ({"max_iter": 0}, (6, 2), [0, 1] * 3, r"The 'max_iter' parameter of NetClassifier must be an int in the range \[1, inf\)\. Got 0"),
    ({"alpha": -1.0}, (6, 2), [0, 1] * 3, r"The 'alpha' parameter of NetClassifier must be a float in the range"),
    ({"learning_rate": "invscaling", "learning_rate_init": lk.optim.Constant(0.1)}, (6, 2), [0, 1] * 3,
     r"learning_rate='invscaling' changes a number; with a layerkit Schedule"),
    ({"epochs": 0}, (6, 2), [0, 1] * 3, r"The 'epochs' parameter of NetClassifier must be None or an int in the range \[1, inf\)\. Got 0"),
    ({"verbose": -1}, (6, 2), [0, 1] * 3, r"The 'verbose' parameter of NetClassifier must be .*Got -1"),
    ({"early_stopping": True, "validation_fraction": 0.0}, (6, 2), [0, 1] * 3,
     r"The 'test_size' parameter of train_test_split must be"),  # as in MLPClassifier
    ({"hidden_layers": "relu"}, (6, 2), [0, 1] * 3, r"The 'hidden_layers' parameter of NetClassifier must be None, an instance of 'list' or an instance of 'tuple'"),
    ({"hidden_layers": ({"type": "nope"},)}, (6, 2), [0, 1] * 3, r"item 0 \('nope'\).*unknown|item 0 \('nope'\)"),
    ({"loss": "bce"}, (6, 2), [0, 1, 2] * 2, "loss='bce' needs 2 classes, got 3"),
    ({"dtype": "int8"}, (6, 2), [0, 1] * 3, r"The 'dtype' parameter of NetClassifier must be a str among"),
    ({"optimizer": "adamw", "optimizer_params": {"nope": 1}}, (6, 2), [0, 1] * 3,
     r"optimizer_params \{'nope': 1\} do not fit AdamW"),
    ({"optimizer_params": {"amsgrad": True}}, (6, 2), [0, 1] * 3, "optimizer_params applies to an optimizer given by name"),
    ({}, (6, 2), [[0, 1], [2, 0], [1, 2]] * 2, r"a 2-D y must be a multi-label indicator matrix of 0 and 1"),
    ({"shuffle": "true"}, (6, 2), [0, 1] * 3, r"The 'shuffle' parameter of NetClassifier must be an instance of 'bool'"),
    ({"early_stopping": "invalid"}, (6, 2), [0, 1] * 3, r"The 'early_stopping' parameter of NetClassifier"),
    ({"tol": -1.0}, (6, 2), [0, 1] * 3, r"The 'tol' parameter of NetClassifier must be a float in the range"),
    ({"n_iter_no_change": 0}, (6, 2), [0, 1] * 3, r"The 'n_iter_no_change' parameter of NetClassifier"),
    ({"activation": "softsign"}, (6, 2), [0, 1] * 3, r"The 'activation' parameter of NetClassifier must be a str among"),
    ({"hidden_layer_sizes": (4,), "hidden_layers": ("relu",)}, (6, 2), [0, 1] * 3,
     "give hidden_layers or hidden_layer_sizes, not both"),
    ({"hidden_layer_sizes": (4, 0)}, (6, 2), [0, 1] * 3, r"hidden_layer_sizes must be > 0, got \[4, 0\]"),
    ({}, (6, 2), [0.5, 1.5, 0.25, 1, 2, 3], "Unknown label type"),
])
def test_classifier_errors_name_the_argument(params, X_shape, y, message):
    with pytest.raises(ValueError, match=message):
        NetClassifier(**params).fit(np.ones(X_shape), y)


def test_one_class_y_predicts_that_class_as_mlp_classifier():
    X = np.arange(12.0).reshape(6, 2)
    clf = NetClassifier(max_iter=5, random_state=0).fit(X, ["a"] * 6)
    assert list(clf.classes_) == ["a"] and clf.n_outputs_ == 1
    assert list(clf.predict(X)) == ["a"] * 6
    np.testing.assert_array_equal(clf.predict_proba(X), np.ones((6, 1)))


def test_predict_checks_the_number_of_features(iris):
    X, y = iris
    clf = NetClassifier(max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NetClassifier is expecting 4 features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="all zeros"):
        NetRegressor().fit(X, y, sample_weight=np.zeros(150))
    with pytest.raises(ValueError, match="NetRegressor: loss must be 'squared_error', 'poisson', 'mse' or a layerkit Loss"):
        NetRegressor(loss="bce").fit(X, y)


def test_pipeline_cross_val_score_and_grid_search(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), NetClassifier(max_iter=15, random_state=0, **FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    search = GridSearchCV(pipe, {"netclassifier__learning_rate_init": [1e-5, 0.02],
                                 "netclassifier__hidden_layers": [({"type": "linear", "n_out": 4}, "relu"),
                                                                  ({"type": "linear", "n_out": 16}, "relu")]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["netclassifier__learning_rate_init"] == 0.02  # 1e-5 barely moves the weights
    assert search.best_estimator_.score(X, y) > 0.9


def test_fitted_estimators_and_nets_pickle_after_the_compiled_plan_ran(iris):
    X, y = iris
    for estimator in (NetClassifier(optimizer="adam", max_iter=3, random_state=0),
                      NetClassifier(optimizer="sgd", max_iter=3, random_state=0),
                      NetRegressor(optimizer="rmsprop", max_iter=3, random_state=0)):
        estimator.fit(X, y)
        before = estimator.predict(X)
        assert estimator.net_._compiled() is not None  # the Cython plan was built and used
        copy = pickle.loads(pickle.dumps(estimator))
        np.testing.assert_array_equal(copy.predict(X), before)
        net = pickle.loads(pickle.dumps(estimator.net_))
        np.testing.assert_array_equal(net.predict(X), estimator.net_.predict(X))
        # training resumes from the same optimizer state on both sides
        estimator.partial_fit(X, y, **({"classes": [0, 1, 2]} if isinstance(estimator, NetClassifier) else {}))
        copy.partial_fit(X, y, **({"classes": [0, 1, 2]} if isinstance(copy, NetClassifier) else {}))
        np.testing.assert_array_equal(copy.predict(X), estimator.predict(X))

"""``NetClassifier``: a layerkit net as a scikit-learn classifier."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer, LabelEncoder
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from layerkit.losses import get_loss

from layerkit.sklearn._base import NetEstimator
from layerkit.sklearn._losses import Scaled

BINARY_LOSSES = ("bce", "binary_cross_entropy")
SOFTMAX_LOSSES = ("softmax_cross_entropy", "cross_entropy")


class NetClassifier(ClassifierMixin, NetEstimator):
    """A layerkit ``Net`` trained as a scikit-learn classifier: a drop-in for ``MLPClassifier``.

    It takes every parameter of scikit-learn's ``MLPClassifier`` with the same
    meaning, defaults and validation, and sets the same fitted attributes
    (``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_``, ...). The net is
    the hidden layers followed by an output ``Linear``: one logit and a
    ``Sigmoid`` with binary cross-entropy for two classes, one logit per class
    with softmax cross-entropy for more, one sigmoid output per label for a
    2-D indicator ``y`` (multi-label). ``X`` may be dense or ``scipy.sparse``
    (CSR or CSC; never densified).

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, or int
        Units of each hidden ``Linear`` (each followed by ``activation``);
        default ``(100,)``. Its layers start from ``MLPClassifier``'s
        initialisation, so one ``random_state`` gives the same first weights.
    activation : {"identity", "logistic", "tanh", "relu"}
    solver : {"lbfgs", "sgd", "adam"}
        ``"lbfgs"``: full-batch L-BFGS-B (``scipy.optimize.minimize``), best
        for small data; ``"sgd"``: minibatch SGD with ``momentum``;
        ``"adam"`` (default): Adam with ``beta_1``, ``beta_2``, ``epsilon``.
    alpha : float >= 0
        L2 penalty on the weights (never the biases), as in ``MLPClassifier``:
        each minibatch's loss gains ``alpha / (2 * n_batch) * sum ||W||^2``.
    batch_size : int or "auto"
        Rows per minibatch; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}
        The schedule of ``solver="sgd"`` (``"invscaling"``:
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch;
        ``"adaptive"``: divided by 5 after ``n_iter_no_change`` epochs without
        improvement). A number here is the old layerkit spelling of
        ``learning_rate_init`` (``FutureWarning``).
    learning_rate_init : float > 0 or layerkit.optim.Schedule
        The rate of ``"sgd"`` and ``"adam"``; a layerkit schedule advances once
        per minibatch.
    power_t : float
    max_iter : int
        Most epochs (``"lbfgs"``: iterations).
    shuffle : bool
    random_state : None, int or numpy.random.RandomState
        Seeds the weights, the validation split and the shuffling.
    tol : float
        Improvement below which an epoch does not count (``"lbfgs"``: scipy's
        ``gtol``).
    verbose : bool or int
        Print ``Iteration n, loss = ...`` after each epoch.
    warm_start : bool
        ``fit`` continues from the fitted net (same classes required).
    momentum : float in [0, 1]
    nesterovs_momentum : bool
    early_stopping : bool
        Hold out ``validation_fraction`` of the rows (stratified), stop when
        their accuracy stops improving and keep the best weights.
    validation_fraction : float in [0, 1)
    beta_1, beta_2 : float in [0, 1)
    epsilon : float > 0
    n_iter_no_change : int or inf
    max_fun : int
        Most loss evaluations of ``"lbfgs"``.
    hidden_layers : list of (str or dict) or None
        layerkit: a ``Net.from_config`` spec of the hidden part instead of
        ``hidden_layer_sizes`` (any layers and blocks; ``n_in`` and
        ``dtype`` are filled in).
    loss : None, "bce" or "softmax_cross_entropy"
        layerkit: ``None`` chooses from the targets, as ``MLPClassifier``.
    optimizer : None, str or layerkit.optim.Optimizer
        layerkit: another minibatch optimizer by name (``"adamw"``,
        ``"rmsprop"``, ``"adagrad"``; with ``optimizer_params``, and ``alpha``
        as its bias-free weight decay) or an optimizer object, used as it is.
    optimizer_params : dict or None
    epochs : int or None
        Old layerkit spelling of ``max_iter`` (``FutureWarning``).
    dtype : "auto", "float64" or "float32"
        ``"auto"``: float32 for float32 data, float64 for anything else.
    checkpoint : None, str or path-like
        layerkit: a file where ``fit`` saves the whole run after every epoch
        (``solver="sgd"`` or ``"adam"``). When the file exists, ``fit``
        continues the run saved there, so rerunning a script killed in the
        middle of a long fit ends as the uninterrupted fit would have, bit for
        bit (give ``random_state`` an int; with ``early_stopping`` it is
        required). Not with ``solver="lbfgs"``, ``warm_start=True`` or
        ``partial_fit`` (``ValueError``).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coefs_ : list of ndarray, shape (n_in, n_out)
        Views of the weights of the net's ``Linear`` layers.
    intercepts_ : list of ndarray, shape (n_out,)
    loss_ : float
        The last epoch's loss (penalty included), or L-BFGS's final loss.
    best_loss_ : float or None
        ``None`` with ``early_stopping``.
    loss_curve_ : list of float
        Loss per epoch (minibatch solvers).
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    t_ : int
        Training rows seen by the minibatch solvers.
    n_iter_ : int
        Epochs (or L-BFGS iterations) of the last ``fit``.
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
        ``"logistic"`` or ``"softmax"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    net_ : layerkit.Net
        The trained net (its output: probabilities for two classes, logits for more).
    spec_ : list
        The net's full spec.
    history_ : layerkit.History or None
        Per-epoch metrics of the minibatch solvers.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from layerkit.sklearn import NetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NetClassifier(solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto", learning_rate: Any = "constant",
                 learning_rate_init: Any = 0.001, power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: Any = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 hidden_layers: Any = None, loss: Any = None, optimizer: Any = None,
                 optimizer_params: dict | None = None, epochs: int | None = None, dtype: Any = "auto",
                 checkpoint: Any = None) -> None:
        self._store(locals())

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "NetClassifier":
        """Train on ``X`` (n_samples, n_features), dense or sparse, and labels ``y``.

        ``y`` has shape (n_samples,), or (n_samples, n_labels) 0/1 indicators
        (dense or sparse) for multi-label. ``sample_weight`` (n_samples,)
        weighs each row's loss; a minibatch's loss is their weighted average.
        A new net unless ``warm_start`` continues the fitted one.
        """
        return self._fit(X, y, sample_weight, partial=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> "NetClassifier":
        """One epoch over ``(X, y)``, continuing the net and optimizer state of earlier calls.

        ``classes`` (all the labels there will be) is required on the first call.
        """
        if not hasattr(self, "net_") and classes is None:
            raise ValueError(f"{self._name()}.partial_fit: classes must be passed on the first call "
                             "(all the labels the data will have)")
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    _y_checks = {"multi_output": True}  # a 2-D indicator y is multi-label

    def _targets(self, y: Any, *, first: bool, classes: Any = None) -> np.ndarray:
        if sp.issparse(y) or (getattr(y, "ndim", 1) == 2 and y.shape[1] > 1):
            return self._multilabel_targets(y, first=first, classes=classes)
        if getattr(y, "ndim", 1) == 2:
            y = column_or_1d(y, warn=True)
        if not first and self._multilabel:
            raise ValueError(f"{self._name()}.partial_fit: y has shape {y.shape}, but the first call had a "
                             f"multi-label indicator matrix of {len(self.classes_)} labels")
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{self._name()}: y must be binary or multi-class labels of shape (n_samples,) or a "
                             f"multi-label indicator matrix (n_samples, n_labels), got {kind!r} targets")
        if first:
            self._multilabel = False
            self._encoder = LabelEncoder().fit(y if classes is None else np.asarray(classes))
            self.classes_ = self._encoder.classes_
            loss = self.loss
            if loss is not None and loss not in BINARY_LOSSES + SOFTMAX_LOSSES:
                raise ValueError(f"{self._name()}: loss must be None, 'bce' or 'softmax_cross_entropy', got {loss!r}")
            if loss in BINARY_LOSSES and len(self.classes_) > 2:
                raise ValueError(f"{self._name()}: loss={loss!r} needs 2 classes, got {len(self.classes_)}; "
                                 "use 'softmax_cross_entropy' (or None)")
            # one class, as MLPClassifier: one sigmoid output trained towards 0, predicting that class
            self._sigmoid = len(self.classes_) <= 2 and loss not in SOFTMAX_LOSSES
            self.n_outputs_ = 1 if self._sigmoid else len(self.classes_)
            self.out_activation_ = "logistic" if self._sigmoid else "softmax"
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"{self._name()}.partial_fit: classes {np.unique(classes).tolist()} differ from those "
                             f"of the first call {self.classes_.tolist()}")
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(f"{self._name()}: y has labels {unseen[:5].tolist()} not among classes {self.classes_.tolist()}")
        encoded = self._encoder.transform(y)
        return encoded.astype(self._target_dtype) if self._sigmoid else encoded.astype(np.int64)

    def _multilabel_targets(self, y: Any, *, first: bool, classes: Any) -> np.ndarray:
        """A 2-D 0/1 indicator ``y`` (dense or sparse): one sigmoid output per label, binary cross-entropy."""
        kind = type_of_target(y, input_name="y")
        if kind != "multilabel-indicator":
            raise ValueError(f"{self._name()}: a 2-D y must be a multi-label indicator matrix of 0 and 1 "
                             f"(n_samples, n_labels), got {kind!r} targets")
        if first:
            if self.loss is not None and self.loss not in BINARY_LOSSES:
                raise ValueError(f"{self._name()}: multi-label y trains with binary cross-entropy; loss must be "
                                 f"None or 'bce', got {self.loss!r}")
            self._multilabel, self._sigmoid = True, False
            self._binarizer = LabelBinarizer().fit(y)  # as MLPClassifier: classes_ = arange(n_labels)
            self.classes_ = self._binarizer.classes_
            self.n_outputs_, self.out_activation_ = len(self.classes_), "logistic"
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"{self._name()}.partial_fit: a multi-label y of {y.shape[1]} labels has the "
                                 f"classes {self.classes_.tolist()}, got classes={np.unique(classes).tolist()}")
        elif not self._multilabel or y.shape[1] != len(self.classes_):
            raise ValueError(f"{self._name()}.partial_fit: y is a multi-label matrix of {y.shape[1]} labels, but "
                             f"the first call had {'a 1-D y' if not self._multilabel else len(self.classes_)}")
        dense = y.toarray() if sp.issparse(y) else np.asarray(y)
        return dense.astype(self._target_dtype)

    def _head(self) -> tuple[int, list[Any], Any]:
        if self._multilabel:  # MLPClassifier's loss sums over the labels
            return len(self.classes_), ["sigmoid"], Scaled(get_loss("bce"), len(self.classes_))
        if self._sigmoid:
            return 1, ["sigmoid"], get_loss("bce")
        return len(self.classes_), [], get_loss("softmax_cross_entropy")

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        """As ``MLPClassifier``: stratified on the label-binarised (boolean) targets; multi-label: not stratified."""
        if self._multilabel:
            return None
        return LabelBinarizer().fit(np.arange(len(self.classes_))).transform(
            np.asarray(targets).astype(np.int64)).astype(bool)

    def _binarized_targets(self, Y: np.ndarray) -> np.ndarray:
        """scikit-learn's label-binarised ``Y`` in this estimator's encoding (for ``_loss_grad_lbfgs``)."""
        Y = np.asarray(Y)
        if self._multilabel:
            return Y.astype(self._target_dtype)
        if self._sigmoid:
            return Y.reshape(-1).astype(self._target_dtype)
        return np.argmax(Y, axis=1).astype(np.int64)

    def _validation_score(self, prediction: np.ndarray, targets: np.ndarray, sample_weight: Any) -> float:
        if self._multilabel:
            predicted = prediction > 0.5
        elif self._sigmoid:
            predicted = prediction[:, 0] > 0.5
        else:
            predicted = np.argmax(prediction, axis=1)
        return accuracy_score(targets.astype(predicted.dtype), predicted, sample_weight=sample_weight)

    def _fitted_targets(self) -> dict:
        return {**super()._fitted_targets(), "classes": self.classes_, "multilabel": self._multilabel}

    def _same_targets(self, previous: dict) -> None:
        if previous["multilabel"] != self._multilabel or not np.array_equal(previous["classes"], self.classes_):
            raise ValueError("warm_start can only be used where `y` has the same classes as in the previous call "
                             f"to fit. Previously got {np.asarray(previous['classes'])}, `y` has "
                             f"{np.asarray(self.classes_)} ({self._name()}: set warm_start=False to start afresh)")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``.

        Multi-label: each label's probability, shape (n_samples, n_labels). The
        dtype is the net's (float32 for a net trained on float32 data).
        """
        out = self._raw_predict(X)
        if self._multilabel:
            return out
        if self._sigmoid:
            p = out[:, 0]
            if len(self.classes_) == 1:  # the one class seen in y: probability 1
                return np.ones((out.shape[0], 1), dtype=out.dtype)
            return np.column_stack([1 - p, p])
        return softmax(out, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``, shape (n_samples, n_classes)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> Any:
        """The most probable class of each row, shape (n_samples,), labels as in ``y``.

        Multi-label: the indicator matrix (n_samples, n_labels) of the labels of
        probability above 0.5 (sparse when ``y`` was).
        """
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        if self._multilabel:
            return self._binarizer.inverse_transform(proba)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

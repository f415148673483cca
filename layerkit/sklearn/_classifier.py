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
from sklearn.utils.validation import column_or_1d

from layerkit.sklearn._base import NetEstimator

BINARY_LOSSES = ("bce", "binary_cross_entropy")
SOFTMAX_LOSSES = ("softmax_cross_entropy", "cross_entropy")


class NetClassifier(ClassifierMixin, NetEstimator):
    """A layerkit ``Net`` trained as a scikit-learn classifier (binary, multi-class or multi-label).

    The net is ``hidden_layers`` followed by an output ``Linear``: one logit
    and a ``Sigmoid`` with binary cross-entropy for two classes, one logit per
    class with softmax cross-entropy for more, one sigmoid output per label
    with binary cross-entropy for a 2-D indicator ``y`` (multi-label). Input
    widths are filled in from the data. ``X`` may be dense or ``scipy.sparse``
    (CSR or CSC; never densified: the first ``Linear`` multiplies each sparse
    minibatch through scipy).

    Parameters
    ----------
    hidden_layers : tuple of (str or dict)
        A ``Net.from_config`` spec of the hidden part, without the input width:
        ``({"type": "linear", "n_out": 32}, "relu")`` by default. ``n_in``
        (the width reaching the layer) and ``dtype`` are filled in for every
        layer that takes them and does not set them; plugin layers work too.
    hidden_layer_sizes : tuple of int or None
        ``MLPClassifier``'s shorthand: ``(64, 32)`` is a ``Linear`` of 64 and
        one of 32 outputs, each followed by ``activation``. Give this or
        ``hidden_layers``, not both.
    activation : {"identity", "logistic", "tanh", "relu"}
        The hidden activation with ``hidden_layer_sizes``.
    loss : None, "bce" or "softmax_cross_entropy"
        ``None`` chooses from the targets; ``"softmax_cross_entropy"`` with two
        classes uses two logits.
    optimizer : {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
        ``"adam"`` by default (betas 0.9 and 0.999, eps 1e-8), as
        ``MLPClassifier``'s ``solver="adam"``.
    learning_rate : float or layerkit.optim.Schedule
        The optimizer's ``lr``, on the gradient of the mean loss of a minibatch;
        a schedule (``lk.optim.CosineDecay(0.02, 1000)``) advances once per
        minibatch. Default 0.001, ``MLPClassifier``'s ``learning_rate_init``.
    momentum : float in [0, 1)
        SGD's momentum (``optimizer="sgd"`` only).
    optimizer_params : dict or None
        Further arguments of the optimizer (``{"betas": (0.9, 0.99)}``, ``{"weight_decay": 1e-4}``).
    epochs : int
        Most passes over the data in ``fit`` (``partial_fit`` makes one).
        Default 200, ``MLPClassifier``'s ``max_iter``; ``tol`` and
        ``n_iter_no_change`` usually stop training sooner. When all the
        epochs run out first, ``fit`` warns with a ``ConvergenceWarning``, as
        ``MLPClassifier`` does.
    batch_size : int or "auto"
        Rows per minibatch; ``"auto"`` (default) is ``min(200, n_samples)`` as
        in ``MLPClassifier``, ``n_samples`` being the rows trained on (those
        of the ``partial_fit`` call, without the validation rows of
        ``early_stopping``).
    shuffle : bool
        Shuffle the rows at each epoch.
    tol : float >= 0
        As in ``MLPClassifier``: an epoch improves when it lowers the training
        loss by at least ``tol`` (with ``early_stopping``: raises the validation
        score by at least ``tol``).
    n_iter_no_change : int >= 1
        Stop once more than this many epochs in a row did not improve.
    early_stopping : bool
        Hold out ``validation_fraction`` of the rows (stratified for single-label
        targets), watch their score (accuracy) and keep the best-scoring weights.
    validation_fraction : float in [0, 1)
    warm_start : bool
        ``fit`` continues from the fitted net when the data's width, the dtype,
        the hidden layers and the classes still fit (other classes raise a
        ``ValueError``), and builds a new net otherwise.
    dtype : "auto", "float64" or "float32"
        Dtype of the net and of the computation; ``"auto"``: float32 for float32
        data, float64 for anything else.
    random_state : None, int or numpy.random.RandomState
        Seeds the weights, the shuffling and the validation split.
    verbose : int
        0: quiet; 1: a progress bar; 2: also a line per epoch.

    Notes
    -----
    The defaults are ``MLPClassifier``'s (Adam, learning rate 0.001, batch
    ``min(200, n_samples)``, at most 200 epochs stopped by ``tol`` and
    ``n_iter_no_change``), under layerkit's names: ``learning_rate`` is
    ``learning_rate_init``, ``epochs`` is ``max_iter``. Two differences
    remain: one hidden layer of 32 (``MLPClassifier``: 100), and no L2
    penalty (``MLPClassifier``'s ``alpha=1e-4`` adds ``alpha * W / batch`` to
    each minibatch's gradient; Adam's ``optimizer_params={"weight_decay":
    alpha / batch}`` is the nearest, though it decays the biases too).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        ``arange(n_labels)`` for multi-label ``y``, as in ``MLPClassifier``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When ``X`` had string column names.
    net_ : layerkit.Net
        The trained net (its output: probabilities for two classes, logits for more).
    spec_ : list
        The net's full spec (widths filled in).
    history_ : layerkit.History
        Per-epoch metrics of all the training so far.
    loss_curve_ : list of float
        Training loss per epoch.
    validation_loss_curve_ : list of float or None
        Validation loss per epoch (with ``early_stopping``, else ``None``).
    validation_scores_ : list of float or None
        Validation score (accuracy) per epoch (with ``early_stopping``, else ``None``).
    best_validation_score_ : float or None
        Best of ``validation_scores_`` (with ``early_stopping``, else ``None``).
    best_loss_ : float or None
        Lowest training loss (``None`` with ``early_stopping``).
    n_iter_ : int
        Epochs trained (over all the warm-started fits and ``partial_fit`` calls).
    t_ : int
        Training rows seen (``n_samples * n_iter_``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from layerkit.sklearn import NetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NetClassifier(random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "NetClassifier":
        """Train on ``X`` (n_samples, n_features), dense or sparse, and labels ``y``.

        ``y`` has shape (n_samples,), or (n_samples, n_labels) 0/1 indicators
        (dense or sparse) for multi-label. ``sample_weight`` (n_samples,)
        weighs each row's loss; a minibatch's loss is their weighted average.
        A new net unless ``warm_start`` continues the fitted one.
        """
        return self._fit(X, y, sample_weight, partial=False)

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
            if len(self.classes_) < 2:
                raise ValueError(f"{self._name()}: needs at least 2 classes to learn, got 1 class "
                                 f"({self.classes_[0]!r}) in y")
            loss = self.loss
            if loss is not None and loss not in BINARY_LOSSES + SOFTMAX_LOSSES:
                raise ValueError(f"{self._name()}: loss must be None, 'bce' or 'softmax_cross_entropy', got {loss!r}")
            if loss in BINARY_LOSSES and len(self.classes_) > 2:
                raise ValueError(f"{self._name()}: loss={loss!r} needs 2 classes, got {len(self.classes_)}; "
                                 "use 'softmax_cross_entropy' (or None)")
            self._sigmoid = len(self.classes_) == 2 and loss not in SOFTMAX_LOSSES
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
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"{self._name()}.partial_fit: a multi-label y of {y.shape[1]} labels has the "
                                 f"classes {self.classes_.tolist()}, got classes={np.unique(classes).tolist()}")
        elif not self._multilabel or y.shape[1] != len(self.classes_):
            raise ValueError(f"{self._name()}.partial_fit: y is a multi-label matrix of {y.shape[1]} labels, but "
                             f"the first call had {'a 1-D y' if not self._multilabel else len(self.classes_)}")
        dense = y.toarray() if sp.issparse(y) else np.asarray(y)
        return dense.astype(self._target_dtype)

    def _head(self) -> tuple[int, list[Any], str]:
        if self._multilabel:
            return len(self.classes_), ["sigmoid"], "bce"
        if self._sigmoid:
            return 1, ["sigmoid"], "bce"
        return len(self.classes_), [], "softmax_cross_entropy"

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        return None if self._multilabel else targets

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
            raise ValueError(f"{self._name()}: warm_start can only be used where y has the same classes as in the "
                             f"previous call to fit; previously got {np.asarray(previous['classes']).tolist()}, "
                             f"y has {np.asarray(self.classes_).tolist()} (set warm_start=False to start afresh)")

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

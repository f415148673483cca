"""Loss functions: each returns the mean loss and its gradient with respect to its input.

Classification: ``binary_cross_entropy`` (of probabilities),
``binary_cross_entropy_with_logits`` and ``softmax_cross_entropy`` (of
logits). Regression: ``mean_squared_error``, ``huber_loss`` and ``l1_loss``.

Every loss is an object with ``__call__(y, t, sample_weight=None) -> (loss, dy)`` and
``accuracy(y, t)`` (``None`` for regression), and a function of the same name
for direct use. ``get_loss`` turns a name into a loss object.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._validation import check_batch, check_finite


def _targets_like(y: np.ndarray, t: Any, who: str) -> np.ndarray:
    target = np.asarray(t)
    if target.dtype.kind not in "fiub":
        raise TypeError(f"{who}: targets must be real numbers, got dtype {target.dtype}")
    if target.ndim == 1 and y.ndim == 2 and y.shape[1] == 1:
        target = target.reshape(-1, 1)
    if target.shape != y.shape:
        raise ValueError(f"{who}: targets must have the prediction's shape {y.shape}, got {target.shape}")
    target = target.astype(y.dtype, copy=False)
    check_finite(target, who, "targets")
    return target


def check_sample_weight(sample_weight: Any, n: int, who: str, dtype: Any = np.float64) -> np.ndarray:
    """``sample_weight`` as a 1-D array of ``n`` finite, non-negative weights of ``dtype``.

    Raises
    ------
    TypeError
        Weights that are not real numbers.
    ValueError
        Wrong shape, NaN/infinite or negative weights.
    """
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "fiub":
        raise TypeError(f"{who}: sample_weight must hold real numbers, got dtype {weights.dtype}")
    if weights.shape != (n,):
        raise ValueError(f"{who}: sample_weight must have shape ({n},), one weight per row, got {weights.shape}")
    weights = weights.astype(dtype, copy=False)
    check_finite(weights, who, "sample_weight")
    if n and weights.min() < 0:
        raise ValueError(f"{who}: sample_weight must be non-negative, got minimum {weights.min():.4g}")
    return weights


def _binary_accuracy(y: Any, t: Any, threshold: float) -> float:
    """The fraction of elements where ``y > threshold`` agrees with ``t > 0.5``."""
    y = np.asarray(y)
    return float(np.mean((y > threshold) == (np.asarray(t).reshape(y.shape) > 0.5)))


class NonFinitePredictionsError(ValueError):
    """Predictions holding NaN or infinity (``fit``, whose ``x`` is finite, reports a diverged net)."""


def _predictions(y: Any, who: str) -> np.ndarray:
    pred = check_batch(y, who, name="predictions")
    if pred.shape[0] == 0:
        raise ValueError(f"{who}: predictions are an empty batch (0 rows); the mean loss is undefined")
    if pred.shape[1] == 0:
        raise ValueError(f"{who}: predictions have no columns (shape {pred.shape}); the mean loss is undefined")
    try:
        check_finite(pred, who, "predictions")
    except ValueError as error:
        raise NonFinitePredictionsError(str(error)) from None
    return pred


def _weights(sample_weight: Any, y: np.ndarray, who: str) -> np.ndarray | None:
    return None if sample_weight is None else check_sample_weight(sample_weight, y.shape[0], who, y.dtype)


class Loss:
    """Base class: ``loss(y, t, sample_weight=None)`` returns ``(mean_loss, dloss/dy)``.

    ``sample_weight``, an optional array of shape (n_samples,) of non-negative
    weights, scales each row's loss (and its gradient) before the mean over
    the batch: all ones gives the unweighted loss.
    """

    name = "loss"

    def __call__(self, y: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None
                 ) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def accuracy(self, y: np.ndarray, t: np.ndarray) -> float | None:
        """Fraction of correct predictions, or ``None`` where the loss is not a classifier's."""
        return None

    def prepare_targets(self, t: Any, dtype: np.dtype) -> Any:
        """Targets converted once per training run into the form ``batch`` is fastest with."""
        return t

    def batch(self, y: np.ndarray, t: Any, grad_out: np.ndarray | None = None,
              sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray, float | None]:
        """Loss, gradient and accuracy of one minibatch (the training loop's call).

        Parameters
        ----------
        y : ndarray, shape (n_samples, n_outputs)
        t : array_like
            Targets, as returned by ``prepare_targets``.
        grad_out : ndarray, optional
            A buffer shaped like ``y`` that a fused implementation may write the
            gradient into (so a training step allocates nothing).
        sample_weight : ndarray of shape (n_samples,), optional

        Returns
        -------
        loss : float
        grad : ndarray, shape of ``y``
        accuracy : float or None
        """
        if sample_weight is None:
            value, grad = self(y, t)
        else:
            value, grad = self(y, t, sample_weight=sample_weight)
        return value, grad, self.accuracy(y, t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _CompiledLoss(Loss):
    """A loss computed by one kernel of the compiled core, which also checks every value.

    ``_kernel(y, t, weights, grad)`` returns ``(mean_loss, grad, n_correct)``,
    or ``None`` when the inputs need converting or hold a bad value; then
    ``_checked`` converts them with the checks (and messages) of the
    predictions, the targets and the weights, and the kernel runs on the
    converted arrays. ``batch`` writes the gradient into ``grad_out``.
    """

    who = "loss"

    # ``_kernel(y, t, weights, grad)``: a function of the core, a staticmethod (no Python frame of its own);
    # ``_batch_kernel`` the one of ``batch`` (the same unless a loss says otherwise)
    _kernel: Any = None
    _batch_kernel: Any = None

    def _checked(self, y: Any, t: Any, sample_weight: Any) -> tuple[np.ndarray, Any, np.ndarray | None]:
        raise NotImplementedError

    def _retry(self, y: Any, t: Any, sample_weight: Any, grad: Any, kernel: Any) -> tuple[float, np.ndarray, Any]:
        """After the kernel refused the raw inputs: the Python checks (their messages), then the kernel again."""
        out = kernel(*self._checked(y, t, sample_weight), grad)
        if out is None:  # every check passed, so the kernel must take the converted arrays
            raise RuntimeError(f"{self.who}: the compiled kernel refused inputs that passed every "
                               "check; this is a bug in layerkit, please report it")
        return out

    def __call__(self, y, t, sample_weight=None):
        out = self._kernel(y, t, sample_weight, None)  # the usual case: one call into the core
        if out is None:
            out = self._retry(y, t, sample_weight, None, self._kernel)
        return out[0], out[1]

    def batch(self, y, t, grad_out=None, sample_weight=None):
        if type(self).__call__ is not _CompiledLoss.__call__:  # a subclass computes its own loss: use it
            return Loss.batch(self, y, t, grad_out, sample_weight)
        kernel = self._batch_kernel or self._kernel
        out = kernel(y, t, sample_weight, grad_out)
        if out is None:
            out = self._retry(y, t, sample_weight, grad_out, kernel)
        return out[0], out[1], self._accuracy_of_count(out[2], out[1])

    @staticmethod
    def _accuracy_of_count(correct: Any, grad: np.ndarray) -> float | None:
        return None


class MeanSquaredError(_CompiledLoss):
    """``mean((y - t)**2)`` over all elements; gradient ``2 * (y - t) / y.size``.

    Parameters of the call: ``y`` and ``t`` of shape (n_samples, n_outputs); a 1-D
    ``t`` is accepted for a single output. The value and the gradient are
    those of NumPy's formula, bit for bit.
    """

    name = "mse"
    who = "mse"

    _kernel = staticmethod(core.mse_loss)

    def _checked(self, y, t, sample_weight):
        y = _predictions(y, self.who)
        return y, _targets_like(y, t, self.who), _weights(sample_weight, y, self.who)

    def prepare_targets(self, t, dtype):
        target = np.asarray(t)
        if target.dtype.kind not in "fiub":
            return t
        return np.ascontiguousarray(target, dtype=dtype)


# the clip of BinaryCrossEntropy's predictions, by dtype
_BCE_EPS_FLOAT32 = 1e-7
_BCE_EPS_FLOAT64 = 1e-12


class BinaryCrossEntropy(_CompiledLoss):
    """``-mean(t*log(p) + (1-t)*log(1-p))`` on probabilities ``p`` in [0, 1].

    Predictions are clipped to ``[eps, 1 - eps]`` (``eps`` is 1e-7 for float32
    and 1e-12 for float64) inside the logarithms and the gradient, so a
    confident prediction of exactly 0 or 1 gives a finite loss and gradient.
    Targets may be any values in [0, 1] (soft labels). The loss is summed in
    float64 for float32 predictions too.
    """

    name = "bce"
    who = "binary_cross_entropy"

    # the direct call's gradient is NumPy's formula bit for bit; fit's minibatches compute it in double
    _kernel = staticmethod(partial(core.bce_loss, _BCE_EPS_FLOAT32, _BCE_EPS_FLOAT64, True))
    _batch_kernel = staticmethod(partial(core.bce_loss, _BCE_EPS_FLOAT32, _BCE_EPS_FLOAT64, False))

    def _checked(self, p, t, sample_weight):
        p = _predictions(p, self.who)
        t = _targets_like(p, t, self.who)
        if p.min() < 0 or p.max() > 1:
            raise ValueError(
                "binary_cross_entropy: predictions must be probabilities in [0, 1], got values in "
                f"[{p.min():.4g}, {p.max():.4g}] (end the net with Sigmoid, or use binary_cross_entropy_with_logits "
                "or softmax_cross_entropy on logits)"
            )
        _check_unit_targets(t, self.who)
        return p, t, _weights(sample_weight, p, self.who)

    @staticmethod
    def _accuracy_of_count(correct, grad):
        return correct / grad.size

    def accuracy(self, p, t):
        return _binary_accuracy(p, t, 0.5)

    def prepare_targets(self, t, dtype):
        target = np.asarray(t)
        if target.dtype.kind not in "fiub":
            return t
        if target.ndim == 1:
            target = target.reshape(-1, 1)
        return np.ascontiguousarray(target, dtype=dtype)


class SoftmaxCrossEntropy(_CompiledLoss):
    """Cross-entropy of ``softmax(z)`` against targets, computed on the logits ``z``.

    **It takes logits** ``z``, the output of the last ``Linear``: do not put a
    ``Softmax`` layer before it (the softmax would be taken twice, and the
    loss would stall far above its minimum; ``fit`` warns with
    ``layerkit.warnings.DoubleSoftmaxWarning`` when a net ends in ``Softmax``).
    It is the analogue of Keras' ``from_logits=True`` and of PyTorch's
    ``nn.CrossEntropyLoss``.

    Targets are integer class labels of shape (n_samples,) or rows of
    shape (n_samples, n_classes), one-hot or soft (label smoothing). The
    loss is ``-sum(t * log_softmax(z)) / n_samples``, computed with
    log-sum-exp with the row maximum subtracted, so it never overflows. Its
    gradient is ``(softmax(z) * sum(t, axis=1) - t) / n_samples``: for rows
    of ``t`` that sum to 1 (labels, one-hot, probabilities) that is the
    familiar ``(softmax(z) - t) / n_samples``; for rows that do not, the
    gradient is still exactly that of the loss returned (scale such targets
    to sum to 1 if you meant probabilities).
    """

    name = "softmax_cross_entropy"
    who = "softmax_cross_entropy"

    _kernel = staticmethod(core.softmax_ce_loss)

    def _checked(self, z, t, sample_weight):
        z = _predictions(z, self.who)
        target = np.asarray(t)
        target = self._labels(z, target, self.who) if target.ndim == 1 else _targets_like(z, target, self.who)
        return z, target, _weights(sample_weight, z, self.who)

    @staticmethod
    def _labels(z: np.ndarray, target: np.ndarray, who: str) -> np.ndarray:
        """1-D ``target`` checked as class labels of the logits ``z``, as int64."""
        n, k = z.shape
        if target.shape[0] != n:
            raise ValueError(f"{who}: expected {n} labels, got {target.shape[0]}")
        if target.dtype.kind == "f":
            if not np.all(np.isfinite(target)) or not np.all(target == np.round(target)):
                raise ValueError(f"{who}: 1-D targets must be integer class labels")
        elif target.dtype.kind not in "iu":
            raise TypeError(f"{who}: 1-D targets must be integer class labels, got dtype {target.dtype}")
        labels = target.astype(np.int64)
        if labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"{who}: labels must be in [0, {k - 1}] for {k} logits, "
                             f"got range [{labels.min()}, {labels.max()}]")
        return labels

    @staticmethod
    def _accuracy_of_count(correct, grad):
        return correct / grad.shape[0]

    def accuracy(self, z, t):
        z = np.asarray(z)
        t = np.asarray(t)
        labels = t if t.ndim == 1 else t.argmax(axis=1)
        return float(np.mean(z.argmax(axis=1) == labels))

    def prepare_targets(self, t, dtype):
        target = np.asarray(t)
        if target.ndim == 1 and target.dtype.kind in "iu":
            return np.ascontiguousarray(target, dtype=np.int64)
        if target.ndim == 2 and target.dtype.kind in "fiub":
            return np.ascontiguousarray(target, dtype=dtype)
        return t


def _check_unit_targets(t: np.ndarray, who: str) -> None:
    if t.min() < 0 or t.max() > 1:
        raise ValueError(
            f"{who}: targets must be in [0, 1] (labels 0/1 or soft labels), got values in "
            f"[{t.min():.4g}, {t.max():.4g}] (for class labels 0..k-1 use softmax_cross_entropy on logits)"
        )


class BinaryCrossEntropyWithLogits(_CompiledLoss):
    """Binary cross-entropy of ``sigmoid(z)`` against targets, computed on the logits ``z``.

    **It takes logits** ``z`` (any real numbers), the output of the last
    ``Linear``: the net needs no ``Sigmoid`` layer, and the sigmoid is fused
    into the loss. Per element the loss is
    ``max(z, 0) - z * t + log1p(exp(-|z|))``, which equals
    ``-(t * log(sigmoid(z)) + (1 - t) * log(1 - sigmoid(z)))`` but never
    overflows and stays exact for confident predictions (no clipping); its
    gradient is ``(sigmoid(z) - t) / size``. The value is the mean over all
    elements, as PyTorch's ``nn.BCEWithLogitsLoss`` and Keras'
    ``BinaryCrossentropy(from_logits=True)`` compute it.

    Call with ``z`` and ``t`` of shape (n_samples, n_outputs) (a 1-D ``t``
    for one output), targets in [0, 1] (labels 0/1 or soft labels), and an
    optional ``sample_weight`` of shape (n_samples,). Predict probabilities
    with ``layerkit.Sigmoid()(net.predict(x))`` or classes with
    ``net.predict(x) > 0``. The accuracy counts ``z > 0`` against ``t > 0.5``.
    """

    name = "bce_with_logits"
    who = "binary_cross_entropy_with_logits"

    _kernel = staticmethod(partial(core.elementwise_loss, core.ELEMENTWISE_LOSS_BCE_LOGITS, 0.0))

    def _checked(self, z, t, sample_weight):
        z = _predictions(z, self.who)
        t = _targets_like(z, t, self.who)
        _check_unit_targets(t, self.who)
        return z, t, _weights(sample_weight, z, self.who)

    _accuracy_of_count = staticmethod(BinaryCrossEntropy._accuracy_of_count)
    prepare_targets = BinaryCrossEntropy.prepare_targets

    def accuracy(self, z, t):
        return _binary_accuracy(z, t, 0.0)  # sigmoid(z) > 0.5 exactly when z > 0


class HuberLoss(_CompiledLoss):
    """Huber loss for regression: squared error near the target, absolute error beyond ``delta``.

    Per element, with ``d = y - t``: ``d**2 / 2`` where ``|d| <= delta``, else
    ``delta * (|d| - delta / 2)``; the value is the mean over all elements and
    the gradient ``clip(d, -delta, delta) / size``. It is PyTorch's
    ``nn.HuberLoss(delta=delta)`` (and Keras' ``Huber``): less pulled by
    outliers than the mean squared error, smooth unlike L1.

    Parameters
    ----------
    delta : float, default 1.0
        The threshold between the quadratic and the linear part, positive.

    Call with ``y`` and ``t`` of shape (n_samples, n_outputs) (a 1-D ``t``
    for one output) and an optional ``sample_weight`` of shape (n_samples,).
    ``fit(loss="huber")`` uses ``delta=1``; pass ``loss=HuberLoss(delta)`` for another.
    """

    name = "huber"
    who = "huber_loss"

    def __init__(self, delta: float = 1.0) -> None:
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)):
            raise TypeError(f"HuberLoss: delta must be a positive number, got {type(delta).__name__} {delta!r}")
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"HuberLoss: delta must be a positive finite number, got {delta!r}")
        self.delta = float(delta)
        self._kernel = partial(core.elementwise_loss, core.ELEMENTWISE_LOSS_HUBER, self.delta)

    def _checked(self, y, t, sample_weight):
        y = _predictions(y, self.who)
        return y, _targets_like(y, t, self.who), _weights(sample_weight, y, self.who)

    prepare_targets = MeanSquaredError.prepare_targets

    def __repr__(self) -> str:
        return f"HuberLoss(delta={self.delta!r})"


class L1Loss(_CompiledLoss):
    """Mean absolute error for regression: ``mean(|y - t|)`` over all elements.

    The gradient is ``sign(y - t) / size`` (0 where ``y == t``), as PyTorch's
    ``nn.L1Loss`` computes it. Call with ``y`` and ``t`` of shape
    (n_samples, n_outputs) (a 1-D ``t`` for one output) and an optional
    ``sample_weight`` of shape (n_samples,).
    """

    name = "l1"
    who = "l1_loss"

    _kernel = staticmethod(partial(core.elementwise_loss, core.ELEMENTWISE_LOSS_L1, 0.0))

    _checked = HuberLoss._checked
    prepare_targets = MeanSquaredError.prepare_targets


mean_squared_error = MeanSquaredError()
binary_cross_entropy = BinaryCrossEntropy()
softmax_cross_entropy = SoftmaxCrossEntropy()
binary_cross_entropy_with_logits = BinaryCrossEntropyWithLogits()
huber_loss = HuberLoss()
l1_loss = L1Loss()

LOSSES: dict[str, Loss] = {
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "bce": binary_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "cross_entropy": softmax_cross_entropy,
    "bce_with_logits": binary_cross_entropy_with_logits,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "huber": huber_loss,
    "huber_loss": huber_loss,
    "l1": l1_loss,
    "l1_loss": l1_loss,
    "mae": l1_loss,
    "mean_absolute_error": l1_loss,
}


def get_loss(loss: str | Loss) -> Loss:
    """A loss object from a name or a loss object.

    The names: ``"mse"``, ``"bce"`` (of probabilities), ``"bce_with_logits"``,
    ``"softmax_cross_entropy"`` (``"cross_entropy"``), ``"huber"`` (``delta=1``),
    ``"l1"`` (``"mae"``), and the long forms of each (see ``LOSSES``).
    """
    if isinstance(loss, str):
        try:
            return LOSSES[loss.lower()]
        except KeyError:
            raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}") from None
    if callable(loss):
        return loss
    raise TypeError(f"loss must be a name or a callable returning (loss, grad), got {type(loss).__name__}")

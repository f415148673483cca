"""Loss functions: each returns the mean loss and its gradient with respect to its input.

Every loss is an object with ``__call__(y, t, sample_weight=None) -> (loss, dy)`` and
``accuracy(y, t)`` (``None`` for regression), and a function of the same name
for direct use. ``get_loss`` turns a name into a loss object.
"""
from __future__ import annotations

import math
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


def _weighted(per_element: np.ndarray, grad: np.ndarray, sample_weight: Any, who: str) -> tuple[float, np.ndarray]:
    """Mean over the batch of the per-row losses, each row's loss and gradient scaled by its weight.

    ``per_element`` and ``grad`` have shape (n_samples, n_outputs) and are
    the unweighted terms whose mean is the loss; with weights ``w`` the loss
    is ``mean(w[:, None] * per_element)`` and its gradient ``w[:, None] * grad``.
    """
    if sample_weight is None:
        return float(np.mean(per_element)), grad
    w = check_sample_weight(sample_weight, grad.shape[0], who, grad.dtype)[:, None]
    return float(np.mean(w * per_element)), (grad * w).astype(grad.dtype, copy=False)


class NonFinitePredictionsError(ValueError):
    """Predictions holding NaN or infinity (``fit``, whose ``x`` is finite, reports a diverged net)."""


def _predictions(y: Any, who: str) -> np.ndarray:
    pred = check_batch(y, who, name="predictions")
    if pred.shape[0] == 0:
        raise ValueError(f"{who}: predictions are an empty batch (0 rows); the mean loss is undefined")
    try:
        check_finite(pred, who, "predictions")
    except ValueError as error:
        raise NonFinitePredictionsError(str(error)) from None
    return pred


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


class MeanSquaredError(Loss):
    """``mean((y - t)**2)`` over all elements; gradient ``2 * (y - t) / y.size``.

    Parameters of the call: ``y`` and ``t`` of shape (n_samples, n_outputs); a 1-D
    ``t`` is accepted for a single output.
    """

    name = "mse"

    def __call__(self, y, t, sample_weight=None):
        y = _predictions(y, "mse")
        t = _targets_like(y, t, "mse")
        diff = y - t
        return _weighted(diff * diff, diff * (2.0 / diff.size), sample_weight, "mse")


class BinaryCrossEntropy(Loss):
    """``-mean(t*log(p) + (1-t)*log(1-p))`` on probabilities ``p`` in [0, 1].

    Predictions are clipped to ``[eps, 1 - eps]`` (``eps`` is 1e-7 for float32
    and 1e-12 for float64) inside the logarithms and the gradient, so a
    confident prediction of exactly 0 or 1 gives a finite loss and gradient.
    Targets may be any values in [0, 1] (soft labels).
    """

    name = "bce"

    def __call__(self, p, t, sample_weight=None):
        p = _predictions(p, "binary_cross_entropy")
        t = _targets_like(p, t, "binary_cross_entropy")
        if p.size and (p.min() < 0 or p.max() > 1):
            raise ValueError(
                "binary_cross_entropy: predictions must be probabilities in [0, 1], got values in "
                f"[{p.min():.4g}, {p.max():.4g}] (end the net with Sigmoid, or use softmax_cross_entropy on logits)"
            )
        if t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError(
                "binary_cross_entropy: targets must be in [0, 1] (labels 0/1 or soft labels), got values in "
                f"[{t.min():.4g}, {t.max():.4g}] (for class labels 0..k-1 use softmax_cross_entropy on logits)"
            )
        eps = 1e-7 if p.dtype == np.float32 else 1e-12
        q = np.clip(p, eps, 1 - eps)
        grad = ((q - t) / (q * (1 - q)) / p.size).astype(p.dtype, copy=False)
        if sample_weight is not None:
            return _weighted(-(t * np.log(q) + (1 - t) * np.log1p(-q)), grad, sample_weight,
                             "binary_cross_entropy")
        return float(-np.mean(t * np.log(q) + (1 - t) * np.log1p(-q))), grad

    def accuracy(self, p, t):
        p = np.asarray(p)
        t = np.asarray(t).reshape(p.shape)
        return float(np.mean((p > 0.5) == (t > 0.5)))

    def prepare_targets(self, t, dtype):
        target = np.asarray(t)
        if target.dtype.kind not in "fiub":
            return t
        if target.ndim == 1:
            target = target.reshape(-1, 1)
        return np.ascontiguousarray(target, dtype=dtype)

    def batch(self, p, t, grad_out=None, sample_weight=None):
        if (grad_out is not None and type(p) is np.ndarray and type(t) is np.ndarray
                and p.shape == t.shape == grad_out.shape and p.dtype == t.dtype == grad_out.dtype
                and p.dtype.kind == "f" and p.ndim == 2 and p.size and p.flags.c_contiguous
                and t.flags.c_contiguous):
            eps = 1e-7 if p.dtype == np.float32 else 1e-12
            weights = _row_weights(sample_weight, p, "binary_cross_entropy")
            fused = core.bce_batch(p, t, grad_out, weights, eps)
            # the kernel checks the predictions but not the targets: a NaN or
            # infinite target makes the loss non-finite, and the direct call
            # (below) then raises the message it raises for them (no cost on
            # finite data)
            if fused is not None and math.isfinite(fused[0]):
                return fused[0], grad_out, fused[1] / p.size
        return super().batch(p, t, grad_out, sample_weight)


class SoftmaxCrossEntropy(Loss):
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

    def __call__(self, z, t, sample_weight=None):
        who = "softmax_cross_entropy"
        z = _predictions(z, who)
        onehot = self._onehot(z, t, who)
        target_rows_sum_to_one = np.asarray(t).ndim == 1 or bool(
            np.all(np.abs(onehot.sum(axis=1) - 1) <= 8 * np.finfo(z.dtype).eps * z.shape[1]))
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(total)
        # the gradient of -sum(t * log_softmax(z)) is softmax(z) * sum(t) - t: rows
        # of t summing to 1 give softmax(z) - t, any others still get the gradient
        # of the loss returned (never the gradient of another loss)
        probs = exp / total
        if target_rows_sum_to_one:
            grad = probs - onehot
        else:
            grad = probs * onehot.sum(axis=1, keepdims=True) - onehot
        grad = (grad / z.shape[0]).astype(z.dtype, copy=False)
        if sample_weight is not None:
            per_row = -np.sum(onehot * log_probs, axis=1, keepdims=True)
            return _weighted(per_row, grad, sample_weight, who)
        return float(-np.sum(onehot * log_probs) / z.shape[0]), grad

    @staticmethod
    def _onehot(z: np.ndarray, t: Any, who: str) -> np.ndarray:
        target = np.asarray(t)
        n, k = z.shape
        if target.ndim == 1:
            if target.shape[0] != n:
                raise ValueError(f"{who}: expected {n} labels, got {target.shape[0]}")
            if target.dtype.kind == "f":
                if not np.all(np.isfinite(target)) or not np.all(target == np.round(target)):
                    raise ValueError(f"{who}: 1-D targets must be integer class labels")
            elif target.dtype.kind not in "iu":
                raise TypeError(f"{who}: 1-D targets must be integer class labels, got dtype {target.dtype}")
            labels = target.astype(np.int64)
            if labels.size and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(f"{who}: labels must be in [0, {k - 1}] for {k} logits, "
                                 f"got range [{labels.min()}, {labels.max()}]")
            onehot = np.zeros_like(z)
            onehot[np.arange(n), labels] = 1
            return onehot
        return _targets_like(z, target, who)

    def accuracy(self, z, t):
        z = np.asarray(z)
        t = np.asarray(t)
        labels = t if t.ndim == 1 else t.argmax(axis=1)
        return float(np.mean(z.argmax(axis=1) == labels))

    def prepare_targets(self, t, dtype):
        target = np.asarray(t)
        if target.ndim == 1 and target.dtype.kind in "iu":
            return np.ascontiguousarray(target, dtype=np.int64)
        return t

    def batch(self, z, t, grad_out=None, sample_weight=None):
        if (grad_out is not None and type(z) is np.ndarray and type(t) is np.ndarray
                and t.dtype == np.int64 and t.ndim == 1 and z.ndim == 2 and t.shape[0] == z.shape[0]
                and z.shape == grad_out.shape and z.dtype == grad_out.dtype and z.dtype.kind == "f"
                and z.size and z.flags.c_contiguous and t.flags.c_contiguous):
            weights = _row_weights(sample_weight, z, "softmax_cross_entropy")
            fused = core.softmax_ce_batch(z, t, grad_out, weights)
            if fused is not None:
                return fused[0], grad_out, fused[1] / z.shape[0]
        return super().batch(z, t, grad_out, sample_weight)


def _row_weights(sample_weight: Any, y: np.ndarray, who: str) -> np.ndarray | None:
    """``sample_weight`` checked like the Python losses check it, as a contiguous vector of ``y``'s dtype."""
    if sample_weight is None:
        return None
    return np.ascontiguousarray(check_sample_weight(sample_weight, y.shape[0], who, y.dtype))


mean_squared_error = MeanSquaredError()
binary_cross_entropy = BinaryCrossEntropy()
softmax_cross_entropy = SoftmaxCrossEntropy()

LOSSES: dict[str, Loss] = {
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "bce": binary_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "cross_entropy": softmax_cross_entropy,
}


def get_loss(loss: str | Loss) -> Loss:
    """A loss object from a name (``"mse"``, ``"bce"``, ``"softmax_cross_entropy"``) or a loss object."""
    if isinstance(loss, str):
        try:
            return LOSSES[loss.lower()]
        except KeyError:
            raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}") from None
    if callable(loss):
        return loss
    raise TypeError(f"loss must be a name or a callable returning (loss, grad), got {type(loss).__name__}")

"""``LBFGS``: full-batch L-BFGS for a ``Net`` through ``scipy.optimize.minimize(method="L-BFGS-B")``.

The net's parameters are seen as one flat vector, weights first (every
parameter of two or more dimensions, in the net's order), then biases (the
others): the layout of ``MLPClassifier``'s packed coefficients. Each
evaluation copies scipy's vector into the net's own arrays in place and
gathers the gradients into one preallocated vector, so no parameter array is
replaced or reallocated: a compiled plan or a workspace keeps pointing at
the arrays it was built for.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.optimize

from layerkit._validation import check_positive_int
from layerkit.optim.schedules import _check_real


class FlatParameters:
    """The trainable arrays of a net as one flat vector (weights first, then biases).

    Parameters
    ----------
    net : Net or sequence of layers

    Attributes
    ----------
    params : list of (layer, name, ndarray)
        In the flat order.
    size : int
        Length of the flat vector.
    """

    def __init__(self, net: Any) -> None:
        layers = getattr(net, "layers", net)
        entries = [(layer, name, getattr(layer, name)) for layer in layers
                   for name in getattr(layer, "param_names", ())]
        self.params = ([entry for entry in entries if entry[2].ndim >= 2]
                       + [entry for entry in entries if entry[2].ndim < 2])
        self.size = int(sum(p.size for _, _, p in self.params))
        self._slices = []
        start = 0
        for _, _, param in self.params:
            self._slices.append(slice(start, start + param.size))
            start += param.size
        dtype = self.params[0][2].dtype if self.params else np.dtype(np.float64)
        self._grad = np.zeros(self.size, dtype=np.float64)
        self.dtype = dtype

    def get(self) -> np.ndarray:
        """A new float64 vector of the current values."""
        out = np.empty(self.size, dtype=np.float64)
        for (_, _, param), part in zip(self.params, self._slices):
            out[part] = param.ravel()
        return out

    def set(self, theta: np.ndarray) -> None:
        """Copy ``theta`` (shape (size,)) into the net's arrays, in place."""
        for (_, _, param), part in zip(self.params, self._slices):
            param[...] = theta[part].reshape(param.shape)

    def gradient(self) -> np.ndarray:
        """The layers' stored gradients ``d<name>`` gathered into one reused float64 vector."""
        for (layer, name, param), part in zip(self.params, self._slices):
            grad = getattr(layer, "d" + name, None)
            if grad is None:
                raise RuntimeError(f"{layer!r}: no gradient d{name}; the closure must call net.backward")
            self._grad[part] = np.asarray(grad).ravel()
        return self._grad

    def squared_norm_of_weights(self) -> float:
        """``sum ||W||**2`` over the weights (parameters of two or more dimensions)."""
        return float(sum(np.dot(p.ravel(), p.ravel()) for _, _, p in self.params if p.ndim >= 2))


def flat_objective(flat: FlatParameters, value_and_grad: Callable[[], float], *, weight_decay: float = 0.0,
                   decay_biases: bool = True) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``theta -> (loss, gradient)``: sets the net's parameters to ``theta`` (in place) and evaluates.

    Parameters
    ----------
    flat : FlatParameters
    value_and_grad : callable () -> float
        Evaluates the loss at the parameters now in the net and leaves the
        gradients in the layers (``d<name>``).
    weight_decay : float
        Adds ``weight_decay / 2 * ||p||**2`` to the loss for every decayed
        parameter (and ``weight_decay * p`` to its gradient).
    decay_biases : bool
        Whether parameters of fewer than two dimensions are decayed.

    Returns
    -------
    callable
        ``theta`` of shape (flat.size,) -> ``(float, ndarray of shape (flat.size,))``; the
        gradient vector is reused between calls.
    """
    decayed = [p.ndim >= 2 or decay_biases for _, _, p in flat.params]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        flat.set(theta)
        value = float(value_and_grad())
        grad = flat.gradient()
        if weight_decay:
            penalty = 0.0
            for part, decay in zip(flat._slices, decayed):
                if decay:
                    values = theta[part]
                    penalty += float(np.dot(values, values))
                    grad[part] += weight_decay * values
            value += 0.5 * weight_decay * penalty
        return value, grad

    return objective


def minimize(flat: FlatParameters, value_and_grad: Callable[[], float], *, max_iter: int, max_fun: int,
             tol: float, weight_decay: float = 0.0, decay_biases: bool = True,
             history_size: int = 10) -> scipy.optimize.OptimizeResult:
    """Run L-BFGS-B from the net's current parameters and leave the result in them.

    Parameters
    ----------
    flat, value_and_grad, weight_decay, decay_biases
        As for ``flat_objective``.
    max_iter, max_fun : int
        scipy's ``maxiter`` and ``maxfun``.
    tol : float
        scipy's ``gtol``: stop when the largest gradient component is below it.
    history_size : int
        scipy's ``maxcor``.

    Returns
    -------
    scipy.optimize.OptimizeResult
    """
    objective = flat_objective(flat, value_and_grad, weight_decay=weight_decay, decay_biases=decay_biases)
    result = scipy.optimize.minimize(objective, flat.get(), method="L-BFGS-B", jac=True,
                                     options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol,
                                              "maxcor": history_size})
    flat.set(result.x)
    return result


class LBFGS:
    """Full-batch L-BFGS over all the parameters of a net, with a closure as ``torch.optim.LBFGS``.

    ``opt.step(closure)`` runs ``scipy.optimize.minimize(method="L-BFGS-B")``
    from the net's current parameters and leaves the best point found in them.
    ``closure()`` must run the forward pass on the (whole) training set, call
    ``net.backward`` so that every layer's gradients are set, and return the
    loss as a float.

    Parameters
    ----------
    net : Net
        The parameters (``param_names`` of its layers) that are optimised.
    max_iter : int
        Most L-BFGS iterations per ``step`` (scipy's ``maxiter``).
    max_fun : int or None
        Most closure calls per ``step`` (scipy's ``maxfun``); ``None``:
        ``max(15000, max_iter)`` as ``MLPClassifier``'s default ``max_fun``.
    tol : float
        Stop when the largest absolute component of the gradient is below it
        (scipy's ``gtol``, ``MLPClassifier``'s ``tol``).
    history_size : int
        Correction pairs kept (scipy's ``maxcor``).
    weight_decay : float
        L2 penalty: ``weight_decay/2 * ||p||**2`` is added to the loss.
    decay_biases : bool, keyword-only
        ``False`` exempts parameters of fewer than two dimensions (biases,
        norm scales and shifts) from ``weight_decay``.

    Attributes
    ----------
    n_iter_ : int
        Iterations of the last ``step``.
    result_ : scipy.optimize.OptimizeResult
        scipy's result of the last ``step`` (``fun``, ``message``, ``nfev``).

    Notes
    -----
    Differences from ``torch.optim.LBFGS``: one ``step`` runs scipy's
    L-BFGS-B with its own line search (torch's default has none) and stops
    by ``tol`` on the gradient's largest component and by scipy's relative
    reduction of the loss (torch: ``tolerance_grad``, ``tolerance_change``);
    there is no ``lr`` (the line search chooses the step); the computation
    runs in float64 on scipy's side (the net's arrays keep their dtype).

    Examples
    --------
    >>> import numpy as np, layerkit as lk
    >>> net = lk.Net([lk.Linear(1, 1, rng=0)])
    >>> x = np.linspace(-1, 1, 20)[:, None]; y = 3 * x + 1
    >>> loss = lk.losses.get_loss("mse")
    >>> def closure():
    ...     pred, trace = net.forward(x)
    ...     value, grad = loss(pred, y)
    ...     net.backward(trace, grad, input_grad=False)
    ...     return value
    >>> final = lk.optim.LBFGS(net, max_iter=50).step(closure)
    >>> round(float(net[0].W[0, 0]), 4), round(float(net[0].b[0]), 4)
    (3.0, 1.0)
    """

    def __init__(self, net: Any, *, max_iter: int = 20, max_fun: int | None = None, tol: float = 1e-5,
                 history_size: int = 10, weight_decay: float = 0.0, decay_biases: bool = True) -> None:
        self.net = net
        self.max_iter = check_positive_int(max_iter, "LBFGS: max_iter")
        self.max_fun = max(15000, self.max_iter) if max_fun is None else check_positive_int(max_fun, "LBFGS: max_fun")
        self.tol = _check_real(tol, "LBFGS: tol", low=0.0)
        self.history_size = check_positive_int(history_size, "LBFGS: history_size")
        self.weight_decay = _check_real(weight_decay, "LBFGS: weight_decay", low=0.0)
        if not isinstance(decay_biases, (bool, np.bool_)):
            raise TypeError(f"LBFGS: decay_biases must be a bool, got {type(decay_biases).__name__}")
        self.decay_biases = bool(decay_biases)
        layers = getattr(net, "layers", None)
        if layers is None or not any(getattr(layer, "param_names", ()) for layer in layers):
            raise ValueError(f"LBFGS: net must be a layerkit Net with trainable parameters, got {net!r:.80}")
        for layer in layers:  # fail early on a layer whose parameters are not float arrays
            for name in getattr(layer, "param_names", ()):
                param = getattr(layer, name)
                if not isinstance(param, np.ndarray) or param.dtype.kind != "f" or not param.flags.writeable:
                    raise TypeError(f"LBFGS: parameter {layer!r}.{name} must be a writeable float ndarray, "
                                    f"got {type(param).__name__}")
        self.n_iter_ = 0
        self.result_ = None

    def step(self, closure: Callable[[], float]) -> float:
        """Minimise the closure's loss; return the final loss (penalty included).

        Parameters
        ----------
        closure : callable () -> float
            Forward pass, ``net.backward``, and the loss.
        """
        if not callable(closure):
            raise TypeError(f"LBFGS.step: closure must be callable, got {type(closure).__name__}")
        flat = FlatParameters(self.net)
        self.result_ = minimize(flat, closure, max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol,
                                weight_decay=self.weight_decay, decay_biases=self.decay_biases,
                                history_size=self.history_size)
        self.n_iter_ = int(self.result_.nit)
        return float(self.result_.fun)

    def __repr__(self) -> str:
        return (f"LBFGS(max_iter={self.max_iter}, max_fun={self.max_fun}, tol={self.tol}, "
                f"history_size={self.history_size}, weight_decay={self.weight_decay}, "
                f"decay_biases={self.decay_biases})")


__all__ = ["LBFGS", "FlatParameters", "flat_objective", "minimize"]

"""``Dropout``: inverted dropout, ``nn.Dropout``'s rule; the identity in inference mode."""
from __future__ import annotations

import numbers
import weakref
from typing import Any

import numpy as np

from layerkit._validation import as_rng, check_batch, check_grad_output
from layerkit.layers.base import Layer


class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014), as ``torch.nn.Dropout``.

    In training mode each element is zeroed with probability ``p`` and the
    kept ones are scaled by ``1 / (1 - p)``, so the expected output equals the
    input; in inference mode (``net.eval()``, ``net.predict``) the layer is
    the identity. The mask is drawn from ``rng`` by each forward pass and
    kept in that pass's trace entry (``entry.ctx``), never on the layer: any
    number of passes may be in flight, each backward pass using its own mask.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in ``[0, 1]``.
    rng : None, int or numpy.random.Generator
        Source of the masks (a config's ``seed`` passes a shared Generator).
        The gradient checker rewinds it before every pass.

    Attributes
    ----------
    p : float
    rng : numpy.random.Generator

    Notes
    -----
    Any input ``(n_samples, ...)`` of two or more axes is taken. float32 input
    stays float32; every other real dtype computes in float64.

    The stand-alone pair ``y = layer.forward(x)``, ``dx = layer.backward(x, dy)``
    (the API of hand-written layer classes, outside a ``Net``) works in training mode too:
    ``backward(x, dy)`` uses the mask of the layer's last stand-alone
    ``forward``, provided it receives that very ``x`` (the same object). This
    is the one piece of per-call state a layer keeps, and only for that pair:
    ``Net`` runs the layer through ``forward_pass``/``backward_pass``, which keep
    each pass's mask in its trace, never on the layer. A ``backward(x, dy)`` in
    training mode with another ``x`` (or before any ``forward``) raises
    ``RuntimeError`` saying how to call it.
    """

    example_kwargs = {"p": 0.3, "rng": 0}
    example_input_shape = (6, 4)
    input_ranks = None  # any shape: a net's input checks ask the next layer

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {type(p).__name__} {p!r}")
        self.p = float(p)
        self.rng = as_rng(rng, "Dropout: rng")
        self.seeded = rng is not None  # (Net(layers, rng=...) refuses a layer drawn from fresh entropy)

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``(y, mask)``: in training mode ``y = x * mask`` with ``mask`` 0 or ``1 / (1 - p)``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
        training : bool

        Returns
        -------
        y : ndarray, shape (n_samples, n_features)
        ctx : ndarray of shape (n_samples, n_features), or None
            The scaled mask; ``None`` in inference mode or with ``p == 0``
            (then ``y`` is ``x`` itself).
        """
        x = check_batch(x, repr(self), ndim=(2, None), layout="(n_samples, ..., n_features)")
        if not training or self.p == 0.0:
            return x, None
        keep = self.rng.random(x.shape) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        mask = keep.astype(x.dtype)
        mask *= x.dtype.type(scale)
        return x * mask, mask

    def backward_pass(self, x: np.ndarray, ctx: np.ndarray | None, dy: np.ndarray) -> np.ndarray:
        """``dx = dy * mask`` (``dy`` itself in inference mode).

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
        ctx : ndarray or None
            The mask returned by ``forward_pass``.
        dy : array_like, shape (n_samples, n_features)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_features)
        """
        who = repr(self)
        x = check_batch(x, who, ndim=(2, None), layout="(n_samples, ..., n_features)")
        dy = check_grad_output(dy, who, x.shape, x.dtype)
        if ctx is None:
            return dy
        if not isinstance(ctx, np.ndarray) or ctx.shape != x.shape:
            raise ValueError(f"{who}: ctx must be the mask of shape {x.shape} returned by forward_pass, "
                             f"got {type(ctx).__name__} of shape {np.shape(ctx)}")
        return dy * ctx

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``forward_pass(x, self.training)``'s output (a fresh mask in training mode).

        The mask is kept for ``backward(x, dy)`` with this same ``x`` (see the
        class's Notes); ``Net`` never calls this method.
        """
        y, mask = self.forward_pass(x, self.training)
        try:  # a weak reference: the layer does not keep the caller's batch alive
            ref = weakref.ref(x)
        except TypeError:  # a list, say (no weak references): held until the next stand-alone forward
            ref = (lambda kept: lambda: kept)(x)
        self._standalone = (ref, mask)
        return y

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``dy`` times the mask of the last stand-alone ``forward(x)`` of this very ``x``.

        Without such a forward, the identity's gradient in inference mode (or
        with ``p == 0``).

        Raises
        ------
        RuntimeError
            In training mode, when ``x`` is not the array the last stand-alone
            ``forward`` received: its mask is unknown. Call ``forward(x)`` just
            before, use ``backward_pass(x, ctx, dy)`` with the ``ctx`` of
            ``forward_pass``, or go through ``Net``.
        """
        standalone = self.__dict__.get("_standalone")
        if standalone is not None and standalone[0]() is x:
            return self.backward_pass(x, standalone[1], dy)
        if self.training and self.p != 0.0:
            raise RuntimeError(
                f"{self!r}.backward(x, dy) in training mode needs the mask its forward pass drew, and x is not "
                "the array of the layer's last forward(x): call forward(x) with this very array just before, "
                "call backward_pass(x, ctx, dy) with the ctx that forward_pass(x, True) returned, or use "
                "Net.forward/Net.backward, which keep it in the trace")
        return self.backward_pass(x, None, dy)

    def __getstate__(self) -> dict:
        # the stand-alone pass's mask belongs to that pass, not to copies or pickles of the layer
        state = self.__dict__.copy()
        state.pop("_standalone", None)
        return state

    def get_config(self) -> dict[str, Any]:
        """``{"p"}`` (the generator is not part of the architecture)."""
        return {"p": self.p}

    def __repr__(self) -> str:
        return f"Dropout(p={self.p!r})"

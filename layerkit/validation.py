"""The input checks of layerkit's own layers, for plugin authors and custom layers.

Every check names who is complaining (pass the layer's ``repr``, for
instance ``"Swish(4)"``, or ``"MyLayer: n"`` for an argument), what was
expected and what was received, and raises ``TypeError`` for a wrong kind of
value and ``ValueError`` for a wrong shape or value, exactly as the built-in
layers do. The converting checks return arrays the compiled kernels accept
(C-contiguous, float32 or float64), so a layer that uses them takes lists,
integer arrays and Fortran-ordered arrays like the built-ins.

- ``check_batch(x, who, n_features=None, dtype=None)``: a 2-D batch
  ``(n_samples, n_features)`` as a float array (float32 stays float32).
- ``check_grad_output(dy, who, shape, dtype)``: the gradient arriving at the
  output, of the output's shape.
- ``check_positive_int(value, name, minimum=1)``: a constructor's width or count.
- ``check_finite(array, who, name)``: no NaN or infinity.
- ``resolve_dtype(dtype, who)``: float32 or float64 (a ``TypeError`` otherwise).
- ``float_dtype_of(array)``: the dtype a layer computes ``array`` in.
- ``as_rng(rng, who)``: ``None``, an int seed or a Generator as a Generator.

Examples
--------
>>> import numpy as np
>>> from layerkit.validation import check_batch
>>> check_batch([[1, 2]], "Cube()").dtype
dtype('float64')
"""
from layerkit._validation import (
    as_rng, check_batch, check_finite, check_grad_output, check_positive_int, float_dtype_of, resolve_dtype,
)

__all__ = ["as_rng", "check_batch", "check_finite", "check_grad_output", "check_positive_int", "float_dtype_of",
           "resolve_dtype"]

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Typed kernels for layerkit's dense hot path.

This module holds arithmetic only: no validation messages, no registry, no
policy. Callers (``layerkit._validation`` and the layers) hand it NumPy arrays
that are already of one floating dtype (float32 or float64) and of matching
shapes; each kernel re-checks the few facts that guard memory safety (dtype,
shapes, layout) with C comparisons and raises a plain ``ValueError`` if a caller
broke the contract, so that a bug above never becomes a read past a buffer.

Layout: 2-D operands of the matrix products may be C-contiguous or
Fortran-contiguous; a Fortran array is passed to BLAS as the transpose of its
C-ordered storage, so it is never copied. Element-wise kernels need
C-contiguous arrays. Outputs are always C-contiguous and supplied by the
caller, so that a training loop can reuse them between steps.

All matrix products go through ``scipy.linalg.cython_blas`` (``sgemm`` and
``dgemm``) with the GIL released. Element-wise activations are C loops over
branch-free SIMD math (``_kernels/elementwise.h``), compiled for several x86-64
levels and chosen at load time.

This file is the one compiled module; the code is split by concern into
files included here, each readable on its own:

- ``_kernels/checks.pxi``: what every entry checks before touching memory.
- ``_kernels/blas.pxi``: the dense layer on BLAS (forward, backward, axpy).
- ``_kernels/elementwise.pxi``: activations (the C loops are in
  ``elementwise.h``, the SIMD exp/expm1/log1p/tanh in ``vecmath.h``, erf in
  ``erf.h``).
- ``_kernels/chain.pxi``: ``DenseChain``, a whole net in one call per pass.
- ``_kernels/losses.pxi``: the losses (checks, value, gradient in one pass).
- ``_kernels/optim.pxi``: the optimizers' updates (the loops in ``optim.h``).
- ``_kernels/norm2d.pxi``: batch normalisation per channel of ``(n, C, S)`` inputs
  (the float32 loops in ``norm2d.h``).
- ``_kernels/embedding.pxi``: the embedding lookup and its scatter-add.
- ``_kernels/conv.pxi``: convolution by direct kernels (``conv_direct.h``) or
  by im2col and gemm (``Conv1d``, ``Conv2d``).
- ``_kernels/pool.pxi``: max and average pooling.
- ``_kernels/front.pxi``: a conv net's layers before its dense chain, as compiled
  stages (for the in-core epoch).
- ``_kernels/epoch.pxi``: a whole epoch of minibatch training on a chain, after
  those stages for a conv net (``fit``).

Includes (rather than separate extension modules) keep every kernel in one
translation unit, so the chain calls the BLAS and activation code directly.
"""


cimport numpy as cnp
from cython cimport floating
from libc.math cimport exp, log, log1p
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm, saxpy, daxpy
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cnp.import_array()

include "_kernels/checks.pxi"
include "_kernels/blas.pxi"
include "_kernels/elementwise.pxi"
include "_kernels/chain.pxi"
include "_kernels/losses.pxi"
include "_kernels/optim.pxi"
include "_kernels/norm2d.pxi"
include "_kernels/embedding.pxi"
include "_kernels/conv.pxi"
include "_kernels/pool.pxi"
include "_kernels/front.pxi"
include "_kernels/epoch.pxi"

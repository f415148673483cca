"""The thread count of the BLAS under ``scipy.linalg.cython_blas``, read through threadpoolctl.

At 32 rows or fewer, layerkit's kernels split a layer's matrix products into
pieces that OpenBLAS multiplies without packing the weights
(``layerkit/_kernels/blas.pxi``). A piece runs on one thread, while one whole
call may use several, so by default the kernels split only while the BLAS
runs one thread. threadpoolctl finds the library and its threading layer
once; the kernels then call its thread-count function, a plain C getter, at
each small product, so that ``threadpoolctl.threadpool_limits`` takes effect
at once.
"""
from __future__ import annotations

import ctypes
import os
import warnings


def num_threads_getter() -> int:
    """Address of a C function ``int f(void)`` giving the BLAS thread count, or 0 when unknown.

    Unknown (and so no splitting by default) when threadpoolctl is missing,
    when scipy's BLAS is not OpenBLAS, or when it cannot be told apart from
    another OpenBLAS loaded in the process.
    """
    try:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS)
        from threadpoolctl import OpenBLASController, ThreadpoolController
    except ImportError:
        return 0
    try:
        with warnings.catch_warnings():  # (threadpoolctl warns about OpenMP runtimes mixed in the process)
            warnings.simplefilter("ignore")
            found = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "openblas"]
    except Exception:  # a probe for speed only: without it the products stay whole, never wrong
        return 0
    # a scipy wheel vendors its own OpenBLAS next to the package (scipy.libs); a system or
    # conda scipy shares one library with numpy
    scipy_dir = os.path.dirname(os.path.abspath(scipy.__file__))
    own = [c for c in found if os.path.abspath(c.filepath).startswith(scipy_dir)]
    if not own and len(found) == 1:
        own = found
    if len(own) != 1:
        return 0
    controller = own[0]
    names = (("omp_get_max_threads",) if getattr(controller, "threading_layer", None) == "openmp"
             else OpenBLASController.check_symbols)
    for name in names:
        function = getattr(controller.dynlib, name, None)
        if function is not None:
            return ctypes.cast(function, ctypes.c_void_p).value or 0
    return 0

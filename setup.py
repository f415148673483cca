"""Build script for layerkit's compiled core.

Everything declarative lives in ``pyproject.toml``; this file only declares the
Cython extension ``layerkit._core``, which needs NumPy's headers at build time
and SciPy's Cython BLAS bindings (``scipy.linalg.cython_blas``) at run time.

``layerkit/_core.pyx`` includes the ``.pxi`` files and C headers of
``layerkit/_kernels/``. The build targets the baseline of the platform (no
``-march=native``): on x86-64 Linux with GCC the element-wise loops carry
``target_clones`` (AVX-512, AVX2+FMA, baseline), chosen when the module loads,
and the direct convolution and 2x2 max-pooling kernels are compiled twice (for
x86-64-v4 with AVX-512, and portable C), picked by the CPU at run time.
``-fno-trapping-math`` lets GCC turn the kernels' selections into vector
blends (nothing in layerkit reads floating-point exception flags), and
``-fno-math-errno`` lets it vectorise ``sqrt`` (nothing reads ``errno`` after
a kernel; the results do not change).
"""
import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "layerkit._core",
        sources=["layerkit/_core.pyx"],
        include_dirs=[numpy.get_include(), "layerkit"],
        depends=sorted(glob.glob("layerkit/_kernels/*.h") + glob.glob("layerkit/_kernels/*.pxi")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-fno-trapping-math", "-fno-math-errno"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)

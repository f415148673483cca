"""Build script for layerkit's compiled core.

Everything declarative lives in ``pyproject.toml``; this file only declares the
Cython extension ``layerkit._core``, which needs NumPy's headers at build time
and SciPy's Cython BLAS bindings (``scipy.linalg.cython_blas``) at run time.
"""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "layerkit._core",
        sources=["layerkit/_core.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
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

"""Import of the compiled core, with a message that says how to build it."""
try:
    from layerkit import _core as core
except ImportError as error:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "layerkit's compiled core (layerkit._core) is not built or cannot be loaded "
        f"({error}). Build it from the source tree with `pip install -e .` "
        "(or `python setup.py build_ext --inplace`); layerkit has no pure-Python fallback."
    ) from error

__all__ = ["core"]

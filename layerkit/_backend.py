"""Import of the compiled core, with a message that says how to build it."""
from __future__ import annotations

import os


def _source_folder() -> str | None:
    """The repository root when this package is the unbuilt source tree (as NumPy detects its own)."""
    package = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(package)
    has_source = os.path.exists(os.path.join(package, "_core.pyx"))
    is_repository = any(os.path.exists(os.path.join(root, name)) for name in ("setup.py", "pyproject.toml"))
    built = any(name.startswith("_core.") and name.endswith((".so", ".pyd")) for name in os.listdir(package))
    return root if has_source and is_repository and not built else None


try:
    from layerkit import _core as core
except ImportError as error:  # pragma: no cover - exercised by subprocess tests
    root = _source_folder()
    if root is not None:
        raise ImportError(
            f"you are importing layerkit from its source folder ({root}), whose compiled core is not "
            "built, and it hides any installed layerkit. Run from elsewhere (cd out of the repository), "
            "or `pip install -e .` in it to build the core in place."
        ) from error
    raise ImportError(
        "layerkit's compiled core (layerkit._core) is not built or cannot be loaded "
        f"({error}). Build it from the source tree with `pip install -e .` "
        "(or `python setup.py build_ext --inplace`); layerkit has no pure-Python fallback."
    ) from error

__all__ = ["core"]

"""Testing tools for layer authors: numerical gradient checks, autodiff comparisons and a pytest plugin.

>>> import layerkit as lk
>>> from layerkit.testing import assert_grad
>>> report = assert_grad(lk.Linear(4, 3, rng=0), seed=0)

Names are imported on first use, so that loading the pytest plugin
(``layerkit.testing.pytest_plugin``) stays cheap.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from layerkit.testing.gradcheck import GradcheckError, assert_grad, check_grad, random_input
    from layerkit.testing.autodiff import AutodiffReport, compare_with_autodiff
    from layerkit.testing.report import GradReport, TensorReport

_HOMES = {
    "check_grad": "layerkit.testing.gradcheck",
    "assert_grad": "layerkit.testing.gradcheck",
    "random_input": "layerkit.testing.gradcheck",
    "GradcheckError": "layerkit.testing.gradcheck",
    "GradReport": "layerkit.testing.report",
    "TensorReport": "layerkit.testing.report",
    "compare_with_autodiff": "layerkit.testing.autodiff",
    "AutodiffReport": "layerkit.testing.autodiff",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'layerkit.testing' has no attribute {name!r}")
    return getattr(import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

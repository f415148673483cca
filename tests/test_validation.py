"""layerkit.validation: the public home of the checks plugin authors need (the same functions the built-ins use)."""
import ast
from pathlib import Path

import numpy as np
import pytest

import layerkit as lk
from layerkit import _validation, validation

ROOT = Path(__file__).resolve().parents[1]


def test_exports_the_checks_the_built_in_layers_use():
    for name in validation.__all__:
        assert getattr(validation, name) is getattr(_validation, name)
    assert {"check_batch", "check_grad_output", "check_positive_int", "resolve_dtype"} <= set(validation.__all__)
    assert lk.validation is validation


def test_checks_give_the_built_in_messages():
    with pytest.raises(ValueError, match=r"Cube\(\): x must have 3 features \(columns\), got shape \(2, 4\)"):
        validation.check_batch(np.ones((2, 4)), "Cube()", n_features=3)
    with pytest.raises(TypeError, match="Cube: n: expected an integer, got float 2.5"):
        validation.check_positive_int(2.5, "Cube: n")
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    checked = validation.check_batch(fortran, "Cube()")
    assert checked.flags.c_contiguous and np.array_equal(checked, fortran)


def test_the_example_plugin_imports_no_private_module():
    for path in (ROOT / "examples" / "plugin_package").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([node.module] if isinstance(node, ast.ImportFrom) else
                       [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            for module in modules:
                assert not any(part.startswith("_") for part in (module or "").split(".")[1:]), (path, module)


def test_the_guides_point_plugin_authors_to_it():
    for page in ("plugins.md", "writing_layers.md"):
        assert "layerkit.validation" in (ROOT / "docs" / "guide" / page).read_text()

"""The package itself: one version string, and subpackages reachable as lazy attributes (PEP 562)."""
import importlib.metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import layerkit as lk

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_one_version_string():
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", lk.__version__)
    assert importlib.metadata.version("layerkit") == lk.__version__  # setuptools reads it (dynamic)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "layerkit.__version__" }' in pyproject
    assert not re.search(r'^version\s*=\s*"', pyproject, re.M)  # no second copy


def test_changelog_has_an_unreleased_section_and_the_first_release():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(r"^## Unreleased$", changelog, re.M)
    assert re.search(r"^## 0\.1\.0\b", changelog, re.M)


@pytest.mark.parametrize("name", ["testing", "sklearn"])
def test_subpackage_is_not_imported_by_import_layerkit_but_is_an_attribute(name):
    out = run(f"""
        import sys
        import layerkit as lk
        print("{name}" in dir(lk), "layerkit.{name}" in sys.modules)
        module = lk.{name}
        print(module.__name__, "layerkit.{name}" in sys.modules, lk.{name} is sys.modules["layerkit.{name}"])
    """)
    assert out.splitlines() == ["True False", f"layerkit.{name} True True"]


def test_import_layerkit_imports_no_optional_heavy_package():
    out = run("""
        import sys
        import layerkit
        print(sorted(m for m in ("sklearn", "torch", "onnx", "dask", "pytest") if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_lazy_attributes_work_as_the_issue_writes_them():
    out = run("""
        import layerkit as lk
        report = lk.testing.assert_grad(lk.Linear(4, 3, rng=0), seed=0)
        print(type(report).__name__, lk.sklearn.NetClassifier.__name__)
    """)
    assert out.strip() == "GradReport NetClassifier"


def test_onnx_is_listed_and_a_missing_onnx_names_the_extra():
    assert "onnx" in dir(lk)
    out = run("""
        import sys
        class NoOnnx:  # as on a machine without the onnx package
            def find_spec(self, name, path=None, target=None):
                if name == "onnx" or name.startswith("onnx."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, NoOnnx())
        import layerkit as lk
        print(hasattr(lk, "onnx"))
        try:
            lk.onnx
        except AttributeError as error:
            print(error)
    """)
    present, message = out.splitlines()
    assert present == "False"
    assert "layerkit.onnx is not available: it needs the 'onnx' extra" in message
    assert 'pip install "layerkit[onnx]"' in message


def test_unknown_attribute_is_a_plain_attribute_error():
    with pytest.raises(AttributeError, match="module 'layerkit' has no attribute 'tesing'"):
        lk.tesing  # noqa: B018
    assert not hasattr(lk, "tesing")


def test_testing_extra_provides_pytest_for_the_plugin():
    """Issue 15 item 15: the pytest plugin needs pytest, which the main install does not bring."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("pytest") for requirement in extras["testing"])
    assert any(requirement.startswith("hypothesis") for requirement in extras["test"])
    guide = (ROOT / "docs" / "guide" / "gradcheck.md").read_text()
    assert 'pip install "layerkit[testing]"' in guide and "`pip install pytest`" in guide


def test_the_default_autodiff_backend_comes_with_the_testing_extra():
    """compare_with_autodiff's default backend is autograd: the testing extra installs it, and its absence names the extra."""
    import inspect
    import tomllib

    from layerkit.testing.autodiff import compare_with_autodiff

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert inspect.signature(compare_with_autodiff).parameters["backend"].default == "autograd"
    assert any(requirement.startswith("autograd") for requirement in extras["testing"])
    assert 'pip install "layerkit[testing]"' in (ROOT / "docs" / "guide" / "interop.md").read_text()


def test_a_missing_autograd_names_the_testing_extra(monkeypatch):
    from layerkit.testing.autodiff import _backend

    for name in ("autograd", "autograd.numpy", "autograd.scipy", "autograd.scipy.special"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(ImportError, match=r'needs the autograd package: pip install "layerkit\[testing\]"'):
        _backend("autograd")


def test_interop_guide_gives_the_torch_cpu_wheel():
    guide = (ROOT / "docs" / "guide" / "interop.md").read_text()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in guide

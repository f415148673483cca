"""Tests of layerkit.testing.pytest_plugin, run in pytester's temporary directories."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from layerkit import registry

REPO = Path(__file__).resolve().parents[1]

WRONG_LAYER = '''
import layerkit as lk


class BadLinear(lk.Linear):
    """dW off by a factor of 1.5."""

    example_kwargs = {"n_in": 3, "n_out": 2, "rng": 0}
    example_input_shape = (4, 3)

    def backward(self, x, dy):
        dx = super().backward(x, dy)
        self.dW = 1.5 * self.dW
        return dx
'''


def outcomes(result):
    return {key: value for key, value in result.parseoutcomes().items() if key in ("passed", "failed", "error")}


def test_plugin_is_loaded_through_the_pytest11_entry_point(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*layerkit gradient checks*", "*--layerkit-gradcheck *"])
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.layer_gradcheck(**options)*"])


def test_fixture_asserts_gradients_and_the_marker_sets_its_options(pytester):
    pytester.makepyfile(test_layers=WRONG_LAYER + '''
import pytest


def test_linear_is_right(layer_gradcheck):
    report = layer_gradcheck(lk.Linear(4, 3, rng=0), seed=1)
    assert report["W"].n_checked == 12


@pytest.mark.layer_gradcheck(max_coords=2, seed=4)
def test_marker_options_are_defaults(layer_gradcheck):
    report = layer_gradcheck(lk.Linear(4, 3, rng=0))
    assert report["W"].n_checked == 2 and report.seed == 4
    assert layer_gradcheck(lk.Linear(4, 3, rng=0), max_coords=5)["W"].n_checked == 5


def test_bad_linear_is_caught(layer_gradcheck):
    layer_gradcheck(BadLinear(3, 2, rng=0), seed=1)
''')
    result = pytester.runpytest()
    assert outcomes(result) == {"passed": 2, "failed": 1}
    result.stdout.fnmatch_lines(["*gradient check failed for Linear(3, 2)*", "*  W: worst at index (*"])


def test_no_generated_tests_without_the_option(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-v")
    assert outcomes(result) == {"passed": 1}
    assert "layerkit-gradcheck::" not in result.stdout.str()


def test_option_generates_one_passing_test_per_registered_layer(pytester):
    result = pytester.runpytest("--layerkit-gradcheck", "-v")
    names = registry.names()
    assert {"linear", "relu", "sigmoid", "softmax", "dropout", "layer_norm", "batch_norm"} <= set(names)
    assert outcomes(result) == {"passed": len(names)}
    result.stdout.fnmatch_lines([f"layerkit-gradcheck::{name} PASSED*" for name in names], consecutive=False)


def test_only_option_filters_and_names_unknown_layers(pytester):
    result = pytester.runpytest("--layerkit-gradcheck-only", "ReLU,nosuchlayer", "-v")
    assert outcomes(result) == {"passed": 1, "failed": 1}
    result.stdout.fnmatch_lines([
        "layerkit-gradcheck::relu PASSED*",
        "*no registered layer named 'nosuchlayer' (registered: *linear*",
    ], consecutive=False)
    assert "layerkit-gradcheck::sigmoid" not in result.stdout.str()


def test_only_option_without_names_is_a_usage_error(pytester):
    result = pytester.runpytest("--layerkit-gradcheck-only", " , ")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--layerkit-gradcheck-only expects NAME[,NAME...], got ' , '" in result.stderr.str()


def test_keyword_selection_applies_to_generated_tests(pytester):
    result = pytester.runpytest("--layerkit-gradcheck", "-k", "softmax", "-v")
    assert outcomes(result) == {"passed": 1}
    result.stdout.fnmatch_lines(["layerkit-gradcheck::softmax PASSED*"])


def test_a_wrong_layer_registered_at_run_time_gets_a_failing_test_naming_the_tensor(pytester):
    pytester.makeconftest(WRONG_LAYER + '''
from layerkit import registry

registry.register("badlinear", BadLinear)
''')
    result = pytester.runpytest_subprocess("--layerkit-gradcheck", "-v")
    assert outcomes(result) == {"passed": len(registry.names()), "failed": 1}
    result.stdout.fnmatch_lines([
        "layerkit-gradcheck::badlinear FAILED*",
        "layerkit gradient check of registered layer 'badlinear':",
        "gradient check failed for Linear(3, 2) (rtol=1e-05, atol=1e-07):",
        "  W: worst at index (*): analytic * vs numeric *",
    ], consecutive=False)
    assert not re.search(r"^  (x|b): ", result.stdout.str(), re.MULTILINE)


def test_a_layer_that_cannot_be_built_or_run_fails_naming_its_example_attributes(pytester):
    pytester.makeconftest('''
import layerkit as lk
from layerkit import registry


class NeedsWidth(lk.Layer):
    def __init__(self, width):
        self.width = width


class WrongShape(lk.Linear):
    example_kwargs = {"n_in": 3, "n_out": 2, "rng": 0}  # example_input_shape stays Linear's (5, 4)


registry.register("needswidth", NeedsWidth)
registry.register("wrongshape", WrongShape)
''')
    result = pytester.runpytest_subprocess("--layerkit-gradcheck-only", "needswidth,wrongshape,relu")
    assert outcomes(result) == {"passed": 1, "failed": 2}
    result.stdout.fnmatch_lines([
        "*layer 'needswidth' (conftest.NeedsWidth) could not be built as cls(**example_kwargs) with "
        "example_kwargs={}: TypeError: *width*",
        "Linear(3, 2) raised ValueError during its gradient check (built with example_kwargs={'n_in': 3, "
        "'n_out': 2, 'rng': 0}, input of example_input_shape=(5, 4)): Linear(3, 2): x must have 3 features*",
    ], consecutive=False)


def test_a_broken_plugin_gives_a_failing_test_not_a_crashed_session(pytester):
    dist_info = pytester.path / "brokenplug-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[layerkit.layers]\nbroken = brokenplug_layers:Broken\n")
    pytester.makepyfile(brokenplug_layers="raise ImportError('needs a library that is not installed')\n")
    result = pytester.runpytest_subprocess("--layerkit-gradcheck", "-v")
    assert outcomes(result) == {"passed": len(registry.names()), "failed": 1}
    result.stdout.fnmatch_lines([
        "layerkit-gradcheck::broken FAILED*",
        "*layer plugin 'broken' (brokenplug_layers:Broken) from distribution brokenplug failed to import: "
        "ImportError: needs a library that is not installed*",
    ], consecutive=False)


def test_loading_the_plugin_imports_nothing_of_layerkit():
    code = ("import sys, _layerkit_pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith(('layerkit', 'numpy', 'scipy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_documented_module_name_is_the_same_module():
    import _layerkit_pytest_plugin
    import layerkit.testing.pytest_plugin

    assert layerkit.testing.pytest_plugin is _layerkit_pytest_plugin
    assert layerkit.testing.pytest_plugin.layer_gradcheck is _layerkit_pytest_plugin.layer_gradcheck


UNRELATED_TEST = """
import sys

def test_unrelated():
    assert 1 + 1 == 2

def test_what_the_plugin_imported():
    print("IMPORTED:", sorted(m for m in ("layerkit", "layerkit._core", "numpy", "scipy") if m in sys.modules))
"""

FIXTURE_TEST = """
import pytest

@pytest.mark.layer_gradcheck(seed=1)
def test_uses_the_fixture(layer_gradcheck):
    import layerkit as lk
    layer_gradcheck(lk.Linear(4, 3, rng=0))
"""


def run_pytest(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """pytest in ``project`` (its own rootdir, nothing of layerkit's tests), in a fresh process."""
    (project / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rA", *args],
                          cwd=project, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})


def test_an_unrelated_project_does_not_import_layerkit(tmp_path):
    (tmp_path / "test_unrelated.py").write_text(UNRELATED_TEST)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IMPORTED: []" in result.stdout
    assert "layerkit gradient checks" in run_pytest(tmp_path, "--help").stdout  # the plugin was loaded


@pytest.mark.parametrize("args, test_file", [
    (("--layerkit-gradcheck-only", "relu"), UNRELATED_TEST),
    ((), FIXTURE_TEST + UNRELATED_TEST),
])
def test_layerkit_is_imported_when_the_plugin_is_used(tmp_path, args, test_file):
    (tmp_path / "test_it.py").write_text(test_file)
    result = run_pytest(tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IMPORTED: ['layerkit', 'layerkit._core', 'numpy', 'scipy']" in result.stdout


BROKEN_CORE = """
import sys

class BlockCore:  # a layerkit whose compiled core is missing (an install without a build)
    def find_spec(self, name, path=None, target=None):
        if name == "layerkit._core":
            raise ImportError("simulated: no compiled module")

sys.meta_path.insert(0, BlockCore())
"""


@pytest.fixture
def broken_layerkit(tmp_path):
    """Environment variables under which ``import layerkit`` fails as in a broken install."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BROKEN_CORE)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    check = subprocess.run([sys.executable, "-c", "import layerkit"], capture_output=True, text=True,
                           env={**os.environ, **env})
    assert check.returncode != 0 and "is not built" in check.stderr  # the breakage is real
    project = tmp_path / "project"
    project.mkdir()
    return project, env


def test_a_broken_layerkit_does_not_stop_pytest_in_an_unrelated_project(broken_layerkit):
    project, env = broken_layerkit
    (project / "test_unrelated.py").write_text(UNRELATED_TEST)
    result = run_pytest(project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_broken_layerkit_fails_where_the_plugin_is_used(broken_layerkit):
    project, env = broken_layerkit
    (project / "test_it.py").write_text(FIXTURE_TEST + UNRELATED_TEST)
    result = run_pytest(project, "--layerkit-gradcheck", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "2 passed" in output  # the unrelated tests still run
    assert re.search(r"^ERROR test_it.py::test_uses_the_fixture - ImportError", output, re.M), output
    assert "E       ImportError: layerkit's compiled core (layerkit._core) is not built" in output
    assert re.search(r"^FAILED layerkit-gradcheck::import\b", output, re.M), output
    assert "--layerkit-gradcheck: layerkit could not be imported, so no layer could be checked:" in output
    assert "pip install -e ." in output


PLUGIN_PACKAGE = REPO / "examples" / "plugin_package"


def entry_point_names(pyproject: Path) -> list[str]:
    """Names in the ``[project.entry-points."layerkit.layers"]`` table of a pyproject.toml."""
    text = pyproject.read_text()
    table = re.search(r'^\[project\.entry-points\."layerkit\.layers"\]\s*$(.*?)(?=^\[|\Z)', text, re.M | re.S)
    assert table, f"{pyproject} declares no layerkit.layers entry points"
    return [m.group(1).lower() for m in re.finditer(r'^\s*"?([\w.-]+)"?\s*=', table.group(1), re.M)]


@pytest.mark.skipif(not PLUGIN_PACKAGE.is_dir(),
                    reason="examples/plugin_package does not exist yet (built by issue 4)")
def test_plugin_package_gradcheck():
    """`pytest --layerkit-gradcheck` in the plugin package checks each of its layers, with nothing else written."""
    names = entry_point_names(PLUGIN_PACKAGE / "pyproject.toml")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--layerkit-gradcheck", "-v", "-p", "no:cacheprovider"],
        cwd=PLUGIN_PACKAGE, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in names:
        assert re.search(rf"^layerkit-gradcheck::{re.escape(name)} PASSED", output, re.M), (name, output)

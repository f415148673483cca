"""The module graph: net, config, io, layers.base, warnings, the blocks, history, diagnostics and
plotting import each other in no circle, and neither do the benchmark scripts."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import layerkit

PACKAGE = Path(layerkit.__file__).parent
UNTIED = ["layerkit.net", "layerkit.config", "layerkit.io", "layerkit.layers.base", "layerkit.warnings",
          "layerkit._composite", "layerkit.blocks.residual", "layerkit.blocks.concatenate",
          "layerkit.blocks.add", "layerkit.blocks._branches", "layerkit.blocks._inner",
          "layerkit.history", "layerkit.diagnostics", "layerkit.plotting"]
BENCHMARKS = PACKAGE.parent / "benchmarks"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str], name: str | None = None) -> set[str]:
    """The modules of ``modules`` that ``path`` imports anywhere (functions included; ``if TYPE_CHECKING:`` excluded)."""
    name = _module_name(path) if name is None else name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    nodes = [ast.parse(path.read_text(encoding="utf-8"))]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            nodes.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # "from pkg import submodule" imports the submodule, else pkg itself
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        nodes.extend(ast.iter_child_nodes(node))
    return {module for module in found if module in modules and module != name}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(files) | {_module_name(path) for path in PACKAGE.rglob("*.pyx")}  # the compiled core
    return {name: _imports(path, modules) for name, path in files.items()}


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path of imports from ``start`` to ``goal``, or None."""
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == goal:
                return path + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append(path + [nxt])
    return None


@pytest.mark.parametrize("module", UNTIED)
def test_module_is_on_no_import_cycle(module):
    graph = _graph()
    assert module in graph
    cycle = _reaches(graph, module, module)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_graph_sees_imports_inside_functions():
    # the check would be blind if lazy imports were missed: net.py imports config at the top
    assert {"layerkit.config", "layerkit.io"} <= _graph()["layerkit.net"]
    assert "layerkit.layers.base" not in _graph()["layerkit.warnings"]


@pytest.mark.parametrize("module", UNTIED[:5] + ["layerkit.blocks"])
def test_module_imports_first_in_a_fresh_interpreter(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _benchmark_graph() -> dict[str, set[str]]:
    """The benchmark scripts, which import each other by file name (their folder is on ``sys.path``)."""
    files = {path.stem: path for path in BENCHMARKS.glob("*.py")}
    return {name: _imports(path, set(files), name) for name, path in files.items()}


def test_plotting_knows_neither_history_nor_diagnostics():
    # History.plot and Diagnostics.plot call plotting, so plotting reads them through their attributes only
    graph = _graph()
    assert "layerkit.plotting" in graph["layerkit.history"] and "layerkit.plotting" in graph["layerkit.diagnostics"]
    assert not {"layerkit.history", "layerkit.diagnostics"} & graph["layerkit.plotting"]


@pytest.mark.parametrize("script", sorted(path.stem for path in BENCHMARKS.glob("*.py")))
def test_benchmark_script_is_on_no_import_cycle(script):
    graph = _benchmark_graph()
    cycle = _reaches(graph, script, script)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_benchmark_graph_sees_the_scripts_imports():
    graph = _benchmark_graph()
    assert {"loops", "timing", "cases", "written_loop"} <= graph["run"]
    assert {"timing", "numpy_reference"} <= graph["cases"]
    assert {"timing", "cases", "loops"} <= graph["written_loop"]
    assert "timing" in graph["loops"]

"""The gallery's inputs: every example has a sphinx-gallery header, and the slow or data-bound ones are not run."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def conf_value(name: str):
    """A literal assigned at the top level of docs/conf.py (read without running the configuration)."""
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"docs/conf.py assigns no {name}")


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_docstring_starts_with_a_gallery_title(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert docstring, f"{path.name} has no module docstring"
    title, underline, blank, *rest = docstring.split("\n")
    assert title.strip() and re.fullmatch(r"=+", underline) and len(underline) >= len(title), path.name
    assert blank == "" and rest and rest[0].strip(), path.name  # a paragraph follows: the --help description


def test_examples_that_need_data_or_a_cluster_are_not_executed():
    not_executed = conf_value("NOT_EXECUTED")
    assert set(not_executed) == {"search_on_dask", "mnist"}
    assert all((ROOT / "examples" / f"{name}.py").is_file() for name in not_executed)
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert '"filename_pattern": r"/(?!(" + "|".join(NOT_EXECUTED) + r")\\.py$)[^/]+\\.py$"' in conf
    pattern = r"/(?!(" + "|".join(not_executed) + r")\.py$)[^/]+\.py$"
    executed = {path.stem for path in EXAMPLES if re.search(pattern, path.as_posix())}
    assert executed == {path.stem for path in EXAMPLES} - set(not_executed)
    assert "franke_regression" in executed


def test_no_figure_is_committed_where_the_gallery_makes_it():
    tracked = (ROOT / ".gitignore").read_text()
    assert "docs/auto_examples/" in tracked and "docs/_build/" in tracked and "docs/generated/" in tracked
    assert not [path.name for path in (ROOT / "docs").glob("*.png") if path.name != "benchmark.png"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_help_works_when_the_gallery_empties_its_docstring(path, monkeypatch, capsys):
    # sphinx-gallery runs the example with the header docstring removed: --help must not index into it
    from example_loader import load_example

    module = load_example(path.stem)
    monkeypatch.setattr(module, "__doc__", None)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out

"""Every ```python block of the README and of the documentation's Markdown pages runs as written.

The blocks of one file run in order in one namespace (a page may build on its
earlier blocks), with a fresh temporary directory as the working directory.
"""
import re
from pathlib import Path

import pytest

from layerkit import registry

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("_build", "auto_examples", "generated", "_gallery_src")
PAGES = [ROOT / "README.md"] + sorted(
    path for path in (ROOT / "docs").rglob("*.md") if not set(path.relative_to(ROOT / "docs").parts) & set(GENERATED)
)
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def test_blocks_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in PAGES}
    assert {"README.md", "docs/guide/training.md", "docs/guide/gradcheck.md"} <= names
    assert python_blocks("x\n```python\na = 1\n```\n```text\nb\n```\n```python\nc = 2\n```\n") == ["a = 1\n", "c = 2\n"]
    assert len(python_blocks((ROOT / "docs" / "guide" / "training.md").read_text())) >= 4


@pytest.fixture
def restore_registry():
    """Pages may register layers (@registry.register in a notebook); leave the registry as it was."""
    before = set(registry.names())
    yield
    for name in set(registry.names()) - before:
        registry.unregister(name)


@pytest.mark.parametrize("page", PAGES, ids=[path.relative_to(ROOT).as_posix() for path in PAGES])
def test_python_blocks_run(page, tmp_path, monkeypatch, restore_registry):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    blocks = python_blocks(page.read_text())
    for index, block in enumerate(blocks):
        line = page.read_text().count("\n", 0, page.read_text().index(block)) + 1
        exec(compile(block, f"{page.relative_to(ROOT)} block {index} (line {line})", "exec"), namespace)

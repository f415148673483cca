"""docs/guide/layers.md: its examples run, and its table lists every built-in layer with its registry name."""
from __future__ import annotations

import pathlib
import re
from importlib import metadata

from layerkit import registry

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guide" / "layers.md"


def test_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)


def test_table_names_every_builtin_layer():
    text = PAGE.read_text()
    builtins = {ep.name: ep.value.rsplit(":", 1)[1] for ep in metadata.entry_points(group=registry.GROUP)
                if ep.dist is not None and ep.dist.name == "layerkit"}
    for name, cls in builtins.items():
        assert re.search(rf"\| `{cls}\(.*\| `{name}` \|", text), f"{cls} ({name}) missing from {PAGE.name}"

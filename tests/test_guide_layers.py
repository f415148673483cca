"""docs/guide/layers.md lists every built-in layer with its registry name (tests/test_docs_blocks.py runs its examples)."""
from __future__ import annotations

import pathlib
import re
from importlib import metadata

from layerkit import registry

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guide" / "layers.md"


def test_table_names_every_builtin_layer():
    text = PAGE.read_text()
    builtins = {ep.name: ep.value.rsplit(":", 1)[1] for ep in metadata.entry_points(group=registry.GROUP)
                if ep.dist is not None and ep.dist.name == "layerkit"}
    for name, cls in builtins.items():
        assert re.search(rf"\| `{cls}\(.*\| `{name}` \|", text), f"{cls} ({name}) missing from {PAGE.name}"

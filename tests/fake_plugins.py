"""Throwaway plugin distributions for tests, discovered by the real ``importlib.metadata``.

A distribution is a ``<name>-0.1.dist-info`` folder (``METADATA`` and
``entry_points.txt``) next to its modules, in a folder put on ``sys.path``:
exactly what pip leaves behind, without running pip.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from layerkit import registry


def write_distribution(root: Path, dist_name: str, entry_points: dict[str, str],
                       modules: dict[str, str] | None = None) -> Path:
    """Write an installed-looking distribution into ``root``; return its dist-info folder.

    Parameters
    ----------
    root : Path
        A folder on ``sys.path``.
    dist_name : str
        The distribution's name (``Name:`` in ``METADATA``).
    entry_points : dict
        Layer name -> ``"module:attr"`` in the group ``layerkit.layers``.
    modules : dict, optional
        Module name -> source code, written as ``root/<module>.py``.
    """
    info = root / f"{dist_name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    lines = [f"[{registry.GROUP}]"] + [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return info


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A function ``install(dist_name, entry_points, modules, folder="site")`` for throwaway plugins.

    Each folder is prepended to ``sys.path``; the registry is refreshed after
    each install and again after the test, when the folders and the modules
    they held are gone.
    """
    module_names: list[str] = []

    def install(dist_name: str, entry_points: dict[str, str], modules: dict[str, str] | None = None,
                folder: str = "site", refresh: bool = True) -> Path:
        root = tmp_path / folder
        if str(root) not in sys.path:
            root.mkdir(exist_ok=True)
            monkeypatch.syspath_prepend(str(root))
        module_names.extend(modules or {})
        info = write_distribution(root, dist_name, entry_points, modules)
        if refresh:
            registry.refresh()
        return info

    yield install
    monkeypatch.undo()
    for module in module_names:
        sys.modules.pop(module, None)
    registry.refresh()

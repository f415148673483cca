"""Without the compiled core, importing layerkit says how to build it (no fallback)."""
import subprocess
import sys
import textwrap


def test_missing_extension_gives_build_instructions():
    code = textwrap.dedent("""
        import sys
        class BlockCore:
            def find_spec(self, name, path=None, target=None):
                if name == "layerkit._core":
                    raise ImportError("simulated: no compiled module")
        sys.meta_path.insert(0, BlockCore())
        try:
            import layerkit
        except ImportError as error:
            print("MESSAGE:", error)
        else:
            print("IMPORTED")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED" not in result.stdout
    assert "layerkit._core) is not built" in result.stdout
    assert "pip install -e ." in result.stdout


def test_importing_from_an_unbuilt_source_folder_says_so(tmp_path):
    """Issue 15 item 14: from the repository root the error spoke of a circular import."""
    import shutil
    from pathlib import Path

    import layerkit

    package = Path(layerkit.__file__).parent
    root = tmp_path / "repo"
    shutil.copytree(package, root / "layerkit",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.c"))
    (root / "pyproject.toml").write_text("[project]\nname = 'layerkit'\n")
    assert (root / "layerkit" / "_core.pyx").exists()
    # the test venv's editable install adds a finder that would serve layerkit._core from the worktree;
    # a user's regular install (`pip install .`) has none: drop it, as the user's interpreter lacks it
    code = textwrap.dedent("""
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
        import layerkit
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode != 0
    assert "circular import" not in result.stderr.splitlines()[-1]
    assert f"you are importing layerkit from its source folder ({root})" in result.stderr
    assert "run from elsewhere" in result.stderr.lower() and "`pip install -e .`" in result.stderr

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

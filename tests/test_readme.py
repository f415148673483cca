"""The README's Python examples run as written, and its quick start is what CI runs."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_blocks_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for earlier in BLOCKS[:index]:  # later blocks may build on earlier ones
        exec(compile(earlier, f"README block {BLOCKS.index(earlier)}", "exec"), namespace)
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), namespace)


def test_quick_start_has_exactly_the_two_commands_and_ci_uses_the_test_one():
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        assert README.count(marker) == 1
        block = README.split(marker, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
        assert len(block.strip().splitlines()) == 1
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci

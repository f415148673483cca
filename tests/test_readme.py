"""The README's quick start: exactly the two commands, and CI runs the test command verbatim.

(Its Python blocks run with the documentation's, in tests/test_docs_blocks.py.)
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def command_after(marker: str) -> str:
    block = README.split(marker, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = block.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_quick_start_has_exactly_the_two_commands_and_ci_uses_the_test_one():
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        assert README.count(marker) == 1
        command_after(marker)
    assert "<!-- test-command -->" in CI  # .ci/run extracts the command after this marker and runs it


def test_ci_runs_the_test_command_then_builds_the_docs_with_warnings_as_errors():
    test_command = command_after("<!-- test-command -->")
    assert "python -m pytest" in test_command
    run_test = CI.index('bash -euo pipefail -c "$cmd"')
    build = re.search(r"sphinx-build -W --keep-going -b html docs docs/_build/html", CI)
    assert build and build.start() > run_test
    install_docs = CI.index('pip install -e ".[docs]"')
    assert run_test < install_docs < build.start()


def test_readme_says_how_to_build_the_docs_as_ci_does():
    assert 'pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html' in README
    index = (ROOT / "docs" / "index.md").read_text()
    assert 'pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html' in index

"""Docs, examples, benchmarks, the README, the changelog and layerkit's sources speak to users only.

They must not refer to things a user cannot see: issue numbers ("issue 12",
"#12"), the project's internal material ("seed 004", "the seeds", "§2") or a
course that is not named ("the course"). Public sources are cited by name and
section ("the Radboud University Deep Learning course, assignment 1, section 1.6").
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the text users read: every file under these folders with one of these suffixes, and these files
FOLDERS = ("layerkit", "docs", "examples", "benchmarks")
SUFFIXES = {".py", ".pyx", ".pxi", ".pxd", ".h", ".md", ".rst", ".txt", ".toml", ".ipynb", ".cfg"}
FILES = ("README.md", "CHANGELOG.md", "pyproject.toml")
SKIP_PARTS = {"_build", "auto_examples", "__pycache__", ".ipynb_checkpoints", "build"}

INTERNAL = [
    (re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE), "an issue number"),
    (re.compile(r"(?<![\w&/#])#\d{1,4}(?![\w-])"), "an issue number"),
    (re.compile(r"\bseeds?\s*0\d\d\b", re.IGNORECASE), "internal material ('seed 00x')"),
    (re.compile(r"\bthe seeds\b(?!\s+(of|for)\b)", re.IGNORECASE), "internal material ('the seeds')"),
    (re.compile("\u00a7"), "a section sign pointing into internal material"),
]
COURSE = re.compile(r"\bcourse", re.IGNORECASE)
# a course is cited by its name: one of these within the sentence around the word
COURSE_NAMES = ("Radboud", "University", "FYS-STK")


def audience_problems(text: str) -> list[str]:
    """Every reference in ``text`` that a user cannot follow, as ``'<what>: <excerpt>'``."""
    problems = []
    for pattern, what in INTERNAL:
        for match in pattern.finditer(text):
            problems.append(f"{what}: {text[max(0, match.start() - 40):match.end() + 40]!r}")
    for match in COURSE.finditer(text):
        around = text[max(0, match.start() - 120):match.end() + 120]
        if not any(name in around for name in COURSE_NAMES):
            problems.append(f"an unnamed course: {text[max(0, match.start() - 40):match.end() + 40]!r}")
    return problems


def _user_facing_files() -> list[Path]:
    files = [ROOT / name for name in FILES if (ROOT / name).exists()]
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and not SKIP_PARTS & set(path.parts):
                files.append(path)
    return files


@pytest.mark.parametrize("path", _user_facing_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_speaks_to_users(path):
    problems = audience_problems(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(ROOT)} refers to what users cannot see:\n" + "\n".join(problems)


def test_the_files_are_found():
    names = {str(p.relative_to(ROOT)) for p in _user_facing_files()}
    assert {"README.md", "docs/guide/training.md", "examples/digits_binary.py",
            "benchmarks/loops.py", "layerkit/net.py", "layerkit/_kernels/losses.pxi"} <= names


@pytest.mark.parametrize("text", [
    "the defaults of issue 19", "see issue #12", "after the second round of Issue 12.",
    "fixed in #12.", "seed 004's §2 shows", "as the seeds do", "as in the course",
    "The course material's net", "the course's API",
])
def test_internal_references_are_caught(text):
    assert audience_problems(text)


@pytest.mark.parametrize("text", [
    "the Radboud University Deep Learning course, assignment 1, section 1.6",
    "the University of Oslo's FYS-STK3155/4155 exercises, weeks 41 and 42",
    "``seed`` seeds the generator; the seeds of the split and the shuffling differ",
    "a hex colour #1f77b4 and 2**31 - 1", "He et al. 2015, section 2.2",
])
def test_public_references_pass(text):
    assert not audience_problems(text)

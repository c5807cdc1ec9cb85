"""The repository's prose states its reasons itself: no issue numbers, no notes from outside the
repository, no first-person diary, in docs, comments, docstrings and script headers alike."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = (".py", ".md", ".sh", ".yaml", ".toml", ".txt", ".ipynb", ".ini", "Makefile")
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues? #?\d+\b", re.I),
    "a file outside the repository": re.compile(r"\bshared/"),
    "first person": re.compile(r"\b(I|I've|I'm|I'd)\b [a-z]"),
    "session narrative": re.compile(r"\b(this|a later|an earlier|earlier|later) sessions?\b", re.I),
}
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT)


def tracked_text_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [p for p in listed.stdout.splitlines()
            if p.endswith(TEXT) and p != THIS_FILE and os.path.exists(os.path.join(ROOT, p))]


def test_no_prose_points_outside_the_repository_or_tells_a_diary():
    found = []
    for path in tracked_text_files():
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                found += [f"{path}:{number}: {what}: {line.strip()[:100]}"
                          for what, pattern in FORBIDDEN.items() if pattern.search(line)]
    assert not found, "\n".join(found)

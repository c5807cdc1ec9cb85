"""README.md and docs/ stay true: every repository path they name exists, every link resolves,
and every command line they show uses flags its script accepts."""
import glob
import itertools
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
# Paths a run writes rather than the repository holds.
OUTPUTS = ("models/", "summaries/", "videos/", "/")
# Upper-case words and these marks stand for a value the reader fills in (models/RUN.nn).
PLACEHOLDER = re.compile(r"\b[A-Z]{2,}[A-Z_]*\b|[<*]")


def page_id(path: str) -> str:
    return os.path.relpath(path, ROOT)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def expand_braces(text: str) -> list[str]:
    """`a_{b,c}.yaml` -> [a_b.yaml, a_c.yaml], for every brace group."""
    parts = re.split(r"\{([^{}]*)\}", text)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def named_paths(text: str) -> set[str]:
    """Repository paths in inline code: anything with a slash, a bare `.py` or `.yaml` name."""
    spans = set(re.findall(r"`([^`\s]+)`", text))
    paths = set()
    for span in spans:
        if PLACEHOLDER.search(span) or span.startswith(OUTPUTS) or "=" in span:
            continue
        top, _, rest = span.partition("/")
        # A slash alone does not make a path (TensorBoard tags: `optim/skipped_steps`): it
        # starts at a top-level entry of the repository or names a file with an extension.
        if rest and re.match(r"^[\w.{},/-]+$", span) and (
                top in os.listdir(ROOT) or "." in span.split("/")[-1]):
            paths.update(expand_braces(span))
        elif re.match(r"^[\w{},-]+\.(py|yaml)$", span):
            paths.update(expand_braces(span))
    return paths


def exists(path: str) -> bool:
    if "/" in path.rstrip("/"):
        return os.path.exists(os.path.join(ROOT, path))
    return bool(glob.glob(os.path.join(ROOT, "**", path), recursive=True))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_named_path_exists(page):
    missing = sorted(p for p in named_paths(read(page)) if not exists(p))
    assert not missing, f"{page_id(page)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_resolves(page):
    links = re.findall(r"\]\(([^)\s]+)\)", read(page))
    local = [link.split("#")[0] for link in links if not re.match(r"^[a-z]+:|^#", link)]
    missing = [link for link in local
               if not os.path.exists(os.path.join(os.path.dirname(page), link))]
    assert not missing, f"{page_id(page)} links to missing files: {missing}"


def commands() -> dict[str, set[str]]:
    """script -> the long flags the pages' shell blocks pass to `python SCRIPT`."""
    flags: dict[str, set[str]] = {}
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", read(page), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0]
                match = re.search(r"\bpython ([\w/]+\.py)(.*)", line)
                if not match:
                    continue
                words = shlex.split(match[2].replace("[", " ").replace("]", " ")
                                    .replace("|", " "))
                used = {w.split("=")[0] for w in words if w.startswith("--")}
                flags.setdefault(match[1], set()).update(used)
    return flags


COMMANDS = commands()


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_documented_command_lines_use_accepted_flags(script):
    """`python SCRIPT --help` lists every flag the docs use with it."""
    assert os.path.exists(os.path.join(ROOT, script)), f"the docs run {script}, which is missing"
    if script == "config.py":          # not an argparse program: it takes --markdown or paths
        assert COMMANDS[script] <= {"--markdown"}
        return
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    assert done.returncode == 0, done.stderr[-2000:]
    unknown = sorted(f for f in COMMANDS[script] if f not in done.stdout)
    assert not unknown, f"the docs pass {unknown} to {script}, which --help does not list"


def test_the_pages_show_commands_at_all():
    """The extraction above found the entry points, so the flag test cannot pass vacuously."""
    assert {"train.py", "enjoy.py", "evaluate.py", "aggregate.py", "sweep.py"} <= set(COMMANDS)

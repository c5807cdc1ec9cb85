"""pyproject.toml installs the dependencies and no module (the checkout is the product), agrees
with the locked requirements, the licence and the citation; and this code works as the README
documents from a project that has its own config.py, utils.py, model.py and an installed
`evaluate` package."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_no_module_is_installed(tmp_path):
    """A wheel of the checkout holds its metadata only: no generic top-level name (config,
    utils, model, evaluate, ...) lands in site-packages to shadow another project's."""
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["py-modules"] == [] and setuptools["packages"] == []
    source = tmp_path / "source"
    listed = subprocess.run(["git", "ls-files", "*.py", "pyproject.toml", "README.md",
                             "LICENSE"], cwd=ROOT, capture_output=True, text=True, check=True)
    for path in listed.stdout.split():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, path), source / path)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                            "--no-build-isolation", "--no-cache-dir", "-q", "-w",
                            str(tmp_path / "wheel"), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = glob.glob(str(tmp_path / "wheel" / "*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert names and all(".dist-info/" in name for name in names), names


# The user's project: modules with this repository's generic names, and an installed package
# named like this repository's evaluate.py (Hugging Face's `evaluate`), each saying whose it is.
USER_MODULES = {"config.py": "OWNER = 'user'\n", "utils.py": "OWNER = 'user'\n",
                "model.py": "OWNER = 'user'\n"}
INSTALLED = {"evaluate/__init__.py": "OWNER = 'installed'\n__version__ = '0.4.6'\n"}


def write_tree(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_another_project_keeps_its_modules_and_runs_these_scripts(tmp_path):
    """As the README documents: from a project with its own config.py, utils.py, model.py on
    its path and `evaluate` installed, train.py and evaluate.py run by their path, and the
    project still imports its own modules."""
    project, site = tmp_path / "project", tmp_path / "site-packages"
    write_tree(project, USER_MODULES)
    write_tree(site, INSTALLED)
    env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{site}",
           "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    with open(os.path.join(ROOT, "configs", "proof_of_memory.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data.update(n_workers=2, worker_steps=16, segment_length=8, n_mini_batch=1, updates=1,
                env_processes=1, evaluation={"n_seeds": 2, "repetitions": 1})
    (project / "tiny.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)

    trained = run(os.path.join(ROOT, "train.py"), "--config", "tiny.yaml", "--run-id", "pom")
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = run(os.path.join(ROOT, "evaluate.py"), "pom", "--processes", "1")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert (project / "models" / "pom" / "scores.csv").is_file()
    owners = run("-c", "import config, utils, model, evaluate; "
                       "print(config.OWNER, utils.OWNER, model.OWNER, evaluate.OWNER)")
    assert owners.stdout.split() == ["user", "user", "user", "installed"], owners.stderr


def test_license_and_citation_agree_with_pyproject():
    project = pyproject()["project"]
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        assert f.readline().strip() == f"{project['license']['text']} License"
    with open(os.path.join(ROOT, "CITATION.cff"), encoding="utf-8") as f:
        citation = yaml.safe_load(f)
    assert citation["version"] == project["version"]
    assert citation["license"] == project["license"]["text"]
    assert [a["name"] for a in citation["authors"]] == [a["name"] for a in project["authors"]]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    bibtex = readme[readme.index("@software{"):]
    assert f"version = {{{project['version']}}}" in bibtex and "author" in bibtex


def locked() -> dict[str, str]:
    """name -> version of every `name==version` line of requirements*.txt."""
    pins = {}
    for path in glob.glob(os.path.join(ROOT, "requirements*.txt")):
        for line in open(path, encoding="utf-8"):
            match = re.match(r"([A-Za-z0-9_.-]+)==([^\s#]+)", line)
            if match:
                pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_locked_versions_satisfy_the_declared_ranges():
    """The tested set must be one that `pip install .` would also accept."""
    from packaging.requirements import Requirement
    pins = locked()
    project = pyproject()["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values()
                                          for d in extra if not d.startswith("trxl-ppo")]
    for text in declared:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        if name in pins:
            version = pins[name].split("+")[0]
            assert requirement.specifier.contains(version), (text, pins[name])

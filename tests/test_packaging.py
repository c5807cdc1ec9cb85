"""pyproject.toml installs what the repository holds, and agrees with the locked requirements."""
import glob
import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_every_top_level_module_and_package_is_installed():
    """A module added at the top level but not listed would import from a checkout and fail
    from an install."""
    setuptools = pyproject()["tool"]["setuptools"]
    modules = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "*.py"))}
    packages = {os.path.basename(os.path.dirname(p))
                for p in glob.glob(os.path.join(ROOT, "*", "__init__.py"))} - {"tests"}
    assert set(setuptools["py-modules"]) == modules
    assert set(setuptools["packages"]) == packages


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

"""Finding what registers itself: the memories (memories.kinds) and the environment families
(environments.families) are the modules of their package plus the modules that installed
packages name as entry points of a group (docs/extending.md)."""
from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Iterable


def import_registering_modules(package: str, path: Iterable[str], group: str) -> None:
    """Import every module of `package` (found on `path`) and every entry point of `group`;
    each registers what it defines as it is imported. RuntimeError naming the plugin when an
    entry point fails to import."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
    for entry in entry_points(group=group):
        try:
            entry.load()
        except Exception as e:   # noqa: BLE001 - a plugin may fail in any way; the user
            # must learn which installed package to fix.
            raise RuntimeError(f"the plugin {entry.value!r} (entry point {entry.name!r} in "
                               f"{group}) fails to import: {type(e).__name__}: {e}. Fix: "
                               f"repair or uninstall that package.") from e

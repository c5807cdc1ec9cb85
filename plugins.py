"""Finding what registers itself: the memories (memories.kinds) and the environment families
(environments.families) are the modules of their package plus the modules that installed
packages name as entry points of a group (docs/extending.md)."""
from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


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


class Registry(Generic[T]):
    """The things of one kind that may be named in a config: registered by the modules of
    `package` and by the entry points of `group`, which are imported on the first lookup.

    A module imported again replaces its own entries; two modules claiming one name fail,
    named by `origin` (where an entry is defined)."""

    def __init__(self, package: str, path: Iterable[str], group: str, what: str,
                 origin: Callable[[T], str]):
        self._package, self._path, self._group = package, path, group
        self._what, self._origin = what, origin
        self._entries: dict[str, T] = {}
        self._discovered = False

    def add(self, name: str, entry: T) -> T:
        clash = self._entries.get(name)
        if clash is not None and self._origin(clash) != self._origin(entry):
            raise ValueError(f"{self._what} {name!r} is registered by both "
                             f"{self._origin(clash)} and {self._origin(entry)}. Fix: rename "
                             f"one of them.")
        self._entries[name] = entry
        return entry

    def registered(self) -> dict[str, T]:
        """What is registered so far, without importing anything."""
        return dict(self._entries)

    def all(self) -> dict[str, T]:
        """Every entry by name: the package's modules, then the entry points."""
        if not self._discovered:
            self._discovered = True
            import_registering_modules(self._package, self._path, self._group)
        return dict(self._entries)

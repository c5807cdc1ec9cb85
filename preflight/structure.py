"""The size and depth of nested data, bounded without expanding it.

YAML aliases and a pickle's memo both let a file of a few bytes hold a structure that
repeats itself 2^60 times; printing or copying it (dataclasses.asdict) would never end, and
recursing into it overflows the stack. One walk measures such a graph: every shared part is
measured once and counted once per use, without recursion.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple

# Far above any config or model file (the shipped configs nest 3 deep), far below what
# overflows the recursion of YAML's constructor or of anything that prints a value.
MAX_DEPTH = 32


class Extent(NamedTuple):
    values: int     # the values of the structure with every shared part expanded, capped
    depth: int      # levels of nesting (a leaf is 1)
    recursive: bool = False     # a part contains itself (`x: &a [1, *a]`): infinite


def extent(root: Any, children: Callable[[Any], Iterable[Any]], cap: int) -> Extent:
    """The Extent of the graph below `root`; `children(node)` lists a node's parts (none for
    a leaf). Sizes are capped at cap + 1, so that counting stays cheap however large the
    expansion. A part that contains itself makes the structure infinite: the walk stops at
    the first such part and says so (recursive=True)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_parts: set[int] = set()      # expanded, their parts not all measured yet
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        parts = list(children(node))
        if not children_done and parts:
            # Depth first: everything popped before (node, True) lies below node, so
            # meeting an open part again means it lies below itself.
            if id(node) in open_parts:
                return Extent(cap + 1, MAX_DEPTH + 1, recursive=True)
            open_parts.add(id(node))
            stack.append((node, True))
            stack.extend((part, False) for part in parts if id(part) not in size)
            continue
        open_parts.discard(id(node))
        size[id(node)] = min(1 + sum(size.get(id(part), 1) for part in parts), cap + 1)
        depth[id(node)] = 1 + max((depth.get(id(part), 1) for part in parts), default=0)
    return Extent(size[id(root)], depth[id(root)])


def container_parts(value: Any) -> list[Any]:
    """The parts of a loaded value: a dict's keys and values, a list's or tuple's items."""
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return []

"""Config files as YAML, loaded strictly: a key given twice, a list or mapping as a key, an
alias that contains itself, an alias bomb, deep nesting or a character YAML does not allow
(a NUL byte) is refused (RefusedInput naming the file) before anything is built from it."""
from __future__ import annotations

import re
from typing import Any

import yaml

from preflight.refusal import RefusedInput, short
from preflight.structure import MAX_DEPTH, extent

# Far above any config (the shipped ones have < 200 values), far below what hangs the loader.
MAX_YAML_VALUES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML's last-wins would drop
    a value silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                # `? [a, b]`: a list or mapping as a key, which no config key is.
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping used as a key (config keys are names)",
                    key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short(key)} (first at line "
                    f"{seen[key].line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


# YAML 1.1, which PyYAML implements, reads 1e-4 (an exponent without a dot) as a string;
# YAML 1.2 and everyone who writes it in a config or on a command line mean the number.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _node_parts(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.ScalarNode):
        return []
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)


def load_yaml(stream, source: str) -> Any:
    """The YAML document of `stream` with SafeLoader's types; RefusedInput (naming `source`)
    for syntax errors, duplicate keys, more than MAX_YAML_VALUES values after alias
    expansion, or nesting deeper than MAX_DEPTH."""
    loader = None
    try:
        loader = _StrictLoader(stream)      # reads the start: a NUL byte is refused here
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise RefusedInput(f"{source}: nested too deeply for a config (more than "
                               f"{MAX_DEPTH} levels). Fix: flatten it.") from None
        if node is None:
            return None
        values, levels, recursive = extent(node, _node_parts, MAX_YAML_VALUES)
        if recursive:
            raise RefusedInput(f"{source}: a YAML alias refers to the anchor it lies in "
                               f"(e.g. `x: &a [1, *a]`), which describes an infinite value. "
                               f"Fix: write the values out.")
        if values > MAX_YAML_VALUES:
            raise RefusedInput(f"{source}: expands to more than {MAX_YAML_VALUES:,} values "
                               f"(YAML anchors and aliases). Fix: write the values out; a "
                               f"config needs a few hundred at most.")
        if levels > MAX_DEPTH:
            raise RefusedInput(f"{source}: nested {levels} levels deep, more than "
                               f"{MAX_DEPTH}. Fix: flatten it.")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise RefusedInput(f"{source}: not valid YAML for a config ({' '.join(str(e).split())}). "
                           f"Fix: correct the syntax.") from None
    finally:
        if loader is not None:
            loader.dispose()

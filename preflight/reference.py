"""The configuration reference, docs/configuration.md: generated from the schema's field docs,
its bounds and the registries, so that the page documents exactly what the loader checks.
`python config.py --markdown > docs/configuration.md` rewrites it."""
from __future__ import annotations

import dataclasses
import typing
from typing import Optional

from config import Bound, bounds, schema


def _range_text(bound: Optional[Bound]) -> str:
    """A field's inclusive bounds as the reference shows them: [1, 4,096], >= 0, ..."""
    if bound is None:
        return ""
    if bound.high is None:
        return f">= {bound.low:,}"
    if bound.low is None:
        return f"<= {bound.high:,}"
    return f"[{bound.low:,}, {bound.high:,}]"


def markdown_reference() -> str:
    """The table of docs/configuration.md, generated from the fields' docs and bounds."""
    lines = ["| key | default | bounds | meaning |", "|---|---|---|---|"]

    def walk(default_obj, prefix):
        hints = typing.get_type_hints(type(default_obj))
        for f in dataclasses.fields(default_obj):
            key, default = prefix + f.name, getattr(default_obj, f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                lines.append(f"| `{key}` | | | {f.metadata['doc']} |")
                walk(default, key + ".")
            else:
                lines.append(f"| `{key}` | `{default!r}` | {_range_text(bounds().get(key))} | "
                             f"{f.metadata['doc']} |")
    walk(schema()(), "")
    return "\n".join(lines)


def markdown_registries() -> str:
    """The tables of registered memories and environment families."""
    from environments import families
    from memories import kinds
    lines = ["## Memories", "", "| memory | section | compiles | what |", "|---|---|---|---|"]
    lines += [f"| `{k.name}` | `{k.section}` | {'yes' if k.compiles else 'no'} | {k.summary} |"
              for k in kinds().values()]
    lines += ["", "## Environment families", "",
              "| environment.type | backends (default first) | what |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {', '.join(f.backends)} | {f.summary} |"
              for f in families().values()]
    return "\n".join(lines)


PAGE_HEAD = """# Configuration reference

Every run is set by one YAML file, checked against the schema in `config.py` before anything
starts: an unknown key, a wrong type or an impossible combination stops the run with a message
that names the file, the key, the value and the fix. Nested sections are written as YAML
mappings (`transformer: {num_blocks: 3}`); the dotted keys below name their fields, as `--set`
in `train.py` and `benchmarks/throughput.py` and `--grid` in `sweep.py` do. Sizes derived from
these fields (batch size, segment length, number of segments) are computed, never written back.

The bounds column lists each field's inclusive bounds, checked when the file loads; the limits
on counts lie far above any real run. Exclusive bounds and combinations of fields
(`segment_length` must divide `worker_steps`, `embed_dim` must be a multiple of `num_heads`,
...) are checked as well.

Each memory and each environment family is registered by its own file (docs/extending.md),
which declares its section, bounds and checks; the tables after the reference list them. This
page is generated from the schema's field docs: `python config.py --markdown >
docs/configuration.md` rewrites it (with every memory registered then, plugins included), and
a test fails when a line of it is no longer true.

"""


def markdown_page() -> str:
    """The whole of docs/configuration.md."""
    return PAGE_HEAD + markdown_reference() + "\n\n" + markdown_registries() + "\n"

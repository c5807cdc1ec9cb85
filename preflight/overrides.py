"""Config settings given on a command line as KEY=VALUE: `train.py --set`,
`benchmarks/throughput.py --set` and `sweep.py --grid KEY=V1,V2` share this one parser.

The key is a dotted config key (`transformer.memory_length`, docs/configuration.md lists them),
the value YAML (`true`, `3`, `1.0e-3`, `null`, `gru`, `{corridor_length: 8}`), read by the same
strict loader as config files. The settings are typed by the schema when the config is
loaded with them (load_with): a value of the wrong type, an unknown key or a combination the
schema refuses is one `error:` line that names the flag and the setting.
"""
from __future__ import annotations

import argparse
import io
import re
from typing import Any, Iterable, NamedTuple, Optional, Sequence

from preflight.refusal import RefusedInput
from preflight.yaml_loader import load_yaml

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class Setting(NamedTuple):
    """One config key and the value it takes."""
    key: str
    value: Any

    @property
    def text(self) -> str:
        """KEY=VALUE as it would be written on the command line."""
        return f"{self.key}={value_text(self.value)}"


def value_text(value: Any) -> str:
    """A value as YAML writes a scalar: true, false, null, 3, 0.001, gru."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def split_key(text: str, form: str, example: str) -> tuple[str, str]:
    """(key, the text after `=`); argparse's error unless `text` has the `form` KEY=... with
    a dotted config key."""
    key, sep, rest = text.partition("=")
    if not sep or not KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {form} with a dotted config key, "
                                         f"e.g. {example}")
    return key, rest


def _yaml(text: str, source: str) -> Any:
    try:
        return load_yaml(io.StringIO(text), source)
    except RefusedInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_setting(text: str) -> Setting:
    """argparse type of --set: `KEY=VALUE`, the value one YAML value."""
    key, value = split_key(text, "KEY=VALUE", "transformer.memory_length=32")
    if not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: no value after '='; write null for none")
    return Setting(key, _yaml(value, repr(text)))


def parse_values(text: str) -> tuple[str, tuple]:
    """`KEY=V1,V2,...` -> (key, values): the values a comma-separated YAML list, distinct."""
    key, values = split_key(text, "KEY=VALUE,VALUE,...", "transformer.gtrxl=true,false")
    try:
        parsed = _yaml(f"[{values}]", repr(text))
    except argparse.ArgumentTypeError:
        parsed = None
    if not isinstance(parsed, list) or not parsed:
        raise argparse.ArgumentTypeError(f"{text!r}: the values must be a comma-separated YAML "
                                         f"list, e.g. {key}=true,false or {key}=8,16")
    if len({repr(v) for v in parsed}) != len(parsed):
        raise argparse.ArgumentTypeError(f"{text!r}: a value is given twice")
    return key, tuple(parsed)


def repeated_key(keys: Iterable[str]) -> Optional[str]:
    """The first key given more than once, alphabetically; None when all differ."""
    keys = list(keys)
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    return repeated[0] if repeated else None


def _present(tree: dict, dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def load_with(path: str, settings: Sequence[Setting], flag: str):
    """The config of `path` with `settings` applied, typed and checked by the schema;
    RefusedInput naming `flag` and the settings when they do not make a valid config (a
    ConfigError of the file alone is passed on as it is)."""
    from config import ConfigError, load_config
    where = ", ".join(setting.text for setting in settings)
    try:
        config = load_config(path, dict(settings))
    except ConfigError as e:
        if not settings:
            raise
        raise RefusedInput(f"{flag} {where}: {e}") from None
    data = config.to_dict()
    for key, _ in settings:
        # load_config skips a key whose parent is not a section (seed.x): that is no setting.
        if not _present(data, key):
            raise RefusedInput(f"{flag} {key}: {path} has no setting {key} (the parent is not "
                               f"a section). Fix: use a key from docs/configuration.md, e.g. "
                               f"transformer.gtrxl.")
    return config

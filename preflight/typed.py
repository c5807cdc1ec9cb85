"""Loaded YAML checked against a dataclass's annotations: each value must have its field's
type (int, float, bool, str, dict, Literal, Optional or a nested dataclass), unknown keys are
refused with the closest known one, and every refusal names the file, the key, the value and
the fix."""
from __future__ import annotations

import dataclasses
import math
import sys
import typing
from typing import Any, Literal, Union

from preflight.refusal import short


class ConfigError(ValueError):
    """A configuration value that cannot be used. The message says where and how to fix it."""


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            dict: "a mapping"}[tp]


def _convert(value: Any, tp, where: str, source: str):
    """Check `value` against the annotation `tp`; return the typed value or raise ConfigError."""
    def fail(problem: str, fix: str):
        raise ConfigError(f"{source}: {where} = {short(value)}: {problem}. Fix: {fix}.")

    origin = typing.get_origin(tp)
    if origin is Union:
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(value, inner, where, source)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or isinstance(value, bool):
            fail("not an allowed value", "use " + _type_name(tp))
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            fail("expected a mapping of keys to values", f"write {where} as a YAML mapping")
        return build_dataclass(tp, value, where, source)
    if tp is bool:
        if not isinstance(value, bool):
            fail("expected true or false", "write true or false without quotes")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("expected an integer", "write a whole number such as 4")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("expected a number", "write a number such as 0.5 or 3.0e-4")
        if isinstance(value, int) and abs(value) > sys.float_info.max:
            fail("too large for a floating-point number", "write a number such as 0.5 or 3.0e-4")
        if not math.isfinite(value):   # NaN and inf slip through range checks and the first
            # update would end in a NaN loss
            fail("not a finite number", "write a number such as 0.5 or 3.0e-4")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail("expected a string", "quote the value")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            fail("expected a mapping", "write a YAML mapping (or {} for none)")
        return dict(value)
    raise AssertionError(f"unhandled annotation {tp}")


def build_dataclass(cls, data: dict, prefix: str, source: str):
    """An instance of the dataclass `cls` from loaded YAML `data`, every value checked against
    its annotation; ConfigError names the source, the dotted key, the value and the fix."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            import difflib
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean '{close[0]}'?" if close else \
                f"known keys here: {', '.join(sorted(fields))}"
            raise ConfigError(f"{source}: {where} = {short(value)}: unknown key. Fix: "
                              f"remove it; {hint}")
        try:
            kwargs[key] = _convert(value, hints[key], where, source)
        except ConfigError as e:
            # A field's own advice (`fix` of a field without bounds) replaces the generic one.
            fix = fields[key].metadata.get("fix")
            if fix is None or fields[key].metadata.get("low") is not None \
                    or fields[key].metadata.get("high") is not None or ". Fix: " not in str(e):
                raise
            raise ConfigError(f"{str(e).rsplit('. Fix: ', 1)[0]}. Fix: {fix}.") from None
    return cls(**kwargs)

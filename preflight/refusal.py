"""Refused input: the error every refusal raises, and the one bounded line it ends with.

A refusal says what is wrong and how to fix it in one `error:` line of bounded length, and
the command exits with status 2 (EXIT_REFUSED), as argparse does for a bad flag. Values are
shown shortened: a value can be arbitrarily long (a YAML alias bomb expands to gigabytes),
the message must not be.
"""
from __future__ import annotations

import reprlib
from typing import Any

# An `error:` line longer than this is cut.
MAX_MESSAGE_CHARS = 800
EXIT_REFUSED = 2

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlong = 60, 60, 40
_short.maxdict = _short.maxlist = _short.maxtuple = _short.maxset = 4
_short.maxlevel = 3


class RefusedInput(ValueError):
    """Input that is refused with a message (exit status 2 on the command line)."""


def short(value: Any) -> str:
    """repr(value), bounded: a huge or deeply nested value is shown by its beginning."""
    return _short.repr(value)


def printable(text: str) -> str:
    """`text` with every character that is not printable (control characters such as ESC,
    which a terminal would interpret, NUL, bidirectional overrides) written as an escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def error_line(message: object) -> str:
    """`error: ...` on one line of at most MAX_MESSAGE_CHARS characters, printable."""
    text = printable(" ".join(str(message).split()))
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS - 3] + "..."
    return f"error: {text}"

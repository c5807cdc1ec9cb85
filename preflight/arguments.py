"""Types and checks for command-line flags, shared by the entry points. A value argparse
refuses ends the command with its usage line and one `error:` line, exit status 2."""
from __future__ import annotations

import argparse

from config import SEED_LIMIT


def nonempty(text: str) -> str:
    """argparse type: a string option must not be empty (an empty --resume used to train the
    default config into models/run.nn)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def seed_value(text: str) -> int:
    """argparse type: a seed in [0, 2^32), the range numpy and torch seed from."""
    seed = int(text)
    if not 0 <= seed < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{seed}: seeds must lie in [0, 2^32)")
    return seed

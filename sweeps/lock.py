"""One sweep.py at a time per sweep folder: two would train the same runs."""
from __future__ import annotations

import fcntl
import os

from preflight.refusal import RefusedInput
from sweeps.layout import Layout


class SweepLock:
    """One sweep.py at a time per sweep folder: two would train the same runs."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def __enter__(self) -> "SweepLock":
        os.makedirs(self.layout.models, exist_ok=True)
        self.file = open(os.path.join(self.layout.models, ".sweep.lock"), "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise RefusedInput(f"another sweep.py is running sweep {self.layout.name} "
                             f"({self.layout.models}/). Fix: wait for it to end, or pass "
                             f"another --name.") from None
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

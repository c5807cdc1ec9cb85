"""One sweep.py at a time per sweep folder: two would train the same runs. The lock is
runs.lock's (an OS file lock the kernel releases when the process ends); each trial's
train.py and evaluate.py take their run's own lock as well."""
from __future__ import annotations

import os

from runs.lock import FileLock
from sweeps.layout import Layout


def sweep_lock(layout: Layout) -> FileLock:
    """The lock of the sweep folder `layout.models`, to hold while sweep.py runs."""
    def refusal(pid) -> str:
        owner = f"process {pid}" if pid else "another process"
        return (f"another sweep.py is running sweep {layout.name} ({owner}, "
                f"{layout.models}/). Fix: wait for it to end, or pass another --name.")
    return FileLock(os.path.join(layout.models, ".sweep.lock"), refusal)

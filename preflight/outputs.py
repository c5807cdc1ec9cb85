"""The places results will be written, checked before the work whose results they hold:
a run must not train for hours and then fail to save, an evaluation must not play every
episode and then fail to write its scores."""
from __future__ import annotations

import os
import shutil
import tempfile

from preflight.refusal import RefusedInput, short

# Below this, model files and summaries cannot be written for long.
MIN_FREE_BYTES = 100 * 2**20


def check_output_folders(*folders: str) -> None:
    """RefusedInput unless every folder exists or can be created, takes a new file, and has
    MIN_FREE_BYTES free."""
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise RefusedInput(f"cannot write to {folder}/ ({e.strerror}). Fix: make it "
                               f"writable or pass another --models-dir/--summaries-dir.") from None
        free = shutil.disk_usage(folder).free
        if free < MIN_FREE_BYTES:
            raise RefusedInput(f"only {free / 2**20:.0f} MiB free for {folder}/; model "
                               f"files and summaries need more. Fix: free disk space.")


def check_writable_file(path: str, flag: str) -> None:
    """RefusedInput unless a file can be created at `path` (its folder exists or can be
    created, and takes a new file)."""
    if os.path.isdir(path):
        raise RefusedInput(f"{flag} {short(path)}: is a folder. Fix: name a file.")
    if os.path.lexists(path) and not os.path.isfile(path):
        # A device, pipe or dangling link: the rename that completes the write would
        # replace it.
        raise RefusedInput(f"{flag} {short(path)}: exists and is not a regular file. Fix: "
                           f"name a new or regular file.")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise RefusedInput(f"{flag} {short(path)}: {existing} is a file, not a folder. Fix: "
                           f"choose another place.")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as e:
        raise RefusedInput(f"{flag} {short(path)}: cannot write in {existing}/ "
                           f"({e.strerror}). Fix: choose a writable place.") from None
    if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        raise RefusedInput(f"{flag} {short(path)}: cannot create {folder}/. Fix: choose a "
                           f"writable place.")

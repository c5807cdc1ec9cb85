"""One writer per run (and per sweep): an OS file lock held for the writer's lifetime.

A run's files (models/RUN.nn, models/RUN/, summaries/RUN/) are written by one process at a
time: train.py while it trains, evaluate.py while it writes models/RUN/scores.csv. Two
trainers on one run id would otherwise interleave their checkpoints in models/RUN/ and
their events in summaries/RUN/, and `--overwrite` would delete a run under its trainer.

The lock is `flock` on `models/RUN.lock` (one of the run's own paths), taken before the
run's existing files are looked at or deleted. The kernel releases it when the process ends
however it ends (SIGKILL included), so a crash never leaves a stale lock; the file, left
behind by a crash, is an ordinary file that the next owner takes over. The descriptor is not
inheritable (PEP 446) and the environment processes are spawned, so they never hold it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Callable, Optional

from preflight.refusal import RefusedInput, short

LOCK_SUFFIX = ".lock"


def owner_pid(path: str) -> Optional[int]:
    """The PID the lock file's owner wrote into it, if readable."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(32).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _wait_for_owner_pid(path: str, patience_s: float = 2.0) -> Optional[int]:
    """The owner's PID, waiting briefly for it: the owner writes it just after taking the
    lock, so a process refused in between would otherwise find the file still empty."""
    deadline = time.monotonic() + patience_s
    while True:
        pid = owner_pid(path)
        if pid is not None or time.monotonic() >= deadline:
            return pid
        time.sleep(0.02)


class FileLock:
    """An exclusive, non-blocking flock on `path`, which holds the owner's PID. Entering
    raises RefusedInput with `refusal(pid)` when another process holds it. Leaving releases
    it and removes the file (only while holding it, so no other owner's file is removed)."""

    def __init__(self, path: str, refusal: Callable[[Optional[int]], str]):
        self.path, self.refusal = path, refusal
        self.fd: Optional[int] = None

    def __enter__(self) -> "FileLock":
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                             0o644)
            except OSError as e:     # read-only, or a link planted in its place
                raise RefusedInput(f"cannot open the lock file {self.path} ({e.strerror}). "
                                   f"Fix: make its folder writable, or remove a link "
                                   f"there.") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RefusedInput(self.refusal(_wait_for_owner_pid(self.path))) from None
            # The previous owner may have removed the file between our open and our flock:
            # then we hold a lock on a file nobody else can find, and must open the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(self.fd)          # releases the lock
        self.fd = None


def run_lock_file(run_folder: str) -> str:
    """models/RUN.lock for the run whose folder is models/RUN."""
    return run_folder.rstrip(os.sep) + LOCK_SUFFIX


def run_lock(run_folder: str, run: str, what: str) -> FileLock:
    """The lock of the run whose folder is `run_folder` (models/RUN), taken by `what` (the
    command and what it is about to do, for the message of the process it refuses)."""
    def refusal(pid: Optional[int]) -> str:
        owner = f"process {pid}" if pid else "another process"
        return (f"run {short(run)} is in use by {owner} (it holds {run_lock_file(run_folder)}); "
                f"{what} would mix or delete its files. Fix: wait for that process to end "
                f"(or stop it: kill -INT {pid or 'PID'}), or choose another run id.")
    return FileLock(run_lock_file(run_folder), refusal)


def check_not_linked(paths: list[str]) -> None:
    """RefusedInput when one of a run's own paths is a symbolic link: writing through it
    would change another run (or any file) without saying so."""
    for path in paths:
        if os.path.islink(path):
            raise RefusedInput(
                f"{path} is a symbolic link (to {short(os.readlink(path))}); a run writes "
                f"only its own files. Fix: continue the run the link points to by its own "
                f"name, or replace the link by a copy.")

"""Atomic file writes: a kill during a write never leaves a half-written file.

Every file a run or a command writes for later use (model files, score files, point configs,
videos) goes through atomic_path: the data go to a temporary file in the same folder, are
flushed to disk, and the file is renamed over its destination, which a kill leaves either
as it was or complete. The temporary file is named after its destination
(`.tmp-NAME-XXXXXXXX.EXT`), so the temporaries a kill left behind are known to belong to
that destination, and its next writer removes them (stale_temporaries), and nothing else.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import threading
from typing import IO, Iterator

TEMPORARY_PREFIX = ".tmp-"
_RANDOM_HEX = 8


def _temporary_pattern(name: str) -> re.Pattern:
    """The temporaries of writes to a file called `name` (the random part has a fixed length,
    so NAME-XXXXXXXX of one file is never the NAME of another)."""
    ext = os.path.splitext(name)[1]
    return re.compile(re.escape(TEMPORARY_PREFIX + name) + f"-[0-9a-f]{{{_RANDOM_HEX}}}" +
                      re.escape(ext))


def _create_temporary(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(folder, f"{TEMPORARY_PREFIX}{name}-"
                                   f"{secrets.token_hex(_RANDOM_HEX // 2)}"
                                   f"{os.path.splitext(name)[1]}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary path beside `path` (same extension, for writers that choose the format by
    it) to write to. When the block ends, the file is flushed to disk and renamed over
    `path`; on any error the previous file stays intact and the temporary file is removed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = _create_temporary(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # The temporary is created 0600 (and a writer may have replaced it); give the file
        # the mode any new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """The file object of atomic_path(path), opened with `mode`."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f


# The signals that stop a run (train.py handles SIGTERM and SIGHUP like Ctrl-C's SIGINT).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """A stop signal that arrives inside the block is handled when it ends, by the handler
    it would have met. A save cut by one would be lost twice over: torch.save, interrupted,
    raises its own RuntimeError ("unexpected pos") in place of the interrupt, so the run
    would stop as failed. The handlers are swapped rather than the signals blocked: a
    blocked signal goes to another thread, and Python runs its handler in the main thread
    all the same. Only the main thread can set handlers; elsewhere this does nothing. The
    first signal is handled; later ones inside the block are dropped, as the first already
    stops the run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: arrived.append(signum))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if arrived:
            _deliver(arrived[0], previous[arrived[0]])


def _deliver(signum: int, handler) -> None:
    """What `handler`, the handler of `signum` before the deferral, does with it."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)


def stale_temporaries(folder: str, names: list[str] | None = None) -> list[str]:
    """Temporaries that a killed atomic write left in `folder`: those of the files called
    `names`, or (names None) of any file, for a folder that only one owner writes."""
    try:
        entries = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if names is None:
        pattern = re.compile(re.escape(TEMPORARY_PREFIX) + f".+-[0-9a-f]{{{_RANDOM_HEX}}}"
                             r"(\.[^.]*)?")
        owned = [e for e in entries if pattern.fullmatch(e)]
    else:
        patterns = [_temporary_pattern(name) for name in names]
        owned = [e for e in entries if any(p.fullmatch(e) for p in patterns)]
    return [os.path.join(folder, e) for e in sorted(owned)
            if os.path.isfile(os.path.join(folder, e)) and
            not os.path.islink(os.path.join(folder, e))]


def remove_stale_temporaries(folder: str, names: list[str] | None = None) -> list[str]:
    """Remove stale_temporaries(folder, names); returns what was removed."""
    removed = stale_temporaries(folder, names)
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return removed

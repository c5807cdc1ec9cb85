"""Atomic file writes: a kill during a write never leaves a half-written file.

Every file a run or a command writes for later use (model files, score files, point configs,
videos) goes through atomic_path: the data go to a temporary file in the same folder, are
flushed to disk, and the file is renamed over its destination, which a kill leaves either
as it was or complete.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary path beside `path` (same extension, for writers that choose the format by
    it) to write to. When the block ends, the file is flushed to disk and renamed over
    `path`; on any error the previous file stays intact and the temporary file is removed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # mkstemp creates 0600; give the file the mode any new file would get.
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

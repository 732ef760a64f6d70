"""Crash-safe file writes: a file is either the old one or the complete new one, never a partial one.

Checkpoints, metrics, reference caches and shipped functionals are written through :func:`atomic_write`:
the content goes to a temporary file in the same folder (same file system, so the rename is atomic),
which is flushed to disk (fsync) and then renamed over the target with ``os.replace``. A crash or a
full disk at any moment leaves the previous file intact.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write"]


def atomic_write(path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` with the name of a temporary file next to ``path``, fsync it, then replace ``path``.

    ``write`` must write the whole content to the file name it is given (e.g. ``torch.save(obj, tmp)``).
    If it raises, the temporary file is removed and ``path`` is untouched. Returns ``Path(path)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path

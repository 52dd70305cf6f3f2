"""Files that are either wholly the old version or wholly the new one: :func:`write_atomic`.

A crash, a full disk or a kill in the middle of a write leaves the previous file (or none) in place, never half
a file: the text goes to a temporary file in the same folder, is flushed and fsynced, then renamed over the
target (``os.replace`` is atomic within one file system); the folder is fsynced so that the rename survives a
power cut too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["fsync_file", "write_atomic"]


def write_atomic(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically (temporary file in the same folder, fsync, rename).

    On any error the temporary file is removed and the error propagates; ``path`` is left as it was."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def fsync_file(handle: object) -> None:
    """Flush ``handle`` (an open file object) and fsync it to disk; a no-op for a closed file."""
    if getattr(handle, "closed", False):
        return
    flush = getattr(handle, "flush", None)
    if flush is not None:
        flush()
    os.fsync(handle.fileno())  # type: ignore[attr-defined]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # a folder that cannot be opened (some file systems): the rename is still atomic
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)

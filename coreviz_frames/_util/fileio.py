"""Atomic file writes: the one way the package puts a file on disk.

A file is written under a hidden temporary name in its target directory
(``.tmp-<name>.<pid>.<random>.tmp``: hidden from pyarrow and not matched by
``*.parquet`` globs), flushed and fsynced, then renamed over the target with
:func:`os.replace`. A reader sees the old file or the new one, never half of one;
a crash leaves at most a temporary file that :func:`is_temporary` recognises.

The file gets the permissions the process umask gives (0644 under umask 022, 0640 under
027), as ``open()`` would: ``mkstemp`` makes its file 0600, so the mode is set on the
temporary file before the rename. ``private=True`` keeps it 0600 (the image cache).

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> atomic_write_bytes(target, b"hi")
    >>> target.read_bytes()
    b'hi'
    >>> with atomic_writer(target) as fh:
    ...     _ = fh.write(b"bye")
    >>> target.read_bytes()
    b'bye'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["TMP_PREFIX", "TMP_SUFFIX", "atomic_write_bytes", "atomic_writer", "is_temporary"]

#: Every temporary file the package writes starts with this prefix ...
TMP_PREFIX = ".tmp-"
#: ... and ends with this suffix.
TMP_SUFFIX = ".tmp"


def is_temporary(name: str) -> bool:
    """True for a file name that :func:`atomic_writer` uses for its temporary files.

    Example:
        >>> is_temporary(".tmp-part-000001.parquet.123.abc.tmp"), is_temporary("part.parquet")
        (True, False)
    """
    return name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where Linux says it (``/proc``).

    Elsewhere it is read by setting and restoring it under a lock.

    Example:
        >>> 0 <= current_umask() <= 0o777
        True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode(*, private: bool = False) -> int:
    """The mode a new file gets: ``0o666`` less the umask (``0o600`` when ``private``).

    Example:
        >>> file_mode(private=True)
        384
    """
    return 0o600 if private else 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_writer(
    target: str | os.PathLike[str], *, fsync: bool = True, private: bool = False
) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``target`` atomically on a clean exit.

    On an exception the temporary file is removed and ``target`` is left as it was.
    ``fsync=False`` skips the flush to disk (for caches, where losing an entry is harmless).
    The file's mode is what the umask gives (:func:`file_mode`); ``private=True`` keeps 0600.
    """
    path = Path(target)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX
    )
    try:
        if not private:
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(
    target: str | os.PathLike[str], data: bytes, *, fsync: bool = True, private: bool = False
) -> None:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(target, fsync=fsync, private=private) as fh:
        fh.write(data)

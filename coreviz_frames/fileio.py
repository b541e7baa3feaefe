"""Atomic file writes: the one way the package puts a file on disk.

A file is written under a hidden temporary name in its target directory
(``.tmp-<name>.<pid>.<random>.tmp``: hidden from pyarrow and not matched by
``*.parquet`` globs), flushed and fsynced, then renamed over the target with
:func:`os.replace`. A reader sees the old file or the new one, never half of one;
a crash leaves at most a temporary file that :func:`is_temporary` recognises.

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


@contextlib.contextmanager
def atomic_writer(target: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``target`` atomically on a clean exit.

    On an exception the temporary file is removed and ``target`` is left as it was.
    ``fsync=False`` skips the flush to disk (for caches, where losing an entry is harmless).
    """
    path = Path(target)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX
    )
    try:
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


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(target, fsync=fsync) as fh:
        fh.write(data)

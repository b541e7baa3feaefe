"""An exclusive lock on a directory: one writer at a time, a dead writer's lock taken over.

The lock is a regular file (``_coreviz_export.lock``; a symlink or a FIFO there is an
:class:`~coreviz_frames.errors.ExportError`, never followed or waited on) holding the
owner's pid, host and start time as JSON. Where the platform has :func:`fcntl.flock` the
file is also locked by the kernel, so a lock left by a process that died (even by
``SIGKILL``) is free again and is taken over. Without ``flock`` (Windows, some network
file systems) the file is created exclusively, and a lock file naming a pid that no
longer runs on this host is stale and taken over. A second writer gets
:class:`~coreviz_frames.errors.ExportError` saying who holds the lock.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with DirectoryLock(folder) as lock:
    ...     try:
    ...         DirectoryLock(folder).acquire()
    ...     except ExportError as exc:
    ...         print("busy:", "being written by another export" in str(exc))
    busy: True
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from coreviz_frames._util.checks import is_int
from coreviz_frames._util.fileio import TMP_PREFIX, TMP_SUFFIX
from coreviz_frames.errors import ExportError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "DirectoryLock"]

#: Name of the lock file at the root of a locked directory.
LOCK_NAME = "_coreviz_export.lock"
#: Flags every open of the lock file adds: never through a symlink, never waiting on a FIFO.
_SAFE = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _not_a_lock(path: Path, what: str) -> ExportError:
    return ExportError(
        f"{path} is {what}, not a lock file this package wrote: nothing was read or written "
        f"through it. Remove it yourself ({path}), then run again.",
        path=str(path.parent),
    )


def open_lock_file(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of the lock file without following a symlink or blocking on a FIFO; an
    :class:`ExportError` naming it unless it is a regular file.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / LOCK_NAME).symlink_to(folder / "elsewhere")
        >>> open_lock_file(folder / LOCK_NAME, os.O_RDONLY)
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ExportError: ... is a symbolic link, not a lock file ...
    """
    try:
        fd = os.open(path, flags | _SAFE, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EEXIST and path.is_symlink()):
            raise _not_a_lock(path, "a symbolic link") from None
        if exc.errno == errno.EISDIR:
            raise _not_a_lock(path, "a directory") from None
        raise
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        what = "a FIFO" if stat.S_ISFIFO(kind) else "not a regular file"
        raise _not_a_lock(path, what)
    return fd


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock: pid, host name and when it was taken (ISO text).

    Example:
        >>> LockHolder(pid=42, host="box", since="2026-01-01T00:00:00Z").describe()
        'pid 42 on host box, since 2026-01-01T00:00:00Z'
    """

    pid: int | None
    host: str | None
    since: str | None

    @classmethod
    def me(cls) -> LockHolder:
        """This process, now."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(os.getpid(), socket.gethostname(), now)

    @classmethod
    def from_bytes(cls, data: bytes) -> LockHolder | None:
        """The holder written in a lock file, or None if it is empty or unreadable."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        pid = doc.get("pid")
        return cls(
            pid if is_int(pid) else None,
            str(doc["host"]) if doc.get("host") is not None else None,
            str(doc["since"]) if doc.get("since") is not None else None,
        )

    def to_bytes(self) -> bytes:
        return json.dumps({"pid": self.pid, "host": self.host, "since": self.since}).encode()

    def describe(self) -> str:
        """``pid N on host H, since T`` for messages."""
        since = f", since {self.since}" if self.since else ""
        return f"pid {self.pid} on host {self.host}{since}"

    def is_dead(self) -> bool:
        """True only when the holder is known to be gone: same host and no such process."""
        if self.pid is None or self.host != socket.gethostname() or sys.platform == "win32":
            return False  # another host (or Windows, where os.kill(pid, 0) kills): unknown
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # EPERM: it exists, owned by someone else
            return False
        return False


class DirectoryLock:
    """The exclusive lock of one directory (see the module doc); a context manager.

    ``taken_over`` is the holder of a stale lock this one replaced, if any.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.taken_over: LockHolder | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> DirectoryLock:
        """Take the lock, or raise :class:`ExportError` naming the holder."""
        if self._fd is not None:
            raise ExportError(f"{self.path} is already held by this lock", path=str(self.path))
        for _ in range(20):  # retried only while other writers race to create/remove it
            fd = self._try_flock() if fcntl is not None else None
            if fd is None:
                fd = self._try_exclusive()
            if fd is not None:
                self._write_holder(fd)
                self._fd = fd
                return self
        raise ExportError(f"could not take the lock {self.path}", path=str(self.path.parent))

    def release(self) -> None:
        """Remove the lock file and let go of it (a no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(fd)  # closing drops the kernel lock

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # -- the two ways of locking ---------------------------------------------------------

    def _try_flock(self) -> int | None:
        """The locked fd; None to retry (the file was replaced meanwhile). Falls back to
        :meth:`_try_exclusive` (by returning from it) where ``flock`` is not supported."""
        assert fcntl is not None
        fd = open_lock_file(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockHolder.from_bytes(_read_fd(fd))
            os.close(fd)
            raise self._busy(holder) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return self._try_exclusive()
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # released and removed between our open and our flock: try again
            os.close(fd)
            return None
        previous = LockHolder.from_bytes(_read_fd(fd))
        if previous is not None and previous.host != socket.gethostname():
            # free for this kernel, but written on another host: flock may not reach it
            os.close(fd)
            raise self._busy(previous)
        self.taken_over = previous
        return fd

    def _try_exclusive(self) -> int | None:
        """Create the lock file exclusively; a stale one (dead pid, same host) is removed."""
        try:
            return open_lock_file(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        try:
            fd = open_lock_file(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            holder = LockHolder.from_bytes(_read_fd(fd))
        finally:
            os.close(fd)
        if holder is None or not holder.is_dead():
            raise self._busy(holder)
        # stale: move it aside under a name only we use, then create ours
        aside = self.path.with_name(f"{TMP_PREFIX}{LOCK_NAME}.{os.getpid()}{TMP_SUFFIX}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, aside)
            os.unlink(aside)
        self.taken_over = holder
        return None

    def current_holder(self) -> LockHolder | None:
        """Who holds this lock now, or None if it is free (or held by a dead process).

        Example:
            >>> import tempfile
            >>> DirectoryLock(tempfile.mkdtemp()).current_holder() is None
            True
        """
        try:
            fd = open_lock_file(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            holder = LockHolder.from_bytes(_read_fd(fd))
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return holder  # someone holds it
                except OSError:
                    pass  # no flock here: judge by the pid
                else:
                    return None  # free: whoever wrote it is gone
            return None if holder is not None and holder.is_dead() else holder
        finally:
            os.close(fd)

    def _write_holder(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, LockHolder.me().to_bytes())

    def _busy(self, holder: LockHolder | None) -> ExportError:
        who = holder.describe() if holder is not None else "a process that has not said who"
        root = self.path.parent
        return ExportError(
            f"{root} is being written by another export ({who}); wait for it to finish. "
            f"If that process is gone, delete {self.path} and run again.",
            path=str(root),
        )


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096)

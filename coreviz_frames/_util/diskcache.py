"""An opt-in on-disk cache of downloaded image bytes, keyed by URL.

Each URL is stored once under ``<dir>/<h[:2]>/<h>`` where ``h`` is the
SHA-256 of the URL, written atomically with :func:`coreviz_frames._util.fileio.atomic_write_bytes`
(a hidden temporary file, then ``os.replace``; no fsync: a lost entry is fetched again),
so a crash never leaves a half-written entry under the final name. Entries are
private to their owner (mode 0600, whatever the umask), unlike the files of exports
and datasets. A cached
file that fails to decode is removed by the image loader and fetched again. An
optional size cap evicts the least recently used entries (oldest modification time;
a hit refreshes it).

The folder may be shared, so an entry is not trusted: :meth:`DiskCache.read` opens it
without following a link or blocking (``O_NOFOLLOW | O_NONBLOCK``), inside a
sub-folder opened the same way, and uses it only if it is a regular file with one link
(the cache writes no other) within the size cap. A symlink, a hard link, a FIFO, a
device, a directory or an oversized file at an entry's path is discarded and counted in
:attr:`DiskCache.stats` (``rejected``); the image is then downloaded again. A write
never follows a link planted at an entry or at its sub-folder.

The cache is used when ``cache_dir`` is given, or else when the
``COREVIZ_FRAMES_CACHE`` environment variable names a directory
(``COREVIZ_FRAMES_CACHE_MAX_BYTES`` sets its cap). ``cache_dir=False``
turns it off even when the variable is set.

Example:
    >>> cache = DiskCache("/tmp/cvf-cache", max_bytes=500_000_000)
    >>> cache.put("https://blob.example/a.jpg", b"...")      # doctest: +SKIP
    >>> cache.get("https://blob.example/a.jpg")              # doctest: +SKIP
    b'...'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames.errors import ConfigError

__all__ = ["DEFAULT_MAX_BYTES", "DiskCache", "resolve_cache"]

CACHE_ENV = "COREVIZ_FRAMES_CACHE"
CACHE_MAX_BYTES_ENV = "COREVIZ_FRAMES_CACHE_MAX_BYTES"
#: Largest blob accepted by default (bytes): a download (``DownloadOptions.max_bytes``)
#: and a cache entry read without a download's options (the notebook preview).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

#: How an entry is opened: never through a link, never waiting on a FIFO or a device.
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
#: How an entry's sub-folder is opened: a real directory, not a link to one.
_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_DIR_FD = os.open in os.supports_dir_fd


@dataclass
class CacheStats:
    """What a :class:`DiskCache` met: ``hits``, ``misses`` (no entry), ``rejected``
    (an entry that was not a regular file within the cap, or could not be read: discarded).

    Example:
        >>> CacheStats().rejected
        0
    """

    hits: int = 0
    misses: int = 0
    rejected: int = 0


class DiskCache:
    """A directory of URL-keyed files with atomic writes and an optional size cap.

    Example:
        >>> cache = DiskCache(tmp_path)                      # doctest: +SKIP
        >>> cache.path_for("https://x/a.jpg").name[:8]       # doctest: +SKIP
        '3f1c0e4b'
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ConfigError(f"cache max_bytes must be positive, got {max_bytes!r}")
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None  # running size estimate, computed lazily
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return f"DiskCache({str(self.directory)!r}, max_bytes={self.max_bytes!r})"

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_total"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str) -> str:
        """The SHA-256 hex digest of ``url``: the file name of its entry."""
        return hashlib.sha256(url.encode("utf-8")).hexdigest()

    def path_for(self, url: str) -> Path:
        """Where the entry of ``url`` lives (whether or not it exists)."""
        key = self.key(url)
        return self.directory / key[:2] / key

    def read(self, url: str, max_bytes: int | None = None) -> bytes | None:
        """The cached bytes of ``url``, or None; a hit refreshes the entry's mtime.

        The entry is used only if it is a regular file of at most ``max_bytes`` (and of
        the cache's own cap) bytes, opened without following a link or blocking;
        anything else at its path is discarded (errors suppressed) and counted in
        :attr:`stats`, so the caller downloads the image again.
        """
        key = self.key(url)
        try:
            data = self._read_entry(key, self._read_cap(max_bytes))
        except FileNotFoundError:
            with self._lock:
                self.stats.misses += 1
            return None
        except OSError:
            with self._lock:
                self.stats.rejected += 1
            self.discard(url)
            return None
        with self._lock:
            self.stats.hits += 1
        return data

    def _read_cap(self, max_bytes: int | None) -> int | None:
        caps = [cap for cap in (max_bytes, self.max_bytes) if cap is not None]
        return min(caps) if caps else None

    def _read_entry(self, key: str, cap: int | None) -> bytes:
        """The bytes of entry ``key``; OSError for anything but a regular file within ``cap``."""
        if _DIR_FD:
            sub = os.open(self.directory / key[:2], _DIR_FLAGS)
            try:
                fd = os.open(key, _READ_FLAGS, dir_fd=sub)
            finally:
                os.close(sub)
        else:  # no dir_fd (Windows): the entry itself is still checked
            fd = os.open(self.directory / key[:2] / key, _READ_FLAGS)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OSError(f"cache entry {key} is not a regular file")
            if st.st_nlink > 1:  # a hard link: the same file as one outside the cache
                raise OSError(f"cache entry {key} is a hard link")
            if cap is not None and st.st_size > cap:
                raise OSError(f"cache entry {key} is larger than {cap} bytes")
            data = fh.read() if cap is None else fh.read(cap + 1)
            if cap is not None and len(data) > cap:  # it grew after the check
                raise OSError(f"cache entry {key} is larger than {cap} bytes")
            if os.utime in os.supports_fd:
                with contextlib.suppress(OSError):  # a read-only cache: a hit all the same
                    os.utime(fh.fileno())
        return data

    def get(self, url: str) -> bytes | None:
        """The cached bytes of ``url``, or None (see :meth:`read`)."""
        return self.read(url)

    def put(self, url: str, data: bytes) -> Path:
        """Store ``data`` for ``url`` atomically and return its path.

        A link at the entry's sub-folder is removed first (the write never lands
        outside the cache); a link or FIFO at the entry is replaced, not followed."""
        path = self.path_for(url)
        self._real_folder(path.parent)
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # an empty directory in the way; a full one fails the write
        # a lost entry is only fetched again; entries stay private (0600) to their owner
        atomic_write_bytes(path, data, fsync=False, private=True)
        if self.max_bytes is not None:
            with self._lock:
                if self._total is None:
                    self._total = self.size()
                else:
                    self._total += len(data)
                if self._total > self.max_bytes:
                    self._evict(keep=path)
        return path

    @staticmethod
    def _real_folder(folder: Path) -> None:
        """Make ``folder`` a real directory: anything else there (a link) is removed."""
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                folder.unlink()
        folder.mkdir(parents=True, exist_ok=True)

    def discard(self, url: str) -> None:
        """Remove whatever is at the entry of ``url`` (a corrupt file, a link, a FIFO, an
        empty directory), never following a link; errors are suppressed."""
        path = self.path_for(url)
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.lstat(path.parent).st_mode):
                path.parent.unlink()  # a link planted for the sub-folder
                return
            if stat.S_ISDIR(os.lstat(path).st_mode):
                path.rmdir()
            else:
                path.unlink()

    def _entries(self) -> list[tuple[float, int, Path]]:
        out: list[tuple[float, int, Path]] = []
        if not self.directory.is_dir():
            return out
        for sub in os.scandir(self.directory):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if entry.name.startswith("."):  # temporary files of writes in progress
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def size(self) -> int:
        """Total bytes of all entries."""
        return sum(size for _, size, _ in self._entries())

    def _evict(self, *, keep: Path | None = None) -> None:
        # Called with the lock held: drop oldest entries until 90 % of the cap.
        entries = sorted(self._entries(), key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        target = int(self.max_bytes * 0.9) if self.max_bytes else total
        for _, size, path in entries:
            if total <= target:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
        self._total = total

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            for _, _, path in self._entries():
                with contextlib.suppress(OSError):
                    path.unlink()
            self._total = 0


def resolve_cache(cache_dir: DiskCache | str | os.PathLike[str] | bool | None) -> DiskCache | None:
    """The cache to use: ``cache_dir`` if given, else ``$COREVIZ_FRAMES_CACHE``, else None.

    Example:
        >>> resolve_cache(False) is None
        True
    """
    if isinstance(cache_dir, DiskCache):
        return cache_dir
    if cache_dir is False:
        return None
    if cache_dir is True:
        cache_dir = None
    max_bytes = None
    raw = os.environ.get(CACHE_MAX_BYTES_ENV)
    if raw:
        try:
            max_bytes = int(raw)
        except ValueError:
            raise ConfigError(f"{CACHE_MAX_BYTES_ENV} must be an integer, got {raw!r}") from None
    if cache_dir is None:
        env = os.environ.get(CACHE_ENV)
        if not env:
            return None
        cache_dir = env
    return _cached_instance(os.fspath(cache_dir), max_bytes)


_INSTANCES: dict[tuple[str, int | None], DiskCache] = {}
_INSTANCES_LOCK = threading.Lock()


def _cached_instance(directory: str, max_bytes: int | None) -> DiskCache:
    key = (os.path.abspath(os.path.expanduser(directory)), max_bytes)
    with _INSTANCES_LOCK:
        cache = _INSTANCES.get(key)
        if cache is None:
            cache = _INSTANCES[key] = DiskCache(directory, max_bytes=max_bytes)
        return cache

"""An opt-in on-disk cache of downloaded image bytes, keyed by URL.

Each URL is stored once under ``<dir>/<h[:2]>/<h>`` where ``h`` is the
SHA-256 of the URL, written atomically with :func:`coreviz_frames.fileio.atomic_write_bytes`
(a hidden temporary file, then ``os.replace``; no fsync: a lost entry is fetched again),
so a crash never leaves a half-written entry under the final name. A cached
file that fails to decode is removed by the image loader and fetched again. An
optional size cap evicts the least recently used entries (oldest modification time;
a hit refreshes it).

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
import threading
from pathlib import Path

from .errors import ConfigError
from .fileio import atomic_write_bytes

__all__ = ["CACHE_ENV", "CACHE_MAX_BYTES_ENV", "DiskCache", "resolve_cache"]

CACHE_ENV = "COREVIZ_FRAMES_CACHE"
CACHE_MAX_BYTES_ENV = "COREVIZ_FRAMES_CACHE_MAX_BYTES"


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

    def get_path(self, url: str) -> Path | None:
        """The path of the cached entry of ``url``, or None; a hit refreshes its mtime."""
        path = self.path_for(url)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        except OSError:  # a read-only cache: a hit all the same
            return path if path.is_file() else None
        return path

    def get(self, url: str) -> bytes | None:
        """The cached bytes of ``url``, or None."""
        path = self.get_path(url)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def put(self, url: str, data: bytes) -> Path:
        """Store ``data`` for ``url`` atomically and return its path."""
        path = self.path_for(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, fsync=False)  # a lost entry is only fetched again
        if self.max_bytes is not None:
            with self._lock:
                if self._total is None:
                    self._total = self.size()
                else:
                    self._total += len(data)
                if self._total > self.max_bytes:
                    self._evict(keep=path)
        return path

    def discard(self, url: str) -> None:
        """Remove the entry of ``url`` (a corrupt one, say), if there is one."""
        with contextlib.suppress(FileNotFoundError):
            self.path_for(url).unlink()

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

"""The export directory and its manifest: the one owner of both.

An export is a directory with one sub-directory per grain and a manifest::

    export/
        _coreviz_manifest.json          what was exported, from where, row counts, failures
        _coreviz_export.lock            while a writer runs (see :mod:`.lock`)
        media/part-000000.parquet       one file per grain per batch ("part")
        frames/part-000000.parquet
        captions/ objects/ tags/
        (with partition_by="dataset_id": objects/dataset_id=abc/part-000000.parquet, ...)

:class:`ExportStore` is the only code that changes an export directory or its
manifest; every change it allows is a method: :meth:`~ExportStore.open` (lock, then
start, clear or resume), :meth:`~ExportStore.commit_part`,
:meth:`~ExportStore.adopt_parts` (files written by Dask), :meth:`~ExportStore.record_failures`
and :meth:`~ExportStore.finish` (``complete``, ``incomplete`` or ``failed``). Used as a
context manager, an exception inside the block finishes the export as ``failed`` (the
manifest is never left ``running`` unless the process is killed) and the lock is released.

A part is *committed* when all of its files are renamed into place and the manifest
(itself replaced atomically) lists it. On resume, a part file the manifest does not list
is deleted and its media exported again, and media of committed parts are skipped. Resume
deletes only names it writes itself (``part-NNNNNN.parquet`` and temporary files, in the
grain folders and their hive partition folders), never follows a symlink, and refuses a
grain or partition folder that is a symlink.

``overwrite`` first checks that every grain folder holds only Parquet and our temporary
files (it refuses, deleting nothing, otherwise), then retires the manifest (rewritten with
status ``clearing``), then deletes. Killed at any point, the directory is either the old
export or one that ``--overwrite`` or ``--resume`` finishes clearing.

Failures travel as :class:`~coreviz_frames.failures.FailedFetch`; the manifest keeps them
as ``{"id", "status", "error_type", "reason"}`` (the reason starts with the error type, as
manifests written before ``error_type`` did).

Example:
    >>> import tempfile
    >>> from coreviz_frames.tables import MediaTables
    >>> out = tempfile.mkdtemp()
    >>> with ExportStore(out).open() as store:
    ...     commit = store.commit_part(MediaTables.empty())
    ...     store.finish("complete")
    >>> read_manifest(out)["status"], commit.part
    ('complete', 0)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

import pandas as pd
import pyarrow.parquet as pq

from ._version import __version__
from .errors import ConfigError, ExportError
from .engines import write_dataset_card
from .failures import FailedFetch
from .fileio import atomic_write_bytes, is_temporary
from .grainfiles import (
    DEFAULT_ROW_GROUP_SIZE,
    check_partition_by,
    split_partitions,
    to_arrow,
    write_file,
)
from .ids import normalize_id
from .lock import LOCK_NAME, DirectoryLock
from .manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    clean_source,
    failure_from_manifest,
    failure_to_manifest,
    manifest_files,
    read_manifest,
    utc_now,
)
from .schema import BOX_CONVENTION, GRAINS, SCHEMA_VERSION, empty_frame

if TYPE_CHECKING:
    from .tables import MediaTables

__all__ = [
    "STATUSES",
    "ExportStore",
    "GrainFrames",
    "PartCommit",
    "part_name",
    "write_tables",
]

#: The states an export ends in (``running`` while a writer works on it).
STATUSES = ("complete", "incomplete", "failed")

_PART_RE = re.compile(r"^part-(\d{6,})\.parquet$")

PathLike = str | os.PathLike


class GrainFrames(Protocol):
    """Anything with ``items()`` of ``(grain, DataFrame)``, such as ``MediaTables``."""

    def items(self) -> Iterable[tuple[str, pd.DataFrame]]: ...


# --------------------------------------------------------------------------- small helpers


def part_name(seq: int) -> str:
    """The file name of part ``seq``, sortable by name.

    Example:
        >>> part_name(42)
        'part-000042.parquet'
    """
    return f"part-{seq:06d}.parquet"


@dataclass(frozen=True)
class PartCommit:
    """One committed part: its number, media count and rows per grain."""

    part: int
    media: int
    rows: dict[str, int]


# --------------------------------------------------------------------------- the store


class ExportStore:
    """One export directory: lock, manifest, committed parts (see the module doc)."""

    def __init__(
        self,
        root: PathLike,
        *,
        partition_by: str | None = None,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        compression: str = "zstd",
    ) -> None:
        self.root = Path(root)
        self.partition_by = check_partition_by(partition_by)
        if row_group_size < 1:
            raise ConfigError(f"row_group_size must be at least 1, not {row_group_size}")
        self.row_group_size = row_group_size
        self.compression = compression
        self._lock = DirectoryLock(self.root)
        self._manifest: dict[str, Any] = {}
        self._exported: set[str] = set()
        self._failed: dict[Any, FailedFetch] = {}

    # -- read-only views ------------------------------------------------------------------

    @property
    def status(self) -> str | None:
        """``running`` once open, then the status :meth:`finish` gave."""
        return self._manifest.get("status")

    @property
    def has_parts(self) -> bool:
        """True once the manifest lists a part."""
        return bool(self._manifest.get("parts"))

    def is_exported(self, media_id: str | None) -> bool:
        """True if ``media_id`` (normalised) is in a committed part."""
        return normalize_id(media_id) in self._exported

    def exported_ids(self) -> frozenset[str]:
        """The (normalised) media ids of the committed parts."""
        return frozenset(self._exported)

    def failures(self) -> list[FailedFetch]:
        """Every failure recorded and not exported since, in the order first seen."""
        return list(self._failed.values())

    def failure_entries(self) -> list[dict[str, Any]]:
        """:meth:`failures` as manifest entries (plain JSON dicts)."""
        return list(self._manifest.get("failed", []))

    # -- opening and closing --------------------------------------------------------------

    def open(
        self, *, overwrite: bool = False, resume: bool = False, source: Any = None
    ) -> ExportStore:
        """Lock the directory, then start a new export, clear an old one, or resume one.

        ``ExportError`` when ``root`` is not empty and neither flag allows it, when another
        writer holds the lock, or when a resumed export is incompatible or damaged.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise ExportError(f"{root} exists and is not a directory", path=str(root))
        root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            self._open_locked(overwrite, resume, source)
            write_dataset_card(root, self.partition_by)  # README.md: where each reader points
        except BaseException:
            self._lock.release()
            raise
        return self

    def _open_locked(self, overwrite: bool, resume: bool, source: Any) -> None:
        root = self.root
        entries = [e for e in root.iterdir() if e.name != LOCK_NAME]
        has_manifest = (root / MANIFEST_NAME).is_file()
        if entries and resume and has_manifest:
            manifest = read_manifest(root)
            if manifest.get("status") != "clearing":
                self._resume(manifest, source)
                return
            self._clear()  # an overwrite killed while clearing: finish it, then start
        elif entries and resume and not overwrite:
            raise ExportError(
                f"cannot resume: {root} is not empty and holds no {MANIFEST_NAME} "
                "(if it is an export whose overwrite was interrupted, run it again with "
                "--overwrite)",
                path=str(root),
            )
        elif entries and not overwrite:
            raise ExportError(
                f"{root} is not empty: pass overwrite=True to replace the export there, "
                "or resume=True to continue it",
                path=str(root),
            )
        elif entries:
            self._clear()
        self._start(source)

    def close(self) -> None:
        """Release the lock (the manifest keeps whatever status it has)."""
        self._lock.release()

    def __enter__(self) -> ExportStore:
        if not self._lock.held:
            raise ExportError("open() the store before using it in a with block")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and self.status == "running":
                self.finish("failed", reason=f"{type(exc).__name__}: {exc}")
        except OSError:
            pass  # the original exception matters more than a manifest we cannot write
        finally:
            self.close()

    def _start(self, source: Any) -> None:
        now = utc_now()
        self._manifest = {
            "format": MANIFEST_FORMAT,
            "manifest_version": MANIFEST_VERSION,
            "package_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "box_convention": BOX_CONVENTION,
            "grains": list(GRAINS),
            "partition_by": self.partition_by,
            "source": clean_source(source) if source is not None else None,
            "status": "running",
            "status_reason": None,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
            "runs": 1,
            "media_exported": 0,
            "rows": dict.fromkeys(GRAINS, 0),
            "parts": [],
            "failed": [],
        }
        self._exported = set()
        self._failed = {}
        self._save()

    def _resume(self, manifest: dict[str, Any], source: Any) -> None:
        root = self.root
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ExportError(
                f"cannot resume {root}: it was written with schema version "
                f"{manifest.get('schema_version')}, this is version {SCHEMA_VERSION}",
                path=str(root),
            )
        previous = manifest.get("partition_by")
        if self.partition_by is not None and self.partition_by != previous:
            raise ExportError(
                f"cannot resume {root} with partition_by={self.partition_by!r}: "
                f"it is partitioned by {previous!r}",
                path=str(root),
            )
        self.partition_by = previous
        if source is not None:
            old = (manifest.get("source") or {}).get("collection_id")
            cleaned = clean_source(source)
            new = cleaned.get("collection_id") if isinstance(cleaned, Mapping) else None
            if old and new and old != new:
                raise ExportError(
                    f"cannot resume {root}: it exports collection {old!r}, not {new!r}",
                    path=str(root),
                )
            if not manifest.get("source"):
                manifest["source"] = cleaned
        for _ in self._owned_entries():
            pass  # a symlinked grain or partition folder is refused before anything else
        for grain in GRAINS:
            manifest_files(root, manifest, grain)  # a damaged export is refused, named
        self._manifest = manifest
        self._drop_uncommitted()
        self._exported = self._read_exported_ids()
        self._failed = {}
        self._add_failures(failure_from_manifest(f) for f in manifest.get("failed", []))
        manifest["status"] = "running"
        manifest["status_reason"] = None
        manifest["finished_at"] = None
        manifest["runs"] = int(manifest.get("runs", 1)) + 1
        self._save()

    # -- what is on disk ------------------------------------------------------------------

    def _committed_files(self) -> set[Path]:
        return {
            self.root / rel
            for part in self._manifest.get("parts", [])
            for files in part["files"].values()
            for rel in files
        }

    def _owned_entries(self) -> Iterator[tuple[Path, os.DirEntry[str]]]:
        """Every entry of the grain folders and their partition folders, without following
        a symlink; a grain or partition folder that is a symlink is an ExportError."""
        for grain in GRAINS:
            gdir = self.root / grain
            if gdir.is_symlink():
                raise ExportError(
                    f"refusing to write into {self.root}: {gdir} is a symlink; remove it yourself",
                    path=str(self.root),
                )
            if not gdir.is_dir():
                continue
            for entry in _scandir(gdir):
                yield gdir, entry
                if entry.is_symlink() and "=" in entry.name:
                    raise ExportError(
                        f"refusing to write into {self.root}: {entry.path} is a symlink; "
                        "remove it yourself",
                        path=str(self.root),
                    )
                if entry.is_dir(follow_symlinks=False) and "=" in entry.name:
                    for inner in _scandir(Path(entry.path)):
                        yield Path(entry.path), inner

    def _drop_uncommitted(self) -> None:
        """Delete our temporary files and the part files no committed part lists."""
        committed = self._committed_files()
        doomed = [
            Path(entry.path)
            for _, entry in self._owned_entries()
            if entry.is_file(follow_symlinks=False)
            and (
                is_temporary(entry.name)
                or (_PART_RE.match(entry.name) and Path(entry.path) not in committed)
            )
        ]
        doomed += [
            Path(e.path)
            for e in _scandir(self.root)
            if e.is_file(follow_symlinks=False) and is_temporary(e.name)
        ]
        for path in doomed:
            path.unlink(missing_ok=True)

    def _check_clearable(self) -> None:
        """Refuse (deleting nothing) unless the grain folders hold only Parquet, our
        temporary files and hive partition folders, none of them a symlink."""
        for grain in GRAINS:
            path = self.root / grain
            if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
                self._refuse_overwrite(path)
        for folder, entry in self._owned_entries():
            if entry.is_symlink():
                ok = False
            elif entry.is_dir():
                ok = "=" in entry.name and folder.parent == self.root
            else:
                ok = entry.name.endswith(".parquet") or is_temporary(entry.name)
            if not ok:
                self._refuse_overwrite(Path(entry.path))

    def _clear(self) -> None:
        """Remove a previous export: check everything, retire the manifest, then delete."""
        self._check_clearable()
        # a kill from here on leaves a "clearing" manifest, which --overwrite/--resume finish
        retired = {"format": MANIFEST_FORMAT, "status": "clearing", "parts": [], "failed": []}
        self._manifest = retired
        self._save()
        for entry in _scandir(self.root):
            if entry.is_file(follow_symlinks=False) and is_temporary(entry.name):
                Path(entry.path).unlink(missing_ok=True)
        for grain in GRAINS:
            if (self.root / grain).is_dir():
                shutil.rmtree(self.root / grain)

    def _refuse_overwrite(self, path: Path) -> None:
        raise ExportError(
            f"refusing to overwrite {self.root}: {path} does not look like part of an "
            "export; remove it yourself",
            path=str(self.root),
        )

    def _read_exported_ids(self) -> set[str]:
        """Media ids of the committed media parts (read from the Parquet files)."""
        ids: set[str] = set()
        for part in self._manifest.get("parts", []):
            for rel in part["files"]["media"]:
                file = self.root / rel
                if self.partition_by == "media_id":  # the id is in the hive path only
                    if pq.ParquetFile(file).metadata.num_rows:
                        ids.add(unquote(file.parent.name.split("=", 1)[1]))
                    continue
                column = pq.read_table(file, columns=["media_id"]).column(0)
                ids.update(column.to_pylist())
        return ids

    # -- changes --------------------------------------------------------------------------

    def _save(self) -> None:
        self._manifest["updated_at"] = utc_now()
        data = json.dumps(self._manifest, indent=1, sort_keys=False).encode()
        atomic_write_bytes(self.root / MANIFEST_NAME, data + b"\n")

    def _require_running(self) -> None:
        if self.status != "running":
            raise ExportError(
                f"{self.root}: the export is {self.status or 'not open'}, not running",
                path=str(self.root),
            )

    def _next_seq(self) -> int:
        parts = self._manifest.get("parts", [])
        return max((int(p["part"]) for p in parts), default=-1) + 1

    def _add_failures(self, failures: Iterable[FailedFetch]) -> None:
        for failure in failures:
            if not isinstance(failure, FailedFetch):
                raise TypeError(f"a failure must be a FailedFetch, not {type(failure).__name__}")
            key = normalize_id(failure.media_id)
            if key is None:
                self._failed[("no id", len(self._failed))] = failure
            elif key not in self._exported:
                self._failed[key] = failure
        self._manifest["failed"] = [failure_to_manifest(f) for f in self._failed.values()]

    def record_failures(self, failures: Iterable[FailedFetch]) -> None:
        """Add failures (by id; an id already exported is ignored). Saved with the next
        commit or :meth:`finish`."""
        self._require_running()
        self._add_failures(failures)

    def _commit(
        self, files: dict[str, list[str]], rows: dict[str, int], media: int, ids: list[Any]
    ) -> PartCommit:
        seq = self._next_seq()
        entry = {"part": seq, "media": media, "rows": rows, "files": files}
        entry["committed_at"] = utc_now()
        manifest = self._manifest
        manifest["parts"].append(entry)
        manifest["media_exported"] = int(manifest.get("media_exported", 0)) + media
        for grain, n in rows.items():
            manifest["rows"][grain] = int(manifest["rows"].get(grain, 0)) + n
        for ident in ids:
            ident = normalize_id(ident) if isinstance(ident, str) else None
            if ident is not None:
                self._exported.add(ident)
                self._failed.pop(ident, None)
        return PartCommit(seq, media, dict(rows))

    def commit_part(
        self, tables: MediaTables | GrainFrames, *, failures: Iterable[FailedFetch] = ()
    ) -> PartCommit:
        """Write one part (a file per grain and partition), then commit it with ``failures``.

        The files are written under temporary names and renamed; the part counts once the
        manifest listing it is saved (by this call).
        """
        self._require_running()
        frames = dict(tables.items())
        arrow = {grain: to_arrow(frames[grain], grain) for grain in GRAINS}  # checks first
        name = part_name(self._next_seq())
        files: dict[str, list[str]] = {}
        for grain, table in arrow.items():
            files[grain] = []
            for subdir, piece in split_partitions(table, self.partition_by):
                rel = Path(grain, subdir, name) if subdir else Path(grain, name)
                write_file(
                    self.root / rel,
                    piece,
                    row_group_size=self.row_group_size,
                    compression=self.compression,
                )
                files[grain].append(rel.as_posix())
        rows = {grain: table.num_rows for grain, table in arrow.items()}
        ids = frames["media"]["media_id"].tolist()
        commit = self._commit(files, rows, len(ids), ids)
        self._add_failures(failures)
        self._save()
        return commit

    def adopt_parts(self, media_per_part: list[int]) -> list[PartCommit]:
        """Commit the part files another writer (Dask) put in the grain folders.

        Part ``N`` (``part-N.parquet`` in any grain or partition folder) holds
        ``media_per_part[N]`` media; row counts come from the Parquet footers. A grain
        without any file gets an empty one in part 0, so every grain has its columns.
        """
        self._require_running()
        by_part: dict[int, dict[str, list[str]]] = {
            i: {g: [] for g in GRAINS} for i in range(max(len(media_per_part), 1))
        }
        for _, entry in self._owned_entries():
            match = _PART_RE.match(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                grain = Path(entry.path).relative_to(self.root).parts[0]
                rel = Path(entry.path).relative_to(self.root).as_posix()
                by_part.setdefault(int(match[1]), {g: [] for g in GRAINS})[grain].append(rel)
        for grain in GRAINS:
            if not any(files[grain] for files in by_part.values()):
                by_part[0][grain].append(self._write_empty(grain))
        commits = []
        for seq in sorted(by_part):
            files = {g: sorted(by_part[seq][g]) for g in GRAINS}
            rows = {
                g: sum(pq.ParquetFile(self.root / rel).metadata.num_rows for rel in files[g])
                for g in GRAINS
            }
            media = media_per_part[seq] if seq < len(media_per_part) else 0
            commits.append(self._commit(files, rows, media, []))
        self._save()
        return commits

    def _write_empty(self, grain: str) -> str:
        table = to_arrow(empty_frame(grain), grain)
        rel = Path(grain, part_name(0))
        for subdir, piece in split_partitions(table, self.partition_by):
            rel = Path(grain, subdir, part_name(0)) if subdir else rel
            write_file(
                self.root / rel,
                piece,
                row_group_size=self.row_group_size,
                compression=self.compression,
            )
        return rel.as_posix()

    def finish(self, status: str, *, reason: str | None = None) -> None:
        """End the run: ``complete``, ``incomplete`` (``reason`` says why the walk stopped
        early) or ``failed`` (``reason``: the error)."""
        if status not in STATUSES:
            raise ConfigError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        self._require_running()
        self._manifest["status"] = status
        self._manifest["status_reason"] = reason
        self._manifest["finished_at"] = utc_now()
        self._save()


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


# --------------------------------------------------------------------------- write_tables


def write_tables(
    tables: MediaTables,
    path: PathLike,
    *,
    partition_by: str | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
    overwrite: bool = False,
) -> Path:
    """Write :class:`~coreviz_frames.tables.MediaTables` as one Parquet directory per grain.

    Every grain gets a file, even with zero rows, so readers always see the
    columns. Refuses a non-empty ``path`` unless ``overwrite`` (see module doc).
    Returns ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> path = write_tables(tables, "export/", partition_by="dataset_id")  # doctest: +SKIP
        >>> read_parquet(path).media.equals(tables.media)  # doctest: +SKIP
        True
    """
    store = ExportStore(
        path, partition_by=partition_by, row_group_size=row_group_size, compression=compression
    )
    with store.open(overwrite=overwrite):
        store.commit_part(tables)
        store.finish("complete")
    return store.root

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

Each part may have a fingerprint file, ``_coreviz_index/part-NNNNNN.parquet`` (media id,
fingerprint, listing fingerprint; the leading ``_`` hides it from Parquet readers), listed
as the part's ``index``. A sync (:mod:`.syncing`) changes an export in **snapshots**:
:meth:`~ExportStore.open_sync` locks without writing, :meth:`~ExportStore.stage_part` and
:meth:`~ExportStore.stage_rewrite` (copy-on-write of a part without some media) write
files no manifest lists yet, and :meth:`~ExportStore.commit_snapshot` replaces the
manifest atomically (a new ``snapshot`` number, the ``syncs`` history), then deletes the
parts it no longer lists. Killed before the manifest is replaced, the export reads as the
old snapshot; after, as the new one; leftovers are deleted by the next sync or resume.

Failures travel as :class:`~coreviz_frames.failures.FailedFetch`; the manifest keeps them
as ``{"id", "status", "error_type", "reason"}`` (the reason starts with the error type, as
manifests written before ``error_type`` did).

Example:
    >>> import tempfile
    >>> from coreviz_frames.tables.media_tables import MediaTables
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
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coreviz_frames._util.checks import check_choice, check_int
from coreviz_frames._util.concurrency import run_fail_fast
from coreviz_frames._util.fileio import TMP_PREFIX, TMP_SUFFIX, atomic_write_bytes, is_temporary
from coreviz_frames._util.ids import id_key, normalize_id
from coreviz_frames._version import __version__
from coreviz_frames.errors import ExportError
from coreviz_frames.exports.engines import CARD_NAME, is_our_card, write_dataset_card
from coreviz_frames.exports.grainfiles import (
    DEFAULT_ROW_GROUP_SIZE,
    check_partition_by,
    damaged_part,
    part_problem,
    read_grain,
    split_partitions,
    write_file,
)
from coreviz_frames.exports.lock import LOCK_NAME, DirectoryLock
from coreviz_frames.exports.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    clean_source,
    failure_from_manifest,
    failure_to_manifest,
    manifest_files,
    read_manifest,
    repair_hint,
    utc_now,
)
from coreviz_frames.exports.manifestcheck import (
    INDEX_DIR,
    INDEX_SUFFIX,
    PART_RE,
    hive_layout,
    is_partition_folder,
)
from coreviz_frames.failures import FailedFetch
from coreviz_frames.schema import BOX_CONVENTION, GRAINS, SCHEMA_VERSION, SCHEMAS, empty_frame
from coreviz_frames.tables.arrow import as_grain_table, file_metadata, to_arrow

if TYPE_CHECKING:
    from coreviz_frames.tables.media_tables import MediaTables

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "HISTORY_LENGTH",
    "ExportStore",
    "Fingerprints",
    "GrainFrames",
    "PartCommit",
    "PartWriter",
    "PathLike",
    "PendingPart",
    "StoredMedia",
    "grain_tables",
    "index_table",
    "part_name",
    "write_tables",
]

#: The states an export ends in (``running`` while a writer works on it).
STATUSES = ("complete", "incomplete", "failed")

#: Media per part of an export or a sync unless ``batch_size`` says otherwise. A part is
#: written as one file per grain; each file costs a fixed ~2 ms of CPU (a Parquet writer,
#: a zstd context per column, an fsync), so parts of 1,000 synthetic media spent a quarter
#: of their writing on it. 2,000 halves the files and made a 20,000-media export about 8%
#: faster (``benchmarks/bench_pipeline.py``).
DEFAULT_BATCH_SIZE = 2000
#: How many syncs the manifest's ``syncs`` history keeps.
HISTORY_LENGTH = 20
#: Threads that write the files of one part side by side (five grains, more when partitioned).
_WRITE_THREADS = 4
_INDEX_SCHEMA = pa.schema(
    [
        pa.field("media_id", pa.string(), nullable=False),
        pa.field("fingerprint", pa.string()),
        pa.field("listing_fingerprint", pa.string()),
    ]
)

#: ``{media_id: (fingerprint, listing_fingerprint)}`` of the media of one part.
Fingerprints = Mapping[str, tuple[str | None, str | None]]

PathLike = str | os.PathLike


class GrainFrames(Protocol):
    """Anything with ``items()`` of ``(grain, table)``: a ``MediaTables`` of DataFrames, or
    a dict of Arrow tables as :func:`~coreviz_frames.tables.flatten.flatten` builds them."""

    def items(self) -> Iterable[tuple[str, pd.DataFrame | pa.Table]]: ...


def grain_tables(tables: MediaTables | GrainFrames) -> dict[str, pa.Table]:
    """Each grain of ``tables`` as the Arrow table to write (schema checked)."""
    given = dict(tables.items())
    return {grain: as_grain_table(given[grain], grain) for grain in GRAINS}


# --------------------------------------------------------------------------- small helpers


def staged_name(target: Path) -> Path:
    """The hidden name a sync writes ``target`` under until its snapshot is committed (a
    temporary name: hidden from readers, never matched by ``*.parquet``).

    Example:
        >>> staged_name(Path("media/part-000004.parquet")).name
        '.tmp-part-000004.parquet.staged.tmp'
    """
    return target.with_name(f"{TMP_PREFIX}{target.name}.staged{TMP_SUFFIX}")


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
    bytes_written: int = 0


@dataclass(frozen=True)
class StoredMedia:
    """One media of the current snapshot: its part and fingerprints (None when the part
    was written without them)."""

    media_id: str
    part: int
    fingerprint: str | None
    listing_fingerprint: str | None


@dataclass(frozen=True)
class PendingPart:
    """A part another process wrote under its final names (:class:`PartWriter`), not yet
    committed: the store lists it with :meth:`ExportStore.adopt_pending`."""

    part: int
    files: dict[str, list[str]]
    rows: dict[str, int]
    ids: list[Any]
    index: str | None


@dataclass(frozen=True)
class PartWriter:
    """Writes the files of a part of an open export from another process (same layout,
    options and names as :meth:`ExportStore.commit_part`); it pickles. The part number
    comes from :meth:`ExportStore.reserve_part`; the parent commits what it returns.

    Example:
        >>> import tempfile
        >>> from coreviz_frames.tables.media_tables import MediaTables
        >>> with ExportStore(tempfile.mkdtemp()).open() as store:
        ...     pending = store.part_writer().write(MediaTables.empty(), store.reserve_part(), {})
        ...     commit = store.adopt_pending(pending)
        ...     store.finish("complete")
        >>> commit.part, pending.files["media"]
        (0, ['media/part-000000.parquet'])
    """

    root: str
    partition_by: str | None
    hive: bool
    row_group_size: int
    compression: str

    def write(
        self, tables: MediaTables | GrainFrames, seq: int, fingerprints: Fingerprints | None
    ) -> PendingPart:
        """Write part ``seq`` (a file per grain and partition, and its fingerprint file)."""
        store = ExportStore(
            self.root,
            partition_by=self.partition_by,
            row_group_size=self.row_group_size,
            compression=self.compression,
        )
        store.hive = self.hive
        arrow = grain_tables(tables)
        files, index = store._write_part(arrow, seq, fingerprints=fingerprints)
        ids = arrow["media"].column("media_id").to_pylist()
        rows = {grain: table.num_rows for grain, table in arrow.items()}
        return PendingPart(seq, files, rows, ids, index)


# --------------------------------------------------------------------------- the store


class ExportStore:
    """One export directory: lock, manifest, committed parts (see the module doc)."""

    #: The table format this store writes
    #: (:class:`~coreviz_frames.exports.deltastore.DeltaExportStore` writes ``"delta"``).
    table_format = "parquet"
    #: Bytes the last :meth:`commit_snapshot` wrote beyond what its staged parts counted.
    committed_bytes = 0

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
        self.hive = False  # partition folders as older versions wrote them (see split_partitions)
        check_int("row_group_size", row_group_size, minimum=1)
        self.row_group_size = row_group_size
        self.compression = compression
        self._lock = DirectoryLock(self.root)
        self._manifest: dict[str, Any] = {}
        self._exported: set[str] = set()
        self._failed: dict[Any, FailedFetch] = {}
        self._staged: list[dict[str, Any]] = []  # parts written by a sync, not yet listed
        self._removed: set[int] = set()  # parts a sync drops from the next snapshot
        self._refreshed: dict[int, dict[str, tuple[str | None, str | None]]] = {}
        self._hidden: list[tuple[Path, Path]] = []  # staged files: (hidden name, final name)

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

    def any_exported(self, media_ids: set[str]) -> bool:
        """True if any of ``media_ids`` (normalised already) is in a committed part."""
        return not self._exported.isdisjoint(media_ids)

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
            self._write_card()  # README.md: where each reader points
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
        elif entries and not overwrite and not resume and self._committed_nothing(entries):
            self._clear()  # a first run that wrote nothing (a bad key, say): start afresh
        elif entries and not overwrite:
            raise ExportError(
                f"{root} is not empty: pass overwrite=True to replace the export there, "
                "or resume=True to continue it",
                path=str(root),
            )
        elif entries:
            self._clear()
        self._start(source)

    def _committed_nothing(self, entries: list[Path]) -> bool:
        """True when ``root`` holds only what an export that committed nothing left: its
        manifest (not complete, no part, no media, no failure), the dataset card, and grain
        folders with no data file (temporary files, an empty Delta table's log)."""
        if any(e.name not in (MANIFEST_NAME, CARD_NAME, *GRAINS, INDEX_DIR) for e in entries):
            return False
        try:
            manifest = read_manifest(self.root)
        except (ExportError, OSError):
            return False
        done = manifest.get("status") in ("complete", "clearing")
        wrote = [manifest.get(key) for key in ("parts", "failed", "media_exported")]
        if done or any(wrote):
            return False
        for entry in entries:
            if entry.name == MANIFEST_NAME or (entry.name == CARD_NAME and is_our_card(entry)):
                continue
            if entry.is_symlink() or not entry.is_dir():
                return False
            for path in _files_under(entry):
                in_log = path.relative_to(entry).parts[0] == "_delta_log"
                if not (in_log or is_temporary(path.name)):
                    return False
        return True

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
        self._manifest = self._new_manifest(source, "running")
        self._exported = set()
        self._failed = {}
        self._save()

    def _new_manifest(self, source: Any, status: str) -> dict[str, Any]:
        now = utc_now()
        return {
            "format": MANIFEST_FORMAT,
            "manifest_version": MANIFEST_VERSION,
            "package_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "box_convention": BOX_CONVENTION,
            "grains": list(GRAINS),
            "partition_by": self.partition_by,
            "source": clean_source(source) if source is not None else None,
            "status": status,
            "status_reason": None,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
            "runs": 1,
            "snapshot": 1 if status == "running" else 0,
            "media_exported": 0,
            "rows": dict.fromkeys(GRAINS, 0),
            "parts": [],
            "failed": [],
        }

    def _resume(self, manifest: dict[str, Any], source: Any) -> None:
        self._check_compatible(manifest, source)
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

    def _check_compatible(self, manifest: dict[str, Any], source: Any) -> None:
        """Refuse to continue ``manifest``'s export with another schema, partitioning or
        collection, or when it is damaged (then ``self.partition_by`` is the manifest's)."""
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
        self.hive = hive_layout(manifest)  # an older export keeps its folder layout
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

    # -- what is on disk ------------------------------------------------------------------

    def _committed_files(self) -> set[Path]:
        return {
            self.root / rel for part in self._manifest.get("parts", []) for rel in _part_files(part)
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
                if entry.is_symlink() and _partition_name(entry.name):
                    raise ExportError(
                        f"refusing to write into {self.root}: {entry.path} is a symlink; "
                        "remove it yourself",
                        path=str(self.root),
                    )
                if entry.is_dir(follow_symlinks=False) and _partition_name(entry.name):
                    for inner in _scandir(Path(entry.path)):
                        yield Path(entry.path), inner

    def leftovers(self) -> list[Path]:
        """What an interrupted run left: our temporary files and the part files no
        committed part lists (a ``*.parquet`` glob of a third-party reader would see those
        parts). Read-only; the manifest is read from disk when the store is not open.

        Example:
            >>> ExportStore("export/").leftovers()  # doctest: +SKIP
            [PosixPath('export/objects/part-000004.parquet')]
        """
        if not self._manifest:
            self._manifest = read_manifest(self.root)
        committed = self._committed_files()
        doomed = [
            Path(entry.path)
            for _, entry in self._owned_entries()
            if entry.is_file(follow_symlinks=False)
            and (
                is_temporary(entry.name)
                or (PART_RE.match(entry.name) and Path(entry.path) not in committed)
            )
        ]
        doomed += [
            Path(e.path)
            for e in _scandir(self.root)
            if e.is_file(follow_symlinks=False) and is_temporary(e.name)
        ]
        index_dir = self._index_dir()
        if index_dir is not None:
            doomed += [
                Path(e.path)
                for e in _scandir(index_dir)
                if e.is_file(follow_symlinks=False)
                and (is_temporary(e.name) or Path(e.path) not in committed)
            ]
        return doomed

    def _drop_uncommitted(self) -> list[Path]:
        """Delete :meth:`leftovers`, after checking the committed files and giving older
        fingerprint files their new name; returns what was deleted."""
        self._check_committed()
        self._migrate_index()
        doomed = self.leftovers()
        for path in doomed:
            path.unlink(missing_ok=True)
        return doomed

    def _migrate_index(self) -> None:
        """Fingerprint files of older versions (``_coreviz_index/part-N.parquet``, which a
        root ``**/*.parquet`` glob of DuckDB or Polars reads) get their ``.index`` name: a
        copy is listed by the saved manifest, then :meth:`leftovers` deletes the old file."""
        moved = False
        for part in self._manifest.get("parts", []):
            rel = part.get("index")
            if not rel or not rel.endswith(".parquet") or not (self.root / rel).is_file():
                continue
            new = rel[: -len(".parquet")] + INDEX_SUFFIX
            atomic_write_bytes(self.root / new, (self.root / rel).read_bytes())
            part["index"], moved = new, True
        if moved:
            self._save()

    def repair(self) -> list[Path]:
        """Under the lock, delete :meth:`leftovers`; a manifest a killed writer left
        ``running`` becomes ``failed`` (``--resume`` continues it). Returns what was deleted.

        Example:
            >>> ExportStore("export/").repair()  # doctest: +SKIP
            [PosixPath('export/objects/part-000004.parquet')]
        """
        self._lock.acquire()
        try:
            self._manifest = read_manifest(self.root)
            if self._manifest.get("status") == "clearing":
                for grain in GRAINS:
                    manifest_files(self.root, self._manifest, grain)  # names the rebuild
            doomed = self._drop_uncommitted()
            if self.status == "running":
                self.finish("failed", reason="interrupted before it finished (found by repair)")
            return doomed
        finally:
            self._lock.release()

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
            elif entry.is_dir():  # a hive partition, or the log of a Delta table
                ok = folder.parent == self.root and (
                    _partition_name(entry.name) or entry.name == "_delta_log"
                )
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
        if self._index_dir() is not None:
            shutil.rmtree(self.root / INDEX_DIR)

    def _index_dir(self) -> Path | None:
        """The fingerprint folder if it exists; ExportError if it is a symlink."""
        path = self.root / INDEX_DIR
        if path.is_symlink():
            raise ExportError(
                f"refusing to write into {self.root}: {path} is a symlink; remove it yourself",
                path=str(self.root),
            )
        return path if path.is_dir() else None

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
            ids.update(self._part_media_ids(part))
        return ids

    def _part_media_ids(self, part: Mapping[str, Any]) -> list[str]:
        """The media ids of one committed part, from its media files."""
        ids: list[str] = []
        for rel in part["files"].get("media", []):
            file = self.root / rel
            table = read_grain(
                self.root, "media", [file], self.partition_by, None, ["media_id"], hint=self._hint()
            )
            ids += table.column(0).to_pylist()
        return ids

    def _check_committed(self) -> None:
        """ExportError naming the first committed file that is missing, truncated, not
        Parquet or of another schema (footers and fingerprint files are read)."""
        for part in self._manifest.get("parts", []):
            for grain, rels in part["files"].items():
                for rel in rels:
                    problem = part_problem(self.root / rel, grain, self.partition_by)
                    if problem is not None:
                        raise damaged_part(self.root / rel, problem, self._hint())
            if part.get("index"):
                read_index(self.root / part["index"], self._hint())

    def _hint(self) -> str:
        """The next step named by the error about a damaged file of this export."""
        return f"rebuild the export with {repair_hint(self.root, self._manifest)}"

    def _part_fingerprints(
        self, part: Mapping[str, Any]
    ) -> dict[str, tuple[str | None, str | None]]:
        """``{media_id: (fingerprint, listing_fingerprint)}`` of one part (None: unknown)."""
        if not part.get("index"):
            return {i: (None, None) for i in self._part_media_ids(part)}
        cols = read_index(self.root / part["index"], self._hint())
        return {
            m: (f, lf)
            for m, f, lf in zip(
                cols["media_id"], cols["fingerprint"], cols["listing_fingerprint"], strict=True
            )
        }

    # -- changes --------------------------------------------------------------------------

    def _write_card(self) -> None:
        write_dataset_card(self.root, self.partition_by, self.table_format, hive=self.hive)

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
        """A part number never used before in this export (``next_part`` in the manifest),
        so a reader holding an older manifest never finds another part under its names."""
        parts = [*self._manifest.get("parts", []), *self._staged]
        seq = max(
            max((int(p["part"]) for p in parts), default=-1) + 1,
            int(self._manifest.get("next_part", 0)),
        )
        self._manifest["next_part"] = seq + 1
        return seq

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
        self,
        files: dict[str, list[str]],
        rows: dict[str, int],
        media: int,
        ids: list[Any],
        index: str | None = None,
        seq: int | None = None,
    ) -> PartCommit:
        seq = self._next_seq() if seq is None else seq
        entry = {"part": seq, "media": media, "rows": rows, "files": files}
        if index is not None:
            entry["index"] = index
        entry["committed_at"] = utc_now()
        self._manifest["parts"].append(entry)
        self._count(rows, media, ids)
        return PartCommit(seq, media, dict(rows))

    def _count(self, rows: Mapping[str, int], media: int, ids: Iterable[Any]) -> None:
        """Add a commit's rows and media to the manifest; its ids are exported."""
        manifest = self._manifest
        manifest["media_exported"] = int(manifest.get("media_exported", 0)) + media
        for grain, n in rows.items():
            manifest["rows"][grain] = int(manifest["rows"].get(grain, 0)) + n
        for ident in ids:
            ident = id_key(ident)
            if ident is not None:
                self._exported.add(ident)
                self._failed.pop(ident, None)

    def _write_part(
        self,
        arrow: Mapping[str, pa.Table],
        seq: int,
        *,
        staged: bool = False,
        fingerprints: Fingerprints | None = None,
    ) -> tuple[dict[str, list[str]], str | None]:
        """Write part ``seq`` (a file per grain and partition) and, given ``fingerprints``,
        its fingerprint file; its files by grain, and the fingerprint file (or None).

        ``staged`` (a sync) writes each grain file under its hidden :func:`staged_name`,
        which no reader or glob sees; :meth:`commit_snapshot` renames them just before the
        manifest (the fingerprint file counts only once a manifest lists it).
        """
        name = part_name(seq)
        files: dict[str, list[str]] = {}
        jobs: list[tuple[Path, pa.Table, str]] = []
        for grain, table in arrow.items():
            files[grain] = []
            for subdir, piece in split_partitions(table, self.partition_by, hive=self.hive):
                rel = Path(grain, subdir, name) if subdir else Path(grain, name)
                target = self.root / rel
                if staged:
                    target = staged_name(target)
                    self._hidden.append((target, self.root / rel))
                jobs.append((target, piece, self.compression))
                files[grain].append(rel.as_posix())
        index = None
        if fingerprints is not None:
            ids = arrow["media"].column("media_id").to_pylist()
            rel = _index_path(seq)
            jobs.append((self.root / rel, index_table(ids, fingerprints), "zstd"))
            index = rel.as_posix()

        def write(job: int) -> None:
            target, table, compression = jobs[job]
            write_file(target, table, row_group_size=self.row_group_size, compression=compression)

        # Arrow encodes and compresses without the GIL, and each file's fsync waits on the
        # disk alone: the files of a part are written side by side (an error stops the rest).
        run_fail_fast(range(len(jobs)), write, workers=_WRITE_THREADS)
        return files, index

    def _write_index(
        self, seq: int, ids: Iterable[Any], fingerprints: Fingerprints, suffix: str = ""
    ) -> str:
        """Write the fingerprint file of part ``seq`` (one row per media id); a ``suffix``
        names a newer version of it (``part-000003-s7.index``). The ``.index`` suffix (the
        file is Parquet) keeps it out of every ``**/*.parquet`` glob of the export."""
        table = index_table(ids, fingerprints)
        rel = _index_path(seq, suffix)
        write_file(self.root / rel, table, row_group_size=self.row_group_size, compression="zstd")
        return rel.as_posix()

    def commit_part(
        self,
        tables: MediaTables | GrainFrames,
        *,
        failures: Iterable[FailedFetch] = (),
        fingerprints: Fingerprints | None = None,
    ) -> PartCommit:
        """Write one part (a file per grain and partition), then commit it with ``failures``.

        The files are written under temporary names and renamed; the part counts once the
        manifest listing it is saved (by this call). ``fingerprints`` (by normalised media
        id) go into the part's file under ``_coreviz_index/``, where ``sync`` reads them.
        """
        self._require_running()
        arrow = grain_tables(tables)  # checks first
        seq = self._next_seq()
        files, index = self._write_part(arrow, seq, fingerprints=fingerprints)
        rows = {grain: table.num_rows for grain, table in arrow.items()}
        ids = arrow["media"].column("media_id").to_pylist()
        commit = self._commit(files, rows, len(ids), ids, index, seq)
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
            match = PART_RE.match(entry.name)
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

    def drop_leftovers(self) -> list[Path]:
        """While the export is open, delete :meth:`leftovers` (the files of parts written
        and never committed, as after a failed range); returns what was deleted."""
        self._require_running()
        doomed = self.leftovers()
        for path in doomed:
            path.unlink(missing_ok=True)
        return doomed

    def part_writer(self) -> PartWriter:
        """A :class:`PartWriter` for this export (another process writes parts with it)."""
        self._require_running()
        root = os.fspath(self.root)
        return PartWriter(root, self.partition_by, self.hive, self.row_group_size, self.compression)

    def reserve_part(self) -> int:
        """A part number never used in this export, for a :class:`PartWriter`."""
        self._require_running()
        return self._next_seq()

    def adopt_pending(
        self, pending: PendingPart, *, failures: Iterable[FailedFetch] = ()
    ) -> PartCommit:
        """Commit a part a :class:`PartWriter` wrote, with ``failures``. Media the export
        already holds (read twice, by two ranges of a collection that changed under the
        read) are dropped first: the part's files are written again without them."""
        self._require_running()
        seen = [i for i in pending.ids if isinstance(i, str) and self.is_exported(i)]
        if seen:
            pending = self._without(pending, seen)
        commit = self._commit(
            pending.files, pending.rows, len(pending.ids), pending.ids, pending.index, pending.part
        )
        self._add_failures(failures)
        self._save()
        return commit

    def _without(self, pending: PendingPart, drop: list[str]) -> PendingPart:
        """``pending`` written again without the media ``drop``."""
        entry = {"files": pending.files, "index": pending.index}
        arrow = {
            grain: table.replace_schema_metadata(file_metadata(grain))
            for grain, table in self._part_rows(entry, set(drop), of=False).items()
        }
        fps = self._part_fingerprints(entry) if pending.index else None
        for rel in _part_files(entry):
            (self.root / rel).unlink(missing_ok=True)
        return self.part_writer().write(arrow, pending.part, fps)

    def _write_empty(self, grain: str) -> str:
        table = to_arrow(empty_frame(grain), grain)
        rel = Path(grain, part_name(0))
        for subdir, piece in split_partitions(table, self.partition_by, hive=self.hive):
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
        check_choice("status", status, STATUSES)
        self._require_running()
        self._manifest["status"] = status
        self._manifest["status_reason"] = reason
        self._manifest["finished_at"] = utc_now()
        self._save()

    # -- snapshots (sync) -----------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest as this store holds it (read-only view)."""
        return json.loads(json.dumps(self._manifest))

    @property
    def snapshot(self) -> int:
        """The number of the current snapshot (0 before the first one)."""
        return int(self._manifest.get("snapshot", 0))

    @property
    def pending(self) -> bool:
        """True when a sync staged or dropped a part since the last snapshot."""
        return bool(self._staged or self._removed or self._refreshed)

    def open_sync(self, *, source: Any = None) -> ExportStore:
        """Lock the directory for a sync, writing nothing yet (see :meth:`commit_snapshot`).

        An export of another collection, filters, schema or partitioning is refused; an
        empty or missing directory (or one holding only what a killed first sync left)
        starts a new export; files a killed sync left are deleted.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise ExportError(f"{root} exists and is not a directory", path=str(root))
        root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            self._open_sync_locked(source)
        except BaseException:
            self._lock.release()
            raise
        return self

    def _open_sync_locked(self, source: Any) -> None:
        root = self.root
        manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else None
        if manifest is not None and manifest.get("status") != "clearing":
            self._check_compatible(manifest, source)
            _check_same_filters(root, manifest, source)
            self._manifest = manifest
            self._drop_uncommitted()
        else:
            if manifest is None:
                self._refuse_foreign()
            self._clear()  # an overwrite killed while clearing, or our empty folders
            # a manifest first: a killed first sync leaves an export the next sync continues
            self._manifest = {**self._new_manifest(source, "running"), "snapshot": 0}
            self._save()
        self._staged, self._removed, self._refreshed, self._hidden = [], set(), {}, []

    def _refuse_foreign(self) -> None:
        """Without a manifest, refuse (as ``export`` does) a directory holding anything
        but our lock, dataset card, temporary files and empty grain or partition folders."""
        root = self.root
        ours = {*GRAINS, INDEX_DIR, LOCK_NAME}
        found = [
            e.path
            for e in _scandir(root)
            if not is_temporary(e.name)
            and (e.name not in ours or not e.is_dir(follow_symlinks=False))
            and not (e.name in (LOCK_NAME, CARD_NAME) and is_dataset_card_or_lock(e))
        ]
        for folder in (root / name for name in (*GRAINS, INDEX_DIR)):
            if folder.is_dir() and not folder.is_symlink():
                found += [str(p) for p in _files_under(folder) if not is_temporary(p.name)]
        if found:
            raise ExportError(
                f"cannot sync into {root}: it is not empty and holds no {MANIFEST_NAME}, "
                f"but files this package did not write (such as {found[0]}); sync into an "
                "empty directory, or remove them yourself",
                path=str(root),
            )

    def stored_media(self) -> dict[str, StoredMedia]:
        """Every media of the current snapshot with its part and fingerprints."""
        out: dict[str, StoredMedia] = {}
        for part in self._manifest.get("parts", []):
            seq = int(part["part"])
            for media_id, (fp, listing) in self._part_fingerprints(part).items():
                out[media_id] = StoredMedia(media_id, seq, fp, listing)
        return out

    def _stage(
        self, arrow: Mapping[str, pa.Table], ids: list[Any], fps: Fingerprints
    ) -> PartCommit:
        seq = self._next_seq()
        files, index = self._write_part(arrow, seq, staged=True, fingerprints=fps)
        rows = {grain: table.num_rows for grain, table in arrow.items()}
        entry = {"part": seq, "media": len(ids), "rows": rows, "files": files, "index": index}
        self._staged.append(entry)
        hidden = {final: tmp for tmp, final in self._hidden}
        size = sum(
            hidden.get(self.root / rel, self.root / rel).stat().st_size
            for rel in _part_files(entry)
        )
        return PartCommit(seq, len(ids), dict(rows), size)

    def stage_part(
        self, tables: MediaTables | GrainFrames, fingerprints: Fingerprints
    ) -> PartCommit:
        """Write a new part for the next snapshot (readers do not see it until
        :meth:`commit_snapshot`); ``fingerprints`` by normalised media id."""
        arrow = grain_tables(tables)
        return self._stage(arrow, arrow["media"].column("media_id").to_pylist(), fingerprints)

    def _part_entry(self, seq: int) -> dict[str, Any]:
        part = next((p for p in self._manifest["parts"] if int(p["part"]) == seq), None)
        if part is None:
            raise ExportError(f"{self.root}: no part {seq} in the manifest", path=str(self.root))
        return part

    def _part_rows(
        self, part: Mapping[str, Any], ids: set[str], *, of: bool
    ) -> dict[str, pa.Table]:
        """Per grain, the rows of part ``part`` of media ``ids`` (``of``), or of the others."""
        arrow = {}
        for grain in GRAINS:
            files = [self.root / rel for rel in sorted(part["files"].get(grain, []))]
            table = read_grain(self.root, grain, files, self.partition_by, None, hint=self._hint())
            column = table.column("media_id")
            wanted = pa.array(sorted(ids), column.type)
            hit = pc.fill_null(pc.is_in(column, value_set=wanted), False)
            arrow[grain] = table.filter(hit if of else pc.invert(hit))
        return arrow

    def media_rows(self, seq: int, ids: Iterable[str]) -> dict[str, pa.Table]:
        """The rows of media ``ids`` (normalised) in part ``seq`` of the current snapshot,
        per grain (a sync compares them when the part has no fingerprints)."""
        return self._part_rows(self._part_entry(seq), set(ids), of=True)

    def stage_rewrite(self, seq: int, drop: Iterable[str]) -> PartCommit | None:
        """Copy-on-write: part ``seq`` leaves the next snapshot, and its rows of media other
        than ``drop`` (normalised ids) go into a new part (None when no row is left)."""
        part = self._part_entry(seq)
        self._removed.add(seq)
        arrow = {
            grain: table.replace_schema_metadata(file_metadata(grain))
            for grain, table in self._part_rows(part, set(drop), of=False).items()
        }
        if not any(table.num_rows for table in arrow.values()):
            return None
        fps = {**self._part_fingerprints(part), **self._refreshed.pop(seq, {})}
        return self._stage(arrow, arrow["media"].column("media_id").to_pylist(), fps)

    def refresh_fingerprints(self, seq: int, updates: Fingerprints) -> None:
        """New fingerprints for media of part ``seq`` whose rows stay as they are (a light
        listing item that changed while the record did not): the next snapshot lists a new
        fingerprint file for the part, its data files unchanged."""
        self._refreshed.setdefault(seq, {}).update(updates)

    def _reindex(self, parts: list[dict[str, Any]], snapshot: int) -> tuple[list, list[str]]:
        """``parts`` with refreshed fingerprint files written; and the files they replace."""
        out, replaced = [], []
        for part in parts:
            updates = self._refreshed.get(int(part["part"]))
            if updates:
                fps = {**self._part_fingerprints(part), **updates}
                index = self._write_index(int(part["part"]), fps, fps, f"-s{snapshot}")
                replaced += [part["index"]] if part.get("index") else []
                part = {**part, "index": index}
            out.append(part)
        return out, replaced

    def discard_staged(self) -> None:
        """Delete the parts staged since the last snapshot (after an error)."""
        for entry in self._staged:
            for rel in _part_files(entry):
                (self.root / rel).unlink(missing_ok=True)
        for tmp, _ in self._hidden:
            tmp.unlink(missing_ok=True)
        self._staged, self._removed, self._refreshed, self._hidden = [], set(), {}, []

    def commit_snapshot(
        self,
        *,
        failures: Iterable[FailedFetch] = (),
        reason: str | None = None,
        history: Mapping[str, Any] | None = None,
    ) -> int:
        """Make the staged parts current: the manifest, listing exactly the parts of the new
        snapshot, replaces the old one atomically; then the parts it no longer lists are
        deleted. ``reason`` (the listing stopped early) makes the status ``incomplete``;
        ``history`` is this sync's entry in ``syncs``. Returns the new snapshot number.
        """
        manifest = self._manifest
        kept = [p for p in manifest["parts"] if int(p["part"]) not in self._removed]
        old = [p for p in manifest["parts"] if int(p["part"]) in self._removed]
        if not kept and not self._staged:  # every grain keeps a file, so its columns
            self._stage({g: to_arrow(empty_frame(g), g) for g in GRAINS}, [], {})
        now = utc_now()
        for entry in self._staged:
            entry["committed_at"] = now
        snapshot = self.snapshot + 1
        kept, replaced = self._reindex(kept, snapshot)
        parts = kept + self._staged
        manifest.update(
            parts=parts,
            media_exported=sum(int(p["media"]) for p in parts),
            rows={g: sum(int(p["rows"].get(g, 0)) for p in parts) for g in GRAINS},
            failed=[failure_to_manifest(f) for f in failures],
            status="incomplete" if reason else "complete",
            status_reason=reason,
            finished_at=now,
            snapshot=snapshot,
        )
        entry = {"at": now, "snapshot": snapshot, **(history or {})}
        manifest["syncs"] = [*manifest.get("syncs", []), entry][-HISTORY_LENGTH:]
        for tmp, final in self._hidden:  # globs see old + new parts from here ...
            os.replace(tmp, final)
        self._save()  # ... the new snapshot is the export from here on
        self._write_card()
        self._staged, self._removed, self._refreshed, self._hidden = [], set(), {}, []
        for rel in [*replaced, *(rel for part in old for rel in _part_files(part))]:
            (self.root / rel).unlink(missing_ok=True)
        return snapshot


def read_index(path: Path, hint: str) -> dict[str, list[Any]]:
    """The columns of the fingerprint file at ``path``; an :class:`ExportError` naming it
    and ``hint`` when it is missing, not Parquet or of another schema."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        problem = "it is missing"
    except (OSError, pa.ArrowException, ValueError) as exc:
        problem = f"it is not a readable Parquet file ({str(exc).splitlines()[0][:200]})"
    else:
        given = {f.name: f.type for f in table.schema}
        wrong = [f.name for f in _INDEX_SCHEMA if given.get(f.name) != f.type]
        if not wrong:
            return table.to_pydict()
        problem = f"its column {wrong[0]!r} is missing or not text (not a fingerprint file)"
    raise ExportError(f"{path} is damaged: {problem}; {hint}", path=str(path.parent))


def _index_path(seq: int, suffix: str = "") -> Path:
    """The fingerprint file of part ``seq`` (``_coreviz_index/part-000003.index``), or a newer
    version of it (``suffix``: ``part-000003-s7.index``)."""
    return Path(INDEX_DIR, part_name(seq).replace(".parquet", f"{suffix}{INDEX_SUFFIX}"))


def index_table(ids: Iterable[Any], fingerprints: Fingerprints) -> pa.Table:
    """One row per (normalised, first-seen) media id: ``media_id, fingerprint,
    listing_fingerprint`` (None where ``fingerprints`` has none).

    Example:
        >>> index_table(["a", "a", None], {"a": ("f", None)}).to_pylist()
        [{'media_id': 'a', 'fingerprint': 'f', 'listing_fingerprint': None}]
    """
    normalised = map(id_key, ids)
    keys = [k for k in dict.fromkeys(normalised) if k is not None]
    pairs = [fingerprints.get(k, (None, None)) for k in keys]
    return pa.table([keys, [p[0] for p in pairs], [p[1] for p in pairs]], schema=_INDEX_SCHEMA)


def _check_same_filters(root: Path, manifest: Mapping[str, Any], source: Any) -> None:
    """Refuse a sync whose filters differ from the export's, or of an export of ids."""
    old = manifest.get("source")
    new = clean_source(source) if source is not None else None
    if isinstance(old, Mapping) and "collection_id" in old and old["collection_id"] is None:
        raise ExportError(
            f"cannot sync {root}: it is an export of a list of media ids, not of a collection",
            path=str(root),
        )
    if isinstance(old, Mapping) and isinstance(new, Mapping) and "filters" in new:
        before = old.get("filters") or {}
        if before != (new["filters"] or {}):
            raise ExportError(
                f"cannot sync {root}: it was exported with filters {before}, not "
                f"{new['filters'] or {}}; sync with the same filters, or into another directory",
                path=str(root),
            )


def _part_files(part: Mapping[str, Any]) -> list[str]:
    """Every file of a manifest part entry (grain files, then its fingerprint file)."""
    files = [rel for rels in part["files"].values() for rel in rels]
    return files + ([part["index"]] if part.get("index") else [])


#: Columns every grain has: the only ones an export can be partitioned by.
_SHARED_COLUMNS = tuple(
    c for c in SCHEMAS["media"].names if all(c in s.names for s in SCHEMAS.values())
)


def _partition_name(name: str) -> bool:
    """True for the name of a partition folder (``dataset_id-abc``, or an older export's
    ``dataset_id=abc``)."""
    return "=" in name or any(is_partition_folder(name, c) for c in _SHARED_COLUMNS)


def _files_under(folder: Path) -> list[Path]:
    """Every entry under ``folder`` that is not a directory (symlinks not followed)."""
    out = []
    for entry in _scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            out += _files_under(Path(entry.path))
        else:
            out.append(Path(entry.path))
    return out


def is_dataset_card_or_lock(entry: os.DirEntry[str]) -> bool:
    """True for our lock file, or a ``README.md`` this package wrote (its mark inside)."""
    if entry.name == LOCK_NAME:
        return entry.is_file(follow_symlinks=False)
    return entry.is_file(follow_symlinks=False) and is_our_card(Path(entry.path))


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
    """Write :class:`~coreviz_frames.tables.media_tables.MediaTables`: one Parquet folder a grain.

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

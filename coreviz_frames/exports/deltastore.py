"""A Delta Lake export directory: the store that keeps one Delta table per grain.

:class:`DeltaExportStore` is the :class:`~coreviz_frames.exports.store.ExportStore` of
``table_format="delta"``: the same lock, manifest, resume, overwrite and sync calls, with
the rows in Delta tables (:mod:`.delta`) instead of numbered Parquet parts. The manifest
pins the version of every table (``tables``) and keeps the versions of the last
snapshots (``snapshots``); readers of the manifest (``read_parquet``) read those versions.

- A streaming export (:meth:`~DeltaExportStore.commit_part`) appends each batch in one
  commit per table, then saves the manifest with the new versions.
- A sync stages its new rows in ``_coreviz_index/_staging/``, then
  :meth:`~DeltaExportStore.commit_snapshot` makes one commit per table (the rows of
  changed and deleted media leave, the new rows come in), saves the manifest (the new
  snapshot), then vacuums what was replaced longer ago than ``retention``.
- Killed between two table commits, the manifest still pins the old versions: the next
  run (``--resume``, ``sync``, ``repair``) restores every table to its pinned version (a
  new commit) before anything else, so each table's newest version is the old snapshot
  or the new one, never a mix.

:func:`open_store` picks the store of a directory: the format it has, else the one asked
for, else the default (``"parquet"`` for an export, ``"delta"`` for a sync).

Example:
    >>> import tempfile
    >>> from coreviz_frames.tables.media_tables import MediaTables
    >>> out = tempfile.mkdtemp()
    >>> with DeltaExportStore(out).open() as store:
    ...     commit = store.commit_part(MediaTables.empty())
    ...     store.finish("complete")
    >>> sorted(read_manifest(out)["tables"].items())[0]
    ('_coreviz_index', 0)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds

from coreviz_frames._util.checks import check_choice
from coreviz_frames._util.fileio import is_temporary
from coreviz_frames.errors import ConfigError, ExportError
from coreviz_frames.exports import delta
from coreviz_frames.exports.grainfiles import DEFAULT_ROW_GROUP_SIZE, write_file
from coreviz_frames.exports.manifest import (
    MANIFEST_NAME,
    failure_to_manifest,
    read_manifest,
    utc_now,
)
from coreviz_frames.exports.store import (
    HISTORY_LENGTH,
    ExportStore,
    Fingerprints,
    GrainFrames,
    PartCommit,
    PathLike,
    StoredMedia,
    grain_tables,
    index_table,
)
from coreviz_frames.failures import FailedFetch
from coreviz_frames.schema import GRAINS

if TYPE_CHECKING:
    from coreviz_frames.tables.media_tables import MediaTables

__all__ = ["open_store"]

#: The table formats of an export.
TABLE_FORMATS = ("parquet", "delta")
_STAGING = Path(delta.INDEX_TABLE, "_staging")


class DeltaExportStore(ExportStore):
    """An export whose grains are Delta tables (see the module doc)."""

    table_format = "delta"

    def __init__(
        self,
        root: PathLike,
        *,
        partition_by: str | None = None,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        compression: str = "zstd",
        retention: timedelta | float = delta.DEFAULT_RETENTION,
    ) -> None:
        super().__init__(
            root, partition_by=partition_by, row_group_size=row_group_size, compression=compression
        )
        try:
            delta.retention_hours(retention)
        except ExportError as exc:
            raise ConfigError(str(exc)) from None
        self.retention = retention
        self._batches = 0  # batches staged by this sync
        self._staged_ids: set[str] = set()
        self._drop: set[str] = set()

    # -- the manifest's pins ----------------------------------------------------------------

    @property
    def versions(self) -> dict[str, int]:
        """The version of each table that the manifest pins ({} before the first commit)."""
        return {k: int(v) for k, v in (self._manifest.get("tables") or {}).items()}

    def _new_manifest(self, source: Any, status: str) -> dict[str, Any]:
        return {**super()._new_manifest(source, status), "table_format": "delta", "tables": {}}

    def _pin(self, versions: Mapping[str, int]) -> None:
        """Record ``versions`` as the current snapshot's (saved with the next save)."""
        manifest = self._manifest
        manifest["tables"] = dict(versions)
        if not self.snapshot:
            return  # a first sync's empty tables: no snapshot yet
        entry = {"snapshot": self.snapshot, "at": utc_now(), "tables": dict(versions)}
        kept = [s for s in manifest.get("snapshots", []) if s.get("snapshot") != self.snapshot]
        manifest["snapshots"] = [*kept, entry][-HISTORY_LENGTH:]

    def _start(self, source: Any) -> None:
        super()._start(source)  # the manifest first: a start killed after it is resumed
        self._ensure_tables()
        self._save()

    def _ensure_tables(self) -> None:
        """Create (empty) every table no snapshot pins yet, removing what a killed run
        left of it; pin version 0 of each (saved with the next save)."""
        versions = self.versions
        for name in delta.TABLES:
            if name in versions:
                continue
            _remove_table(self.root / name)
            versions[name] = delta.create_table(self.root, name, self.partition_by)
        self._pin(versions)

    # -- what a killed run left -------------------------------------------------------------

    def _roll_back(self) -> list[str]:
        """Restore every table whose newest version is past its pin (a killed commit)."""
        pinned = self.versions
        return [name for name in pinned if delta.restore(self.root, name, pinned[name])]

    def leftovers(self) -> list[Path]:
        """Staged files and temporary files a killed run left (read-only). The files of a
        killed table commit are invisible to Delta readers: ``repair`` vacuums them."""
        staging = self.root / _STAGING
        found = [p for p in staging.rglob("*") if p.is_file()] if staging.is_dir() else []
        return found + [
            Path(e.path)
            for e in os.scandir(self.root)
            if e.is_file(follow_symlinks=False) and is_temporary(e.name)
        ]

    def _drop_uncommitted(self) -> list[Path]:
        doomed = self.leftovers()
        self._roll_back()
        for path in doomed:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.root / _STAGING, ignore_errors=True)
        if set(self.versions) != set(delta.TABLES):  # a first run killed early
            self._ensure_tables()
        return doomed

    def _read_exported_ids(self) -> set[str]:
        return set(self.stored_media())

    def repair(self) -> list[Path]:
        """Under the lock: restore the tables to the manifest's versions, delete staged and
        temporary files, vacuum (files replaced longer ago than the retention, and files of
        killed commits); a manifest left ``running`` becomes ``failed``. Returns what was
        deleted."""
        self._lock.acquire()
        try:
            self._manifest = read_manifest(self.root)
            doomed = self._drop_uncommitted()
            for name in self.versions:
                vacuumed = delta.vacuum(self.root, name, self.retention, full=True)
                doomed += [self.root / name / rel for rel in vacuumed]
            if self.status == "running":
                self.finish("failed", reason="interrupted before it finished (found by repair)")
            return doomed
        finally:
            self._lock.release()

    # -- a streaming export -----------------------------------------------------------------

    def commit_part(
        self,
        tables: MediaTables | GrainFrames,
        *,
        failures: Iterable[FailedFetch] = (),
        fingerprints: Fingerprints | None = None,
    ) -> PartCommit:
        """Append one batch: one commit per table, then the manifest pins the new versions."""
        self._require_running()
        arrow = grain_tables(tables)
        ids = arrow["media"].column("media_id").to_pylist()
        versions = self.versions
        for grain in GRAINS:
            versions[grain] = delta.append(self.root, grain, arrow[grain], self.partition_by)
        index = index_table(ids, fingerprints or {})
        versions[delta.INDEX_TABLE] = delta.append(self.root, delta.INDEX_TABLE, index, None)
        rows = {grain: table.num_rows for grain, table in arrow.items()}
        self._count(rows, len(ids), ids)
        self._pin(versions)
        self._add_failures(failures)
        self._save()
        return PartCommit(versions["media"], len(ids), rows)

    def adopt_parts(self, media_per_part: list[int]) -> list[PartCommit]:
        """Not for Delta: Dask partitions are committed with :meth:`commit_part`."""
        raise ExportError("a Delta export commits Dask partitions with commit_part")

    # -- a sync ---------------------------------------------------------------------------

    def _open_sync_locked(self, source: Any) -> None:
        super()._open_sync_locked(source)
        self._batches, self._staged_ids, self._drop = 0, set(), set()

    @property
    def pending(self) -> bool:
        """True when a sync staged rows, dropped media or refreshed fingerprints."""
        return bool(self._batches or self._drop or self._refreshed)

    def stored_media(self) -> dict[str, StoredMedia]:
        """Every media of the pinned snapshot with its fingerprints (part: 0)."""
        version = self.versions.get(delta.INDEX_TABLE)
        if version is None:
            return {}
        cols = delta.read_table(self.root, delta.INDEX_TABLE, version).to_pydict()
        return {
            m: StoredMedia(m, 0, f, lf)
            for m, f, lf in zip(
                cols["media_id"], cols["fingerprint"], cols["listing_fingerprint"], strict=True
            )
        }

    def stage_part(
        self, tables: MediaTables | GrainFrames, fingerprints: Fingerprints
    ) -> PartCommit:
        """Stage new rows (files under ``_coreviz_index/_staging/``) for the next snapshot."""
        arrow = grain_tables(tables)
        ids = arrow["media"].column("media_id").to_pylist()
        staged = {**arrow, delta.INDEX_TABLE: index_table(ids, fingerprints)}
        name = f"batch-{self._batches:06d}.parquet"
        for table_name, table in staged.items():
            target = self.root / _STAGING / table_name / name
            write_file(target, table, row_group_size=self.row_group_size, compression="zstd")
        self._batches += 1
        self._staged_ids.update(staged[delta.INDEX_TABLE].column("media_id").to_pylist())
        rows = {grain: table.num_rows for grain, table in arrow.items()}
        return PartCommit(self._batches - 1, len(ids), rows)

    def media_rows(self, seq: int, ids: Iterable[str]) -> dict[str, pa.Table]:
        """The rows of media ``ids`` (normalised) in the pinned snapshot, per grain."""
        wanted = ds.field("media_id").isin(sorted(set(ids)))
        return {
            grain: delta.read_table(self.root, grain, self.versions[grain], filters=wanted)
            for grain in GRAINS
        }

    def stage_rewrite(self, seq: int, drop: Iterable[str]) -> PartCommit | None:
        """The rows of ``drop`` (normalised ids) leave the next snapshot."""
        self._drop.update(drop)
        return None

    def discard_staged(self) -> None:
        """Forget what this sync staged (after an error)."""
        shutil.rmtree(self.root / _STAGING, ignore_errors=True)
        self._batches, self._staged_ids, self._drop, self._refreshed = 0, set(), set(), {}

    def _staged_rows(self, name: str) -> pa.RecordBatchReader:
        folder = self.root / _STAGING / name
        files = sorted(folder.glob("batch-*.parquet")) if folder.is_dir() else []
        return delta.staged_reader(files, name)

    def _commit_index(self, changed: set[str], replaced: set[str]) -> int:
        """The index commit: staged fingerprints, and the refreshed ones of kept media."""
        refreshed = {k: v for updates in self._refreshed.values() for k, v in updates.items()}
        refreshed = {k: v for k, v in refreshed.items() if k not in changed}
        extra = index_table(list(refreshed), refreshed)
        staged = self._staged_rows(delta.INDEX_TABLE).read_all()
        data = pa.concat_tables([staged.cast(extra.schema), extra])
        return delta.replace_media(
            self.root, delta.INDEX_TABLE, data, replaced | set(refreshed), None
        )

    def _commit_tables(self) -> dict[str, int]:
        """One commit per table (creating the tables of a new export first): the rows of
        replaced and deleted media leave and the staged rows come in; with nothing to
        remove (a first sync, only additions) the staged rows are appended."""
        self._ensure_tables()
        versions = self.versions
        changed = self._drop | self._staged_ids
        replaced = changed if self._drop else set()  # the predicate must cover the new rows
        for grain in GRAINS:
            if changed:
                reader = self._staged_rows(grain)
                versions[grain] = delta.replace_media(
                    self.root, grain, reader, replaced, self.partition_by
                )
        if changed or self._refreshed:
            versions[delta.INDEX_TABLE] = self._commit_index(changed, replaced)
        return versions

    def commit_snapshot(
        self,
        *,
        failures: Iterable[FailedFetch] = (),
        reason: str | None = None,
        history: Mapping[str, Any] | None = None,
    ) -> int:
        """Commit every table, then save the manifest pinning the new versions (the new
        snapshot), then vacuum what was replaced longer ago than ``retention``."""
        before = _sizes(self.root)
        versions = self._commit_tables()
        now = utc_now()
        snapshot = self.snapshot + 1
        manifest = self._manifest
        manifest.update(
            media_exported=delta.table_rows(
                self.root, delta.INDEX_TABLE, versions[delta.INDEX_TABLE]
            ),
            rows={g: delta.table_rows(self.root, g, versions[g]) for g in GRAINS},
            failed=[failure_to_manifest(f) for f in failures],
            status="incomplete" if reason else "complete",
            status_reason=reason,
            finished_at=now,
            snapshot=snapshot,
        )
        self._pin(versions)
        entry = {"at": now, "snapshot": snapshot, **(history or {})}
        manifest["syncs"] = [*manifest.get("syncs", []), entry][-HISTORY_LENGTH:]
        self._save()  # from here on, the new snapshot is the export
        self._write_card()
        self.discard_staged()
        for name in delta.TABLES:
            delta.vacuum(self.root, name, self.retention)
        after = _sizes(self.root)
        self.committed_bytes = sum(
            size for rel, size in after.items() if rel != MANIFEST_NAME and before.get(rel) != size
        )
        return snapshot


def _remove_table(folder: Path) -> None:
    """Delete what a killed run left of a table no snapshot pins (never the staged rows
    of the running sync, kept in the index folder's ``_staging/``)."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in os.scandir(folder):
        if entry.name == _STAGING.name:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def _sizes(root: Path) -> dict[str, int]:
    """Size of every file under the tables of ``root`` (staging excluded), by path."""
    out = {}
    for name in delta.TABLES:
        for path in (root / name).rglob("*") if (root / name).is_dir() else []:
            rel = path.relative_to(root)
            if path.is_file() and rel.parts[:2] != _STAGING.parts:
                out[rel.as_posix()] = path.stat().st_size
    return out


# --------------------------------------------------------------------------- which store


def existing_format(root: PathLike) -> str | None:
    """The table format of the export at ``root``: its manifest's (``"parquet"`` when the
    manifest does not say), ``"delta"`` for Delta tables without a manifest, else None.

    Example:
        >>> import tempfile
        >>> existing_format(tempfile.mkdtemp()) is None
        True
    """
    path = Path(root)
    if (path / MANIFEST_NAME).is_file():
        manifest = read_manifest(path)
        if manifest.get("status") != "clearing":
            return str(manifest.get("table_format") or "parquet")
    return "delta" if path.is_dir() and delta.any_table(path) else None


def open_store(
    path: PathLike,
    table_format: str | None,
    *,
    default: str,
    replacing: bool = False,
    retention: timedelta | float = delta.DEFAULT_RETENTION,
    **options: Any,
) -> ExportStore:
    """The store for ``path``: an existing export keeps its format (asking for another is
    an ExportError, unless ``replacing`` it); a new one gets ``table_format`` or
    ``default``. ``options`` go to the store (``partition_by``, ``compression``, ...).

    Example:
        >>> import tempfile
        >>> open_store(tempfile.mkdtemp(), None, default="delta").table_format
        'delta'
    """
    for value in (table_format, default):
        if value is not None:
            check_choice("table_format", value, TABLE_FORMATS)
    existing = existing_format(path)
    if existing and table_format and existing != table_format and not replacing:
        raise ExportError(
            f"{path} is a {existing} export, not {table_format}: keep its format (leave "
            f"table_format out), or replace it with overwrite=True (--overwrite)",
            path=str(path),
        )
    chosen = table_format or existing or default
    if chosen == "delta":
        delta.require_deltalake()  # before anything is written
        return DeltaExportStore(path, retention=retention, **options)
    return ExportStore(path, **options)

"""Keep a Parquet export current: :func:`sync` applies adds, edits and deletes, atomically.

The API has no change feed, so a sync walks the collection's listing once (``browse``
with the export's filters, items as listed) and compares each media's
:mod:`fingerprint <coreviz_frames.exports.fingerprint>` with the one stored beside its part
(``_coreviz_index/part-NNNNNN.parquet``, read without touching the data):

- a **full** browse item (frames with captions/objects) is fingerprinted as listed: equal
  means unchanged, with no Get Media and no rewrite;
- a **light** browse item is compared by the fingerprint of the item as listed (its
  ``updatedAt``, name, tags, frame list, ...). Equal means unchanged without a Get Media;
  otherwise (or for a new media, or with ``hydrate=True``) Get Media fetches the record
  and its full fingerprint decides. A change the light item does not show (an AI caption
  that leaves ``updatedAt`` alone) is therefore seen by ``hydrate=True`` (a Get Media
  per media, still no rewrite of unchanged ones), or as soon as the listing shows a
  change;
- media no longer listed are **deleted**, only after a listing that is provably whole (see
  :mod:`~coreviz_frames.api.pagination`: its last page said ``hasMore: false``, its distinct
  ids reach the announced ``pagination.total``, every item had a valid id); otherwise
  nothing is deleted and the report and the manifest's sync history say why. An empty
  listing, or one that would delete more than half the export, deletes nothing unless
  ``allow_mass_delete=True``;
- ids are compared normalised (a hyphenated or upper-case UUID is its plain hex form), so
  a media listed under two spellings is one media; a Get Media answer carrying another
  media's id is a failure of the id asked for;
- a media whose Get Media fails keeps its previous rows (stale, not lost) and is listed
  in the report and the manifest.

Changes make one new **snapshot**: new parts (added and changed media, and the
copy-on-write rewrites of the parts that held changed or deleted media) are written
first, then the manifest is replaced atomically to list exactly the new snapshot's parts,
then the parts it no longer lists are deleted (:meth:`ExportStore.commit_snapshot
<coreviz_frames.exports.store.ExportStore.commit_snapshot>`). A sync that finds nothing to change
writes no file and keeps the snapshot number. An empty or missing directory gets a full
export (with fingerprints).

Example:
    >>> report = sync(client, "COLLECTION_ID", "export/")  # doctest: +SKIP
    >>> report.added, report.updated, report.deleted, report.snapshot  # doctest: +SKIP
    (12, 3, 1, 8)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from coreviz_frames._util.checks import check_choice, check_int
from coreviz_frames._util.ids import is_safe_id, normalize_id, validate_id
from coreviz_frames.api.client import HYDRATE, needs_hydration
from coreviz_frames.api.filters import BrowseFilters, walk_source
from coreviz_frames.errors import AuthenticationError, ConfigError, CorevizError
from coreviz_frames.exports.delta import DEFAULT_RETENTION
from coreviz_frames.exports.deltastore import open_store
from coreviz_frames.exports.fingerprint import fingerprint, is_legacy, matches, strip_signature
from coreviz_frames.exports.manifest import (
    MANIFEST_NAME,
    failure_from_manifest,
    failure_to_manifest,
)
from coreviz_frames.exports.store import DEFAULT_BATCH_SIZE, ExportStore, StoredMedia
from coreviz_frames.exports.writer import flatten_batch
from coreviz_frames.failures import FailedFetch, failure_line

if TYPE_CHECKING:
    from coreviz_frames.api.client import Client

__all__ = ["SyncReport", "sync"]

PathLike = str | os.PathLike


@dataclass
class SyncReport:
    """What one :func:`sync` did.

    Counts of media ``added``, ``updated``, ``deleted`` and ``unchanged``; ``failed`` lists
    the media not brought up to date (manifest entries ``{"id", "status", "error_type",
    "reason"}``; their previous rows, if any, are kept). ``snapshot`` is the export's
    snapshot number after the sync (unchanged when nothing changed, ``changed`` False);
    ``bytes_written`` counts the Parquet and manifest bytes written; ``fetched`` the Get
    Media requests. ``complete`` is False when the listing stopped early, ``unproven``
    says why a complete listing does not prove it was whole (nothing was deleted then);
    ``deletes_skipped`` media were not deleted, ``deletes_skipped_reason`` says why.

    Example:
        >>> print(SyncReport(Path("out"), added=2, unchanged=5, snapshot=3, changed=True))
        synced out: 2 added, 0 updated, 0 deleted, 5 unchanged, 0 failed -> snapshot 3 ...
    """

    path: Path
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    snapshot: int = 0
    changed: bool = False
    bytes_written: int = 0
    parts_written: int = 0
    parts_rewritten: int = 0
    fetched: int = 0
    complete: bool = True
    incomplete_reason: str | None = None
    deletes_skipped: int = 0
    deletes_skipped_reason: str | None = None
    unproven: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the listing completed and was whole, no media failed and no delete
        was held back."""
        return (
            self.complete and self.unproven is None and not self.failed and not self.deletes_skipped
        )

    @property
    def failures(self) -> list[FailedFetch]:
        """``failed`` as :class:`~coreviz_frames.failures.FailedFetch` records."""
        return [failure_from_manifest(entry) for entry in self.failed]

    def history_entry(self) -> dict[str, Any]:
        """This sync as the manifest's ``syncs`` history keeps it."""
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "failed": len(self.failed),
            "bytes_written": self.bytes_written,
            "complete": self.complete,
            **self.listing_note(),
        }

    def listing_note(self) -> dict[str, Any]:
        """What the manifest's sync history says of a listing that was not whole, or of
        deletes held back ({} when there is nothing to say)."""
        note: dict[str, Any] = {}
        if self.unproven is not None:
            note["unproven"] = self.unproven
        if self.deletes_skipped:
            note["deletes_skipped"] = self.deletes_skipped
            note["deletes_skipped_reason"] = self.deletes_skipped_reason
        return note

    def __str__(self) -> str:
        state = f"snapshot {self.snapshot}" if self.changed else "nothing changed, no file written"
        lines = [
            f"synced {self.path}: {self.added:,} added, {self.updated:,} updated, "
            f"{self.deleted:,} deleted, {self.unchanged:,} unchanged, {len(self.failed):,} "
            f"failed -> {state} ({self.bytes_written:,} bytes written, {self.fetched:,} Get "
            f"Media, {self.elapsed:.1f}s)"
        ]
        if not self.complete:
            lines.append(
                f"INCOMPLETE: the listing stopped early ({self.incomplete_reason}); nothing "
                "was deleted. Run the sync again."
            )
        if self.complete and self.unproven is not None:
            lines.append(
                f"NOT WHOLE: the listing does not prove it listed every media "
                f"({self.unproven}); nothing was deleted. The next whole listing deletes."
            )
        if self.deletes_skipped:
            lines.append(
                f"NOT DELETED: {self.deletes_skipped:,} media no longer listed "
                f"({self.deletes_skipped_reason})"
            )
        lines += self._failure_lines()
        return "\n".join(lines)

    def _failure_lines(self) -> list[str]:
        named = [item for item in self.failed if item.get("id") is not None]
        unnamed = len(self.failed) - len(named)
        lines = []
        if named:
            lines.append(
                f"FAILED: {len(named):,} media not brought up to date; their previous rows, "
                f"if any, are kept (listed in {MANIFEST_NAME}; the next sync retries them)"
            )
        if unnamed:
            lines.append(
                f"FAILED: {unnamed:,} listed items had no valid id, so nothing was deleted "
                f"(listed in {MANIFEST_NAME})"
            )
        return lines + [failure_line(item) for item in self.failed[:5]]


class _Run:
    """The state of one sync: what the export holds, what the listing showed, what changes."""

    def __init__(
        self,
        client: Client,
        store: ExportStore,
        report: SyncReport,
        hydrate: Literal["auto"] | bool,
        batch_size: int,
    ) -> None:
        self.client, self.store, self.report = client, store, report
        self.hydrate, self.batch_size = hydrate, batch_size
        self.known: dict[str, StoredMedia] = store.stored_media()
        self.seen: set[str] = set()
        self.replaced: set[str] = set()
        self.pending: list[tuple[dict, str, str, str | None]] = []  # record, id, fp, listing
        self.to_fetch: list[tuple[dict, str, str]] = []  # light item, id, listing fp
        self.unknown: list[tuple[dict, str, str, str | None]] = []  # stored without fp
        self.failures: list[FailedFetch] = []

    def see(self, item: Mapping[str, Any]) -> None:
        """Decide about one listed item: unchanged, changed or new (now or after Get Media)."""
        raw_id = item.get("id")
        if not is_safe_id(raw_id):
            reason = (
                f"a listed item with a missing or invalid id ({str(raw_id)[:60]!r}): it could "
                "not be compared, so this sync deleted nothing"
            )
            self.failures.append(FailedFetch(None, None, "InvalidIdError", reason))
            return
        ident = normalize_id(raw_id) or raw_id
        if ident in self.seen:
            return  # listed again (another spelling, or a page that shifted): seen once
        self.seen.add(ident)
        stored = self.known.get(ident)
        listed = fingerprint(item)
        if not needs_hydration(item) and self.hydrate is not True:
            if stored is not None and matches(stored.fingerprint, item, current=listed):
                self.unchanged(stored, ident, listed, listed)
            else:
                self.add(dict(item), ident, listed, listed)
            return
        if (
            self.hydrate is not True
            and stored is not None
            and matches(stored.listing_fingerprint, item, current=listed)
        ):
            self.unchanged(stored, ident, stored.fingerprint, listed)
            return
        self.to_fetch.append((dict(item), ident, listed))
        if len(self.to_fetch) >= self.batch_size:
            self.fetch()

    def fetch(self) -> None:
        """Get Media for the queued light items, then compare their full fingerprints."""
        queued, self.to_fetch = self.to_fetch, []
        if not queued:
            return
        records = self.client.iter_media([item["id"] for item, _, _ in queued], on_error="skip")
        got = {normalize_id(r.get("id")): r for r in records if isinstance(r.get("id"), str)}
        self.report.fetched += len(queued)
        self.failures += records.report.failed
        for item, ident, listed in queued:
            full = got.get(ident)
            if full is None:
                continue  # a failure, recorded above (an answer for another id too): kept
            for key, value in item.items():  # as browse(hydrate="auto") merges them
                full.setdefault(key, value)
            content = fingerprint(full)
            stored = self.known.get(ident)
            if stored is not None and matches(stored.fingerprint, full, current=content):
                self.report.unchanged += 1  # the listed item changed, the record did not:
                self.store.refresh_fingerprints(stored.part, {ident: (content, listed)})
            else:
                self.add(full, ident, content, listed)

    def unchanged(
        self, stored: StoredMedia, ident: str, content: str | None, listed: str | None
    ) -> None:
        """Count an unchanged media; one whose stored fingerprints were written by the
        previous definition gets the current ones (its rows stay as they are)."""
        self.report.unchanged += 1
        old = (stored.fingerprint, stored.listing_fingerprint)
        # (a light item's content fingerprint stays as stored until a Get Media)
        if any(map(is_legacy, old)) and (content, listed) != old:
            self.store.refresh_fingerprints(stored.part, {ident: (content, listed)})

    def add(self, record: dict, ident: str, content: str, listed: str | None) -> None:
        stored = self.known.get(ident)
        if stored is not None and stored.fingerprint is None:
            self.unknown.append((record, ident, content, listed))
            if len(self.unknown) >= self.batch_size:
                self.compare()
            return
        self.pending.append((record, ident, content, listed))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def compare(self) -> None:
        """Media stored without a fingerprint (written by ``tables.to_parquet``, a Dask
        export, ``export_parquet(tables)``): their stored rows are compared with the rows of
        the record. Equal rows are unchanged (the fingerprint is stored for the next sync);
        others are rewritten."""
        queued, self.unknown = self.unknown, []
        by_part: dict[int, list[tuple[dict, str, str, str | None]]] = {}
        for entry in queued:
            by_part.setdefault(self.known[entry[1]].part, []).append(entry)
        for seq, entries in sorted(by_part.items()):
            stored = rows_by_media(self.store.media_rows(seq, [e[1] for e in entries]))
            fresh = rows_by_media(flatten_batch([e[0] for e in entries])[0])
            for record, ident, content, listed in entries:
                if ident in stored and stored.get(ident) == fresh.get(ident):
                    self.report.unchanged += 1
                    self.store.refresh_fingerprints(seq, {ident: (content, listed)})
                else:
                    self.pending.append((record, ident, content, listed))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending records as a new part of the next snapshot."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        tables, bad = flatten_batch([record for record, *_ in batch])
        bad_ids = {normalize_id(f.media_id) for f in bad}
        self.failures += bad
        fps = {ident: (c, lf) for _, ident, c, lf in batch if ident not in bad_ids}
        commit = self.store.stage_part(tables, fps)
        self.report.parts_written += 1
        self.report.bytes_written += commit.bytes_written
        for ident in fps:
            if ident in self.known:
                self.report.updated += 1
                self.replaced.add(ident)
            else:
                self.report.added += 1


#: Columns holding blob URLs, compared without query string (as the fingerprint does).
_BLOB_COLUMNS = ("blob", "thumbnail_blob")


def rows_by_media(tables: Mapping[str, pa.Table]) -> dict[str, dict[str, list[dict]]]:
    """``{media_id: {grain: rows}}``, rows as dicts in table order, blob URLs without their
    signature, so two flattenings of the same record compare equal.

    Example:
        >>> t = pa.table({"media_id": ["m1"], "blob": ["https://h/a.jpg?sig=1"]})
        >>> rows_by_media({"media": t})
        {'m1': {'media': [{'media_id': 'm1', 'blob': 'https://h/a.jpg'}]}}
    """
    out: dict[str, dict[str, list[dict]]] = {}
    for grain, table in tables.items():
        for row in table.to_pylist():
            for column in _BLOB_COLUMNS:
                if isinstance(row.get(column), str):
                    row[column] = strip_signature(row[column])
            out.setdefault(str(row["media_id"]), {}).setdefault(grain, []).append(row)
    return out


def _walk(
    run: _Run, collection_id: str, filters: BrowseFilters, page_size: int, progress: bool | None
) -> None:
    """Walk the listing once; the report says whether it completed."""
    report = run.report
    listing = run.client.browse(
        collection_id, filters=filters, page_size=page_size, hydrate=False, progress=progress
    )
    try:
        for item in listing:
            run.see(item)
    except (AuthenticationError, ConfigError):
        raise
    except CorevizError as exc:
        report.complete, report.incomplete_reason = False, f"{type(exc).__name__}: {exc}"
        return
    if not listing.report.complete:
        report.complete = False
        report.incomplete_reason = listing.report.incomplete_reason or "the walk stopped early"
    else:
        report.unproven = listing.report.unproven


def _deletions(run: _Run, delete_missing: bool, allow_mass_delete: bool) -> set[str]:
    """The media to delete: known, not listed, after a whole listing, guarded."""
    report = run.report
    missing = set(run.known) - run.seen
    if not missing or not delete_missing:
        return set()
    if not report.complete:
        reason: str | None = "the listing did not complete"
    elif report.unproven is not None:
        reason = f"the listing is not provably whole: {report.unproven}"
    elif allow_mass_delete:
        reason = None
    elif not run.seen:
        reason = "the listing came back empty; pass allow_mass_delete=True to delete all"
    elif len(missing) * 2 > len(run.known):
        reason = (
            f"that would delete {len(missing):,} of {len(run.known):,} media, more than half; "
            "pass allow_mass_delete=True (--allow-mass-delete) if that is right"
        )
    else:
        reason = None
    if reason is not None:
        report.deletes_skipped, report.deletes_skipped_reason = len(missing), reason
        return set()
    return missing


def _rewrite(run: _Run, drop: set[str]) -> None:
    """Copy-on-write: rewrite only the parts that hold a media in ``drop``."""
    by_part: dict[int, set[str]] = {}
    for ident in drop:
        by_part.setdefault(run.known[ident].part, set()).add(ident)
    for seq in sorted(by_part):
        commit = run.store.stage_rewrite(seq, by_part[seq])
        run.report.parts_rewritten += 1
        if commit is not None:
            run.report.bytes_written += commit.bytes_written


def sync(
    client: Client,
    collection_id: str,
    path: PathLike,
    *,
    filters: BrowseFilters | None = None,
    hydrate: Literal["auto"] | bool = "auto",
    delete_missing: bool = True,
    allow_mass_delete: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    page_size: int = 100,
    partition_by: str | None = None,
    progress: bool | None = None,
    table_format: str | None = None,
    retention: timedelta | float = DEFAULT_RETENTION,
) -> SyncReport:
    """Bring the export at ``path`` up to date with the collection (see the module doc).

    ``filters`` must equal the export's (recorded in its manifest); ``partition_by``
    applies to a new export only. ``ExportError`` when ``path`` holds an export of
    another collection or filters, or another writer holds it.

    ``table_format`` applies to a new export too: ``"delta"`` (the default: a Delta Lake
    table per grain, one commit per changed table, versions pinned by the manifest) or
    ``"parquet"``; an existing export keeps its format (asking for the other one is an
    ``ExportError``). ``retention`` (Delta) is how long the files a commit replaced stay
    for readers of older versions; each sync vacuums those replaced longer ago.

    Example:
        >>> report = cvf.sync(client, "COLLECTION_ID", "export/")  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
        synced export: 12 added, 3 updated, 1 deleted, 9,984 unchanged, 0 failed -> ...
    """
    started = time.monotonic()
    check_int("batch_size", batch_size, minimum=1)
    check_choice("hydrate", hydrate, HYDRATE)
    collection_id = validate_id(collection_id, kind="collection id")  # before any file
    filters = BrowseFilters.build(filters)
    source = walk_source(client.base_url, collection_id, filters)
    store = open_store(
        path, table_format, default="delta", retention=retention, partition_by=partition_by
    )
    report = SyncReport(path=store.root)
    with store.open_sync(source=source):
        run = _Run(client, store, report, hydrate, batch_size)
        try:
            _walk(run, collection_id, filters, page_size, progress)
            _apply(run, delete_missing=delete_missing, allow_mass_delete=allow_mass_delete)
        except BaseException:
            store.discard_staged()
            raise
    report.elapsed = time.monotonic() - started
    return report


def _last_note(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The listing note of the manifest's last sync (see :meth:`SyncReport.listing_note`)."""
    syncs = manifest.get("syncs")
    last = syncs[-1] if isinstance(syncs, list) and syncs else None
    if not isinstance(last, Mapping):
        return {}
    keys = ("unproven", "deletes_skipped", "deletes_skipped_reason")
    return {key: last[key] for key in keys if key in last}


def _apply(run: _Run, *, delete_missing: bool, allow_mass_delete: bool) -> None:
    """After the walk: stage the rest and the rewrites, then commit one snapshot (or, when
    nothing changed, write nothing)."""
    store, report = run.store, run.report
    run.fetch()
    run.compare()
    run.flush()
    deleted = _deletions(run, delete_missing, allow_mass_delete)
    report.deleted = len(deleted)
    _rewrite(run, run.replaced | deleted)
    failed = [failure_to_manifest(f) for f in run.failures]
    report.failed = failed
    reason = None if report.complete else report.incomplete_reason
    manifest = store.manifest
    same_state = manifest.get("status") == ("complete" if reason is None else "incomplete")
    same_state = same_state and report.listing_note() == _last_note(manifest)
    if not store.pending and failed == manifest.get("failed", []) and same_state and store.snapshot:
        report.snapshot = store.snapshot
        return
    history = report.history_entry()
    report.snapshot = store.commit_snapshot(failures=run.failures, reason=reason, history=history)
    report.changed = True
    report.bytes_written += store.committed_bytes
    report.bytes_written += (Path(store.root) / MANIFEST_NAME).stat().st_size

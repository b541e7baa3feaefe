"""Streaming export: media records in, a resumable Parquet export out (:func:`export_parquet`).

Records are flattened batch by batch (memory bounded by ``batch_size``) while one writer
thread (:mod:`.handoff`) commits the previous batch through the export store
(:mod:`.store`), which locks the directory, commits each part and keeps the manifest.
Failures reported by the client's iterators (``records.report.failed``) and records that
cannot be flattened are listed as :class:`~coreviz_frames.failures.FailedFetch`. A walk
that stopped early (``records.report.complete`` is False) ends the export as
``incomplete``, never as ``complete``. On resume, ids already exported are handed to
``records.exclude(ids)`` (the client's iterators then neither fetch nor yield them) and
skipped in any case.

From ``client.browse(...)`` / ``client.iter_range(...)`` the records arrive as page chunks
(:meth:`~coreviz_frames.api.client.BrowseIterator.chunks`): pages pyarrow reads provably
exactly are never decoded into dicts; a batch made only of them is flattened by Arrow
compute (:func:`~coreviz_frames.tables.pagechunks.flatten_parts`), any other batch the
exact way, and their fingerprints are computed from the page bytes off the main thread
(:mod:`.fingerprintpool`, where present); the writer thread waits for them before it
commits the part. The files are the same whichever path ran.

Example:
    >>> report = export_parquet(client.browse("COL"), "big/", resume=True)  # doctest: +SKIP
    >>> report.ok, report.media_exported  # doctest: +SKIP
    (True, 12000)
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from coreviz_frames._util.checks import check_int, is_int
from coreviz_frames._util.concurrency import Handoff
from coreviz_frames._util.ids import normalize_id
from coreviz_frames._util.progress import progress_bar
from coreviz_frames.errors import ConfigError, SkippedRecordWarning
from coreviz_frames.exports.deltastore import open_store
from coreviz_frames.exports.fingerprint import fingerprint
from coreviz_frames.exports.fingerprintpool import FingerprintPool, SentPage, page_fingerprints
from coreviz_frames.exports.grainfiles import DEFAULT_ROW_GROUP_SIZE
from coreviz_frames.exports.keeprules import KeepRules
from coreviz_frames.exports.manifest import MANIFEST_NAME, failure_from_manifest
from coreviz_frames.exports.processes import export_ranges, ranged_plan
from coreviz_frames.exports.store import DEFAULT_BATCH_SIZE, ExportStore, PartCommit, PathLike
from coreviz_frames.failures import FailedFetch, failure_line
from coreviz_frames.schema import GRAINS
from coreviz_frames.tables.flatten import FlattenReport
from coreviz_frames.tables.media_tables import MediaTables
from coreviz_frames.tables.pagechunks import PageRows, flatten_parts
from coreviz_frames.tables.subset import restrict

__all__ = ["ExportReport", "export_parquet", "flatten_batch"]


@dataclass
class ExportReport:
    """What one :func:`export_parquet` run did.

    ``rows`` counts rows written by this run per grain; ``failed`` lists every
    record not exported (manifest entries ``{"id", "status", "error_type", "reason"}``),
    including failures of earlier runs that were not retried successfully.
    ``complete`` is False when the walk over the records stopped early
    (``incomplete_reason`` says why); ``ok`` is True only when complete with no failure.

    Example:
        >>> print(ExportReport(Path("out"), complete=False, incomplete_reason="empty page"))
        exported 0 media to out in 0.0s (0 media/s, 0 parts)
        rows: media 0, frames 0, captions 0, objects 0, tags 0
        INCOMPLETE: the walk over the records stopped early (empty page); ...
    """

    path: Path
    media_exported: int = 0
    media_skipped: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GRAINS, 0))
    failed: list[dict[str, Any]] = field(default_factory=list)
    parts_written: int = 0
    elapsed: float = 0.0
    complete: bool = True
    incomplete_reason: str | None = None
    #: Where the fingerprints of pages read by pyarrow were computed (``FingerprintPool.
    #: describe()``: side processes, or in-process and why); None when no page was.
    fingerprints: str | None = None

    @property
    def ok(self) -> bool:
        """True when the walk was complete and no record failed."""
        return self.complete and not self.failed

    @property
    def failures(self) -> list[FailedFetch]:
        """``failed`` as :class:`~coreviz_frames.failures.FailedFetch` records."""
        return [failure_from_manifest(entry) for entry in self.failed]

    def add(self, commit: PartCommit) -> None:
        """Count one committed part."""
        self.parts_written += 1
        self.media_exported += commit.media
        for grain, n in commit.rows.items():
            self.rows[grain] = self.rows.get(grain, 0) + n

    def __str__(self) -> str:
        rate = self.media_exported / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"exported {self.media_exported:,} media to {self.path} in {self.elapsed:.1f}s "
            f"({rate:,.0f} media/s, {self.parts_written} part"
            f"{'' if self.parts_written == 1 else 's'})"
        ]
        if self.media_skipped:
            lines.append(f"skipped {self.media_skipped:,} media already exported")
        lines.append("rows: " + ", ".join(f"{g} {n:,}" for g, n in self.rows.items()))
        if not self.complete:
            lines.append(
                "INCOMPLETE: the walk over the records stopped early "
                f"({self.incomplete_reason or 'no reason given'}); the export holds only "
                "what was seen. A re-run with resume=True, or --resume, continues it."
            )
        if self.fingerprints and "in-process" in self.fingerprints:
            lines.append(f"note: {self.fingerprints}")
        if self.failed:
            lines.append(
                f"FAILED: {len(self.failed):,} record{'' if len(self.failed) == 1 else 's'} "
                f"(listed in {MANIFEST_NAME}; "
                "a re-run with resume=True, or --resume, retries them)"
            )
            lines.extend(failure_line(item) for item in self.failed[:5])
            if len(self.failed) > 5:
                lines.append(f"  ... and {len(self.failed) - 5:,} more")
        return "\n".join(lines)


def _reported_failures(records: Any) -> list[FailedFetch]:
    """The failed fetches a client iterator reports (``records.report.failed``)."""
    report = getattr(records, "report", None)
    return list(getattr(report, "failed", None) or [])


def _excluded_count(records: Any) -> int:
    """How many exported media the iterator left out for us (``records.report.excluded``)."""
    excluded = getattr(getattr(records, "report", None), "excluded", 0)
    return excluded if is_int(excluded) else 0


def walk_outcome(records: Any) -> tuple[bool, str | None]:
    """``(complete, reason)`` of the walk, as ``records.report`` says (complete if silent).

    Example:
        >>> walk_outcome([])
        (True, None)
    """
    report = getattr(records, "report", None)
    complete = getattr(report, "complete", True)
    reason = getattr(report, "incomplete_reason", None)
    return (complete is not False), (None if complete is not False else reason)


def flatten_batch(batch: list[Any]) -> tuple[dict[str, pa.Table], list[FailedFetch]]:
    """The Arrow table of each grain for a batch (as :func:`~coreviz_frames.tables.flatten.flatten`
    builds them, ready for :meth:`ExportStore.commit_part`, with no pandas round trip); a
    malformed record becomes a failure, not a crashed export.

    Example:
        >>> tables, bad = flatten_batch([{"id": "m1", "type": "image"}, "not a record"])
        >>> tables["media"].num_rows, len(bad)
        (1, 1)
    """
    skipped = FlattenReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordWarning)
        tables = flatten_parts(batch, on_error="skip", report=skipped)
    return tables, [FailedFetch.from_error(err.media_id, err) for err in skipped.skipped]


def _exclude_exported(records: Any, store: ExportStore) -> None:
    """Tell the client's iterator which ids are exported, so it does not fetch them."""
    exclude = getattr(records, "exclude", None)
    exported = store.exported_ids()
    if exported and callable(exclude):
        exclude(exported)


@dataclass
class _Part:
    """One batch, flattened, on its way to the writer thread; ``pending``: fingerprints
    still being computed (each page's future, with its bytes and ids, not its table)."""

    tables: dict[str, pa.Table]
    failures: list[FailedFetch]
    fingerprints: dict[str, tuple[str, None]]
    pending: list[SentPage] = field(default_factory=list)

    def resolved(self) -> dict[str, tuple[str, None]]:
        """Writer thread: every fingerprint, waiting for those still computed."""
        for sent in self.pending:
            self._take_in(sent)
        self.pending = []
        return self.fingerprints

    def settle(self) -> None:
        """Take in the fingerprints of pages the pool has answered already, and let go of
        those pages' bytes (kept only in case a side process dies): a part waiting for the
        writer then holds its tables and little else."""
        waiting = []
        for sent in self.pending:
            if sent.future.done() and sent.future.exception() is None:
                self._take_in(sent)
            else:
                waiting.append(sent)
        self.pending = waiting

    def _take_in(self, sent: SentPage) -> None:
        found = page_fingerprints(sent)
        self.fingerprints.update({ident: (fp, None) for ident, fp in found.items()})


def _open_pool() -> FingerprintPool:
    """The pool of side processes that fingerprints page bytes (in a thread where processes
    cannot start: see :mod:`.fingerprintpool`)."""
    return FingerprintPool()


class _Batcher:
    """Gathers records into batches and flattens each; the writer thread commits them.

    Ids are skipped when already exported, in the batch being gathered, or in a batch
    handed to the writer but not yet committed (``queued``, checked before the store so a
    commit racing the check is always seen by one of the two).
    """

    def __init__(
        self, records: Any, store: ExportStore, report: ExportReport, pool: Any = None
    ) -> None:
        self.records, self.store, self.report = records, store, report
        self.pool = pool  # a FingerprintPool for the PageRows, or None
        self.batch: list[Any] = []  # records and PageRows, in listing order
        self.size = 0  # media in the batch
        self.batch_ids: dict[str, Any] = {}  # the batch's records with an id, by id
        self.queued: deque[frozenset[str]] = deque()  # ids only: not their records or pages
        self.submitted = 0
        # fingerprints of the batch's PageRows, started in the pool as each one is added
        self.pending: list[SentPage] = []
        self.rules = KeepRules(
            self.is_duplicate, self._kept, self._skipped, any_seen=self.any_duplicate
        )

    def _kept(self, ident: str, item: Any) -> None:
        self.batch_ids[ident] = item  # a new dict each batch: never bind its method

    def _skipped(self) -> None:
        self.report.media_skipped += 1

    def is_duplicate(self, ident: str) -> bool:
        return (
            ident in self.batch_ids
            or any(ident in ids for ids in tuple(self.queued))
            or self.store.is_exported(ident)
        )

    def any_duplicate(self, idents: set[str]) -> bool:
        """:meth:`is_duplicate` of any of ``idents`` (normalised), with set operations."""
        return (
            any(map(self.batch_ids.__contains__, idents))
            or any(any(map(ids.__contains__, idents)) for ids in tuple(self.queued))
            or self.store.any_exported(idents)
        )

    def add(self, record: Any) -> bool:
        """Add ``record`` unless it is a folder or a duplicate; True if added."""
        if not self.rules.record(record):
            return False
        self.batch.append(record)
        self.size += 1
        return True

    def add_rows(self, part: PageRows) -> PageRows:
        """The rows of ``part`` that are neither exported nor already in a batch (each id
        once), counting the others as skipped."""
        return self.rules.rows(part)

    def append_rows(self, kept: PageRows) -> None:
        """Add ``kept`` to the batch and start its fingerprints in the pool now, so the side
        processes compute them while the batch fills (not after it is handed over)."""
        self.batch.append(kept)
        self.size += len(kept)
        if self.pool is not None:
            self.pending.append(self.pool.submit_rows(kept))

    def _fingerprints(self) -> tuple[dict[str, tuple[str, None]], list]:
        """The batch's fingerprints: of its records now, of its PageRows as the futures
        started by :meth:`append_rows` (PageRows come only from ``chunks()``, which is
        walked only with a pool)."""
        fps: dict[str, tuple[str, None]] = {}
        for ident, record in self.batch_ids.items():
            if not isinstance(record, PageRows):
                fps[ident] = (fingerprint(record), None)
        pending, self.pending = self.pending, []
        return fps, pending

    def take(self) -> _Part:
        """The gathered batch, flattened and fingerprinted; the batcher starts a new one."""
        tables, bad = flatten_batch(self.batch)
        fps, pending = self._fingerprints()
        part = _Part(tables, [*_reported_failures(self.records), *bad], fps, pending)
        part.settle()
        self.queued.append(frozenset(self.batch_ids))
        self.submitted += 1
        self.batch, self.batch_ids, self.size = [], {}, 0
        return part

    def committed(self, part: _Part) -> None:
        """Writer thread: commit ``part`` (once its fingerprints are computed), then forget
        its queued ids (the store has them)."""
        commit = self.store.commit_part(
            part.tables, failures=part.failures, fingerprints=part.resolved()
        )
        self.report.add(commit)
        self.queued.popleft()


def _run(
    records: Iterable[Any], store: ExportStore, report: ExportReport, batch_size: int, bar: Any
) -> None:
    """Fetch, parse and flatten batch N+1 (this thread and the client's workers) while
    batch N is written (one writer thread; Arrow encodes and compresses without the GIL)."""
    chunks = getattr(records, "chunks", None)
    fast = callable(chunks) and hasattr(records, "report")
    with _open_pool() if fast else contextlib.nullcontext(None) as pool:
        batcher = _Batcher(records, store, report, pool)
        # one part waits for the writer at most: parts of DEFAULT_BATCH_SIZE media keep the
        # writer busy, and a deeper queue only held more memory (measured: same speed)
        with Handoff(batcher.committed, depth=1, name="coreviz-export-writer") as writer:
            for item in chunks() if fast else records:  # type: ignore[misc]
                for full in _added(batcher, item, batch_size, bar):
                    if full:
                        writer.submit(batcher.take())
            if batcher.batch or (batcher.submitted == 0 and not store.has_parts):
                writer.submit(batcher.take())  # the last batch; or an empty part
        if pool is not None:
            report.fingerprints = pool.describe()
    # (the pool is closed after the writer: every part's fingerprints were awaited)


def _added(batcher: _Batcher, item: Any, batch_size: int, bar: Any) -> Iterator[bool]:
    """Add one record or :class:`PageRows` to the batch, cut at ``batch_size`` media; yields
    True each time the batch is full (take it before the next step)."""
    if not isinstance(item, PageRows):
        bar.update(1)
        yield batcher.add(item) and batcher.size >= batch_size
        return
    bar.update(len(item))
    rest = item
    while len(rest):
        piece = rest.cut(0, batch_size - batcher.size)
        rest = rest.cut(len(piece))
        kept = batcher.add_rows(piece)
        if len(kept):
            batcher.append_rows(kept)
        yield batcher.size >= batch_size


def _run_tables(
    tables: MediaTables, store: ExportStore, report: ExportReport, batch_size: int, bar: Any
) -> None:
    """Write ``tables`` (already flattened) as parts of ``batch_size`` media each; media
    already exported (a resume) are skipped. Without the records there is no fingerprint:
    a later sync compares these media by their rows."""
    ids = list(dict.fromkeys(tables.media["media_id"].dropna().tolist()))
    todo = [i for i in ids if not store.is_exported(normalize_id(i) or i)]
    report.media_skipped += len(ids) - len(todo)
    frames = dict(tables.items())
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        report.add(store.commit_part(restrict(frames, chunk)))
        bar.update(len(chunk))
    if not todo and not store.has_parts:
        report.add(store.commit_part(MediaTables.empty()))  # an empty part for the columns


def _check_records(records: Any) -> None:
    """Refuse what is not records nor tables, saying what to pass."""
    if isinstance(records, (str, bytes, Path, Mapping)) or hasattr(records, "columns"):
        raise ConfigError(
            f"export_parquet takes media records (client.browse(...), client.iter_media(...), "
            f"a list of dicts) or a MediaTables (cvf.to_tables(...)), not "
            f"{type(records).__name__}; a DataFrame of one grain is not enough: pass the "
            "MediaTables it came from"
        )


def _total(records: Any) -> int | None:
    """How many media ``records`` hold, when that is known before iterating."""
    if isinstance(records, MediaTables):
        return len(records.media)
    return len(records) if hasattr(records, "__len__") else None


def _close(records: Any) -> None:
    """Stop the client's fetches for ``records`` (its worker threads end)."""
    close = getattr(records, "close", None)
    if callable(close):
        close()


def export_parquet(
    records: Iterable[Mapping[str, Any]] | MediaTables,
    path: PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    source: Mapping[str, Any] | None = None,
    partition_by: str | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
    table_format: str | None = None,
    processes: int | None = None,
) -> ExportReport:
    """Stream media records into a Parquet export, ``batch_size`` media per part.

    ``records`` are media records (``client.browse(...)``, ``client.iter_media(...)``, a
    list of dicts), or a :class:`~coreviz_frames.tables.media_tables.MediaTables` already in
    memory (written ``batch_size`` media per part, resumable the same way).
    Memory is bounded by the batch. ``source`` (e.g. ``{"base_url": ...,
    "collection_id": ..., "filters": {...}}``) goes into the manifest with any
    credential removed. Failed fetches exposed by ``records.report`` (the
    client's ``on_error="skip"`` iterators) and records that cannot be flattened
    are listed in the report and the manifest. A walk the iterator reports as cut
    short ends as ``incomplete`` (``report.ok`` is False). With ``resume=True`` media
    of committed parts are skipped (and not fetched, by iterators with ``exclude``)
    and an interrupted part is redone (a directory without a manifest is refused, or
    cleared if ``overwrite`` is also given). ``ExportError`` when ``path`` is not empty
    and neither flag is given, or when another export is writing there.

    ``table_format="delta"`` writes each grain as a Delta Lake table (one commit per
    table per batch; see :mod:`~coreviz_frames.exports.deltastore`); the default is ``"parquet"``
    for a new export and the existing format for a resumed one.

    ``processes=N`` (N >= 2; records from ``client.browse``, Parquet) splits the collection
    into offset ranges of about ``batch_size`` media, exported by N worker processes at a
    time, one part each (see :mod:`~coreviz_frames.exports.processes`); resumable the same way.

    Example:
        >>> from coreviz_frames.local_api.synthetic import iter_synthetic
        >>> import tempfile
        >>> report = export_parquet(iter_synthetic(30), tempfile.mkdtemp(), batch_size=10)
        >>> report.ok, report.media_exported, report.parts_written
        (True, 30, 3)
        >>> recs = client.browse("COLLECTION_ID", page_size=100)  # doctest: +SKIP
        >>> src = {"base_url": client.base_url, "collection_id": "COL"}  # doctest: +SKIP
        >>> report = export_parquet(recs, "export/", resume=True, source=src)  # doctest: +SKIP
    """
    started = time.monotonic()
    check_int("batch_size", batch_size, minimum=1)
    _check_records(records)
    ranged = _is_ranged(records, processes)
    if source is None:
        source = getattr(records, "source", None)
    store = open_store(
        path,
        table_format,
        default="parquet",
        replacing=overwrite,
        partition_by=partition_by,
        row_group_size=row_group_size,
        compression=compression,
    )
    report = ExportReport(path=store.root)
    _check_ranged_format(ranged, store)
    with store.open(overwrite=overwrite, resume=resume, source=source):
        if ranged:
            ranges = {"processes": processes, "batch_size": batch_size, "flatten": flatten_batch}
            export_ranges(records, store, report, **ranges)  # type: ignore[arg-type]
        else:
            _stream(records, store, report, batch_size, progress)
        report.failed = store.failure_entries()
    report.elapsed = time.monotonic() - started
    return report


def _is_ranged(records: Any, processes: int | None) -> bool:
    """True when ``processes`` asks for worker processes (checked, with the records)."""
    if processes is None:
        return False
    check_int("processes", processes, minimum=1)
    if processes > 1:
        ranged_plan(records)  # ConfigError for records that are not a collection's walk
    return processes > 1


def _check_ranged_format(ranged: bool, store: ExportStore) -> None:
    if ranged and store.table_format != "parquet":
        raise ConfigError(
            "processes= writes Parquet parts; a Delta export commits from one process: "
            "leave processes= out"
        )


def _stream(
    records: Any, store: ExportStore, report: ExportReport, batch_size: int, progress: bool | None
) -> None:
    """The export in this process: batches flattened here, written by one thread."""
    _exclude_exported(records, store)
    total = _total(records)
    with progress_bar(total=total, desc="export", unit="media", progress=progress) as bar:
        try:
            run = _run_tables if isinstance(records, MediaTables) else _run
            run(records, store, report, batch_size, bar)
        except BaseException:
            _close(records)
            raise
    store.record_failures(_reported_failures(records))
    report.media_skipped += _excluded_count(records)
    report.complete, report.incomplete_reason = walk_outcome(records)
    if report.complete:
        store.finish("complete")
    else:
        store.finish("incomplete", reason=report.incomplete_reason or "walk stopped early")

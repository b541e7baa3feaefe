"""Export a collection across local processes: one offset range, one part, per task.

``export_parquet(client.browse("COL"), "export/", processes=4)`` reads ``pagination.total``
once, cuts the collection into page-aligned ranges of about ``batch_size`` media (the
planner Dask uses: :mod:`coreviz_frames.exports.ranges`) and hands them to a pool of
``processes`` worker processes. Each worker reads its range (pages fetched concurrently,
items hydrated, exactly as ``browse``), flattens and fingerprints it as the in-process
export does, and writes it as one part under a part number this process reserved
(:class:`~coreviz_frames.exports.store.PartWriter`); this process commits each part as
soon as it is written (:meth:`~coreviz_frames.exports.store.ExportStore.adopt_pending`),
so the manifest, resume and sync work as for any export.

- The pool starts its workers with ``spawn`` (never ``fork`` with threads alive). The API
  key reaches them pickled through the pool's pipe (a
  :class:`~coreviz_frames.exports.ranges.ClientSpec`): never in argv, the environment, a
  log, a repr or a file.
- A range that fails raises :class:`~coreviz_frames.exports.ranges.PartitionError` naming
  its offsets; the other workers are stopped, every committed part is kept, files of
  uncommitted parts are deleted, and ``resume=True`` continues the export.
- Ctrl-C (``KeyboardInterrupt``) and SIGTERM (``SystemExit(143)``, while the export runs in
  the main thread) stop the workers before the error propagates; workers ignore SIGINT and
  exit on their own when this process dies.
- Where processes cannot be started (no working semaphores, a sandbox), the ranges run
  one after another in this process, with a :class:`RuntimeWarning` saying why.

Example:
    >>> report = export_parquet(client.browse("COL"), "export/", processes=4)  # doctest: +SKIP
    >>> report.parts_written  # doctest: +SKIP
    20
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import pyarrow as pa

from coreviz_frames.errors import ConfigError
from coreviz_frames.exports.fingerprint import fingerprint
from coreviz_frames.exports.fingerprintpool import FingerprintPool, SentPage, page_fingerprints
from coreviz_frames.exports.keeprules import KeepRules
from coreviz_frames.exports.ranges import (
    ClientSpec,
    OffsetRange,
    RangeRead,
    offset_ranges,
    planned_total,
    read_range,
)
from coreviz_frames.exports.store import ExportStore, PartCommit, PartWriter, PendingPart
from coreviz_frames.failures import FailedFetch
from coreviz_frames.tables.media_tables import MediaTables
from coreviz_frames.tables.pagechunks import PageRows

__all__ = ["export_ranges", "ranged_plan"]

#: Largest ``pagination.total`` a ranged export plans (as on Dask).
MAX_TOTAL = 10_000_000
#: Seconds a worker waits between checks that the exporting process still lives.
_WATCH_SECONDS = 0.5

Flatten = Callable[[list[Any]], tuple[dict[str, pa.Table], list[FailedFetch]]]


class _Report(Protocol):
    media_skipped: int

    def add(self, commit: PartCommit) -> None: ...


@dataclass
class _RangeResult:
    """What a worker returns for one range (small: the files are on disk)."""

    pending: PendingPart | None
    failures: list[FailedFetch] = field(default_factory=list)
    excluded: int = 0


@dataclass
class _Worker:
    """Everything a worker needs to turn a range into a written part."""

    spec: ClientSpec
    read: RangeRead
    writer: PartWriter
    flatten: Flatten
    exclude: frozenset[str]

    def run(self, rng: OffsetRange, seq: int) -> _RangeResult:
        (pending, bad), report = read_range(
            self.spec,
            self.read,
            rng,
            lambda records: self._write(records, seq),
            exclude=self.exclude,
        )
        return _RangeResult(pending, [*report.failed, *bad], report.excluded)

    def _write(self, records: Iterator[dict], seq: int) -> tuple[PendingPart | None, list]:
        """Flatten and fingerprint the range as the in-process export does (page chunks that
        pyarrow reads exactly stay Arrow; folders and repeated ids left out), then write it
        as part ``seq``."""
        chunks = getattr(records, "chunks", None)
        batch: list[Any] = []
        fps: dict[str, tuple[str, None]] = {}
        pages: list[SentPage] = []
        with FingerprintPool(processes=False) as pool:  # a thread: this is a worker already
            rules = KeepRules(fps.__contains__, _hold_fingerprint(fps))
            for item in chunks() if callable(chunks) else records:
                if isinstance(item, PageRows):
                    item = rules.rows(item)
                    if len(item):
                        pages.append(pool.submit_rows(item))
                        batch.append(item)
                elif rules.record(item):
                    batch.append(item)
            if not batch:
                return None, []
            tables, bad = self.flatten(batch)
            for sent in pages:
                fps.update(_page_fingerprints(sent))
        return self.writer.write(tables, seq, fps), bad


def _hold_fingerprint(fps: dict[str, tuple[str, None]]) -> Callable[[str, Any], None]:
    """``keep`` for :class:`KeepRules`: a record's fingerprint now, a page chunk's place
    held until the page's fingerprints come."""

    def keep(ident: str, item: Any) -> None:
        fps[ident] = ("", None) if isinstance(item, PageRows) else (fingerprint(item), None)

    return keep


def _page_fingerprints(sent: SentPage) -> dict[str, tuple[str, None]]:
    """The fingerprints of a page's kept rows, as the export's index stores them."""
    return {ident: (fp, None) for ident, fp in page_fingerprints(sent).items()}


# --------------------------------------------------------------------------- the workers

_WORKER: _Worker | None = None


def _watch_parent(parent: int) -> None:
    """Exit this worker once the exporting process is gone (killed with SIGKILL, say)."""
    while True:
        time.sleep(_WATCH_SECONDS)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # a new process took the pid: ours is gone
            os._exit(1)


def _init_worker(worker: _Worker, parent: int) -> None:
    """In each worker: keep the task context; Ctrl-C is the parent's to handle."""
    global _WORKER
    _WORKER = worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _run_range(rng: OffsetRange, seq: int) -> _RangeResult:
    assert _WORKER is not None, "the pool initializer did not run"
    return _WORKER.run(rng, seq)


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While workers are spawned, ``__main__`` is a bare module: a spawned worker then
    imports nothing of the user's script (which, without an ``if __name__ == "__main__"``
    guard, would run again in every worker). Workers need only this package."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _submit(pool: ProcessPoolExecutor, rng: OffsetRange, seq: int) -> Future:
    with _main_hidden():  # a submit may spawn a worker
        return pool.submit(_run_range, rng, seq)


def _start_pool(processes: int, worker: _Worker) -> ProcessPoolExecutor | None:
    """A started pool of ``processes`` spawned workers, or None (with a warning) where
    processes cannot be started here."""
    pool = None
    try:
        pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(worker, os.getpid()),
        )
        with _main_hidden():  # every worker starts now, side by side
            probes = [pool.submit(os.getpid) for _ in range(processes)]
        for probe in probes:
            probe.result(timeout=120)
        return pool
    except (OSError, ImportError, NotImplementedError, BrokenProcessPool, TimeoutError) as exc:
        if pool is not None:
            _stop(pool)
        warnings.warn(
            f"processes={processes}: worker processes cannot be started here "
            f"({type(exc).__name__}: {exc}); exporting the ranges one after another in this "
            "process instead",
            RuntimeWarning,
            stacklevel=4,
        )
        return None


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end every worker now (no orphan process)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises ``SystemExit(143)`` here while the export runs (main thread only), so
    the workers are stopped and the manifest says ``failed`` instead of a silent death."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- this process


def ranged_plan(records: Any) -> dict[str, Any]:
    """The walk ``records`` stands for (see ``BrowseIterator.range_plan``); ``ConfigError``
    for records that are not a collection's walk."""
    plan = getattr(records, "range_plan", None)
    if not callable(plan):
        raise ConfigError(
            "processes= splits a collection's offset ranges: pass client.browse(...) (an id "
            f"list, client.iter_media(...) or a list of records, {type(records).__name__} "
            "here, is exported in this process: leave processes= out)"
        )
    return plan()


def _plan_ranges(plan: dict[str, Any], batch_size: int) -> tuple[RangeRead, list[OffsetRange]]:
    read = RangeRead(plan["collection_id"], plan["filters"], plan["page_size"], plan["max_overrun"])
    total = planned_total(plan["client"], read.collection_id, read.filters, MAX_TOTAL)
    bounds = offset_ranges(total, read.page_size, max(1, math.ceil(total / batch_size)))
    last = len(bounds) - 1
    return read, [OffsetRange(i, a, b, i == last) for i, (a, b) in enumerate(bounds)]


def _adopt(store: ExportStore, report: _Report, result: _RangeResult) -> None:
    report.media_skipped += result.excluded
    if result.pending is not None:
        report.add(store.adopt_pending(result.pending, failures=result.failures))
    else:
        store.record_failures(result.failures)


def _drain(
    submit: Callable[[OffsetRange, int], Future],
    ranges: list[OffsetRange],
    store: ExportStore,
    report: _Report,
    window: int,
) -> None:
    """Keep ``window`` ranges running; commit each part as soon as it is written."""
    todo = iter(ranges)
    running: set[Future] = set()
    while True:
        for rng in todo:
            running.add(submit(rng, store.reserve_part()))
            if len(running) >= window:
                break
        if not running:
            return
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            _adopt(store, report, fut.result())  # a failed range raises its PartitionError


class _Inline(Executor):
    """Runs each range at once in this process (where processes cannot start)."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(self.worker.run(*args))
        except Exception as exc:
            fut.set_exception(exc)
        return fut


def export_ranges(
    records: Any,
    store: ExportStore,
    report: _Report,
    *,
    processes: int,
    batch_size: int,
    flatten: Flatten,
) -> None:
    """Export the collection ``records`` walks into the open ``store`` across
    ``processes`` worker processes (see the module doc), then finish it ``complete``."""
    plan = ranged_plan(records)
    spec = ClientSpec.of_client(plan["client"])
    read, ranges = _plan_ranges(plan, batch_size)
    worker = _Worker(spec, read, store.part_writer(), flatten, store.exported_ids())
    with _sigterm_raises():
        pool = _start_pool(min(processes, len(ranges)), worker)
        try:
            if pool is not None:
                submit = partial(_submit, pool)
            else:
                submit = partial(_Inline(worker).submit, _run_range)
            _drain(submit, ranges, store, report, 2 * processes)
        except BaseException:
            if pool is not None:
                _stop(pool)
            store.drop_leftovers()  # the parts no manifest lists: written, never committed
            raise
    if pool is not None:
        pool.shutdown(wait=True)
    if not store.has_parts:
        report.add(store.commit_part(MediaTables.empty()))  # an empty part for the columns
    store.finish("complete")

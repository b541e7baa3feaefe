"""The overlapped export pipeline: a writer thread behind a bounded queue (handoff.Handoff).

Writing part N overlaps fetching, parsing and flattening part N+1. These tests pin what
the overlap must not change: order, bounded memory, duplicates across parts in flight, and
clean stops (no thread left behind, every committed part intact) when any stage fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import ScriptedServer, fast_client

from coreviz_frames._util.concurrency import Handoff
from coreviz_frames.errors import PermissionDeniedError
from coreviz_frames.exports.manifest import read_manifest
from coreviz_frames.exports.store import ExportStore
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api.synthetic import iter_synthetic

WAIT = 10.0  # seconds: a bound on a hang, never a timing assertion


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _no_thread_left(prefix: str) -> bool:
    deadline = time.monotonic() + WAIT
    while _threads(prefix) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _threads(prefix)


# --------------------------------------------------------------------------- Handoff


def test_handoff_consumes_in_order_on_another_thread() -> None:
    seen: list[tuple[int, str]] = []
    with Handoff(lambda n: seen.append((n, threading.current_thread().name)), name="t-order") as h:
        for n in range(20):
            h.submit(n)
    assert [n for n, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"t-order"}
    assert _no_thread_left("t-order")


def test_handoff_queue_is_bounded() -> None:
    """With depth 1, one item is consumed, one waits, and the third submit blocks."""
    release = threading.Event()
    started = threading.Event()

    def slow(item: int) -> None:
        started.set()
        release.wait(WAIT)

    submitted: list[int] = []
    with Handoff(slow, depth=1, name="t-bounded") as h:

        def produce() -> None:
            for n in range(3):
                h.submit(n)
                submitted.append(n)

        producer = threading.Thread(target=produce)
        producer.start()
        assert started.wait(WAIT)
        time.sleep(0.2)  # room for a third submit, which must not return
        assert submitted == [0, 1]
        release.set()
        producer.join(WAIT)
        assert submitted == [0, 1, 2]
    assert _no_thread_left("t-bounded")


def test_a_consumer_error_reaches_the_producer_and_stops_the_thread() -> None:
    consumed: list[int] = []

    def consume(n: int) -> None:
        if n == 1:
            raise OSError("disk full")
        consumed.append(n)

    with pytest.raises(OSError, match="disk full"), Handoff(consume, name="t-error") as h:
        for n in range(50):
            h.submit(n)
    assert consumed == [0]  # nothing after the failure is consumed
    assert _no_thread_left("t-error")


def test_a_producer_error_still_finishes_the_queued_work_and_joins() -> None:
    consumed: list[int] = []
    with pytest.raises(KeyError), Handoff(consumed.append, name="t-producer") as h:
        h.submit(0)
        h.submit(1)
        raise KeyError("walk failed")
    assert consumed == [0, 1]
    assert _no_thread_left("t-producer")


# --------------------------------------------------------------------------- export


def _records(n: int, fail_after: int | None = None) -> Iterator[dict]:
    for i, record in enumerate(iter_synthetic(n)):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("the record source broke")
        yield record


def _committed_media(path: Path) -> list[str]:
    manifest = read_manifest(path)
    ids: list[str] = []
    for part in manifest["parts"]:
        for rel in part["files"]["media"]:
            ids += pq.read_table(path / rel, columns=["media_id"]).column("media_id").to_pylist()
    return ids


def test_a_record_seen_again_while_its_part_is_being_written_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate arrives while part 0 is still queued or being written (not yet in
    the store): it must be skipped, not exported twice."""
    gate = threading.Event()
    original = ExportStore.commit_part

    def held_commit(self, *args, **kwargs):
        gate.wait(WAIT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ExportStore, "commit_part", held_commit)
    first, second, third = list(iter_synthetic(3))

    def records() -> Iterator[dict]:
        yield first
        yield second  # batch 0 is full: handed to the (held) writer
        yield first  # seen again while batch 0 is not committed
        yield third
        gate.set()

    report = export_parquet(records(), tmp_path / "out", batch_size=2, progress=False)
    assert report.media_exported == 3
    assert report.media_skipped == 1
    assert sorted(_committed_media(tmp_path / "out")) == sorted(
        r["id"] for r in (first, second, third)
    )


def test_a_failing_write_stops_the_export_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ExportStore.commit_part
    calls = {"n": 0}

    def commit_then_fail(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ExportStore, "commit_part", commit_then_fail)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        export_parquet(_records(100), out, batch_size=10, progress=False)
    assert calls["n"] == 2  # the failure stopped the writer; nothing after it was written
    assert _no_thread_left("coreviz-export-writer")
    manifest = read_manifest(out)
    assert manifest["status"] == "failed"
    assert len(manifest["parts"]) == 1
    assert len(_committed_media(out)) == 10  # the committed part is whole and readable

    monkeypatch.setattr(ExportStore, "commit_part", original)
    report = export_parquet(_records(100), out, batch_size=10, progress=False, resume=True)
    assert report.ok
    ids = _committed_media(out)
    assert len(ids) == len(set(ids)) == 100


def test_a_failing_record_source_keeps_every_committed_part(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="source broke"):
        export_parquet(_records(100, fail_after=35), out, batch_size=10, progress=False)
    assert _no_thread_left("coreviz-export-writer")
    ids = _committed_media(out)
    assert len(ids) == len(set(ids)) == 30  # every full batch before the failure, once
    report = export_parquet(_records(100), out, batch_size=10, progress=False, resume=True)
    assert report.ok and report.media_skipped == 30
    ids = _committed_media(out)
    assert len(ids) == len(set(ids)) == 100


def test_a_fetch_error_mid_walk_stops_every_thread(tmp_path: Path) -> None:
    """Pages from offset 100 on answer 403: the export raises, the client's workers and
    the writer stop, and the parts committed before stay readable."""
    records = list(iter_synthetic(200))

    def route(path: str, query: dict):
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", "10"))
        if offset >= 100:
            return (403, {}, {"error": "Forbidden"})
        media = records[offset : offset + limit]
        return (200, {}, {"media": media, "pagination": {"total": 200, "hasMore": True}})

    srv = ScriptedServer(route)
    out = tmp_path / "out"
    try:
        with fast_client(srv.base_url, max_workers=4) as client:
            walk = client.browse("c1", page_size=20, progress=False)
            with pytest.raises(PermissionDeniedError):
                export_parquet(walk, out, batch_size=50, progress=False)
            assert _no_thread_left("coreviz-export-writer")
            assert _no_thread_left("coreviz-browse")
    finally:
        srv.close()
    assert read_manifest(out)["status"] == "failed"
    ids = _committed_media(out)
    # whole batches of what the walk yielded before the failing page, each media once
    assert len(ids) == len(set(ids)) and len(ids) in (50, 100)
    assert set(ids) <= {r["id"] for r in records[:100]}


def test_a_flattened_batch_lets_its_pages_tables_go(tmp_path: Path) -> None:
    """Once a batch is flattened, the part on its way to the writer keeps each page's bytes
    and ids for its fingerprints, not the page (its Arrow table): memory is what the parts
    in flight hold, not their pages too."""
    import gc
    import json
    import weakref

    from coreviz_frames.exports.fingerprintpool import FingerprintPool
    from coreviz_frames.exports.writer import ExportReport, _Batcher
    from coreviz_frames.tables.arrowrecords import read_page
    from coreviz_frames.tables.pagechunks import PageRows

    pages = []
    for n in range(3):
        media = list(iter_synthetic(10, start=n * 10))
        page = read_page(json.dumps({"media": media}).encode())
        assert page is not None
        pages.append(page)
    gone = [weakref.ref(page) for page in pages]
    with ExportStore(tmp_path / "out").open() as store, FingerprintPool(processes=False) as pool:
        batcher = _Batcher([], store, ExportReport(path=str(tmp_path / "out")), pool)
        for page in pages:
            batcher.append_rows(batcher.add_rows(PageRows(page, list(range(10)), page.ids)))
        del page, pages
        for sent in batcher.pending:
            sent.future.result()  # answered before the batch is taken
        part = batcher.take()
        gc.collect()
        assert [ref() for ref in gone] == [None, None, None]
        assert part.tables["media"].num_rows == 30
        # the answered pages' bytes are let go too (no SentPage left): their fingerprints are in
        assert part.pending == []
        assert len(part.fingerprints) == 30
        assert part.resolved() == part.fingerprints


def test_settle_takes_in_answered_pages_only() -> None:
    """A part takes in the fingerprints of answered pages at once; a page still computed, or
    whose side process died, stays pending (the writer waits for it, or computes it)."""
    from concurrent.futures import Future

    from coreviz_frames.errors import FingerprintError
    from coreviz_frames.exports.fingerprintpool import SentPage
    from coreviz_frames.exports.writer import _Part

    body = b'{"media": [{"id": "a"}, {"id": "b"}]}'
    answered, running, died = Future(), Future(), Future()
    answered.set_result({"a": "v2:fa"})
    died.set_exception(FingerprintError("its side process died"))
    pages = [
        SentPage(answered, body, [0], ["a"]),
        SentPage(running, body, [1], ["b"]),
        SentPage(died, b'{"media": [{"id": "c"}]}', [0], ["c"]),
    ]
    part = _Part({}, [], {}, list(pages))
    part.settle()
    assert part.fingerprints == {"a": ("v2:fa", None)}
    assert part.pending == pages[1:]
    running.set_result({"b": "v2:fb"})
    resolved = part.resolved()
    assert resolved["b"] == ("v2:fb", None) and resolved["c"][0].startswith("v2:")
    assert set(resolved) == {"a", "b", "c"}

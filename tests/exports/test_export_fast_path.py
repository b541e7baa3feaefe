"""The export of a browse walked as page chunks gives the files of the exact path.

``export_parquet(client.browse(...))`` walks the pages as page chunks (pages pyarrow reads
provably exactly are never decoded); the same browse handed over as plain records (a
generator hides ``chunks``) takes the exact path. Against a real LocalAPI on 127.0.0.1:
byte-identical grain files and fingerprint index, a hostile page mid-walk, and an export
killed (SIGKILL, in a child process) and resumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import KEY, ScriptedServer, fast_client

import coreviz_frames as cvf
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api.server import LocalAPI
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.tables import pagechunks
from coreviz_frames.tables.pagechunks import PageRows

ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> dict[str, bytes]:
    """Every grain file and fingerprint file of an export, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".parquet", ".index")
    }


def _both(client: cvf.Client, collection_id: str, tmp_path: Path, **browse) -> tuple:
    """The export through page chunks and the exact one, with their reports."""
    fast = export_parquet(
        client.browse(collection_id, progress=False, **browse),
        tmp_path / "fast",
        batch_size=120,
        progress=False,
    )
    records = (r for r in client.browse(collection_id, progress=False, **browse))
    exact = export_parquet(records, tmp_path / "exact", batch_size=120, progress=False)
    return fast, exact


def _assert_same_files(tmp_path: Path) -> None:
    fast, exact = _files(tmp_path / "fast"), _files(tmp_path / "exact")
    assert any(name.endswith(".index") for name in fast)  # fingerprints were written
    assert sorted(fast) == sorted(exact)
    for name in fast:
        assert fast[name] == exact[name], name


def test_fast_and_exact_exports_of_a_synthetic_collection_are_byte_identical(tmp_path, monkeypatch):
    arrow: list[bool] = []  # whether each batch was flattened by Arrow compute
    original = pagechunks.flatten_arrow

    def spy(media):
        tables = original(media)
        arrow.append(tables is not None)
        return tables

    monkeypatch.setattr(pagechunks, "flatten_arrow", spy)
    with LocalAPI(api_key=KEY, synthetic=400) as api, fast_client(api.base_url) as client:
        it = client.browse(api.collection_id, page_size=90, progress=False)
        assert all(isinstance(p, PageRows) for p in it.chunks())  # no page decoded
        arrow.clear()
        fast, exact = _both(client, api.collection_id, tmp_path, page_size=90)
    assert arrow == [True] * 4  # every batch of the fast export through Arrow
    assert fast.ok and exact.ok
    assert fast.media_exported == exact.media_exported == 400
    assert fast.parts_written == exact.parts_written == 4  # 120 media a part, pages cut
    _assert_same_files(tmp_path)


def test_fast_and_exact_exports_of_the_sample_collection_are_byte_identical(sample_api, tmp_path):
    with fast_client(sample_api.base_url) as client:
        fast, exact = _both(client, sample_api.collection_id, tmp_path, page_size=7)
    assert fast.media_exported == exact.media_exported > 0
    assert fast.rows == exact.rows
    _assert_same_files(tmp_path)


def _hostile_server(count: int, hostile: int) -> tuple[ScriptedServer, str]:
    """Pages of ``count`` synthetic media; media ``hostile`` has an unknown field."""
    records = [synthetic_media(i) for i in range(count)]
    records[hostile] = {**records[hostile], "surprise": {"added": "later"}}
    cid = records[0]["datasetId"]

    def route(path: str, query: dict) -> tuple:
        if path != f"/api/dataset/{cid}/media":
            return 404, {}, {"error": "Not found"}
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        page = records[offset : offset + limit]
        more = offset + limit < count
        return 200, {}, {"media": page, "pagination": {"total": count, "hasMore": more}}

    return ScriptedServer(route), cid


def test_a_hostile_page_mid_walk_goes_the_exact_way(tmp_path):
    server, cid = _hostile_server(300, hostile=150)
    try:
        with fast_client(server.base_url) as client:
            kinds = [type(p) for p in client.browse(cid, progress=False).chunks()]
            fast, exact = _both(client, cid, tmp_path)
            tables = cvf.to_tables(client.browse(cid, progress=False))  # page chunks
            exact_tables = cvf.to_tables(list(client.browse(cid, progress=False)))
    finally:
        server.close()
    assert kinds.count(PageRows) == 2 and kinds.count(dict) == 100  # the 2nd page decoded
    assert kinds.index(dict) == 1  # in listing order
    assert fast.ok and fast.media_exported == exact.media_exported == 300
    for grain, frame in tables.items():
        pd.testing.assert_frame_equal(frame, getattr(exact_tables, grain))
    _assert_same_files(tmp_path)
    extra = pq.read_table(tmp_path / "fast" / "media").column("extra").to_pylist()
    assert sum("surprise" in (e or "") for e in extra) == 1


_CHILD = """
import sys
import coreviz_frames as cvf
from coreviz_frames.exports.writer import export_parquet
base_url, cid, out = sys.argv[1:4]
with cvf.Client(api_key="{key}", base_url=base_url, max_workers=2) as client:
    export_parquet(client.browse(cid, page_size=50, progress=False), out, batch_size=50,
                   progress=False)
"""


def _parts(root: Path) -> int:
    index = root / "_coreviz_index"
    return len(list(index.glob("*.index"))) if index.is_dir() else 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_an_export_killed_mid_way_resumes_with_every_media_once(tmp_path):
    out = tmp_path / "export"
    with LocalAPI(api_key=KEY, synthetic=300, latency=0.01) as api:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD.format(key=KEY), api.base_url, api.collection_id, out],
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while _parts(out) < 2 and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert child.poll() is None, "the export ended before it could be killed"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert 2 <= _parts(out) < 12  # killed before the end
        with fast_client(api.base_url) as client:
            report = export_parquet(
                client.browse(api.collection_id, page_size=50, progress=False),
                out,
                resume=True,
                batch_size=50,
                progress=False,
            )
        expected = [m["id"] for m in client_ids(api)]
    assert report.ok
    ids = cvf.read_parquet(out, grains=["media"]).media["media_id"].tolist()
    assert sorted(ids) == sorted(expected) and len(set(ids)) == 300


def client_ids(api: LocalAPI) -> list[dict]:
    with fast_client(api.base_url) as client:
        return list(client.browse(api.collection_id, hydrate=False, progress=False))


@pytest.mark.parametrize("processes", ["1", "0"])
def test_the_report_says_where_the_fingerprints_were_computed(tmp_path, monkeypatch, processes):
    monkeypatch.setenv("COREVIZ_FRAMES_PROCESSES", processes)
    with LocalAPI(api_key=KEY, synthetic=30) as api, fast_client(api.base_url) as client:
        report = export_parquet(
            client.browse(api.collection_id, progress=False), tmp_path / "out", progress=False
        )
    assert report.ok and report.media_exported == 30
    if processes == "0":  # where processes cannot start: in-process, and the report says so
        assert report.fingerprints is not None and "in-process" in report.fingerprints
        assert f"note: {report.fingerprints}" in str(report)
    else:
        assert report.fingerprints is not None and "side process" in report.fingerprints
        assert "note:" not in str(report)

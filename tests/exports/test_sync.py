"""sync: adds, edits and deletes applied to an export, atomically, against the local API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings, strategies as st

from coreviz_frames.api.client import Client
from coreviz_frames.api.filters import BrowseFilters
from coreviz_frames.errors import ConfigError, ExportError, InvalidIdError
from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.store import INDEX_DIR
from coreviz_frames.exports.syncing import SyncReport, sync
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api import LocalAPI
from coreviz_frames.schema import GRAINS
from tests.same_rows import assert_same_rows

KEY = "sync-test-key"


def _client(api: LocalAPI, **kwargs) -> Client:
    return Client(api_key=KEY, base_url=api.base_url, **kwargs)


def _assert_same(a, b) -> None:
    """The same rows in every grain, whatever their order."""
    assert_same_rows(a, b)


def _fresh_export(api: LocalAPI, root: Path, **kwargs) -> object:
    """A full export of what the local API serves now, read back."""
    out = root / f"fresh-{time.monotonic_ns()}"
    with _client(api) as client:
        export_parquet(client.browse(api.collection_id, progress=False), out, progress=False)
    tables = read_parquet(out)
    shutil.rmtree(out)
    return tables


def _duckdb_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect()
    try:
        return {
            grain: con.execute(
                f"select count(*) from read_parquet('{path / grain}/**/*.parquet')"
            ).fetchone()[0]
            for grain in GRAINS
        }
    finally:
        con.close()


def _check_readers(path: Path) -> None:
    """DuckDB, pointed at each grain folder with a glob (a Delta export: deltalake, reading
    each table's newest version), sees read_parquet's rows."""
    tables = read_parquet(path)
    expected = {grain: len(frame) for grain, frame in tables.items()}
    if read_manifest(path).get("table_format") == "delta":
        assert {g: DeltaTable(str(path / g)).count() for g in GRAINS} == expected
    else:
        assert _duckdb_counts(path) == expected


def _files(path: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(path)): (p.stat().st_mtime_ns, p.stat().st_size, p.stat().st_ino)
        for p in path.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def api(local_api_factory) -> LocalAPI:
    return local_api_factory(synthetic=40, api_key=KEY)


# --------------------------------------------------------------------------- basics


def test_sync_of_an_empty_directory_is_a_full_export(api, tmp_path):
    with _client(api) as client:
        report = sync(client, api.collection_id, tmp_path / "out", progress=False)
    assert isinstance(report, SyncReport)
    assert (report.added, report.updated, report.deleted, report.snapshot) == (40, 0, 0, 1)
    assert report.ok and report.changed
    _assert_same(read_parquet(tmp_path / "out"), _fresh_export(api, tmp_path))
    manifest = read_manifest(tmp_path / "out")
    assert manifest["snapshot"] == 1 and manifest["status"] == "complete"
    assert manifest["source"]["collection_id"] == api.collection_id
    assert manifest["syncs"][-1]["added"] == 40
    _check_readers(tmp_path / "out")


def test_sync_applies_adds_edits_and_deletes(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, batch_size=8, progress=False)
        changes = api.mutate(seed=5, adds=3, edits=7, deletes=2)
        report = sync(client, api.collection_id, out, batch_size=8, progress=False)
    assert (report.added, report.updated, report.deleted) == (3, 7, 2)
    assert report.unchanged == 40 - 7 - 2
    assert report.snapshot == 2 and report.fetched == 0  # full browse items: no Get Media
    media = set(read_parquet(out).media.media_id)
    assert set(changes.added) <= media and not set(changes.deleted) & media
    _assert_same(read_parquet(out), _fresh_export(api, tmp_path))
    _check_readers(out)


def test_sync_rewrites_only_the_parts_holding_changed_media(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, batch_size=5, table_format="parquet", progress=False)
        before = read_manifest(out)  # 8 parts
        api.mutate(seed=1, edits=1)
        report = sync(client, api.collection_id, out, batch_size=5, progress=False)
    after = read_manifest(out)
    assert report.updated == 1 and report.parts_rewritten == 1
    old_parts = {p["part"] for p in before["parts"]}
    new_parts = {p["part"] for p in after["parts"]}
    assert len(old_parts - new_parts) == 1  # one part left, the 7 others kept as they were
    assert len(new_parts - old_parts) == 2  # the changed media, and the rest of its part
    written = sum(p["media"] for p in after["parts"] if p["part"] not in old_parts)
    assert written == 5


def test_a_sync_with_nothing_changed_writes_no_file(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, batch_size=10, progress=False)
        before = _files(out)
        report = sync(client, api.collection_id, out, batch_size=10, progress=False)
    assert _files(out) == before
    assert not report.changed and report.bytes_written == 0
    assert report.snapshot == read_manifest(out)["snapshot"] == 1
    assert report.unchanged == 40 and "nothing changed, no file written" in str(report)


def test_sync_of_an_export_parquet_export_uses_its_fingerprints(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        export_parquet(client.browse(api.collection_id, progress=False), out, progress=False)
        before = _files(out)
        report = sync(client, api.collection_id, out, progress=False)
    assert report.unchanged == 40 and not report.changed
    assert _files(out) == before


# --------------------------------------------------------------------------- the property


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    size=st.integers(12, 30),
    steps=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 6), st.integers(0, 3)),
        min_size=1,
        max_size=3,
    ),
    batch_size=st.sampled_from([4, 7, 50]),
    partition_by=st.sampled_from([None, "dataset_id"]),
    light=st.booleans(),
    table_format=st.sampled_from(["parquet", "delta"]),
)
def test_sync_equals_a_fresh_export_after_random_changes(
    tmp_path_factory, size, steps, batch_size, partition_by, light, table_format
):
    """After any sequence of adds, edits and deletes, sync == a fresh full export (every
    grain, every column, ignoring row order), and DuckDB globs see read_parquet's rows.
    Light listings are synced with hydrate=True (an AI edit may leave the item as is)."""
    root = tmp_path_factory.mktemp("prop")
    out = root / "out"
    hydrate = True if light else "auto"
    with LocalAPI(synthetic=size, api_key=KEY, light=light) as api, _client(api) as client:
        kwargs = {"batch_size": batch_size, "hydrate": hydrate, "progress": False}
        first = {"partition_by": partition_by, "table_format": table_format}
        sync(client, api.collection_id, out, **first, **kwargs)
        for n, (adds, edits, deletes) in enumerate(steps):
            api.mutate(seed=n, adds=adds, edits=edits, deletes=deletes)
            report = sync(client, api.collection_id, out, **kwargs)
            assert report.ok, str(report)
            _assert_same(read_parquet(out), _fresh_export(api, root))
            _check_readers(out)


# --------------------------------------------------------------------------- deletes


def _page_fault_prefix(api: LocalAPI, offset: int, limit: int) -> str:
    query = {**BrowseFilters().to_params(), "limit": str(limit), "offset": str(offset)}
    return f"/api/dataset/{api.collection_id}/media?{urlencode(query)}"


def test_a_listing_failing_midway_deletes_nothing(api, tmp_path):
    out = tmp_path / "out"
    with _client(api, retries=0) as client:
        sync(client, api.collection_id, out, page_size=10, progress=False)
        api.mutate(seed=2, deletes=3)
        api.add_fault(_page_fault_prefix(api, 20, 10), status=500, count=100)
        report = sync(client, api.collection_id, out, page_size=10, progress=False)
    assert not report.complete and report.deleted == 0
    assert "500" in (report.incomplete_reason or "") or "Server" in (report.incomplete_reason or "")
    assert len(read_parquet(out).media) == 40  # nothing deleted
    assert read_manifest(out)["status"] == "incomplete"
    assert "INCOMPLETE" in str(report)


def test_an_empty_listing_deletes_nothing_unless_allowed(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, progress=False)
        api.mutate(deletes=40)
        report = sync(client, api.collection_id, out, progress=False)
        assert report.deleted == 0 and report.deletes_skipped == 40
        assert "empty" in (report.deletes_skipped_reason or "") and not report.ok
        assert len(read_parquet(out).media) == 40
        report = sync(client, api.collection_id, out, allow_mass_delete=True, progress=False)
    assert report.deleted == 40 and len(read_parquet(out).media) == 0
    assert all(len(frame) == 0 for _, frame in read_parquet(out).items())
    _check_readers(out)


def test_deleting_more_than_half_needs_allow_mass_delete(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, progress=False)
        api.mutate(seed=4, deletes=25)
        report = sync(client, api.collection_id, out, progress=False)
        assert report.deleted == 0 and report.deletes_skipped == 25
        assert "more than half" in (report.deletes_skipped_reason or "")
        report = sync(client, api.collection_id, out, allow_mass_delete=True, progress=False)
    assert report.deleted == 25 and len(read_parquet(out).media) == 15
    _assert_same(read_parquet(out), _fresh_export(api, tmp_path))


def test_delete_missing_false_keeps_media_no_longer_listed(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, progress=False)
        api.mutate(seed=4, deletes=2)
        report = sync(client, api.collection_id, out, delete_missing=False, progress=False)
    assert report.deleted == 0 and len(read_parquet(out).media) == 40


# --------------------------------------------------------------------------- light listings


def test_light_listing_unchanged_items_are_not_fetched(local_api_factory, tmp_path):
    api = local_api_factory(synthetic=30, api_key=KEY, light=True)
    out = tmp_path / "out"
    with _client(api) as client:
        first = sync(client, api.collection_id, out, progress=False)
        assert first.fetched == 30 and first.added == 30
        api.mutate(seed=3, edits=2, kinds=("rename", "tag"))  # both bump updatedAt
        api.reset_stats()
        report = sync(client, api.collection_id, out, progress=False)
    media_gets = sum(n for p, n in api.stats.snapshot().paths.items() if p.startswith("/api/media"))
    assert media_gets == report.fetched == 2
    assert (report.updated, report.unchanged) == (2, 28)
    _assert_same(read_parquet(out), _fresh_export(api, tmp_path))


def test_a_failing_get_media_keeps_the_previous_rows(local_api_factory, tmp_path):
    api = local_api_factory(synthetic=20, api_key=KEY, light=True)
    out = tmp_path / "out"
    with _client(api, retries=0) as client:
        sync(client, api.collection_id, out, progress=False)
        old = read_parquet(out)
        changes = api.mutate(seed=8, edits=1, kinds=("rename",))
        (media_id,) = changes.edited
        api.add_fault(f"/api/media/{media_id}", status=500, count=100)
        report = sync(client, api.collection_id, out, progress=False)
        assert [f["id"] for f in report.failed] == [media_id] and report.updated == 0
        assert read_manifest(out)["failed"][0]["id"] == media_id
        _assert_same(read_parquet(out), old)  # stale, not lost
        api.faults.clear()
        report = sync(client, api.collection_id, out, progress=False)
    assert report.updated == 1 and not report.failed and read_manifest(out)["failed"] == []
    _assert_same(read_parquet(out), _fresh_export(api, tmp_path))


# --------------------------------------------------------------------------- refusals


def test_sync_refuses_other_filters_or_collection(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        sync(client, api.collection_id, out, filters=BrowseFilters(type="image"), progress=False)
        with pytest.raises(ExportError, match="filters"):
            sync(client, api.collection_id, out, progress=False)
        with pytest.raises(ExportError, match="collection"):
            sync(client, "another", out, filters=BrowseFilters(type="image"), progress=False)
        report = sync(client, api.collection_id, out, filters=BrowseFilters(type="image"))
    assert not report.changed


def test_sync_refuses_a_directory_that_is_not_an_export(api, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with _client(api) as client, pytest.raises(ExportError, match="not empty"):
        sync(client, api.collection_id, tmp_path, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_first_sync_refuses_part_files_it_did_not_list(api, tmp_path):
    """Without a manifest, a part file is another tool's (a killed first sync leaves its
    manifest first): refused, not deleted; our empty folders are fine."""
    out = tmp_path / "out"
    (out / "media").mkdir(parents=True)
    (out / "media" / "part-000003.parquet").write_bytes(b"half written")
    (out / INDEX_DIR).mkdir()
    with _client(api) as client, pytest.raises(ExportError, match="did not write"):
        sync(client, api.collection_id, out, progress=False)
    assert (out / "media" / "part-000003.parquet").read_bytes() == b"half written"
    (out / "media" / "part-000003.parquet").unlink()
    with _client(api) as client:
        report = sync(client, api.collection_id, out, progress=False)
    assert report.added == 40
    _check_readers(out)


# --------------------------------------------------------------------------- SIGKILL

_CHILD = """
import sys
from coreviz_frames.api.client import Client
from coreviz_frames.exports.syncing import sync
client = Client(api_key=sys.argv[1], base_url=sys.argv[2])
sync(client, sys.argv[3], sys.argv[4], batch_size=7, progress=False, table_format="parquet")
print("done")
"""


def _run_child(api: LocalAPI, out: Path, kill_after: float | None) -> bool:
    """Sync in a child process, SIGKILLed after ``kill_after`` seconds; True if it finished."""
    argv = [sys.executable, "-c", _CHILD, KEY, api.base_url, api.collection_id, str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return b"done" in stdout


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_the_old_or_the_new_snapshot(local_api_factory, tmp_path):
    api = local_api_factory(synthetic=80, api_key=KEY, latency=0.002)
    pristine = tmp_path / "pristine"
    with _client(api) as client:
        sync(
            client,
            api.collection_id,
            pristine,
            batch_size=7,
            table_format="parquet",
            progress=False,
        )
    old = read_parquet(pristine)
    api.mutate(seed=11, adds=10, edits=20, deletes=8)
    new = _fresh_export(api, tmp_path)
    shutil.copytree(pristine, tmp_path / "timing")
    started = time.monotonic()
    assert _run_child(api, tmp_path / "timing", None)
    whole = time.monotonic() - started
    outcomes = []
    for fraction in (0.3, 0.55, 0.75, 0.88, 0.96):
        out = tmp_path / f"kill-{fraction}"
        shutil.copytree(pristine, out)
        finished = _run_child(api, out, whole * fraction)
        tables = read_parquet(out)
        try:
            _assert_same(tables, old)
            outcomes.append("old")
        except AssertionError:
            _assert_same(tables, new)  # never a mix
            outcomes.append("new")
        assert finished is False or outcomes[-1] == "new"
        with _client(api) as client:  # the next sync completes it
            report = sync(client, api.collection_id, out, batch_size=7, progress=False)
        assert report.ok
        _assert_same(read_parquet(out), new)
        _check_readers(out)
        leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
        assert leftovers == []
    assert "old" in outcomes  # at least one kill landed before the new snapshot


def test_manifest_is_replaced_atomically_with_history(api, tmp_path):
    out = tmp_path / "out"
    with _client(api) as client:
        for n in range(3):
            api.mutate(seed=n, edits=2)
            sync(client, api.collection_id, out, table_format="parquet", progress=False)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [h["snapshot"] for h in manifest["syncs"]] == [1, 2, 3]
    assert {"at", "added", "updated", "deleted", "unchanged", "failed", "bytes_written"} <= set(
        manifest["syncs"][-1]
    )
    listed = {rel for p in manifest["parts"] for rels in p["files"].values() for rel in rels}
    on_disk = {str(p.relative_to(out)) for g in GRAINS for p in (out / g).rglob("*.parquet")}
    assert listed == on_disk
    assert os.listdir(out / INDEX_DIR) and len(os.listdir(out / INDEX_DIR)) == len(
        manifest["parts"]
    )


def test_a_light_listing_learns_its_fingerprints_once(local_api_factory, tmp_path):
    """An export_parquet export of a light listing has no listing fingerprints: the first
    sync fetches every media, rewrites no data (only fingerprint files), and the next one
    fetches nothing and writes nothing."""
    api = local_api_factory(synthetic=25, api_key=KEY, light=True)
    out = tmp_path / "out"
    with _client(api) as client:
        export_parquet(client.browse(api.collection_id, progress=False), out, progress=False)
        data = {k: v for k, v in _files(out).items() if not k.startswith(INDEX_DIR)}
        first = sync(client, api.collection_id, out, progress=False)
        assert (first.fetched, first.unchanged, first.updated) == (25, 25, 0)
        after = _files(out)
        assert {k: v for k, v in after.items() if k in data and k != MANIFEST_NAME} == {
            k: v for k, v in data.items() if k != MANIFEST_NAME
        }
        second = sync(client, api.collection_id, out, progress=False)
    assert second.fetched == 0 and not second.changed and _files(out) == after
    _check_readers(out)


def test_a_bad_collection_id_is_refused_before_any_file(tmp_path):
    with Client(api_key=KEY, base_url="http://127.0.0.1:9/api") as client:
        with pytest.raises(InvalidIdError, match=r"collection id '\.\./x'"):
            sync(client, "../x", tmp_path / "out")
        with pytest.raises(ConfigError, match="batch_size"):
            sync(client, "c1", tmp_path / "out", batch_size=0)
    assert not (tmp_path / "out").exists()


def test_cvf_sync_is_the_function_even_after_its_module_is_imported():
    import coreviz_frames as cvf
    import coreviz_frames.exports.syncing  # a module named "sync" would shadow the function

    assert cvf.sync is sync and callable(cvf.sync) and cvf.SyncReport is SyncReport

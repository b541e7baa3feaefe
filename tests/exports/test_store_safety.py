"""The store owns every path it touches (issue scenarios 1, 2, 3, 9, 10): manifest paths
outside the export, a lock file that is a symlink or a FIFO, a sync into another tool's
folder, an SQL prefix, and the source of an export of ``client.browse``."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import coreviz_frames as cvf
from coreviz_frames.api.client import Client
from coreviz_frames.cli.main import main
from coreviz_frames.errors import ConfigError, ExportError
from coreviz_frames.exports.lock import LOCK_NAME
from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest
from coreviz_frames.exports.reader import describe_export, read_parquet
from coreviz_frames.exports.store import ExportStore
from coreviz_frames.exports.syncing import sync
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import GRAINS
from coreviz_frames.tables.media_tables import to_tables

KEY = "store-safety-key-0123456789"


def _client(api) -> Client:
    return Client(api_key=KEY, base_url=api.base_url)


@pytest.fixture
def api(local_api_factory):
    return local_api_factory(synthetic=12, api_key=KEY)


def _synced(api, out: Path) -> Path:
    with _client(api) as client:
        assert sync(
            client, api.collection_id, out, batch_size=5, table_format="parquet", progress=False
        ).ok
    return out


def _edit_manifest(out: Path, change) -> None:
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    change(manifest)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))


# --------------------------------------------------------------------------- scenario 1


def _outside(out: Path) -> Path:
    victim = out.parent / "victim.parquet"
    victim.write_bytes(b"not yours")
    return victim


_BAD_ENTRIES = {
    "parent": lambda m, out: m["parts"][0]["files"]["media"].append("media/../../victim.parquet"),
    "absolute": lambda m, out: m["parts"][0]["files"]["media"].append(
        str(out.parent / "victim.parquet")
    ),
    "unknown files key": lambda m, out: m["parts"][0]["files"].__setitem__(
        "elsewhere", ["../victim.parquet"]
    ),
    "index outside": lambda m, out: m["parts"][0].__setitem__("index", "../victim.parquet"),
    "not a part name": lambda m, out: m["parts"][0]["files"]["media"].append("media/notes.txt"),
    "wrong grain folder": lambda m, out: m["parts"][0]["files"]["media"].append(
        m["parts"][0]["files"]["tags"][0]
    ),
}


@pytest.mark.parametrize("kind", sorted(_BAD_ENTRIES))
def test_a_manifest_path_outside_its_grain_folder_is_refused_and_nothing_deleted(
    api, tmp_path, kind
):
    out = _synced(api, tmp_path / "out")
    victim = _outside(out)
    _edit_manifest(out, lambda m: _BAD_ENTRIES[kind](m, out))
    api.mutate(seed=3, edits=4, deletes=2)
    calls = {
        "sync": lambda: sync(_client(api), api.collection_id, out, progress=False),
        "read_parquet": lambda: read_parquet(out),
        "info": lambda: describe_export(out),
        "repair": lambda: ExportStore(out).repair(),
        "resume": lambda: export_parquet(iter_synthetic(3), out, resume=True, progress=False),
        "duckdb_views": lambda: cvf.duckdb_views(duckdb.connect(), out),
    }
    for name, call in calls.items():
        with pytest.raises(ExportError, match=r"damaged manifest .*parts\[0\]") as info:
            call()
        assert "rebuild the export" in str(info.value), name
    assert victim.read_bytes() == b"not yours"
    result = CliRunner().invoke(main, ["info", str(out)])
    assert result.exit_code != 0 and "parts[0]" in result.output
    assert "Traceback" not in result.output


def test_the_same_files_listed_in_many_parts_are_refused(tmp_path):
    out = tmp_path / "out"
    export_parquet(iter_synthetic(5), out, progress=False)
    manifest = read_manifest(out)
    first = manifest["parts"][0]
    manifest["parts"] = [{**first, "part": i} for i in range(20_000)]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=r"parts\[1\]\.files\.media\[0\] .*already listed"):
        read_parquet(out)
    manifest["parts"] = [first, {**first, "files": {}, "index": None}]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=r"parts\[1\]\.part is 0, which an earlier part"):
        read_parquet(out)


# --------------------------------------------------------------------------- scenario 2


def test_a_lock_file_that_is_a_symlink_is_never_followed(api, tmp_path):
    out = _synced(api, tmp_path / "out")
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (out / LOCK_NAME).symlink_to(target)
    calls = {
        "repair": lambda: ExportStore(out).repair(),
        "sync": lambda: sync(_client(api), api.collection_id, out, progress=False),
        "overwrite": lambda: export_parquet(iter_synthetic(3), out, overwrite=True, progress=False),
        "info": lambda: describe_export(out),
    }
    for name, call in calls.items():
        with pytest.raises(ExportError, match="is a symbolic link, not a lock file") as info:
            call()
        assert "Remove it yourself" in str(info.value), name
    assert target.read_text() == "keep me"
    (out / LOCK_NAME).unlink()
    (out / LOCK_NAME).symlink_to(tmp_path / "dangling")
    with pytest.raises(ExportError, match="symbolic link"):
        ExportStore(out).repair()
    assert not (tmp_path / "dangling").exists()


def test_a_lock_file_that_is_a_fifo_neither_hangs_nor_seeks(api, tmp_path):
    out = _synced(api, tmp_path / "out")
    os.mkfifo(out / LOCK_NAME)
    _edit_manifest(out, lambda m: m.__setitem__("status", "running"))  # info asks the lock
    outcome: dict[str, str] = {}

    def run() -> None:
        for name, call in {
            "info": lambda: describe_export(out),
            "repair": lambda: ExportStore(out).repair(),
            "sync": lambda: sync(_client(api), api.collection_id, out, progress=False),
        }.items():
            try:
                call()
                outcome[name] = "no error"
            except ExportError as exc:
                outcome[name] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "a FIFO lock file made a command wait forever"
    for name in ("info", "repair", "sync"):
        assert "is a FIFO, not a lock file" in outcome[name], (name, outcome[name])


# --------------------------------------------------------------------------- scenario 3


@pytest.mark.parametrize("where", ["media", "tags/dataset_id=x", "."])
def test_sync_refuses_a_folder_holding_another_tools_files(api, tmp_path, where):
    out = tmp_path / "theirs"
    folder = out / where
    folder.mkdir(parents=True)
    theirs = folder / "part-000000.parquet"
    to_tables(list(iter_synthetic(2))).media.to_parquet(theirs)
    with _client(api) as client, pytest.raises(ExportError, match="did not write") as info:
        sync(client, api.collection_id, out, progress=False)
    assert str(theirs) in str(info.value)
    assert theirs.is_file()
    assert not (out / MANIFEST_NAME).exists()


def test_sync_clears_only_what_its_own_killed_first_run_left(api, tmp_path):
    out = tmp_path / "out"
    source = {"base_url": api.base_url, "collection_id": api.collection_id, "filters": {}}
    store = ExportStore(out).open_sync(source=source)
    store.stage_part(to_tables(list(iter_synthetic(3))), {})
    store.close()  # killed before its snapshot: its manifest and staged files stay
    assert read_manifest(out)["status"] == "running"
    assert read_parquet(out).media.empty  # readers see an empty export meanwhile
    with _client(api) as client:
        report = sync(client, api.collection_id, out, progress=False)
    assert report.ok and report.added == 12
    assert len(read_parquet(out).media) == 12
    listed = {
        rel for p in read_manifest(out)["parts"] for rels in p["files"].values() for rel in rels
    }
    on_disk = {p.relative_to(out).as_posix() for g in GRAINS for p in (out / g).rglob("*.parquet")}
    assert on_disk == listed


# --------------------------------------------------------------------------- scenario 9


@pytest.mark.parametrize("prefix", ['x" AS SELECT 1; DROP TABLE keep; --', "1abc", "a-b", 3])
def test_duckdb_views_refuses_a_prefix_that_is_not_an_identifier(tmp_path, prefix):
    out = tmp_path / "out"
    export_parquet(iter_synthetic(3), out, progress=False)
    con = duckdb.connect()
    con.execute("CREATE TABLE keep AS SELECT 1 AS x")
    with pytest.raises(ConfigError, match="not an SQL identifier"):
        cvf.duckdb_views(con, out, prefix=prefix)
    assert con.execute("SELECT x FROM keep").fetchall() == [(1,)]
    assert cvf.duckdb_views(con, out, prefix="cv_2")[0] == "cv_2media"


# --------------------------------------------------------------------------- scenario 10


def test_an_export_of_client_browse_records_its_source(api, tmp_path):
    with _client(api) as client:
        records = client.browse(api.collection_id, type="image", progress=False)
        export_parquet(records, tmp_path / "out", progress=False)
    source = read_manifest(tmp_path / "out")["source"]
    assert source == {
        "base_url": api.base_url,
        "collection_id": api.collection_id,
        "filters": {"type": "image"},
    }
    assert KEY not in (tmp_path / "out" / MANIFEST_NAME).read_text()

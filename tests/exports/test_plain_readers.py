"""A plain Parquet export while syncs change it: ``read_parquet`` in another process never
errors and never sees a duplicate, a DuckDB glob of each grain is exact after every
finished sync, views made before the syncs stay exact, no root glob reads a fingerprint,
and a killed sync leaves nothing a glob reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

import coreviz_frames as cvf
from coreviz_frames.api.client import Client
from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.store import INDEX_DIR, ExportStore
from coreviz_frames.exports.syncing import sync
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import GRAINS
from coreviz_frames.tables.media_tables import to_tables

KEY = "plain-readers-key-0123456789"

_READER = """
import json, sys, time
from pathlib import Path
from coreviz_frames.exports.reader import read_parquet
out, stop, result = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
reads, errors, duplicates, orphans = 0, [], 0, 0
while not stop.exists():
    try:
        tables = read_parquet(out)
    except Exception as exc:  # counted: the test expects none
        errors.append(f"{type(exc).__name__}: {exc}")
        continue
    reads += 1
    ids = tables.media.media_id
    duplicates += int(ids.duplicated().sum())
    known = set(ids)
    orphans += sum(int((~getattr(tables, g).media_id.isin(known)).sum()) for g in
                   ("frames", "captions", "objects", "tags"))
result.write_text(json.dumps({"reads": reads, "errors": errors[:5], "n_errors": len(errors),
                              "duplicates": duplicates, "orphans": orphans}))
"""


def _glob_counts(out: Path) -> dict[str, int]:
    con = duckdb.connect()
    try:
        return {
            g: con.execute(
                f"select count(*) from read_parquet('{out / g}/**/*.parquet')"
            ).fetchone()[0]
            for g in GRAINS
        }
    finally:
        con.close()


def _counts(out: Path) -> dict[str, int]:
    tables = read_parquet(out)
    assert not tables.media.media_id.duplicated().any()
    return {g: len(getattr(tables, g)) for g in GRAINS}


@pytest.mark.slow
def test_read_parquet_in_another_process_never_fails_while_syncs_run(local_api_factory, tmp_path):
    api = local_api_factory(synthetic=300, api_key=KEY)
    out, stop, result = tmp_path / "out", tmp_path / "stop", tmp_path / "result.json"
    with Client(api_key=KEY, base_url=api.base_url) as client:
        sync(client, api.collection_id, out, batch_size=40, table_format="parquet", progress=False)
        con = duckdb.connect()
        views = cvf.duckdb_views(con, out, prefix="v_")  # made before the syncs
        argv = [sys.executable, "-c", _READER, str(out), str(stop), str(result)]
        reader = subprocess.Popen(argv)
        try:
            for seed in range(6):
                api.mutate(seed=seed, adds=12, edits=25, deletes=8)
                report = sync(
                    client,
                    api.collection_id,
                    out,
                    batch_size=40,
                    table_format="parquet",
                    progress=False,
                )
                assert report.ok and report.changed
                want = _counts(out)
                assert _glob_counts(out) == want  # a glob of each grain is exact
                got = {
                    g: con.execute(f'select count(*) from "{v}"').fetchone()[0]
                    for g, v in zip(GRAINS, views, strict=True)
                }
                assert got == want  # the views of before are exact too
                time.sleep(0.2)
        finally:
            stop.write_text("stop")
            reader.wait(120)
    outcome = json.loads(result.read_text())
    assert outcome["n_errors"] == 0, outcome["errors"]
    assert outcome["duplicates"] == 0 and outcome["orphans"] == 0
    assert outcome["reads"] >= 3


def test_no_root_glob_reads_a_fingerprint(local_api_factory, tmp_path):
    api = local_api_factory(synthetic=20, api_key=KEY)
    out = tmp_path / "out"
    with Client(api_key=KEY, base_url=api.base_url) as client:
        sync(client, api.collection_id, out, batch_size=7, table_format="parquet", progress=False)
    assert list((out / INDEX_DIR).iterdir())  # the fingerprints are there ...
    glob = f"{out}/**/*.parquet"
    files = {r[0] for r in duckdb.sql(f"select file from glob('{glob}')").fetchall()}
    assert files and not any(INDEX_DIR in f for f in files)  # ... but no glob reaches them
    rows = duckdb.sql(f"select * from read_parquet('{glob}', union_by_name = true)")
    assert "fingerprint" not in rows.columns
    assert len(rows.fetchall()) == sum(_counts(out).values())
    frame = pl.scan_parquet(
        glob, include_file_paths="path", missing_columns="insert", extra_columns="ignore"
    )
    paths = frame.select("path").unique().collect()["path"].to_list()
    assert paths and not any(INDEX_DIR in p for p in paths)
    assert "fingerprint" not in pl.scan_parquet(glob, missing_columns="insert").collect_schema()


def test_fingerprints_of_an_older_export_move_out_of_the_globs(local_api_factory, tmp_path):
    """An export written before the move (``_coreviz_index/part-N.parquet``) is migrated by
    the next sync, resume or repair, and its fingerprints are still used."""
    api = local_api_factory(synthetic=20, api_key=KEY)
    out = tmp_path / "out"
    with Client(api_key=KEY, base_url=api.base_url) as client:
        sync(client, api.collection_id, out, batch_size=7, table_format="parquet", progress=False)
        manifest = json.loads((out / MANIFEST_NAME).read_text())
        for part in manifest["parts"]:  # as the older version named them
            old = part["index"].replace(".index", ".parquet")
            (out / part["index"]).rename(out / old)
            part["index"] = old
        (out / MANIFEST_NAME).write_text(json.dumps(manifest))
        removed = ExportStore(out).repair()  # migrated: the old names go, nothing else
        assert sorted(p.name for p in removed) == sorted(
            Path(p["index"]).name for p in manifest["parts"]
        )
        report = sync(client, api.collection_id, out, progress=False)
    assert report.unchanged == 20 and report.fetched == 0 and not report.changed
    names = sorted(p.name for p in (out / INDEX_DIR).iterdir())
    assert names and all(n.endswith(".index") for n in names)
    assert {p["index"] for p in read_manifest(out)["parts"]} == {f"{INDEX_DIR}/{n}" for n in names}


def test_a_killed_sync_leaves_nothing_a_glob_reads(tmp_path):
    """A sync writes its parts under hidden names until its snapshot: killed before, the
    grain folders still hold exactly the old snapshot; the next sync or repair removes
    the hidden files."""
    out = tmp_path / "out"
    export_parquet(iter_synthetic(10), out, progress=False)
    before = _glob_counts(out)
    store = ExportStore(out).open_sync()
    store.stage_part(to_tables(list(iter_synthetic(30))), {})
    store.stage_rewrite(0, set())
    store.close()  # killed: no snapshot
    assert _glob_counts(out) == before == _counts(out)
    hidden = [p for g in GRAINS for p in (out / g).rglob("*") if p.name.startswith(".")]
    assert hidden
    removed = ExportStore(out).repair()
    assert set(hidden) <= set(removed)
    assert not [p for g in GRAINS for p in (out / g).rglob("*") if p.name.startswith(".")]


def test_part_numbers_are_never_reused(tmp_path):
    """A part number once listed is never given to another part, so a reader holding an
    older manifest finds its files gone (and re-reads), never another snapshot's rows."""
    out = tmp_path / "out"
    export_parquet(iter_synthetic(4), out, batch_size=2, progress=False)
    store = ExportStore(out).open_sync()
    last = max(int(p["part"]) for p in store.manifest["parts"])
    assert store.stage_rewrite(last, {m["id"] for m in iter_synthetic(4)}) is None
    store.commit_snapshot()
    store.close()
    assert max(int(p["part"]) for p in read_manifest(out)["parts"]) < last
    store = ExportStore(out).open_sync()
    commit = store.stage_part(to_tables(list(iter_synthetic(1))), {})
    store.commit_snapshot()
    store.close()
    assert commit.part > last


@pytest.mark.parametrize("partition_by", [None, "dataset_id"])
def test_views_over_folders_are_exact_for_plain_and_partitioned_exports(tmp_path, partition_by):
    out = tmp_path / "out"
    export_parquet(iter_synthetic(12), out, batch_size=5, partition_by=partition_by, progress=False)
    con = duckdb.connect()
    cvf.duckdb_views(con, out)
    tables = read_parquet(out)
    for grain in GRAINS:
        assert con.execute(f"select count(*) from {grain}").fetchone()[0] == len(
            getattr(tables, grain)
        )
    stray = out / "media" / "part-000099.parquet"
    stray.write_bytes((out / read_manifest(out)["parts"][0]["files"]["media"][0]).read_bytes())
    with pytest.raises(cvf.ExportError, match="coreviz-frames repair"):
        cvf.duckdb_views(con, out)

"""Ten syncs of a changing 2,000-media Delta export while another process reads it.

The reader process loops over every grain with ``deltalake``, Polars ``scan_delta`` and
DuckDB (views made once before the syncs, and views made again on every loop): no read
may see a duplicate key, a missing file or an error. Afterwards every snapshot the
manifest keeps reads back exactly as it was when its sync finished: each grain is kept as an
Arrow table in key order (Arrow's equality compares every value and type; a text rendering
of 80,000 rows per snapshot, hashed, cost most of this test's time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from coreviz_frames.api.client import Client
from coreviz_frames.exports.manifest import read_manifest
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.syncing import sync
from coreviz_frames.schema import GRAINS, SCHEMAS, arrow_to_pandas
from tests.same_rows import rows_in_key_order

ROOT = Path(__file__).resolve().parents[2]
KEY = "concurrent-test-key"

READER = textwrap.dedent(
    """
    import json, os, sys, duckdb, polars as pl
    from deltalake import DeltaTable
    import coreviz_frames as cvf

    root, stop, report = sys.argv[1:4]
    KEYS = {"media": ["media_id"], "frames": ["frame_id"], "captions": ["caption_id"],
            "objects": ["object_id"], "tags": ["media_id", "key", "value"]}
    reads = {"deltalake": 0, "polars": 0, "duckdb": 0, "duckdb_first_views": 0}
    problems = []
    con = duckdb.connect()
    cvf.duckdb_views(con, root, prefix="first_")  # made once: must stay valid

    def check(engine, grain, rows, distinct):
        reads[engine] += 1
        if rows != distinct:
            problems.append(f"{engine} {grain}: {rows} rows, {distinct} distinct keys")

    while not os.path.exists(stop):
        cvf.duckdb_views(con, root)  # made again: the pinned snapshot of the moment
        for grain, keys in KEYS.items():
            path = os.path.join(root, grain)
            try:
                table = DeltaTable(path).to_pyarrow_table(columns=keys)
                distinct = len(set(zip(*table.to_pydict().values())))
                check("deltalake", grain, table.num_rows, distinct)
                frame = pl.scan_delta(path).select(keys).collect()
                check("polars", grain, frame.height, frame.unique().height)
                cols = ", ".join(keys)
                for view, engine in ((grain, "duckdb"), ("first_" + grain, "duckdb_first_views")):
                    n, d = con.execute(
                        f"select count(*), count(distinct ({cols})) from {view}"
                    ).fetchall()[0]
                    check(engine, grain, n, d)
            except Exception as exc:
                problems.append(f"{grain}: {type(exc).__name__}: {exc}"[:300])
    with open(report, "w") as fh:
        json.dump({"reads": reads, "problems": problems}, fh)
    """
)


def _snapshot(tables) -> dict[str, pa.Table]:
    return {grain: rows_in_key_order(frame, grain) for grain, frame in tables.items()}


def _assert_same(got: pa.Table, want: pa.Table, where) -> None:
    assert got.schema == want.schema, where
    assert got.equals(want), where


@pytest.mark.slow
def test_ten_delta_syncs_while_another_process_reads(local_api_factory, tmp_path):
    api = local_api_factory(synthetic=2000, api_key=KEY)
    out, stop, report = tmp_path / "d", tmp_path / "stop", tmp_path / "report.json"
    snapshots: dict[int, dict[str, pa.Table]] = {}
    with Client(api_key=KEY, base_url=api.base_url) as client:
        first = sync(client, api.collection_id, out, progress=False)
        snapshots[first.snapshot] = _snapshot(read_parquet(out))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-c", READER, str(out), str(stop), str(report)]
        reader = subprocess.Popen(argv, env=env, cwd=ROOT)
        try:
            time.sleep(2)  # the reader's first loop starts
            for step in range(10):
                api.mutate(seed=step, adds=20, edits=20, deletes=10)
                done = sync(client, api.collection_id, out, progress=False)
                assert done.ok and done.changed, str(done)
                snapshots[done.snapshot] = _snapshot(read_parquet(out))
        finally:
            stop.touch()
            reader.wait(timeout=300)
    seen = json.loads(report.read_text())
    assert seen["problems"] == []
    assert all(n > 0 for n in seen["reads"].values()), seen["reads"]
    manifest = read_manifest(out)
    assert sorted(snapshots) == list(range(1, 12))
    for kept in manifest["snapshots"]:
        number, versions = kept["snapshot"], kept["tables"]
        again = _snapshot(read_parquet(out, snapshot=number))
        for grain in GRAINS:
            want = snapshots[number][grain]
            _assert_same(again[grain], want, (number, grain))
            # and with deltalake alone, at the version the manifest pins
            table = DeltaTable(str(out / grain), version=versions[grain]).to_pyarrow_table()
            table = arrow_to_pandas(table.cast(SCHEMAS[grain]), grain)
            _assert_same(rows_in_key_order(table, grain), want, (number, grain, "deltalake"))

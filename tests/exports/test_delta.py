"""Delta Lake exports: one Delta table per grain, versions pinned by the manifest."""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable, write_deltalake

import coreviz_frames as cvf
from coreviz_frames.api.client import Client
from coreviz_frames.cli.main import main
from coreviz_frames.cli.options import RETENTION_HOURS
from coreviz_frames.errors import ConfigError, ExportError
from coreviz_frames.exports import delta
from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest
from coreviz_frames.exports.reader import describe_export, read_parquet
from coreviz_frames.exports.syncing import sync
from coreviz_frames.exports.writer import export_parquet, flatten_batch
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import GRAINS, SCHEMAS
from tests.same_rows import assert_same_rows

KEY = "delta-test-key"


def _client(api) -> Client:
    return Client(api_key=KEY, base_url=api.base_url)


def assert_same(a, b) -> None:
    """The same rows in every grain, whatever their order."""
    assert_same_rows(a, b)


def _records(n: int = 30) -> list[dict]:
    """Synthetic records whose dataset ids are digit-only text ("0042"), another, or null."""
    out = []
    for i, record in enumerate(iter_synthetic(n)):
        record = dict(record)
        record.pop("dataset", None)
        record["datasetId"] = ["0042", "7", None][i % 3]
        out.append(record)
    return out


@pytest.fixture
def api(local_api_factory):
    return local_api_factory(synthetic=40, api_key=KEY)


# --------------------------------------------------------------------------- export


def test_a_delta_export_reads_back_as_the_parquet_export_does(tmp_path):
    records = _records()
    export_parquet(records, tmp_path / "p", batch_size=7, progress=False)
    report = export_parquet(
        records, tmp_path / "d", batch_size=7, table_format="delta", progress=False
    )
    assert report.ok and report.parts_written == 5
    assert_same(read_parquet(tmp_path / "d"), read_parquet(tmp_path / "p"))
    manifest = read_manifest(tmp_path / "d")
    assert manifest["table_format"] == "delta" and manifest["parts"] == []
    assert manifest["tables"] == dict.fromkeys(delta.TABLES, 5)  # create, then 5 batches
    assert DeltaTable(str(tmp_path / "d" / "objects")).version() == 5
    assert (tmp_path / "d" / "_coreviz_index" / "_delta_log").is_dir()
    described = describe_export(tmp_path / "d")
    assert "Delta Lake tables" in described and "tables     media v5, frames v5" in described
    assert (
        "objects" in described and f"{len(read_parquet(tmp_path / 'd').objects):>12,}" in described
    )


def test_every_engine_reads_the_declared_types_and_partition_values(tmp_path):
    """(c): Polars, deltalake (pyarrow, pandas) and DuckDB on a partitioned Delta export:
    the declared Arrow types, and "0042" stays text, a null partition stays null."""
    out = tmp_path / "d"
    records = _records()
    export_parquet(records, out, partition_by="dataset_id", table_format="delta", progress=False)
    expected = flatten_batch(records)[0]
    for grain in GRAINS:
        table = DeltaTable(str(out / grain)).to_pyarrow_table()
        assert table.select(SCHEMAS[grain].names).schema.equals(SCHEMAS[grain]), grain
        values = sorted(table.column("dataset_id").to_pylist(), key=str)
        assert values == sorted(expected[grain].column("dataset_id").to_pylist(), key=str)
    media = DeltaTable(str(out / "media")).to_pandas()
    assert set(media.dataset_id.dropna()) == {"0042", "7"} and media.dataset_id.isna().sum() == 10
    frame = pl.read_delta(str(out / "media"))
    assert frame.schema["dataset_id"] == pl.String and frame.schema["width"] == pl.Int64
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["moderation_categories"] == pl.List(pl.String)
    lazy = pl.scan_delta(str(out / "objects")).filter(pl.col("dataset_id") == "0042")
    assert (
        lazy.collect().height
        == expected["objects"]
        .filter(pa.compute.equal(expected["objects"].column("dataset_id"), "0042"))
        .num_rows
    )
    con = duckdb.connect()
    assert cvf.duckdb_views(con, out) == list(GRAINS)
    types = dict(con.execute("select column_name, column_type from (describe media)").fetchall())
    assert types["dataset_id"] == "VARCHAR" and types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert con.execute("select count(*) from media where dataset_id = '0042'").fetchall() == [(10,)]


def test_resume_continues_a_delta_export_and_keeps_its_format(tmp_path):
    out = tmp_path / "d"
    records = _records(20)
    export_parquet(records[:8], out, batch_size=4, table_format="delta", progress=False)
    report = export_parquet(records, out, batch_size=4, resume=True, progress=False)
    assert report.media_skipped == 8 and report.media_exported == 12
    assert read_manifest(out)["table_format"] == "delta"
    assert sorted(read_parquet(out).media.media_id) == sorted(r["id"] for r in records)
    with pytest.raises(ExportError, match="is a delta export, not parquet"):
        export_parquet(records, out, resume=True, table_format="parquet", progress=False)
    export_parquet(records, out, overwrite=True, table_format="parquet", progress=False)
    assert "table_format" not in read_manifest(out) and not (out / "media" / "_delta_log").exists()


def test_table_format_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="table_format"):
        export_parquet([], tmp_path / "x", table_format="iceberg", progress=False)


def test_resume_rolls_back_a_commit_the_manifest_does_not_pin(tmp_path):
    """A batch killed after some of its table commits: the tables go back to the pinned
    versions, then the batch is done again; no row twice."""
    out = tmp_path / "d"
    records = _records(12)
    export_parquet(records[:6], out, batch_size=6, table_format="delta", progress=False)
    stray = flatten_batch(records[6:])[0]
    write_deltalake(str(out / "media"), stray["media"].cast(SCHEMAS["media"]), mode="append")
    assert DeltaTable(str(out / "media")).count() == 12  # ahead of the manifest
    export_parquet(records, out, batch_size=6, resume=True, progress=False)
    media = DeltaTable(str(out / "media")).to_pandas()
    assert sorted(media.media_id) == sorted(r["id"] for r in records)


# --------------------------------------------------------------------------- sync


def test_a_new_directory_is_synced_as_delta_and_an_existing_export_keeps_its_format(api, tmp_path):
    with _client(api) as client:
        sync(client, api.collection_id, tmp_path / "new", progress=False)
        export_parquet(client.browse(api.collection_id, progress=False), tmp_path / "plain")
        api.mutate(seed=1, edits=2)
        sync(client, api.collection_id, tmp_path / "plain", progress=False)
        sync(client, api.collection_id, tmp_path / "new", progress=False)
        with pytest.raises(ExportError, match="is a parquet export, not delta"):
            sync(client, api.collection_id, tmp_path / "plain", table_format="delta")
    assert read_manifest(tmp_path / "new")["table_format"] == "delta"
    assert "table_format" not in read_manifest(tmp_path / "plain")
    assert_same(read_parquet(tmp_path / "plain"), read_parquet(tmp_path / "new"))


def test_a_delta_sync_commits_once_per_table_and_pins_each_snapshot(api, tmp_path):
    out = tmp_path / "d"
    with _client(api) as client:
        sync(client, api.collection_id, out, batch_size=7, progress=False)
        first = read_parquet(out)
        api.mutate(seed=3, adds=3, edits=4, deletes=2)
        report = sync(client, api.collection_id, out, batch_size=7, progress=False)
        fresh = tmp_path / "fresh"
        export_parquet(client.browse(api.collection_id, progress=False), fresh, progress=False)
    assert (report.added, report.updated, report.deleted, report.snapshot) == (3, 4, 2, 2)
    assert_same(read_parquet(out), read_parquet(fresh))
    manifest = read_manifest(out)
    assert [s["snapshot"] for s in manifest["snapshots"]] == [1, 2]
    assert manifest["tables"] == dict.fromkeys(delta.TABLES, 2)  # create, snapshot 1, 2
    assert manifest["rows"] == {g: len(f) for g, f in read_parquet(out).items()}
    assert_same(read_parquet(out, snapshot=1), first)
    for grain in GRAINS:  # the newest version of each table is the snapshot
        history = DeltaTable(str(out / grain)).history()
        assert [h["version"] for h in history][:2] == [2, 1]
    with pytest.raises(ExportError, match="snapshot 9 is not among"):
        read_parquet(out, snapshot=9)


def test_replaced_files_stay_until_a_vacuum_past_the_retention(api, tmp_path):
    out = tmp_path / "d"
    with _client(api) as client:
        sync(client, api.collection_id, out, progress=False)
        old_files = {p for p in (out / "media").glob("*.parquet")}
        api.mutate(seed=1, edits=3)
        sync(client, api.collection_id, out, progress=False)  # default retention: kept
        assert old_files <= set((out / "media").glob("*.parquet"))
        assert DeltaTable(str(out / "media"), version=1).to_pyarrow_table().num_rows == 40
        api.mutate(seed=2, edits=3)
        sync(client, api.collection_id, out, retention=timedelta(0), progress=False)
    assert not old_files & set((out / "media").glob("*.parquet"))  # vacuumed
    current = {
        p.name for p in delta.data_files(out, "media", read_manifest(out)["tables"]["media"])
    }
    assert {p.name for p in (out / "media").glob("*.parquet")} == current


def test_a_sync_restores_tables_a_killed_sync_left_ahead(api, tmp_path):
    out = tmp_path / "d"
    with _client(api) as client:
        sync(client, api.collection_id, out, progress=False)
        before = read_parquet(out)
        DeltaTable(str(out / "tags")).delete("key IS NOT NULL")  # a commit not pinned
        assert DeltaTable(str(out / "tags")).count() == 0
        report = sync(client, api.collection_id, out, progress=False)
    assert not report.changed
    assert DeltaTable(str(out / "tags")).count() == len(before.tags)
    assert_same(read_parquet(out), before)


# --------------------------------------------------------------------------- CLI


def test_cli_export_sync_and_repair_with_format(api, tmp_path):
    runner = CliRunner()
    common = ["--api-key", KEY, "--base-url", api.base_url, "--no-progress"]
    out = tmp_path / "d"
    args = ["export", "--collection", api.collection_id, "--out", str(out), "--format", "delta"]
    result = runner.invoke(main, args + common)
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["table_format"] == "delta"
    api.mutate(seed=4, edits=2)
    args = ["sync", "--collection", api.collection_id, "--out", str(out), "--format", "parquet"]
    result = runner.invoke(main, args + common)
    assert result.exit_code == 1 and "is a delta export, not parquet" in result.output
    args = ["sync", "--collection", api.collection_id, "--out", str(out), "--retention-hours", "0"]
    result = runner.invoke(main, args + common)
    assert result.exit_code == 0 and "2 updated" in result.output
    (out / "_coreviz_index" / "_staging" / "media").mkdir(parents=True)
    (out / "_coreviz_index" / "_staging" / "media" / "batch-000000.parquet").write_bytes(b"x")
    result = runner.invoke(main, ["repair", str(out)])
    assert result.exit_code == 0 and "1 leftover file(s) removed" in result.output
    assert read_parquet(out).media.shape[0] == 40
    assert delta.DEFAULT_RETENTION.total_seconds() / 3600 == RETENTION_HOURS


def test_the_dataset_card_of_a_delta_export_names_delta_readers(tmp_path):
    export_parquet(_records(3), tmp_path / "d", table_format="delta", progress=False)
    card = (tmp_path / "d" / "README.md").read_text()
    assert "pl.read_delta" in card and "delta_scan" in card and "configs:" not in card
    manifest = json.loads((tmp_path / "d" / MANIFEST_NAME).read_text())
    assert manifest["snapshots"][-1]["tables"] == manifest["tables"]


def test_a_damaged_delta_table_is_an_export_error_naming_it(tmp_path):
    out = tmp_path / "d"
    export_parquet(_records(6), out, table_format="delta", progress=False)
    shutil.rmtree(out / "frames" / "_delta_log")
    with pytest.raises(ExportError, match="frames"):
        read_parquet(out)
    assert isinstance(Path(out), Path)


def test_every_delta_cell_of_the_readme_engine_table_is_run_by_a_readme_block():
    """The README's python blocks run in tests/test_readme.py: each call of the Delta
    column must be in one of them (Spark excepted: there is no Spark here, as it says)."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = text.split("| engine | read the objects of a Parquet export")[1].split("\n\n")[0]
    blocks = "".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))
    rows = table.strip().splitlines()[2:]
    assert len(rows) >= 6
    for row in rows:
        engine, _, cell = row.strip("| ").split(" | ")
        calls = re.findall(r"`([^`]*\([^`]*\))`", cell)
        assert calls, engine
        for call in calls:
            if call.startswith("spark."):
                assert "no test runs this one" in cell
                continue
            assert call in blocks, (engine, call)

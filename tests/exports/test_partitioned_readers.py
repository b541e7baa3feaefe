"""A partitioned export read by engines nobody here wrote: a digit-only partition value
(``0042``) and a null one come back as text with the same value (and null) in pandas,
pyarrow, Polars, DuckDB, Dask and Hugging Face ``datasets`` (through the export's own
dataset card), because the partition column is kept inside the files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import coreviz_frames as cvf
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.schema import GRAINS

WANT = ["0042", "0042", "abc", None]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    records = [synthetic_media(i) for i in range(8)]
    for i, record in enumerate(records):
        value = WANT[i % len(WANT)]
        record.pop("dataset", None)
        if value is None:
            record.pop("datasetId", None)
        else:
            record["datasetId"] = value
    out = tmp_path_factory.mktemp("parted") / "export"
    export_parquet(records, out, batch_size=3, partition_by="dataset_id", progress=False)
    return out


def _expected(export: Path, grain: str) -> list:
    frame = getattr(read_parquet(export), grain)
    assert set(frame.dataset_id.dropna()) <= {"0042", "abc"}
    return _values(frame.dataset_id.tolist())


def _values(values) -> list:
    return sorted((None if v is None or v is pd.NA or v != v else v for v in values), key=str)


def _readers(export: Path):
    glob = lambda g: f"{export / g}/**/*.parquet"  # noqa: E731
    return {
        "pandas": lambda g: pd.read_parquet(export / g)["dataset_id"],
        "pyarrow": lambda g: pq.read_table(export / g).column("dataset_id"),
        "polars": lambda g: pl.read_parquet(glob(g))["dataset_id"],
        "duckdb": lambda g: duckdb.sql(f"select dataset_id from read_parquet('{glob(g)}')").pl()[
            "dataset_id"
        ],
        "dask": lambda g: (
            pytest.importorskip("dask.dataframe").read_parquet(export / g)["dataset_id"].compute()
        ),
        "datasets": lambda g: pytest.importorskip("datasets").load_dataset(
            str(export), g, split="train"
        )["dataset_id"],
    }


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # inside dask.read_parquet
@pytest.mark.parametrize("reader", ["pandas", "pyarrow", "polars", "duckdb", "dask", "datasets"])
@pytest.mark.parametrize("grain", GRAINS)
def test_a_digit_only_or_null_partition_value_reads_back_as_text(export, reader, grain):
    got = _readers(export)[reader](grain)
    values = got.to_pylist() if hasattr(got, "to_pylist") else list(got)
    assert _values(values) == _expected(export, grain)
    if reader == "pandas":
        assert pd.api.types.is_string_dtype(got.dtype), got.dtype
    elif reader == "pyarrow":
        assert pa.types.is_string(got.type) or pa.types.is_large_string(got.type)
    elif reader in ("polars", "duckdb"):
        assert got.dtype == pl.String


def test_the_layout_keeps_the_column_in_the_files_and_views_read_it(export):
    folders = sorted(p.name for p in (export / "media").iterdir() if p.is_dir())
    assert folders == [
        "dataset_id-0042",
        "dataset_id-__HIVE_DEFAULT_PARTITION__",
        "dataset_id-abc",
    ]
    for file in (export / "media").rglob("*.parquet"):
        assert "dataset_id" in pq.read_schema(file).names
    con = duckdb.connect()
    cvf.duckdb_views(con, export)
    rows = con.execute("select dataset_id, count(*) from media group by 1 order by 1").fetchall()
    assert rows == [("0042", 4), ("abc", 2), (None, 2)]
    card = (export / "README.md").read_text()
    assert "dataset_id-" in card and "hive-partitioned" not in card


def test_an_older_hive_export_is_read_and_resumed_in_its_own_layout(tmp_path):
    """Exports written before the column stayed in the files (``dataset_id=...`` folders,
    the column in the path only) still read back, and a resume keeps their layout."""
    from coreviz_frames.exports.store import ExportStore
    from coreviz_frames.tables.media_tables import to_tables

    records = [synthetic_media(i) for i in range(6)]
    out = tmp_path / "old"
    store = ExportStore(out, partition_by="dataset_id")
    store.hive = True  # as older versions wrote it
    with store.open():
        store.commit_part(to_tables(records[:3]))
        store.finish("incomplete", reason="stopped")
    file = next((out / "media").rglob("*.parquet"))
    assert "=" in file.parent.name and "dataset_id" not in pq.read_schema(file).names
    export_parquet(records, out, resume=True, partition_by="dataset_id", progress=False)
    folders = {p.parent.name for g in GRAINS for p in (out / g).rglob("*.parquet")}
    assert folders and all("=" in name for name in folders)
    back = read_parquet(out).media
    assert len(back) == 6 and back.dataset_id.notna().all()

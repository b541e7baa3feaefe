"""Readers nobody here wrote: plain pandas, DuckDB, Polars and Hugging Face ``datasets``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import coreviz_frames as cvf
from coreviz_frames.schema import GRAINS, SCHEMAS
from coreviz_frames.synthetic import synthetic_media


def _records(n: int = 6, *, null_dataset: bool = False) -> list[dict]:
    records = [synthetic_media(i) for i in range(n)]
    if null_dataset:
        records[1].pop("datasetId", None)
        records[1].pop("dataset", None)
    return records


@pytest.fixture(scope="module")
def tables() -> cvf.MediaTables:
    return cvf.to_tables(_records(null_dataset=True))


def _list_columns(grain: str) -> set[str]:
    return {f.name for f in SCHEMAS[grain] if pa.types.is_list(f.type)}


@pytest.mark.parametrize("partition_by", [None, "dataset_id"])
def test_plain_pandas_reads_each_grain_with_the_package_dtypes(tmp_path, tables, partition_by):
    """Plain pd.read_parquet on a grain folder gets Int64, string and us timestamps back;
    a partitioned export with a null partition reads (the null stays null)."""
    tables.to_parquet(tmp_path, partition_by=partition_by)
    ours = cvf.read_parquet(tmp_path)
    for grain in GRAINS:
        plain = pd.read_parquet(tmp_path / grain)  # the package is not used for reading
        expected = getattr(ours, grain)
        assert len(plain) == len(expected), grain
        assert set(plain.columns) == set(expected.columns), grain
        for column in expected.columns:
            got, want = plain[column].dtype, expected[column].dtype
            if column in _list_columns(grain):
                # pandas cannot rebuild a nested Arrow dtype from its name: object of arrays
                assert got == np.dtype(object), (grain, column)
            elif column == partition_by:
                # a hive column: pyarrow-backed string ("string[pyarrow]"), nulls kept
                assert isinstance(got, pd.ArrowDtype) and pa.types.is_string(got.pyarrow_dtype)
            else:
                assert got == want, (grain, column, got, want)
    media = pd.read_parquet(tmp_path / "media").sort_values("media_id")
    assert media["width"].dtype == "Int64"
    assert str(media["created_at"].dtype) == "datetime64[us, UTC]"
    assert media["dataset_id"].isna().sum() == 1


@pytest.fixture(scope="module")
def partitioned_export(tmp_path_factory, tables) -> Path:
    root = tmp_path_factory.mktemp("export")
    tables.to_parquet(root, partition_by="dataset_id")
    return root


@pytest.fixture(scope="module")
def plain_export(tmp_path_factory, tables) -> Path:
    root = tmp_path_factory.mktemp("export")
    tables.to_parquet(root)
    return root


def test_every_export_has_a_dataset_card_with_one_config_per_grain(plain_export):
    card = (plain_export / "README.md").read_text()
    assert card.startswith("---\nconfigs:\n")
    for grain in GRAINS:
        assert f"- config_name: {grain}\n" in card
        assert f'path: "{grain}/**/*.parquet"' in card
    assert "never at this directory" in card


def test_a_readme_the_package_did_not_write_is_left_alone(tmp_path):
    (tmp_path / "README.md").write_text("my notes\n")
    cvf.MediaTables.empty().to_parquet(tmp_path, overwrite=True)
    assert (tmp_path / "README.md").read_text() == "my notes\n"


@pytest.mark.parametrize("which", ["plain_export", "partitioned_export"])
def test_hf_load_dataset_reads_each_grain_offline(request, which, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed")
    root = request.getfixturevalue(which)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = cvf.read_parquet(root)
    cache = root.parent / f"hf-cache-{which}"
    for grain in GRAINS:
        loaded = datasets.load_dataset(str(root), grain, split="train", cache_dir=str(cache))
        assert loaded.num_rows == len(getattr(ours, grain)), grain
    objects = datasets.load_dataset(str(root), "objects", split="train", cache_dir=str(cache))
    assert "bbox_x" in objects.column_names and "moderation_status" not in objects.column_names


@pytest.mark.parametrize("which", ["plain_export", "partitioned_export"])
def test_duckdb_views_give_read_parquet_row_counts(request, which):
    duckdb = pytest.importorskip("duckdb")
    root = request.getfixturevalue(which)
    ours = cvf.read_parquet(root)
    con = duckdb.connect()
    try:
        assert cvf.duckdb_views(con, root) == list(GRAINS)
        for grain in GRAINS:
            (count,) = con.execute(f"SELECT count(*) FROM {grain}").fetchone()
            assert count == len(getattr(ours, grain)), grain
            columns = [row[0] for row in con.execute(f"DESCRIBE {grain}").fetchall()]
            assert columns == SCHEMAS[grain].names
        (nulls,) = con.execute("SELECT count(*) FROM media WHERE dataset_id IS NULL").fetchone()
        assert nulls == 1
    finally:
        con.close()

"""Readers nobody here wrote: plain pandas, DuckDB, Polars and Hugging Face ``datasets``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import coreviz_frames as cvf
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.schema import GRAINS, SCHEMAS


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
            else:  # the partition column too: it is inside the files, with its dtype
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


def test_read_parquet_arrow_and_polars_backends(plain_export, tables):
    arrow = cvf.read_parquet(plain_export, grains=["objects"], backend="arrow")
    assert list(arrow) == ["objects"]
    assert arrow["objects"].schema.names == SCHEMAS["objects"].names
    assert arrow["objects"].num_rows == len(tables.objects)
    pytest.importorskip("polars")
    frames = cvf.read_parquet(plain_export, backend="polars")
    assert {g: f.height for g, f in frames.items()} == {g: len(f) for g, f in tables.items()}
    assert frames["objects"].group_by("label").len().height == tables.objects.label.nunique()


def test_read_parquet_columns_and_filters(plain_export, tables):
    dogs = [("label", "=", tables.objects.label.iloc[0])]
    back = cvf.read_parquet(
        plain_export, grains=["objects"], columns=["object_id", "label"], filters=dogs
    )
    assert back.objects.columns.tolist() == ["object_id", "label"]
    assert str(back.objects.label.dtype) == "string"
    assert (back.objects.label == dogs[0][2]).all()
    assert len(back.objects) == (tables.objects.label == dogs[0][2]).sum()


def test_a_filter_on_a_column_some_grains_lack_is_one_line_naming_them(plain_export):
    with pytest.raises(cvf.ExportError) as caught:
        cvf.read_parquet(plain_export, filters=[("label", "=", "dog")])
    message = str(caught.value)
    assert "\n" not in message
    assert "'label'" in message and "media" in message and "grains=['objects']" in message
    with pytest.raises(cvf.ExportError, match=r"'bbox_x'.*media") as caught:
        cvf.read_parquet(plain_export, columns=["media_id", "bbox_x"])
    with pytest.raises(cvf.ConfigError, match="backend="):
        cvf.read_parquet(plain_export, backend="spark")


def test_to_arrow_and_to_polars_have_every_grain(tables):
    arrow = tables.to_arrow()
    assert {g: t.num_rows for g, t in arrow.items()} == {g: len(f) for g, f in tables.items()}
    assert arrow["media"].schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    pl = pytest.importorskip("polars")
    polars = tables.to_polars(["objects"])
    assert isinstance(polars["objects"], pl.DataFrame)
    assert polars["objects"].schema["polygon"] == pl.List(
        pl.Struct({"x": pl.Float64, "y": pl.Float64})
    )


def test_polars_missing_is_a_config_error_with_the_install_hint(tables, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "polars", None)  # as if not installed
    with pytest.raises(cvf.ConfigError, match=r"coreviz-frames\[polars\]"):
        tables.to_polars()


def test_to_csv_writes_lists_as_one_line_json(tmp_path, tables):
    import json

    files = tables.to_csv(tmp_path / "csv")
    assert sorted(f.name for f in files) == sorted(f"{g}.csv" for g in GRAINS)
    objects = pd.read_csv(tmp_path / "csv" / "objects.csv")  # a plain reader
    assert len(objects) == len(tables.objects)
    with_polygon = objects["polygon"].dropna()
    assert len(with_polygon) > 0
    first = json.loads(with_polygon.iloc[0])
    assert set(first[0]) == {"x", "y"}
    text = (tmp_path / "csv" / "objects.csv").read_text()
    assert len(text.splitlines()) == len(tables.objects) + 1  # no newline inside a cell
    assert "array(" not in text

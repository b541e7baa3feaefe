"""write_tables / read_parquet: exact round trips, file layout and metadata, real readers."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import coreviz_frames as cvf
from coreviz_frames import ConfigError, ExportError, SchemaError
from coreviz_frames.api.client import Client
from coreviz_frames.exports.grainfiles import METADATA_KEY, PLAIN_COLUMNS, dictionary_columns
from coreviz_frames.exports.reader import MANIFEST_NAME, read_manifest
from coreviz_frames.exports.store import write_tables
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import BOX_CONVENTION, GRAINS, SCHEMA_VERSION, SCHEMAS
from coreviz_frames.tables.media_tables import MediaTables, to_tables

duckdb = pytest.importorskip("duckdb")
pl = pytest.importorskip("polars")


@pytest.fixture(scope="module")
def tables() -> MediaTables:
    """Two collections of synthetic media (videos, images, every grain populated)."""
    records = [*iter_synthetic(40, collection_id="alpha"), *iter_synthetic(25, collection_id="b")]
    return to_tables(records)


def assert_tables_equal(left: MediaTables, right: MediaTables, *, sort: bool = False) -> None:
    keys = {
        "media": ["media_id"],
        "frames": ["frame_id"],
        "captions": ["caption_id"],
        "objects": ["object_id"],
        "tags": ["media_id", "key", "value"],
    }
    for grain in GRAINS:
        a, b = getattr(left, grain), getattr(right, grain)
        if sort:
            a = a.sort_values(keys[grain], ignore_index=True)
            b = b.sort_values(keys[grain], ignore_index=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_round_trip_is_exact(tables: MediaTables, tmp_path: Path) -> None:
    path = tables.to_parquet(tmp_path / "export")
    assert path == tmp_path / "export"
    assert len(tables.objects) > 0 and len(tables.captions) > 0
    assert_tables_equal(cvf.read_parquet(path), tables)


def test_sample_collection_round_trip(sample_api, tmp_path: Path) -> None:
    with Client(api_key="k", base_url=sample_api.base_url) as client:
        sample = to_tables(client.browse(sample_api.collection_id, progress=False))
    assert len(sample.media) > 0
    path = sample.to_parquet(tmp_path / "sample", partition_by="dataset_id")
    assert_tables_equal(cvf.read_parquet(path), sample, sort=True)
    path = sample.to_parquet(tmp_path / "flat")
    assert_tables_equal(cvf.read_parquet(path), sample)


def test_empty_round_trip_writes_every_grain_with_its_schema(tmp_path: Path) -> None:
    path = MediaTables.empty().to_parquet(tmp_path / "empty")
    assert_tables_equal(cvf.read_parquet(path), MediaTables.empty())
    for grain in GRAINS:
        files = sorted((path / grain).glob("*.parquet"))
        assert len(files) == 1
        assert pq.read_schema(files[0]).remove_metadata() == SCHEMAS[grain]
        assert pq.ParquetFile(files[0]).metadata.num_rows == 0
        # real readers see the columns of an empty grain
        con = duckdb.connect()
        cols = con.execute(f"DESCRIBE SELECT * FROM '{path}/{grain}/*.parquet'").fetchall()
        assert [c[0] for c in cols] == SCHEMAS[grain].names


def test_files_carry_metadata_schema_zstd_and_bounded_row_groups(
    tables: MediaTables, tmp_path: Path
) -> None:
    path = write_tables(tables, tmp_path / "x", row_group_size=500)
    for grain in GRAINS:
        (file,) = (path / grain).glob("*.parquet")
        pf = pq.ParquetFile(file)
        meta = json.loads(pf.schema_arrow.metadata[METADATA_KEY.encode()])
        assert meta == {
            "package_version": cvf.__version__,
            "schema_version": SCHEMA_VERSION,
            "grain": grain,
            "box_convention": BOX_CONVENTION,
        }
        assert pf.schema_arrow.remove_metadata() == SCHEMAS[grain]
        md = pf.metadata
        assert all(md.row_group(i).num_rows <= 500 for i in range(md.num_row_groups))
        assert md.row_group(0).column(0).compression == "ZSTD"
    assert pq.ParquetFile(next((path / "objects").glob("*.parquet"))).num_row_groups > 1
    ts = pq.read_schema(next((path / "media").glob("*.parquet"))).field("created_at").type
    assert ts == pa.timestamp("us", tz="UTC")


def test_dictionary_only_where_values_repeat_as_duckdb_reads_the_files(
    tables: MediaTables, tmp_path: Path
) -> None:
    """Ids, URLs and free text are written plain; every other column (nested leaves by
    their Parquet path) with a dictionary: the encodings DuckDB reports of each file."""
    path = write_tables(tables, tmp_path / "x")
    con = duckdb.connect()
    for grain in GRAINS:
        (file,) = (path / grain).glob("*.parquet")
        rows = con.execute(
            "SELECT path_in_schema, encodings FROM parquet_metadata(?)", [str(file)]
        ).fetchall()
        encodings: dict[str, set[str]] = {}
        for column, found in rows:  # DuckDB writes a nested path "polygon, list, element, x"
            encodings.setdefault(column.replace(", ", "."), set()).update(found.split(", "))
        assert set(dictionary_columns(SCHEMAS[grain])) == {
            column for column in encodings if column.split(".")[0] not in PLAIN_COLUMNS
        }  # every path names a column of the file: none is silently ignored
        for column, found in encodings.items():
            dictionary = bool(found & {"RLE_DICTIONARY", "PLAIN_DICTIONARY"})
            assert dictionary == (column.split(".")[0] not in PLAIN_COLUMNS), (grain, column)
    assert {"polygon.list.element.x", "polygon.list.element.y"} <= set(
        dictionary_columns(SCHEMAS["objects"])
    )
    assert_tables_equal(cvf.read_parquet(path), tables)


def test_partitioned_round_trip(tables: MediaTables, tmp_path: Path) -> None:
    path = tables.to_parquet(tmp_path / "p", partition_by="dataset_id")
    for grain in GRAINS:
        dirs = sorted(d.name for d in (path / grain).iterdir())
        assert dirs == ["dataset_id-alpha", "dataset_id-b"]
        file = next((path / grain / "dataset_id-b").glob("*.parquet"))
        assert "dataset_id" in pq.read_schema(file).names  # the column stays in the file
    back = cvf.read_parquet(path)
    assert back.media.dtypes["dataset_id"] == tables.media.dtypes["dataset_id"]
    assert_tables_equal(back, tables, sort=True)
    # filters prune by partition; DuckDB and Polars see the partition column too
    only_b = cvf.read_parquet(path, filters=[("dataset_id", "=", "b")])
    assert len(only_b.media) == 25 and set(only_b.objects.dataset_id) == {"b"}
    n = (
        duckdb.connect()
        .execute(
            f"SELECT count(*) FROM read_parquet('{path}/objects/**/*.parquet', "
            "hive_partitioning=true) WHERE dataset_id = 'b'"
        )
        .fetchone()[0]
    )
    assert n == (tables.objects.dataset_id == "b").sum()
    frame = pl.scan_parquet(f"{path}/media/", hive_partitioning=True).collect()
    assert sorted(frame["dataset_id"].unique().to_list()) == ["alpha", "b"]


def test_partitioned_empty_round_trip(tmp_path: Path) -> None:
    path = MediaTables.empty().to_parquet(tmp_path / "pe", partition_by="dataset_id")
    assert_tables_equal(cvf.read_parquet(path), MediaTables.empty())


def test_partition_by_must_be_a_column_of_every_grain(tables, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="label"):
        tables.to_parquet(tmp_path / "bad", partition_by="label")
    assert not (tmp_path / "bad").exists()


def test_grains_and_filters(tables: MediaTables, tmp_path: Path) -> None:
    path = tables.to_parquet(tmp_path / "f")
    some = tables.media.media_id.iloc[:3].tolist()
    back = cvf.read_parquet(path, grains=["objects", "media"], filters=[("media_id", "in", some)])
    assert sorted(back.media.media_id) == sorted(some)
    expected = tables.objects[tables.objects.media_id.isin(some)].reset_index(drop=True)
    pd.testing.assert_frame_equal(back.objects, expected)
    pd.testing.assert_frame_equal(back.tags, MediaTables.empty().tags)
    with pytest.raises(ConfigError):
        cvf.read_parquet(path, grains=["nope"])
    with pytest.raises(ExportError):
        cvf.read_parquet(path, filters=[("label", "=", "dog")])  # media has no label


def test_refuses_a_non_empty_directory_and_touches_nothing(tables, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    (target / "media").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    (target / "media" / "photo.jpg").write_bytes(b"\xff\xd8")
    before = snapshot(target)
    with pytest.raises(ExportError) as info:
        tables.to_parquet(target)
    assert info.value.path == str(target)
    # overwrite refuses too: media/ holds something that is not part of an export
    with pytest.raises(ExportError, match=r"photo\.jpg"):
        tables.to_parquet(target, overwrite=True)
    assert snapshot(target) == before


def test_overwrite_replaces_a_previous_export_only(tables, tmp_path: Path) -> None:
    target = tables.to_parquet(tmp_path / "again", partition_by="dataset_id")
    (target / "README.txt").write_text("kept")
    small = to_tables(list(iter_synthetic(3)))
    small.to_parquet(target, overwrite=True)
    assert_tables_equal(cvf.read_parquet(target), small)
    assert (target / "README.txt").read_text() == "kept"
    assert read_manifest(target)["partition_by"] is None


def test_duckdb_and_polars_read_every_grain(tables: MediaTables, tmp_path: Path) -> None:
    path = tables.to_parquet(tmp_path / "engines")
    con = duckdb.connect()
    for grain in GRAINS:
        glob = f"{path}/{grain}/**/*.parquet"
        assert con.execute(f"SELECT count(*) FROM '{glob}'").fetchone()[0] == len(
            getattr(tables, grain)
        )
        assert pl.scan_parquet(glob).select(pl.len()).collect().item() == len(
            getattr(tables, grain)
        )
    joined = con.execute(
        f"SELECT o.object_id, o.label, m.name, m.dataset_id "
        f"FROM '{path}/objects/**/*.parquet' o JOIN '{path}/media/**/*.parquet' m "
        "USING (media_id) ORDER BY o.object_id"
    ).fetchall()
    merged = tables.objects.merge(tables.media, on="media_id", suffixes=("", "_m"))
    merged = merged.sort_values("object_id")
    expected = list(
        zip(merged.object_id, merged.label, merged.name, merged.dataset_id_m, strict=True)
    )
    assert joined == expected
    # Polars keeps the declared types
    objects = pl.read_parquet(f"{path}/objects/**/*.parquet")
    assert objects.schema["bbox_x"] == pl.Float64
    assert objects.schema["object_index"] == pl.Int64


def test_manifest_of_to_parquet(tables: MediaTables, tmp_path: Path) -> None:
    path = tables.to_parquet(tmp_path / "m")
    manifest = read_manifest(path)
    assert manifest["status"] == "complete"
    assert manifest["rows"] == {g: len(getattr(tables, g)) for g in GRAINS}
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert (path / MANIFEST_NAME).is_file()
    # pyarrow.dataset sees only the Parquet parts, not the manifest
    assert len(ds.dataset(path / "media", format="parquet").files) == 1
    with pytest.raises(ExportError):
        read_manifest(tmp_path)


def test_read_without_manifest_uses_visible_files(tables: MediaTables, tmp_path: Path) -> None:
    path = tables.to_parquet(tmp_path / "nm")
    os.remove(path / MANIFEST_NAME)
    (path / "media" / ".tmp-part-000001.parquet.1.tmp").write_bytes(b"garbage")
    assert_tables_equal(cvf.read_parquet(path), tables)


def test_a_table_that_does_not_fit_the_schema_is_a_schema_error(tables, tmp_path: Path) -> None:
    media = tables.media.copy()
    media["width"] = media["width"].astype("float64") / 2 + 0.25
    with pytest.raises(SchemaError, match="'width' of the media table") as info:
        replace(tables, media=media).to_parquet(tmp_path / "a")
    assert info.value.field == "width"
    with pytest.raises(SchemaError, match="no column 'extra'") as info:
        replace(tables, objects=tables.objects.drop(columns=["extra"])).to_parquet(tmp_path / "b")
    assert info.value.field == "extra"
    media = tables.media.copy()
    media.loc[media.index[0], "media_id"] = None
    with pytest.raises(SchemaError, match="'media_id'"):
        replace(tables, media=media).to_parquet(tmp_path / "c")


def test_a_directory_that_is_not_an_export_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not an export")
    with pytest.raises(ExportError, match="no Parquet export"):
        cvf.read_parquet(tmp_path)


@pytest.mark.parametrize(
    ("dataset_id", "problem"),
    [("d" * 300, "over the 255-byte limit"), ("__HIVE_DEFAULT_PARTITION__", "read back as null")],
)
def test_a_partition_value_that_cannot_be_a_folder_is_a_schema_error(
    tmp_path: Path, dataset_id: str, problem: str
) -> None:
    records = list(iter_synthetic(3, collection_id=dataset_id))
    orphan = {**records[0], "id": "orphan1", "datasetId": None, "dataset": None}
    tables = to_tables([*records, orphan])
    assert tables.media.dataset_id.isna().sum() == 1  # a null beside the real value
    with pytest.raises(SchemaError, match=problem) as info:
        write_tables(tables, tmp_path / "w", partition_by="dataset_id")
    assert info.value.field == "dataset_id" and "dataset_id" in str(info.value)
    assert dataset_id[:40] in str(info.value) and info.value.media_id in set(tables.media.media_id)
    with pytest.raises(SchemaError, match=problem):
        cvf.export_parquet(records, tmp_path / "e", partition_by="dataset_id", progress=False)
    assert read_manifest(tmp_path / "e")["status"] == "failed"

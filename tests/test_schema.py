"""The declared schema: columns of DESIGN's table, dtype mapping, empty frames."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from coreviz_frames.schema import (
    API_FIELDS,
    COLUMN_DOCS,
    COLUMNS,
    GRAINS,
    SCHEMAS,
    ApiField,
    Column,
    arrow_to_pandas,
    empty_frame,
    pandas_dtype,
    pandas_dtypes,
)

DESIGN = Path("/work/shared/DESIGN.md")


def _design_columns() -> dict[str, set[str]]:
    """grain -> the column names DESIGN's "The five tables" lists (key, carries, main)."""
    out: dict[str, set[str]] = {}
    for line in DESIGN.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in GRAINS:
            names = re.findall(
                r"\b[a-z][a-z_]*\b", re.sub(r"\([^)]*\)|`[^`]*`", "", " ".join(cells[1:]))
            )
            out[cells[0]] = {
                n for n in names if n not in {"one", "row", "per", "tag", "value", "of"}
            }
            out[cells[0]] |= {"value"} if cells[0] == "tags" else set()
    return out


@pytest.mark.skipif(not DESIGN.exists(), reason="DESIGN.md not available")
def test_schema_has_every_design_column():
    design = _design_columns()
    assert set(design) == set(GRAINS)
    for grain, names in design.items():
        missing = names - set(SCHEMAS[grain].names)
        assert not missing, (grain, missing)


def test_grain_keys_first_and_extra_last():
    keys = {"media": "media_id", "frames": "frame_id", "captions": "caption_id",
            "objects": "object_id", "tags": "media_id"}  # fmt: skip
    for grain in GRAINS:
        names = SCHEMAS[grain].names
        assert names[0] == keys[grain]
        assert len(set(names)) == len(names)
        if grain != "tags":
            assert names[-1] == "extra"
        assert set(COLUMN_DOCS[grain]) == set(names)


def test_ancestor_ids_on_every_child():
    for grain, ancestors in {
        "frames": {"media_id", "dataset_id", "frame_index"},
        "captions": {"frame_id", "media_id", "dataset_id", "caption_index", "timestamp"},
        "objects": {"frame_id", "media_id", "dataset_id", "object_index", "timestamp",
                    "frame_width", "frame_height"},
        "tags": {"media_id", "dataset_id"},
    }.items():  # fmt: skip
        assert ancestors <= set(SCHEMAS[grain].names), grain


def test_dtype_mapping():
    assert pandas_dtype(pa.string()) == pd.StringDtype("pyarrow")
    assert pandas_dtype(pa.int64()) == pd.Int64Dtype()
    assert str(pandas_dtype(pa.float64())) == "float64"
    assert pandas_dtype(pa.timestamp("us", tz="UTC")) == pd.DatetimeTZDtype(unit="us", tz="UTC")
    assert isinstance(pandas_dtype(SCHEMAS["objects"].field("polygon").type), pd.ArrowDtype)
    for field in SCHEMAS["media"]:
        if pa.types.is_timestamp(field.type):
            assert field.type.unit == "us" and field.type.tz == "UTC"


@pytest.mark.parametrize("grain", GRAINS)
def test_empty_frames_have_full_schema(grain):
    frame = empty_frame(grain)
    assert len(frame) == 0
    assert list(frame.columns) == SCHEMAS[grain].names
    assert dict(frame.dtypes) == pandas_dtypes(grain)


def test_arrow_to_pandas_reorders_and_casts():
    table = pa.table({"value": ["v"], "key": ["k"], "dataset_id": [None], "media_id": ["m"]})
    frame = arrow_to_pandas(table, "tags")
    assert list(frame.columns) == SCHEMAS["tags"].names
    assert dict(frame.dtypes) == pandas_dtypes("tags")


# --- API sources: the one place a column's API field and reading rule are declared ----------


def test_api_fields_are_the_columns_with_a_source():
    for grain in GRAINS:
        declared = [c for c in COLUMNS[grain] if c.source is not None]
        assert API_FIELDS[grain] == tuple(ApiField(c.name, c.source, c.kind) for c in declared)
        sources = [f.source for f in API_FIELDS[grain]]
        assert len(sources) == len(set(sources)), grain
        assert all(c.name != "extra" for c in declared)
    assert API_FIELDS["tags"] == ()
    kinds = {f.column: f.kind for f in API_FIELDS["media"]}
    assert kinds["media_id"] == kinds["dataset_id"] == "id" and kinds["name"] == "str"
    assert kinds["size_bytes"] == "int" and kinds["created_at"] == "ts"
    assert kinds["moderation_categories"] == "strlist"
    assert {f.column: f.kind for f in API_FIELDS["objects"]}["polygon"] == "polygon"
    assert {f.column: f.source for f in API_FIELDS["frames"]}["page_number"] == "pageNumber"


def test_column_kind_rules():
    assert Column("x_id", pa.string(), True, "").kind == "id"
    assert Column("label", pa.string(), True, "").kind == "str"
    assert Column("n", pa.int64(), True, "").kind == "int"
    assert Column("t", pa.timestamp("us", tz="UTC"), True, "").kind == "ts"
    with pytest.raises(TypeError, match="no reading rule"):
        _ = Column("flag", pa.bool_(), True, "").kind

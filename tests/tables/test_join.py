"""MediaTables.join: no _x/_y columns, every right column prefixed, no silent row repeats."""

from __future__ import annotations

import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.local_api.synthetic import synthetic_media


@pytest.fixture(scope="module")
def tables() -> cvf.MediaTables:
    return cvf.to_tables([synthetic_media(i) for i in range(8)])


def _no_suffixes(frame: pd.DataFrame) -> None:
    assert not [c for c in frame.columns if c.endswith(("_x", "_y")) and not c.startswith("bbox")]


def test_objects_join_media_has_no_suffixes_and_the_objects_row_count(tables):
    joined = tables.join("objects", "media")
    _no_suffixes(joined)
    assert len(joined) == len(tables.objects)
    assert joined.columns.is_unique
    # the objects' own columns are untouched; every media column but the ids is prefixed
    assert joined.columns[: len(tables.objects.columns)].tolist() == tables.objects.columns.tolist()
    added = joined.columns[len(tables.objects.columns) :].tolist()
    assert added == [
        "media_" + c for c in tables.media.columns if c not in ("media_id", "dataset_id")
    ]
    for name in ("media_type", "media_status", "media_blob", "media_name", "media_width"):
        assert name in joined.columns
    assert (
        joined["media_width"] == joined["media_id"].map(tables.media.set_index("media_id").width)
    ).all()
    assert joined["type"].tolist() == tables.objects["type"].tolist()
    assert joined.groupby("type").size().sum() == len(tables.objects)  # "type" is one column
    by_media = tables.media.set_index("media_id")["type"]
    assert (joined["media_type"] == joined["media_id"].map(by_media)).all()


def test_the_plain_merge_the_readme_used_to_show_collides(tables):
    merged = tables.objects.merge(tables.media, on="media_id")
    assert "type_x" in merged.columns  # what join() avoids


@pytest.mark.parametrize(
    ("left", "right", "key"),
    [
        ("objects", "frames", "frame_id"),
        ("captions", "frames", "frame_id"),
        ("frames", "media", "media_id"),
        ("tags", "media", "media_id"),
    ],
)
def test_joins_with_an_ancestor_keep_the_left_rows(tables, left, right, key):
    joined = tables.join(left, right)
    _no_suffixes(joined)
    assert len(joined) == len(getattr(tables, left))
    assert joined.columns.is_unique and key in joined.columns


def test_join_with_a_child_and_chosen_columns(tables):
    joined = tables.join(
        "media",
        "objects",
        how="inner",
        columns=["label", "type", "object_index"],
        validate="one_to_many",
    )
    assert len(joined) == len(tables.objects)
    assert joined.columns[-3:].tolist() == ["object_label", "object_type", "object_index"]


def test_a_prefixed_name_that_is_a_left_column_takes_the_plural_grain_name(tables):
    joined = tables.join("objects", "frames", columns=["width", "blob"])
    assert joined.columns[-2:].tolist() == ["frames_width", "frame_blob"]
    assert joined["frame_width"].equals(joined["frames_width"])  # the object's copy stays


@pytest.mark.parametrize(
    ("left", "right", "pairing"),
    [("objects", "captions", "many_to_many"), ("media", "objects", "one_to_many")],
)
def test_a_join_that_repeats_rows_is_refused_unless_validate_says_so(tables, left, right, pairing):
    with pytest.raises(ConfigError, match=f"is {pairing} .* Pass validate='{pairing}'"):
        tables.join(left, right)
    joined = tables.join(left, right, validate=pairing)
    assert len(joined) > len(getattr(tables, left))  # the repeats the error warned about
    assert joined.columns.is_unique


def test_validate_is_checked_against_the_data(tables):
    with pytest.raises(ConfigError, match="not one_to_one on media_id"):
        tables.join("media", "objects", validate="one_to_one")
    with pytest.raises(ConfigError, match="validate='sideways': choose one of"):
        tables.join("objects", "media", validate="sideways")
    assert len(tables.join("objects", "media", validate="m:1")) == len(tables.objects)


def test_join_refuses_bad_input_by_name(tables):
    with pytest.raises(ConfigError, match="unknown grain 'object'"):
        tables.join("object", "media")
    with pytest.raises(ConfigError, match="no column 'nope'"):
        tables.join("objects", "media", columns=["nope"])
    with pytest.raises(ConfigError, match="how="):
        tables.join("objects", "media", how="sideways")

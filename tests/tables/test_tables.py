"""to_tables / MediaTables: schema, edge records, malformed records, property test, golden."""

from __future__ import annotations

import copy
import json
import uuid
import warnings
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import coreviz_frames as cvf
from coreviz_frames._util.ids import normalize_id
from coreviz_frames.errors import SchemaError, SkippedRecordWarning
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import API_FIELDS, GRAINS, pandas_dtypes
from coreviz_frames.tables.flatten import flatten
from coreviz_frames.tables.media_tables import FlattenReport, MediaTables, tags_wide, to_tables

DATA = Path(__file__).resolve().parents[2] / "data"

# The tests written before on_error= keep the deprecated errors= spelling on purpose (it must
# keep working); its DeprecationWarning is tested in test_errors_keyword_is_deprecated_but_works.
pytestmark = pytest.mark.filterwarnings("ignore:errors= is deprecated:DeprecationWarning")


def assert_schema(tables: MediaTables) -> None:
    for grain, frame in tables.items():
        assert dict(frame.dtypes) == pandas_dtypes(grain), grain


def _rec(**overrides) -> dict:
    rec = copy.deepcopy(next(iter_synthetic(1)))
    rec.update(overrides)
    return rec


# --- empty, dtypes ---------------------------------------------------------------------------


def test_zero_records_equal_empty():
    tables = to_tables([])
    empty = MediaTables.empty()
    for grain in GRAINS:
        pdt.assert_frame_equal(getattr(tables, grain), getattr(empty, grain), check_exact=True)
    assert_schema(tables)


def test_generator_input_and_dtypes_of_every_grain():
    tables = to_tables(iter_synthetic(20))
    assert len(tables.media) == 20
    assert_schema(tables)


def test_synthetic_counts_and_ancestors():
    tables = to_tables(iter_synthetic(10))
    recs = list(iter_synthetic(10))
    assert len(tables.frames) == sum(len(r["frames"]) for r in recs)
    assert tables.frames.groupby("media_id").size().to_dict() == {
        r["id"]: len(r["frames"]) for r in recs
    }
    obj = tables.objects.iloc[0]
    poly = recs[0]["frames"][0]["objects"][0]["polygon"]
    assert obj.bbox_x == min(p["x"] for p in poly)
    assert obj.bbox_w == max(p["x"] for p in poly) - min(p["x"] for p in poly)
    assert (obj.frame_width, obj.frame_height) == (320, 240)
    # blob "" -> null
    blobs = [o["blob"] for r in recs for f in r["frames"] for o in f["objects"]]
    assert tables.objects.blob.isna().sum() == blobs.count("")
    assert tables.media.folder_path.iloc[0] == "synthetic.f0"
    assert tables.media.frame_count.sum() == len(tables.frames)
    assert tables.frames.object_count.sum() == len(tables.objects)
    assert tables.frames.caption_count.sum() == len(tables.captions)


def test_wrappers_folders_and_browse_pages():
    rec = _rec()
    folder = {"id": "f1", "type": "folder", "blob": "folder", "path": "c.f1"}
    report = FlattenReport()
    tables = to_tables(
        [{"media": rec}, folder, {"media": [rec], "pagination": {"total": 1}}], report=report
    )
    assert len(tables.media) == 2 and report.folders == 1
    assert len(to_tables(rec).media) == 1  # a single record is accepted too


# --- API generations and types ---------------------------------------------------------------


def test_legacy_record():
    mid = "7938B58D-D60A-43D8-953F-4F56B3CD8410"
    fid = str(uuid.UUID(int=1))
    rec = {
        "id": mid,
        "name": "uploads/2025/abc.jpg",
        "type": "image",
        "blob": None,
        "entityId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "createdAt": "2025-03-10T14:22:15+02:00",
        "createdById": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "exif": {"tags": {"Make": "Canon"}},
        "frames": [{"id": fid, "timestamp": 0, "mediaId": mid, "width": 10, "height": 5}],
    }
    t = to_tables([rec])
    m = t.media.iloc[0]
    assert m.media_id == "7938b58dd60a43d8953f4f56b3cd8410"
    assert m.entity_id == "1b4e28ba2fa111d2883f0016d3cca427"
    assert m.created_by_id == "0f8fad5bd9cb469fa16570867728950e"
    assert pd.isna(m.path) and pd.isna(m.folder_path) and pd.isna(m.dataset_id)
    assert pd.isna(m.blob)
    assert m.created_at == pd.Timestamp("2025-03-10T12:22:15Z")
    assert json.loads(m.extra) == {"exif": {"tags": {"Make": "Canon"}}}
    f = t.frames.iloc[0]
    assert f.frame_id == fid.replace("-", "") and f.media_id == m.media_id
    assert pd.isna(f.extra)  # mediaId agrees with the parent (after normalisation)
    assert f.caption_count == 0 and f.object_count == 0
    assert_schema(t)


def test_pdf_record():
    rec = {
        "id": "pdf1",
        "type": "pdf",
        "datasetId": "c1",
        "path": "c1.pdf1",
        "frames": [
            {
                "id": f"p{i}",
                "pageNumber": i + 1,
                "text": f"page {i}",
                "thumbnailBlob": f"https://b/t{i}.jpg",
                "timestamp": None,
                "endTimestamp": "2.5" if i else 1,
                "metadata": {"ocr": True},
            }
            for i in range(3)
        ],
    }
    t = to_tables([rec])
    assert t.frames.page_number.tolist() == [1, 2, 3]
    assert t.frames.text.tolist() == ["page 0", "page 1", "page 2"]
    assert t.frames.end_timestamp.tolist() == [1.0, 2.5, 2.5]
    assert t.frames.timestamp.isna().all()
    assert json.loads(t.frames.extra.iloc[0]) == {"metadata": {"ocr": True}}
    assert t.media.folder_path.iloc[0] == "c1"
    assert t.frames.dataset_id.tolist() == ["c1"] * 3
    assert_schema(t)


def test_video_with_string_timestamps_copied_to_children():
    rec = _rec()
    f0 = copy.deepcopy(rec["frames"][0])
    f1 = copy.deepcopy(f0)
    f1["id"] = "frame-two"
    f0["timestamp"], f1["timestamp"] = "0", "1.5"
    rec["frames"] = [f0, f1]
    rec["type"] = "video"
    t = to_tables([rec])
    assert t.frames.timestamp.tolist() == [0.0, 1.5]
    assert t.frames.frame_index.tolist() == [0, 1]
    ts = t.objects.groupby("frame_id").timestamp.first()
    assert ts["frame-two"] == 1.5
    assert set(t.captions.timestamp) == {0.0, 1.5}


def test_mixed_numbers_and_numeric_strings():
    rec = _rec(width="320", height=240.0, sizeBytes=None, duration="12.5")
    rec["frames"][0]["timestamp"] = 3
    t = to_tables([rec, _rec(id="other")])
    assert t.media.width.tolist() == [320, 320] and t.media.height.tolist() == [240, 240]
    assert t.media.duration.iloc[0] == 12.5
    assert t.frames.timestamp.iloc[0] == 3.0
    assert_schema(t)


def test_dates_variants():
    rec = _rec(createdAt="2026-01-01T00:00:00Z", updatedAt="2026-01-01T01:00:00.123456+01:00")
    t = to_tables([rec, _rec(id="b", createdAt="2026-01-02T03:04:05")])
    assert t.media.created_at.tolist() == [
        pd.Timestamp("2026-01-01T00:00:00Z"),
        pd.Timestamp("2026-01-02T03:04:05Z"),  # naive is read as UTC
    ]
    assert t.media.updated_at.iloc[0] == pd.Timestamp("2026-01-01T00:00:00.123456Z")


def test_dataset_metadata_moderation_tags_score_extra():
    rec = _rec(_score=0.75, rank=3, folderItemCount=2, datasetId=None)
    rec["dataset"]["icon"] = "🌸"
    rec["metadata"]["description"] = "a photo"
    rec["metadata"]["moderation"]["reviewer"] = "bot"
    rec["metadata"]["moderation"]["categories"] = ["violence"]
    rec["metadata"]["tags"] = {"color": ["red", "blue"], "split": "train", "empty": []}
    t = to_tables([rec])
    m = t.media.iloc[0]
    assert m.score == 0.75 and m.dataset_id == "synthetic"
    assert m.moderation_status == "approved" and list(m.moderation_categories) == ["violence"]
    assert json.loads(m.extra) == {
        "rank": 3,
        "folderItemCount": 2,
        "dataset": {"icon": "🌸"},
        "metadata": {
            "description": "a photo",
            "moderation": {"reviewer": "bot"},
            "tags": {"empty": []},
        },
    }
    assert t.tags[["key", "value"]].values.tolist() == [
        ["color", "red"],
        ["color", "blue"],
        ["split", "train"],
    ]
    wide = tags_wide(t.tags)
    assert wide.loc[m.media_id, "color"] == ["red", "blue"]
    assert tags_wide(t.tags, sep="|").loc[m.media_id, "color"] == "red|blue"
    assert tags_wide(MediaTables.empty().tags).empty


def test_disagreeing_parent_ids_are_kept_in_extra():
    rec = _rec()
    rec["frames"][0]["mediaId"] = "someone-else"
    rec["frames"][0]["captions"][0]["frameId"] = "elsewhere"
    rec["dataset"]["id"] = "other-dataset"
    t = to_tables([rec])
    assert json.loads(t.frames.extra.iloc[0]) == {"mediaId": "someone-else"}
    assert json.loads(t.captions.extra.iloc[0]) == {"frameId": "elsewhere"}
    assert json.loads(t.media.extra.iloc[0]) == {"dataset": {"id": "other-dataset"}}


def test_polygon_variants_and_null_boxes():
    rec = _rec()
    objs = rec["frames"][0]["objects"]
    objs[0]["polygon"] = [{"x": 5, "y": 1}, {"x": 1, "y": 9}, {"x": 3, "y": 4}]  # 3 points, ints
    objs.append({"id": "nopoly", "label": "x"})
    objs.append({"id": "emptypoly", "polygon": []})
    t = to_tables([rec])
    o = t.objects.set_index("object_id")
    first = o.iloc[0]
    assert (first.bbox_x, first.bbox_y, first.bbox_w, first.bbox_h) == (1.0, 1.0, 4.0, 8.0)
    assert o.loc[["nopoly", "emptypoly"], ["bbox_x", "bbox_w"]].isna().all().all()
    assert o.object_index.tolist()[-2:] == [len(objs) - 2, len(objs) - 1]


# --- malformed records -----------------------------------------------------------------------


def _bad(kind: str) -> tuple[dict, str]:
    rec = _rec(id="bad-one")
    rec["frames"] = [copy.deepcopy(rec["frames"][0]) for _ in range(3)]
    for i, f in enumerate(rec["frames"]):
        f["id"] = f"fr{i}"
    if kind == "width":
        rec["frames"][2]["width"] = "wide"
        return rec, "frames[2].width"
    if kind == "media_width":
        rec["width"] = [1]
        return rec, "width"
    if kind == "frames_not_list":
        rec["frames"] = {"0": {}}
        return rec, "frames"
    if kind == "frame_not_dict":
        rec["frames"][1] = "frame"
        return rec, "frames[1]"
    if kind == "metadata":
        rec["metadata"] = ["tags"]
        return rec, "metadata"
    if kind == "timestamp":
        rec["frames"][1]["timestamp"] = "1.5s"
        return rec, "frames[1].timestamp"
    if kind == "date":
        rec["frames"][0]["captions"][0]["createdAt"] = "yesterday"
        return rec, "frames[0].captions[0].createdAt"
    if kind == "object":
        rec["frames"][2]["objects"][0] = ["x"]
        return rec, "frames[2].objects[0]"
    if kind == "polygon":
        rec["frames"][2]["objects"][0]["polygon"] = [[1, 2], [3, 4]]
        return rec, "frames[2].objects[0].polygon"
    if kind == "tag":
        rec["metadata"]["tags"]["color"] = {"a": 1}
        return rec, "metadata.tags.color"
    if kind == "child_id":
        del rec["frames"][0]["objects"][0]["id"]
        return rec, "frames[0].objects[0].id"
    if kind == "fractional_int":
        rec["frames"][1]["height"] = 1.5
        return rec, "frames[1].height"
    raise AssertionError(kind)


BAD_KINDS = [
    "width",
    "media_width",
    "frames_not_list",
    "frame_not_dict",
    "metadata",
    "timestamp",
    "date",
    "object",
    "polygon",
    "tag",
    "child_id",
    "fractional_int",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_malformed_raises_naming_media_and_field(kind):
    rec, field = _bad(kind)
    with pytest.raises(SchemaError) as info:
        to_tables([_rec(id="good"), rec])
    assert info.value.media_id == "bad-one"
    assert info.value.field == field
    assert "bad-one" in str(info.value) and field in str(info.value)


def test_missing_id_and_non_dict_record():
    with pytest.raises(SchemaError) as info:
        to_tables([{"name": "x"}])
    assert info.value.field == "id" and info.value.media_id is None
    with pytest.raises(SchemaError):
        to_tables([["not", "a", "record"]])


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_skip_drops_whole_record_and_counts(kind):
    rec, field = _bad(kind)
    good = [_rec(id="good"), _rec(id="good2")]
    report = FlattenReport()
    with pytest.warns(SkippedRecordWarning, match="bad-one"):
        t = to_tables([good[0], rec, good[1]], errors="skip", report=report)
    assert t.media.media_id.tolist() == ["good", "good2"]
    assert set(t.frames.media_id) == {"good", "good2"}
    assert report.skipped_count == 1 and report.skipped[0].field == field
    assert_schema(t)


def test_skip_many_bad_records():
    recs = [_bad(k)[0] for k in BAD_KINDS] + [_rec(id="ok")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = FlattenReport()
        t = to_tables(recs, on_error="skip", report=report)
    assert t.media.media_id.tolist() == ["ok"]
    assert report.skipped_count == len(BAD_KINDS) == len(caught)


def test_bad_errors_argument():
    with pytest.raises(ValueError):
        to_tables([], errors="ignore")


# --- MediaTables API -------------------------------------------------------------------------


def test_summary_repr_and_html():
    t = to_tables(iter_synthetic(10))
    s = t.summary(top=3)
    assert s.counts["media"] == 10 and s.media_types == {"image": 9, "video": 1}
    assert len(s.top_labels) == 3 and "rows:" in str(s) and "top labels:" in str(s)
    assert pd.Series(s.counts).sum() == sum(len(df) for _, df in t.items())
    assert repr(t).startswith("MediaTables(media=10, frames=60")
    rec = _rec(name="<script>alert(1)</script>")
    page = to_tables([rec])._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "objects" in page and "<table" in page
    assert "media" in str(MediaTables.empty().summary())


def test_public_exports():
    assert cvf.to_tables is to_tables and cvf.tags_wide is tags_wide
    assert cvf.MediaTables is MediaTables


# --- property test ---------------------------------------------------------------------------

_hex_id = st.uuids().map(lambda u: u.hex)
_ids = st.one_of(
    _hex_id,
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.text("abcdefgh_-0123", min_size=1, max_size=8),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=5,
)
_unknown = st.dictionaries(st.sampled_from(["zz", "rank", "exif", "_x", "folderItemCount"]), _json)
_date = st.none() | st.sampled_from(
    ["2026-01-01T00:00:00.000Z", "2025-12-31T23:59:59+05:30", "2026-02-03T04:05:06.789"]
)


def _opt(**fields):
    """A dict strategy where every field may be absent or null."""
    return st.fixed_dictionaries({}, optional={k: st.none() | v for k, v in fields.items()})


_point = st.fixed_dictionaries(
    {"x": st.floats(0, 500) | st.integers(0, 500), "y": st.floats(0, 500)}
)
_caption = st.tuples(
    st.fixed_dictionaries({"id": _ids}),
    _opt(text=st.text(max_size=5), status=st.just("active"), createdAt=_date, frameId=_ids),
    _unknown,
).map(lambda t: {**t[2], **t[1], **t[0]})
_object = st.tuples(
    st.fixed_dictionaries({"id": _ids}),
    _opt(
        type=st.sampled_from(["object", "face"]),
        label=st.sampled_from(["dog", "cat"]),
        blob=st.sampled_from(["https://b/c.jpg", "x"]),
        status=st.just("active"),
        polygon=st.lists(_point, max_size=5),
    ),
    _unknown,
).map(lambda t: {**t[2], **t[1], **t[0]})
_frame = st.tuples(
    st.fixed_dictionaries({"id": _ids}),
    _opt(
        timestamp=st.sampled_from(["0", "1.5", 2, 0.25]),
        blob=st.text(max_size=3),
        width=st.integers(1, 4000),
        height=st.integers(1, 4000),
        status=st.just("active"),
        createdAt=_date,
        pageNumber=st.integers(1, 9),
        endTimestamp=st.sampled_from(["3", 4.5]),
        thumbnailBlob=st.text(max_size=3),
        text=st.text(max_size=5),
        captions=st.lists(_caption, max_size=3),
        objects=st.lists(_object, max_size=3),
        mediaId=_ids,
    ),
    _unknown,
).map(lambda t: {**t[2], **t[1], **t[0]})
_metadata = st.tuples(
    _opt(
        tags=st.dictionaries(
            st.text(min_size=1, max_size=4),
            st.lists(st.text(max_size=4), max_size=3) | st.text(max_size=4),
            max_size=3,
        ),
        moderation=st.tuples(
            _opt(
                status=st.just("approved"),
                categories=st.lists(st.text(max_size=3), max_size=2),
                moderatedAt=_date,
            ),
            st.dictionaries(st.just("reviewer"), st.text(max_size=3)),
        ).map(lambda t: {**t[1], **t[0]}),
    ),
    st.dictionaries(st.sampled_from(["description", "custom"]), _json),
).map(lambda t: {**t[1], **t[0]})
_media = st.tuples(
    st.fixed_dictionaries({"id": _ids}),
    _opt(
        name=st.text(max_size=5),
        type=st.sampled_from(["image", "video", "pdf"]),
        status=st.just("active"),
        blob=st.text(max_size=3),
        path=st.sampled_from(["c.f.m", "c.m", "m"]),
        datasetId=_ids,
        entityId=_ids,
        width=st.integers(0, 9999),
        height=st.integers(0, 9999),
        duration=st.floats(0, 100),
        sizeBytes=st.integers(0, 2**40),
        createdAt=_date,
        updatedAt=_date,
        createdById=_ids,
        updatedById=_ids,
        sourceMediaId=_ids,
        versionNumber=st.integers(1, 5),
        _score=st.floats(0, 1),
        metadata=_metadata,
        frames=st.lists(_frame, max_size=3),
        dataset=st.tuples(
            _opt(id=_ids, name=st.text(max_size=4), organizationId=_ids),
            st.dictionaries(st.just("icon"), st.text(max_size=2)),
        ).map(lambda t: {**t[1], **t[0]}),
    ),
    _unknown,
).map(lambda t: {**t[2], **t[1], **t[0]})

_MEDIA_COLS = {
    "id": "media_id", "name": "name", "type": "type", "status": "status", "blob": "blob",
    "path": "path", "entityId": "entity_id", "width": "width", "height": "height",
    "duration": "duration", "sizeBytes": "size_bytes", "createdAt": "created_at",
    "updatedAt": "updated_at", "createdById": "created_by_id", "updatedById": "updated_by_id",
    "sourceMediaId": "source_media_id", "versionNumber": "version_number", "_score": "score",
    "datasetId": "dataset_id",
}  # fmt: skip
_FRAME_COLS = {
    "id": "frame_id", "timestamp": "timestamp", "blob": "blob", "width": "width",
    "height": "height", "status": "status", "createdAt": "created_at",
    "pageNumber": "page_number", "endTimestamp": "end_timestamp",
    "thumbnailBlob": "thumbnail_blob", "text": "text",
}  # fmt: skip
_CAPTION_COLS = {"id": "caption_id", "text": "text", "status": "status", "createdAt": "created_at"}
_OBJECT_COLS = {
    "id": "object_id", "type": "type", "label": "label", "status": "status", "blob": "blob",
    "polygon": "polygon",
}  # fmt: skip


def _reconstructed(row: pd.Series, cols: dict[str, str]) -> set[str]:
    keys = {api for api, col in cols.items() if not _isnull(row[col])}
    if not _isnull(row["extra"]):
        keys |= set(json.loads(row["extra"]))
    return keys


def _isnull(value) -> bool:
    return (
        value is None
        or (
            not isinstance(value, (list, tuple))
            and not hasattr(value, "__len__")
            and pd.isna(value)
        )
        or value is pd.NA
    )


def _given(d: dict, consumed: set[str]) -> set[str]:
    return {k for k, v in d.items() if v is not None and k not in consumed}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_media, max_size=4))
def test_property_rows_ancestors_nothing_lost(records):
    t = to_tables(records)
    frames = [f for r in records for f in (r.get("frames") or [])]
    captions = [c for f in frames for c in (f.get("captions") or [])]
    objects = [o for f in frames for o in (f.get("objects") or [])]
    assert (len(t.media), len(t.frames), len(t.captions), len(t.objects)) == (
        len(records), len(frames), len(captions), len(objects),
    )  # fmt: skip
    tags = [
        v
        for r in records
        for vals in ((r.get("metadata") or {}).get("tags") or {}).values()
        for v in ([vals] if isinstance(vals, str) else vals)
    ]
    assert len(t.tags) == len(tags)
    assert_schema(t)
    # ancestors exist (row-aligned: ids may repeat, so compare positions too)
    assert t.media.media_id.tolist() == [normalize_id(r["id"]) for r in records]
    assert t.frames.media_id.isin(t.media.media_id).all()
    assert t.captions.frame_id.isin(t.frames.frame_id).all()
    assert t.objects.frame_id.isin(t.frames.frame_id).all()
    assert t.captions.media_id.isin(t.media.media_id).all()
    assert t.objects.media_id.isin(t.media.media_id).all()
    assert t.frames.frame_id.tolist() == [normalize_id(f["id"]) for f in frames]
    # nothing lost: every non-null given key is a non-null column or a key of extra
    for rec, (_, row) in zip(records, t.media.iterrows(), strict=True):
        given_keys = _given(rec, {"frames", "dataset", "metadata"})
        got = _reconstructed(row, _MEDIA_COLS)
        if rec.get("datasetId") is None:
            got.discard("datasetId")
        assert given_keys <= got
        extra = json.loads(row["extra"]) if not _isnull(row["extra"]) else {}
        ds = rec.get("dataset") or {}
        if ds.get("name") is not None:
            assert row["dataset_name"] is not pd.NA
        if "icon" in ds:
            assert extra["dataset"]["icon"] == ds["icon"]
        meta = rec.get("metadata") or {}
        for key in {"description", "custom"} & set(meta):
            assert extra["metadata"][key] == meta[key]
        if "reviewer" in (meta.get("moderation") or {}):
            assert extra["metadata"]["moderation"]["reviewer"] == meta["moderation"]["reviewer"]
    for f, (_, row) in zip(frames, t.frames.iterrows(), strict=True):
        assert _given(f, {"captions", "objects", "mediaId"}) <= _reconstructed(row, _FRAME_COLS)
    for c, (_, row) in zip(captions, t.captions.iterrows(), strict=True):
        assert _given(c, {"frameId"}) <= _reconstructed(row, _CAPTION_COLS)
    for o, (_, row) in zip(objects, t.objects.iterrows(), strict=True):
        assert _given(o, set()) <= _reconstructed(row, _OBJECT_COLS)
        has_box = bool(o.get("polygon"))
        assert pd.notna(row["bbox_x"]) == has_box


# --- golden: the sample collection -----------------------------------------------------------


def _sample_records() -> list[dict]:
    """Folder rows then media records, as the local API's store serves them."""
    doc = json.loads((DATA / "collection.json").read_text(encoding="utf-8"))
    return doc.get("folders", []) + doc["media"]


@pytest.mark.skipif(not (DATA / "collection.json").exists(), reason="no sample collection")
def test_golden_sample_collection():
    records = _sample_records()
    report = FlattenReport()
    t = to_tables(records, report=report)
    assert_schema(t)
    assert report.folders == 3 and report.skipped_count == 0
    counts = {grain: len(frame) for grain, frame in t.items()}
    assert counts == {"media": 15, "frames": 19, "captions": 15, "objects": 20, "tags": 32}
    collection = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"
    m = t.media.set_index("media_id")
    assert m.index.is_unique and len(m) == 15
    assert m.type.value_counts().to_dict() == {"image": 13, "video": 1, "pdf": 1}
    # legacy record: hyphenated ids normalised, no path/dataset, exif kept in extra
    legacy = m.loc["ad53d81160cb5e94bb28ae9d9756f128"]
    assert pd.isna(legacy.dataset_id) and pd.isna(legacy.folder_path)
    assert json.loads(legacy.extra) == {"exif": {"tags": {}}}
    assert legacy.entity_id is not pd.NA and "-" not in legacy.entity_id
    assert (m.drop(index="ad53d81160cb5e94bb28ae9d9756f128").dataset_id == collection).all()
    launches = f"{collection}.58fb2c4962835d6b9689fe622e1ee502.38037a0bda165276af335250dff09382"
    video = m.loc["6a19c6bbdaa25804b764f03c65cb4dba"]
    assert video.folder_path == launches and video.frame_count == 5
    blocked = m.loc["7b28b2bab6bf5cf2aa0a59ff60563656"]
    assert pd.isna(blocked.blob) and blocked.frame_count == 0
    assert blocked.moderation_status == "rejected"
    assert json.loads(m.loc["e59ba0ec9aed5457a4a62395366a9773"].extra) == {"rating": 4}
    # frames: video timestamps from strings, pdf pages
    f = t.frames
    vf = f[f.media_id == "6a19c6bbdaa25804b764f03c65cb4dba"]
    assert vf.timestamp.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert vf.frame_index.tolist() == [0, 1, 2, 3, 4]
    assert vf.end_timestamp.tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]
    pages = f[f.media_id == "12b8cf338c7d550e9bf692e7d2179481"]
    assert pages.page_number.tolist() == [1, 2] and pages.text.notna().all()
    assert pages.thumbnail_blob.notna().all()
    assert f.frame_id.is_unique and set(f.media_id) <= set(m.index)
    assert f.groupby("media_id").size().to_dict() == {
        k: v for k, v in m.frame_count.to_dict().items() if v
    }
    # ancestors of captions and objects agree with their frame
    frame_media = f.set_index("frame_id").media_id
    for child in (t.captions, t.objects):
        assert child.frame_id.isin(f.frame_id).all()
        assert (child.media_id.to_numpy() == frame_media.loc[child.frame_id].to_numpy()).all()
    assert t.captions.caption_id.is_unique and t.objects.object_id.is_unique
    o = t.objects.set_index("object_id")
    assert o.label.value_counts().head(2).to_dict() == {"rocket": 5, "person": 3}
    assert o.blob.isna().sum() == 3  # flag and tower ("" blobs), spoon (no blob)
    assert o.bbox_x.isna().sum() == 1  # spoon: no polygon
    assert (o.frame_width.notna() & o.frame_height.notna()).all()
    assert json.loads(o.extra.dropna().iloc[0]) == {"confidence": 0.97}
    assert t.captions.extra.dropna().map(json.loads).tolist() == [{"model": "caption-v2"}]
    assert t.tags.media_id.isin(m.index).all()


def test_golden_through_local_api_store():
    store = pytest.importorskip("coreviz_frames.local_api.store")
    if not (DATA / "collection.json").exists():
        pytest.skip("no sample collection")
    rows = [record for _, record in store.FileCollection(DATA).iter_records()]
    t = to_tables(rows)
    assert (len(t.media), len(t.frames), len(t.objects)) == (15, 19, 20)


def test_polygon_point_fields_beyond_x_and_y_are_kept_in_extra():
    rich = [{"x": 1.0, "y": 2.0}, {"x": 4.0, "y": 6.0, "visible": False}]
    record = {
        "id": "m1",
        "frames": [
            {
                "id": "f1",
                "objects": [
                    {"id": "o1", "polygon": rich, "score": 0.9},
                    {"id": "o2", "polygon": [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 5.0}]},
                ],
            }
        ],
    }
    objects = to_tables([record]).objects
    assert json.loads(objects.extra[0]) == {"score": 0.9, "polygon": rich}
    assert pd.isna(objects.extra[1])
    assert objects.polygon[0] == [{"x": 1.0, "y": 2.0}, {"x": 4.0, "y": 6.0}]
    assert (objects.bbox_w[0], objects.bbox_h[0]) == (3.0, 4.0)


# --- issue 10.8: no silent value corruption --------------------------------------------------
#
# pyarrow converts permissively: a null polygon point becomes (0, 0), a boolean becomes 1.0, a
# string given for a list is split into characters, and a year-0 date is accepted but cannot be
# printed. Each of these is a SchemaError naming the media id and the field.

_OBJ = "frames[0].objects[0]."


def _mutated(path: tuple, value) -> dict:
    """A synthetic record with ``value`` set at ``path`` (keys and list positions)."""
    rec = _rec(id="bad-one")
    node = rec
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return rec


_OBJECT_PATH = ("frames", 0, "objects", 0)
_CORRUPTING = {
    "null point": ((*_OBJECT_PATH, "polygon", 1), None, _OBJ + "polygon[1]"),
    "null x": ((*_OBJECT_PATH, "polygon", 2, "x"), None, _OBJ + "polygon[2].x"),
    "bool x": ((*_OBJECT_PATH, "polygon", 1, "x"), True, _OBJ + "polygon[1].x"),
    "bool y false": ((*_OBJECT_PATH, "polygon", 3, "y"), False, _OBJ + "polygon[3].y"),
    "nan y": ((*_OBJECT_PATH, "polygon", 0, "y"), float("nan"), _OBJ + "polygon[0].y"),
    "categories string": (
        ("metadata", "moderation", "categories"),
        "violence",
        "metadata.moderation.categories",
    ),
    "polygon string": ((*_OBJECT_PATH, "polygon"), "1,2,3,4", _OBJ + "polygon"),
    "year 0": (("createdAt",), "0000-01-01T00:00:00Z", "createdAt"),
    "caption year 0": (
        ("frames", 0, "captions", 0, "createdAt"),
        "0000-06-01T12:00:00.000Z",
        "frames[0].captions[0].createdAt",
    ),
}


@pytest.mark.parametrize("case", sorted(_CORRUPTING))
def test_corrupting_values_are_schema_errors(case):
    path, value, field = _CORRUPTING[case]
    rec = _mutated(path, value)
    with pytest.raises(SchemaError) as info:
        to_tables([_rec(id="good"), rec])
    assert (info.value.media_id, info.value.field) == ("bad-one", field)
    assert "bad-one" in str(info.value) and field in str(info.value)
    report = FlattenReport()
    with pytest.warns(SkippedRecordWarning, match="bad-one"):
        t = to_tables([_rec(id="good"), rec], on_error="skip", report=report)
    assert t.media.media_id.tolist() == ["good"]
    assert [e.field for e in report.skipped] == [field]
    assert_schema(t)


def test_null_point_no_longer_moves_the_box_to_the_origin():
    rec = _rec()
    rec["frames"][0]["objects"][0]["polygon"] = [{"x": 50, "y": 60}, None, {"x": 70, "y": 90}]
    with pytest.raises(SchemaError, match=r"polygon\[1\].*point is null"):
        to_tables([rec])


def test_points_at_zero_and_one_are_still_numbers():
    """The boolean check looks closer at coordinates 0 and 1: real ones stay valid."""
    rec = _rec()
    rec["frames"][0]["objects"][0]["polygon"] = [
        {"x": 0, "y": 1.0},
        {"x": 1, "y": 0.0},
        {"x": "1", "y": 0},  # a numeric string is a tolerated spelling
    ]
    o = to_tables([rec]).objects.iloc[0]
    assert (o.bbox_x, o.bbox_y, o.bbox_w, o.bbox_h) == (0.0, 0.0, 1.0, 1.0)


def _numeric_paths() -> list[tuple[tuple, str]]:
    """Every numeric field of every grain: (path in the synthetic record, reported field)."""
    media = [("width",), ("height",), ("duration",), ("sizeBytes",), ("versionNumber",)]
    media.append(("_score",))
    frame = ["timestamp", "width", "height", "pageNumber", "endTimestamp"]
    out = [(p, p[0]) for p in media]
    out += [(("frames", 0, k), f"frames[0].{k}") for k in frame]
    out += [((*_OBJECT_PATH, "polygon", 2, "y"), _OBJ + "polygon[2].y")]
    return out


@settings(max_examples=40, deadline=None)
@given(
    target=st.sampled_from(_numeric_paths()),
    value=st.booleans(),
    mixed=st.booleans(),
)
def test_boolean_is_never_a_number(target, value, mixed):
    """A boolean in any numeric field, alone or beside real numbers, is a SchemaError."""
    path, field = target
    records = [_mutated(path, value)] + ([_rec(id="good")] if mixed else [])
    with pytest.raises(SchemaError) as info:
        to_tables(records)
    assert (info.value.media_id, info.value.field) == ("bad-one", field)


def _date_paths() -> list[tuple[tuple, str]]:
    """Every timestamp column's API field, in the synthetic record."""
    return [
        (("createdAt",), "createdAt"),
        (("updatedAt",), "updatedAt"),
        (("metadata", "moderation", "moderatedAt"), "metadata.moderation.moderatedAt"),
        (("frames", 0, "createdAt"), "frames[0].createdAt"),
        (("frames", 0, "captions", 0, "createdAt"), "frames[0].captions[0].createdAt"),
    ]


_any_date = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:00:00{}".format,
    st.integers(0, 10_000),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.sampled_from(["Z", "+05:30", ".5Z", ""]),
)


def _utc_year_in_range(date: str) -> bool:
    """Whether the UTC instant of ``date`` (naive = UTC) falls in years 1 to 9999."""
    from datetime import datetime, timedelta

    year_text, rest = date.split("-", 1)
    year, rest = int(year_text), "-" + rest
    if not 1 <= year <= 9999:
        return False
    local = datetime.fromisoformat(f"2000{rest[:15]}").replace(year=year)
    offset = timedelta(hours=5, minutes=30) if rest.endswith("+05:30") else timedelta(0)
    try:
        local - offset
    except OverflowError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(target=st.sampled_from(_date_paths()), date=_any_date, mixed=st.booleans())
def test_any_date_is_printable_or_a_schema_error(target, date, mixed):
    """Years 1 to 9999 load and print; any other year is a SchemaError naming the field.

    ``mixed`` adds a record with another date spelling, which takes the slower parser.
    """
    path, field = target
    records = [_mutated(path, date)]
    if mixed:
        records.append(_rec(id="other", createdAt="2026-01-02 03:04:05"))
    if _utc_year_in_range(date):
        t = to_tables(records)
        for _, frame in t.items():
            str(frame), repr(frame), frame.to_string()
    else:
        with pytest.raises(SchemaError) as info:
            to_tables(records)
        assert (info.value.media_id, info.value.field) == ("bad-one", field)


_LIST_PATHS = [
    (("metadata", "moderation", "categories"), "metadata.moderation.categories"),
    (("frames",), "frames"),
    (("frames", 0, "captions"), "frames[0].captions"),
    (("frames", 0, "objects"), "frames[0].objects"),
    ((*_OBJECT_PATH, "polygon"), _OBJ + "polygon"),
]


@settings(max_examples=30, deadline=None)
@given(target=st.sampled_from(_LIST_PATHS), text=st.text(min_size=1, max_size=6))
def test_list_field_given_as_a_string_is_a_schema_error(target, text):
    """A string where a list is expected is never split into characters."""
    path, field = target
    with pytest.raises(SchemaError) as info:
        to_tables([_rec(id="good"), _mutated(path, text)])
    assert info.value.media_id == "bad-one"
    assert info.value.field == field


# --- issue 10.9: lone surrogates -------------------------------------------------------------
#
# Decision: text is kept, each lone surrogate replaced by U+FFFD (as a JavaScript TextEncoder
# does): the record is not lost, and every value is valid UTF-8 for Arrow and Parquet.

_TEXT_PATHS = [  # (path in the record, grain, column, key inside extra's JSON)
    (("name",), "media", "name", None),
    (("path",), "media", "path", None),
    (("id",), "media", "media_id", None),
    (("rank",), "media", "extra", "rank"),  # an unknown field: the JSON of extra
    (("dataset", "name"), "media", "dataset_name", None),
    (("metadata", "moderation", "categories"), "media", "moderation_categories", None),
    (("frames", 0, "text"), "frames", "text", None),
    (("frames", 0, "captions", 0, "text"), "captions", "text", None),
    ((*_OBJECT_PATH, "label"), "objects", "label", None),
    ((*_OBJECT_PATH, "confidence"), "objects", "extra", "confidence"),
]
_surrogate_text = st.tuples(
    st.text(max_size=3),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=3),
).map("".join)


def _no_surrogates(tables: MediaTables) -> None:
    """Every grain converts to Parquet (its text is valid UTF-8)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    for _, frame in tables.items():
        pq.write_table(pa.Table.from_pandas(frame), io.BytesIO())


@settings(max_examples=40, deadline=None)
@given(
    target=st.sampled_from(_TEXT_PATHS),
    text=_surrogate_text,
    mode=st.sampled_from(["raise", "skip"]),
)
def test_lone_surrogate_in_any_text_field_is_replaced(target, text, mode):
    path, grain, column, extra_key = target
    value = [text] if column == "moderation_categories" else text
    rec = _mutated(path, value)
    report = FlattenReport()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedRecordWarning)
        t = to_tables([rec, _rec(id="good")], on_error=mode, report=report)
    assert len(t.media) == 2 and report.skipped_count == 0
    _no_surrogates(t)
    cleaned = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert "\ufffd" in cleaned
    got = getattr(t, grain)[column].iloc[0]
    if extra_key is not None:
        got = json.loads(got)[extra_key]
    elif column == "moderation_categories":
        got = next(iter(got))
    assert got == cleaned


def test_lone_surrogate_in_keys_and_tags():
    rec = _rec(id="m1")
    rec["odd\ud800key"] = {"inner\udfff": "v\udc00"}
    rec["metadata"]["tags"] = {"col\ud800or": ["r\udc00ed", "blue"]}
    t = to_tables([rec])
    assert json.loads(t.media.extra.iloc[0]) == {"odd\ufffdkey": {"inner\ufffd": "v\ufffd"}}
    assert t.tags[["key", "value"]].values.tolist() == [
        ["col\ufffdor", "r\ufffded"],
        ["col\ufffdor", "blue"],
    ]
    _no_surrogates(t)


def test_surrogate_pair_is_one_character_not_replaced():
    rec = _rec(name="\ud83d\ude00.jpg")  # a pair (as two code points): one emoji
    assert to_tables([rec]).media.name.iloc[0] == "😀.jpg"


def test_schema_error_of_a_record_with_a_surrogate_id_is_printable():
    rec = _rec(id="bad\ud800", width="wide")
    with pytest.raises(SchemaError) as info:
        to_tables([rec])
    assert info.value.media_id == "bad\ufffd"
    str(info.value).encode("utf-8")


def test_export_with_surrogate_and_malformed_records_succeeds(tmp_path):
    """One hostile record no longer makes a collection unexportable: kept, or listed."""
    records = [
        _rec(id="good"),
        _rec(id="sur", name="a\ud800b"),
        _mutated((*_OBJECT_PATH, "polygon", 1), None) | {"id": "bad-point"},
        _rec(id="last"),
    ]
    report = cvf.export_parquet(records, tmp_path / "out", batch_size=4, progress=False)
    assert report.media_exported == 3
    assert [f["id"] for f in report.failed] == ["bad-point"]
    assert "polygon[1]" in report.failed[0]["reason"]
    back = cvf.read_parquet(tmp_path / "out")
    assert back.media.set_index("media_id").name["sur"] == "a\ufffdb"
    assert sorted(back.media.media_id) == ["good", "last", "sur"]


def _paths(node, prefix=()) -> list[tuple]:
    """Every key / list position inside a record, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    out = []
    for key, value in items:
        out.append((*prefix, key))
        if isinstance(value, (dict, list)):
            out += _paths(value, (*prefix, key))
    return out


_SAMPLE_PATHS = _paths(_rec())
_hostile = st.sampled_from(
    [None, True, False, 0, 1, -1, 1.5, float("nan"), float("inf"), 2**70, "", "x", "12",
     "0000-01-01T00:00:00Z", "a\ud800", [], [None], [True], ["a\udfff"], {}, {"x": None},
     {"x": True, "y": 1}, [[1, 2]], [{"x": None, "y": None}]]
)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(_SAMPLE_PATHS), _hostile), min_size=1, max_size=3))
def test_hostile_values_load_cleanly_or_are_schema_errors(edits):
    """Any value anywhere: tables that print and write to Parquet, or a SchemaError naming
    the media; in skip mode the record is listed and the call never raises."""
    rec = _rec(id="bad-one")
    for path, value in edits:
        node = rec
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = copy.deepcopy(value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced a parent
    try:
        t = to_tables([copy.deepcopy(rec), _rec(id="good")])
    except SchemaError as exc:
        assert exc.media_id != "good" and exc.field  # the hostile record, by its id
        raised = True
    else:
        raised = False
        for _, frame in t.items():
            frame.to_string()
        _no_surrogates(t)
    report = FlattenReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordWarning)
        skipped = to_tables([rec, _rec(id="good")], on_error="skip", report=report)
    assert report.skipped_count == int(raised)
    assert "good" in skipped.media.media_id.tolist()
    for _, frame in skipped.items():
        frame.to_string()
    _no_surrogates(skipped)


# --- issue 11.7: on_error= is the spelling; errors= still works, deprecated -------------------


def test_on_error_skip_and_raise():
    rec, field = _bad("width")
    with pytest.raises(SchemaError):
        to_tables([rec], on_error="raise")
    report = FlattenReport()
    with pytest.warns(SkippedRecordWarning):
        t = to_tables([rec, _rec(id="good")], on_error="skip", report=report)
    assert t.media.media_id.tolist() == ["good"] and report.skipped[0].field == field


def test_errors_keyword_is_deprecated_but_works():
    rec, _ = _bad("width")
    with (
        pytest.warns(DeprecationWarning, match="on_error") as caught,
        pytest.warns(SkippedRecordWarning),
    ):
        t = to_tables([rec, _rec(id="good")], errors="skip")
    assert t.media.media_id.tolist() == ["good"]
    assert any(w.filename == __file__ for w in caught if w.category is DeprecationWarning)
    with pytest.warns(DeprecationWarning), pytest.raises(SchemaError):
        to_tables([rec], errors="raise")
    with pytest.warns(DeprecationWarning), pytest.warns(SkippedRecordWarning):
        arrow, report = flatten([rec], errors="skip")
    assert arrow["media"].num_rows == 0 and report.skipped_count == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"on_error": "record"}, {"on_error": "ignore"}, {"on_error": "skip", "errors": "raise"}],
)
def test_bad_on_error_is_a_config_error(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(cvf.ConfigError, match="on_error"):
            to_tables([], **kwargs)


# --- issue 11.5: flattening reads what schema.API_FIELDS declares ------------------------------

_SAMPLE = {
    "id": "abc",
    "str": "text",
    "int": 7,
    "float": 2.5,
    "ts": "2026-01-02T03:04:05Z",
    "strlist": ["a", "b"],
    "polygon": [{"x": 1.0, "y": 2.0}],
}


def _set(record: dict, source: str, value) -> None:
    node = record
    *parents, last = source.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


@pytest.mark.parametrize(
    "grain, api_field",
    [(grain, f) for grain in ("media", "frames", "captions", "objects") for f in API_FIELDS[grain]],
    ids=lambda v: v if isinstance(v, str) else v.column,
)
def test_every_declared_api_field_is_read_into_its_column(grain, api_field):
    """A new API field is one Column in schema.py: flattening reads every declared source."""
    media, frame, caption, obj = {"id": "m"}, {"id": "f"}, {"id": "c"}, {"id": "o"}
    media["frames"], frame["captions"], frame["objects"] = [frame], [caption], [obj]
    target = {"media": media, "frames": frame, "captions": caption, "objects": obj}[grain]
    _set(target, api_field.source, _SAMPLE[api_field.kind])
    t = to_tables([media])
    got = getattr(t, grain)[api_field.column].iloc[0]
    expected = _SAMPLE[api_field.kind]
    if api_field.kind == "ts":
        expected = pd.Timestamp(expected)
    if api_field.kind in ("strlist", "polygon"):
        got = list(got)
    assert got == expected
    assert pd.isna(getattr(t, grain)["extra"].iloc[0])  # consumed, not repeated in extra

"""Hostile numbers and types in search and catalogue answers: never an untyped error, never a
value lost (a value that does not fit its column is null there and kept, raw, in ``extra``),
never more hits than asked for."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from coreviz_frames.api.search import SearchResults
from coreviz_frames.errors import CorevizError, CorevizWarning, SkippedRecordWarning
from coreviz_frames.tables.listings import fit_cell, typed_frame
from tests.helpers import ScriptedServer, fast_client

HUGE = 10**400  # no float holds it
WIDE = 2**70  # no int64 holds it


def _result(i: int, **fields) -> dict:
    return {"id": f"f{i}", "timestamp": "0", "media": {"id": f"m{i}", "name": f"{i}.jpg"}, **fields}


HOSTILE = {
    "/api/search": {
        "results": [
            _result(0, rank=HUGE, rankingMetrics={"textRank": -HUGE, "totalRank": "1e400"}),
            _result(1, rank=0.5, width=WIDE),
            {"id": {"not": "an id"}, "rank": 0.1, "media": {"id": "m2"}},
        ]
    },
    "/api/organization/o1/datasets": [
        {"id": "c1", "name": {"x": 1}, "icon": ["a"], "type": "default", "organizationId": "o1"},
        {"id": "c2", "name": "fine", "icon": HUGE},
    ],
    "/api/auth/organization/list": {"organizations": [{"id": "o1", "name": [1], "slug": "s"}]},
    "/api/dataset/c1/tags": {
        "tags": {"color": [{"x": 1}, ["red", "blue"], {"value": {"deep": 1}}], "n": [WIDE]}
    },
    "/api/dataset/c1/media": {
        "media": [
            {"id": "f1", "type": "folder", "name": "F", "path": "c1.f1", "folderItemCount": WIDE},
            {"id": "f2", "type": "folder", "name": {"n": 1}, "path": 7, "folderItemCount": 1.5},
        ],
        "pagination": {"total": 2, "limit": 100, "offset": 0, "hasMore": False},
    },
}


@pytest.fixture
def hostile():
    srv = ScriptedServer(lambda path, query: (200, {}, HOSTILE.get(path, {"error": "Not found"})))
    try:
        with fast_client(srv.base_url) as client:
            yield client
    finally:
        srv.close()


def _extra(frame: pd.DataFrame, row: int) -> dict:
    return json.loads(frame.extra.iloc[row])


def test_search_numbers_that_no_column_holds_are_null_and_kept(hostile):
    with pytest.warns(SkippedRecordWarning, match="out of the int64 range|expected a string"):
        res = hostile.search("x", organization_id="o1")
    hit = res.hits.iloc[0]
    assert pd.isna(hit["rank"]) and pd.isna(hit["text_rank"]) and pd.isna(hit["total_rank"])
    assert _extra(res.hits, 0) == {
        "rank": HUGE,
        "rankingMetrics": {"textRank": -HUGE, "totalRank": "1e400"},
    }
    assert res.hits["rank"].tolist()[1:] == [0.5, 0.1]
    assert pd.isna(res.hits.frame_id.iloc[2]) and _extra(res.hits, 2) == {"id": {"not": "an id"}}
    # a frame field out of range or of the wrong type: that media is left out of the
    # tables and listed, never fatal
    assert res.tables.media.media_id.tolist() == ["m0"] and len(res.report.skipped) == 2


def test_collection_and_organization_fields_of_the_wrong_type_are_kept(hostile):
    cols = hostile.collections("o1")
    assert pd.isna(cols.name.iloc[0]) and pd.isna(cols.icon.iloc[0])
    assert _extra(cols, 0) == {"name": {"x": 1}, "icon": ["a"]}
    assert cols.name.iloc[1] == "fine" and cols.icon.iloc[1] == str(HUGE)  # a number as text
    assert pd.isna(cols.extra.iloc[1])
    orgs = hostile.organizations()
    assert pd.isna(orgs.name.iloc[0]) and _extra(orgs, 0) == {"name": [1]}


def test_tag_values_that_are_objects_or_lists_are_kept(hostile):
    tags = hostile.tag_catalogue("c1")
    assert tags.key.tolist() == ["color", "color", "color", "n"]
    assert tags.value.isna().tolist() == [True, True, True, False]
    assert [_extra(tags, i) for i in range(3)] == [
        {"x": 1},
        {"value": ["red", "blue"]},
        {"value": {"deep": 1}},
    ]
    assert tags.value.iloc[3] == str(WIDE)


def test_folder_counts_out_of_range_are_null_and_kept(hostile):
    folders = hostile.folders("c1")
    assert folders.folder_item_count.isna().tolist() == [True, True]
    assert _extra(folders, 0) == {"folderItemCount": WIDE}
    assert _extra(folders, 1) == {"name": {"n": 1}, "folderItemCount": 1.5}
    assert folders.path.tolist() == ["c1.f1", "7"]


def test_search_drops_hits_beyond_the_limit_saying_how_many():
    body = {"results": [_result(i, rank=1.0 / (i + 1)) for i in range(2_000)]}
    srv = ScriptedServer(lambda path, query: (200, {}, body))
    try:
        with fast_client(srv.base_url) as client, warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            res = client.search("x", organization_id="o1", limit=5)
    finally:
        srv.close()
    assert len(res) == 5 and len(res.hits) == 5 and len(res.tables.media) == 5
    assert res.hits.frame_id.tolist() == ["f0", "f1", "f2", "f3", "f4"]
    messages = [str(w.message) for w in seen if issubclass(w.category, CorevizWarning)]
    assert any("1995" in m and "limit" in m for m in messages), messages


_NUMBERS = st.integers(-(2**64), 2**64) | st.sampled_from([HUGE, -HUGE, WIDE, 2**63]) | st.floats()
_JSON = st.recursive(
    st.none() | st.booleans() | _NUMBERS | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_RESULT_KEYS = ("id", "timestamp", "width", "height", "blob", "media", "rank", "rankingMetrics")


@settings(deadline=None)  # no timing threshold: the machine may be busy
@given(
    results=st.lists(st.dictionaries(st.sampled_from(_RESULT_KEYS), _JSON), max_size=4),
    limit=st.integers(min_value=1, max_value=5),
)
def test_any_search_answer_is_a_table_or_a_typed_error(results, limit):
    """Whatever JSON a search answers, the result is hits (at most ``limit``) or a
    CorevizError: never an untyped exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorevizWarning)
        try:
            res = SearchResults.from_response({"results": results}, query="q", limit=limit)
        except CorevizError:
            return
    assert len(res.hits) == min(len(results), limit)
    for i, extra in enumerate(res.hits.extra):
        kept = json.loads(extra) if isinstance(extra, str) else {}
        rank = results[i].get("rank")
        assert not pd.isna(res.hits["rank"].iloc[i]) or rank is None or "rank" in kept


@settings(deadline=None)
@given(value=_JSON, arrow_type=st.sampled_from([pa.string(), pa.int64(), pa.float64()]))
def test_any_json_value_fits_a_listing_column_or_is_kept(value, arrow_type):
    """``fit_cell`` is what every listing row goes through: a value either fits its column
    (and the typed frame takes it) or is refused, to be kept raw in ``extra``."""
    ok, cell = fit_cell(value, arrow_type)
    frame = typed_frame([("c", arrow_type)], [{"c": cell}])
    assert (cell is None) == bool(frame.c.isna().iloc[0])
    assert ok or cell is None
    if ok and value is not None and pa.types.is_string(arrow_type):
        assert frame.c.iloc[0] == (value if isinstance(value, str) else str(value))

"""SearchResults: the documented search example arrives whole (hits with every rank, tables
with the polygon), unknown fields land in ``extra``, and ``to_tables`` accepts the results."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames.api.search import HIT_COLUMNS, SearchResults, search_records
from coreviz_frames.errors import InvalidResponseError, SkippedRecordWarning
from tests.helpers import KEY, ScriptedServer, fast_client

#: The response of ``GET /api/search`` exactly as docs.coreviz.io documents it
#: (library/api/searching-your-media; ../shared/coreviz-api.md section 3.3).
DOCUMENTED_SEARCH = {
    "results": [
        {
            "id": "frameId123",
            "timestamp": "0",
            "blob": "https://.../processed.jpg",
            "width": 1620,
            "height": 1080,
            "media": {
                "id": "mediaId456",
                "name": "purple-flowers.jpg",
                "type": "image",
                "blob": "https://.../original.jpg",
                "width": 2048,
                "height": 1365,
                "duration": None,
                "createdAt": "2026-01-10T08:00:00.000Z",
            },
            "captions": [
                {"id": "captionId789", "text": "A close-up of purple flowers with green leaves."}
            ],
            "objects": [
                {
                    "id": "objectId101",
                    "type": "object",
                    "label": "flower",
                    "blob": "",
                    "polygon": [
                        {"x": 0.81, "y": 0.54},
                        {"x": 1619.19, "y": 0.54},
                        {"x": 1619.19, "y": 1078.38},
                        {"x": 0.81, "y": 1078.38},
                    ],
                }
            ],
            "rank": 0.243,
            "rankingMetrics": {"textRank": 0.087, "objectEmbeddingRank": 0.156, "totalRank": 0.243},
        }
    ]
}
ME = {
    "userId": "u1",
    "email": "a@example.com",
    "name": "A",
    "organizationId": "orgId333",
    "organizationName": "Org",
}


def _check_documented(res: SearchResults) -> None:
    """Every value of the documented example is in the hits or the tables."""
    hit = res.hits.iloc[0]
    assert len(res.hits) == 1 and hit["query"] == "purple flowers" and hit["hit_rank"] == 1
    assert (hit["frame_id"], hit["media_id"]) == ("frameId123", "mediaId456")
    assert (hit["rank"], hit["text_rank"]) == (0.243, 0.087)
    assert (hit["object_embedding_rank"], hit["total_rank"]) == (0.156, 0.243)
    assert pd.isna(hit["extra"])
    media = res.tables.media.iloc[0]
    assert (media["media_id"], media["name"], media["type"]) == (
        "mediaId456",
        "purple-flowers.jpg",
        "image",
    )
    assert (media["width"], media["height"], media["blob"]) == (
        2048,
        1365,
        "https://.../original.jpg",
    )
    assert media["created_at"] == pd.Timestamp("2026-01-10T08:00:00Z")
    assert pd.isna(media["extra"]) and media["frame_count"] == 1
    frame = res.tables.frames.iloc[0]
    assert (frame["frame_id"], frame["media_id"], frame["timestamp"]) == (
        "frameId123",
        "mediaId456",
        0.0,
    )
    assert (frame["width"], frame["height"], frame["blob"]) == (
        1620,
        1080,
        "https://.../processed.jpg",
    )
    assert pd.isna(frame["extra"])
    caption = res.tables.captions.iloc[0]
    assert (caption["caption_id"], caption["frame_id"]) == ("captionId789", "frameId123")
    assert caption["text"] == "A close-up of purple flowers with green leaves."
    obj = res.tables.objects.iloc[0]
    assert (obj["object_id"], obj["label"], obj["type"]) == ("objectId101", "flower", "object")
    assert pd.isna(obj["blob"])  # "" -> null, as elsewhere
    assert list(obj["polygon"]) == DOCUMENTED_SEARCH["results"][0]["objects"][0]["polygon"]
    assert (obj["bbox_x"], obj["bbox_y"]) == (0.81, 0.54)
    assert math.isclose(obj["bbox_w"], 1618.38) and math.isclose(obj["bbox_h"], 1077.84)
    assert (obj["frame_width"], obj["frame_height"]) == (1620, 1080)


def test_the_documented_example_arrives_whole_in_hits_and_tables():
    res = SearchResults.from_response(DOCUMENTED_SEARCH, query="purple flowers")
    _check_documented(res)
    assert res.extra == {} and res.results == DOCUMENTED_SEARCH["results"]
    assert repr(res) == "SearchResults(query='purple flowers', hits=1, media=1)"


def test_the_documented_example_through_the_client_asks_me_once():
    srv = ScriptedServer(
        lambda path, query: (200, {}, ME if path == "/api/me" else DOCUMENTED_SEARCH)
    )
    try:
        with fast_client(srv.base_url) as client:
            res = client.search("purple flowers")
            again = client.search("purple flowers", limit=5)
        _check_documented(res)
        assert res.organization_id == "orgId333" and len(again) == 1
        assert srv.paths["/api/me"] == 1 and srv.paths["/api/search"] == 2
        queries = [q for path, q in srv.queries if path == "/api/search"]
        assert queries[0] == {"q": "purple flowers", "organizationId": "orgId333", "limit": "20"}
        assert queries[1]["limit"] == "5"
        assert all(h.get("x-api-key") == KEY for _, h in srv.headers)
    finally:
        srv.close()


def test_an_explicit_organization_sends_no_get_me():
    srv = ScriptedServer(lambda path, query: (200, {}, DOCUMENTED_SEARCH))
    try:
        with fast_client(srv.base_url) as client:
            client.search("flowers", organization_id="org9")
        assert srv.paths["/api/me"] == 0
        assert srv.queries[-1][1]["organizationId"] == "org9"
    finally:
        srv.close()


def test_to_tables_accepts_search_results():
    res = SearchResults.from_response(DOCUMENTED_SEARCH, query="purple flowers")
    again = cvf.to_tables(res)
    for grain in ("media", "frames", "captions", "objects", "tags"):
        pd.testing.assert_frame_equal(getattr(again, grain), getattr(res.tables, grain))
    assert list(res) == res.records and len(res) == 1


def test_unknown_fields_land_in_extra():
    body = copy.deepcopy(DOCUMENTED_SEARCH)
    result = body["results"][0]
    result["pageNumber"] = None
    result["matchKind"] = "caption"  # unknown frame-level field
    result["media"]["colorSpace"] = "sRGB"
    result["captions"][0]["language"] = "en"
    result["objects"][0]["confidence"] = 0.9
    result["rankingMetrics"]["clipRank"] = 0.5
    body["took"] = 12
    res = SearchResults.from_response(body, query="q")
    assert json.loads(res.hits.loc[0, "extra"]) == {"rankingMetrics": {"clipRank": 0.5}}
    assert json.loads(res.tables.frames.loc[0, "extra"]) == {"matchKind": "caption"}
    assert json.loads(res.tables.media.loc[0, "extra"]) == {"colorSpace": "sRGB"}
    assert json.loads(res.tables.captions.loc[0, "extra"]) == {"language": "en"}
    assert json.loads(res.tables.objects.loc[0, "extra"]) == {"confidence": 0.9}
    assert res.extra == {"took": 12}


def test_a_rank_that_is_not_a_number_is_kept_in_extra():
    body = copy.deepcopy(DOCUMENTED_SEARCH)
    body["results"][0]["rank"] = "high"
    body["results"][0]["rankingMetrics"]["textRank"] = "0.5"  # numeric text is read
    body["results"][0]["rankingMetrics"]["totalRank"] = [1]
    hit = SearchResults.from_response(body, query="q").hits.iloc[0]
    assert pd.isna(hit["rank"]) and hit["text_rank"] == 0.5 and pd.isna(hit["total_rank"])
    assert json.loads(hit["extra"]) == {"rank": "high", "rankingMetrics": {"totalRank": [1]}}


def test_frames_of_one_media_are_grouped_and_a_repeated_frame_kept_once():
    first = DOCUMENTED_SEARCH["results"][0]
    second = {**first, "id": "frameId124", "timestamp": "1.5", "rank": 0.1}
    res = SearchResults.from_response({"results": [first, second, first]}, query="q")
    assert res.hits.hit_rank.tolist() == [1, 2, 3]
    assert res.hits.frame_id.tolist() == ["frameId123", "frameId124", "frameId123"]
    assert res.tables.media.media_id.tolist() == ["mediaId456"]
    assert res.tables.frames.frame_id.tolist() == ["frameId123", "frameId124"]
    assert res.tables.frames.frame_index.tolist() == [0, 1]


def test_a_result_without_a_media_stays_in_hits_only():
    body = {"results": [{"id": "f1", "rank": 0.2}, DOCUMENTED_SEARCH["results"][0]]}
    with pytest.warns(SkippedRecordWarning, match="names no media"):
        res = SearchResults.from_response(body, query="q")
    assert res.hits.frame_id.tolist() == ["f1", "frameId123"]
    assert pd.isna(res.hits.loc[0, "media_id"])
    assert res.tables.frames.frame_id.tolist() == ["frameId123"]


def test_media_id_without_a_media_object_is_enough():
    recs = search_records([{"id": "f1", "mediaId": "m1"}])
    assert recs == [{"id": "m1", "frames": [{"id": "f1", "mediaId": "m1"}]}]


def test_hyphenated_ids_are_normalised_in_hits_as_in_the_tables():
    body = copy.deepcopy(DOCUMENTED_SEARCH)
    body["results"][0]["media"]["id"] = "7938B58D-D60A-43D8-953F-4F56B3CD8410"
    res = SearchResults.from_response(body, query="q")
    assert res.hits.loc[0, "media_id"] == "7938b58dd60a43d8953f4f56b3cd8410"
    assert res.tables.media.loc[0, "media_id"] == res.hits.loc[0, "media_id"]


def test_no_results_give_typed_empty_tables():
    res = SearchResults.from_response({"results": []}, query="nothing")
    assert res.hits.columns.tolist() == [name for name, _ in HIT_COLUMNS]
    assert str(res.hits.dtypes["hit_rank"]) == "Int64"
    assert str(res.hits.dtypes["rank"]) == "float64"
    assert str(res.hits.dtypes["frame_id"]) == "string"
    assert len(res.tables.media) == 0 and len(res) == 0


@pytest.mark.parametrize("body", [{}, {"results": {}}, {"results": [1]}])
def test_a_body_of_another_shape_is_an_invalid_response(body):
    with pytest.raises(InvalidResponseError, match="'results' list"):
        SearchResults.from_response(body, query="q")


def test_a_malformed_result_is_reported_not_fatal():
    body = copy.deepcopy(DOCUMENTED_SEARCH)
    bad = copy.deepcopy(body["results"][0])
    bad["id"], bad["media"]["id"], bad["width"] = "f2", "m2", "wide"
    body["results"].append(bad)
    with pytest.warns(SkippedRecordWarning):
        res = SearchResults.from_response(body, query="q")
    assert res.hits.frame_id.tolist() == ["frameId123", "f2"]
    assert res.tables.media.media_id.tolist() == ["mediaId456"]
    assert res.report.skipped_count == 1 and "width" in str(res.report.skipped[0])

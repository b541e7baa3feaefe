"""The catalogue reads of the client against the local API on 127.0.0.1: me, organizations,
collections, get_collection, tag_catalogue, versions, search, similar_objects, folders.

Every method: its answer, 401, 403, 404, a 429 then success, unknown fields in ``extra``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames.api.filters import BrowseFilters
from coreviz_frames.api.search import SearchResults
from coreviz_frames.errors import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    InvalidIdError,
    InvalidResponseError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
)
from coreviz_frames.local_api import LocalAPI
from tests.helpers import KEY, ScriptedServer, fast_client

ORG = "0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b"
ASTRONAUT = "fbcc40d59151582cb8d387d431d6e91c"  # has an edited version 2 in the local API
CAMERA = "899c8820de84572a9cc3a2b5d3e15501"
FACE = "f2f79f640a7b5429a95192e0b532916e"  # the astronaut's face object
FORBIDDEN = "forbidden1"


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPI]:
    with LocalAPI(api_key=KEY, forbidden_ids=[FORBIDDEN]) as served:
        yield served


@pytest.fixture
def client(api: LocalAPI) -> Iterator[cvf.Client]:
    api.reset_stats()
    api.faults.clear()
    with fast_client(api.base_url) as made:
        yield made


Call = Callable[[cvf.Client, LocalAPI], Any]

#: method -> (a call that works, the path prefix it requests, a call answering 403, 404).
CASES: dict[str, tuple[Call, str, Call | None, Call | None]] = {
    "me": (lambda c, a: c.me(), "/api/me", None, None),
    "organizations": (lambda c, a: c.organizations(), "/api/auth/organization/", None, None),
    "collections": (
        lambda c, a: c.collections(ORG),
        "/api/organization/",
        lambda c, a: c.collections(FORBIDDEN),
        lambda c, a: c.collections("nosuchorg"),
    ),
    "get_collection": (
        lambda c, a: c.get_collection(a.collection_id),
        "/api/dataset/",
        lambda c, a: c.get_collection(FORBIDDEN),
        lambda c, a: c.get_collection("nosuchcollection"),
    ),
    "tag_catalogue": (
        lambda c, a: c.tag_catalogue(a.collection_id),
        "/api/dataset/",
        lambda c, a: c.tag_catalogue(FORBIDDEN),
        lambda c, a: c.tag_catalogue("nosuchcollection"),
    ),
    "versions": (
        lambda c, a: c.versions(ASTRONAUT),
        "/api/media/",
        lambda c, a: c.versions(FORBIDDEN),
        lambda c, a: c.versions("nosuchmedia"),
    ),
    "search": (
        lambda c, a: c.search("rocket", organization_id=ORG),
        "/api/search",
        lambda c, a: c.search("rocket", organization_id=FORBIDDEN),
        lambda c, a: c.search("rocket", organization_id="nosuchorg"),
    ),
    "similar_objects": (
        lambda c, a: c.similar_objects(FACE, collection_id=a.collection_id),
        "/api/dataset/",
        lambda c, a: c.similar_objects(FACE, collection_id=FORBIDDEN),
        lambda c, a: c.similar_objects(FACE, collection_id="nosuchcollection"),
    ),
    "folders": (
        lambda c, a: c.folders(a.collection_id),
        "/api/dataset/",
        lambda c, a: c.folders(FORBIDDEN),
        lambda c, a: c.folders("nosuchcollection"),
    ),
}


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, SearchResults):
        pd.testing.assert_frame_equal(a.hits, b.hits)
    else:
        assert a == b


@pytest.mark.parametrize("method", sorted(CASES))
def test_401_with_a_wrong_key_names_no_secret(api, method):
    call = CASES[method][0]
    with (
        fast_client(api.base_url, api_key="sk-wrong-SECRET-999") as wrong,
        pytest.raises(AuthenticationError) as info,
    ):
        call(wrong, api)
    assert info.value.status == 401
    assert "SECRET" not in str(info.value) and KEY not in str(info.value)


@pytest.mark.parametrize("method", sorted(m for m, case in CASES.items() if case[2]))
def test_403_is_permission_denied(api, client, method):
    forbidden = CASES[method][2]
    assert forbidden is not None
    with pytest.raises(PermissionDeniedError) as info:
        forbidden(client, api)
    assert info.value.status == 403 and FORBIDDEN in str(info.value)


@pytest.mark.parametrize("method", sorted(m for m, case in CASES.items() if case[3]))
def test_404_is_not_found(api, client, method):
    missing = CASES[method][3]
    assert missing is not None
    with pytest.raises(NotFoundError) as info:
        missing(client, api)
    assert info.value.status == 404 and "nosuch" in str(info.value)


@pytest.mark.parametrize("method", sorted(CASES))
def test_a_429_then_success_is_retried(api, client, method):
    call, prefix = CASES[method][0], CASES[method][1]
    expected = call(client, api)
    with fast_client(api.base_url) as fresh:  # a fresh client: /api/me not cached yet
        api.reset_stats()
        api.add_fault(prefix, status=429, retry_after=0, count=1)
        got = call(fresh, api)
    _same(got, expected)
    paths = api.stats.snapshot().paths
    assert sum(n for path, n in paths.items() if path.startswith(prefix)) >= 2


@pytest.mark.parametrize(("status", "error"), [(403, PermissionDeniedError), (404, NotFoundError)])
def test_me_403_and_404(status, error):
    srv = ScriptedServer()
    srv.script("/api/me", (status, {}, {"error": "no"}))
    try:
        with fast_client(srv.base_url) as client, pytest.raises(error):
            client.me()
    finally:
        srv.close()


def test_organizations_403_and_a_404_falls_back_to_me():
    me = {"organizationId": "org1", "organizationName": "One", "userId": "u"}
    srv = ScriptedServer(lambda path, query: (200, {}, me))
    srv.script("/api/auth/organization/list", (403, {}, {"error": "no"}), (404, {}, {}))
    try:
        with fast_client(srv.base_url) as client:
            with pytest.raises(PermissionDeniedError):
                client.organizations()
            orgs = client.organizations()
        assert orgs[["organization_id", "name"]].values.tolist() == [["org1", "One"]]
    finally:
        srv.close()


# --------------------------------------------------------------------------- one /api/me


def test_search_without_organization_asks_me_once_per_client(api, client):
    results = [client.search("rocket") for _ in range(3)]
    client.collections()
    threads = [threading.Thread(target=client.search, args=("horse",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    paths = api.stats.snapshot().paths
    assert paths["/api/me"] == 1 and paths["/api/search"] == 9
    assert results[0].organization_id == ORG
    with fast_client(api.base_url) as other:
        other.search("rocket")
    assert api.stats.snapshot().paths["/api/me"] == 2  # one per client


def test_each_client_holds_its_own_catalogue(api):
    """The client makes its catalogue once and keeps it; nothing outside the client holds it
    (a dropped client takes its catalogue, and its cached /api/me, with it)."""
    import gc
    import weakref

    with fast_client(api.base_url) as first, fast_client(api.base_url) as second:
        catalogue = first._catalogue()
        assert first._catalogue() is catalogue and second._catalogue() is not catalogue
        gone = weakref.ref(catalogue)
    del first, second, catalogue
    gc.collect()
    assert gone() is None


def test_a_failed_me_is_not_cached(api, client):
    api.add_fault("/api/me", status=401, count=1)
    with pytest.raises(AuthenticationError):
        client.search("rocket")
    assert client.search("rocket").organization_id == ORG


def test_me_without_an_organization_asks_for_one():
    srv = ScriptedServer(lambda path, query: (200, {}, {"userId": "u"}))
    try:
        with (
            fast_client(srv.base_url) as client,
            pytest.raises(InvalidResponseError, match="organization_id="),
        ):
            client.search("x")
        assert srv.paths["/api/search"] == 0
    finally:
        srv.close()


# --------------------------------------------------------------------------- answers


def test_me_and_organizations(api, client):
    me = client.me()
    assert me["organizationId"] == ORG and me["email"] == "analyst@example.com"
    me["organizationId"] = "changed"  # a copy
    assert client.me()["organizationId"] == ORG
    orgs = client.organizations()  # the local API answers a bare JSON array
    assert orgs.columns.tolist() == ["organization_id", "name", "slug", "extra"]
    assert orgs.values.tolist()[0][:3] == [ORG, "Local organization", "local-organization"]


def test_collections_and_get_collection(api, client):
    cols = client.collections()
    assert cols.columns.tolist() == [
        "collection_id",
        "name",
        "icon",
        "type",
        "organization_id",
        "extra",
    ]
    row = cols.iloc[0]
    assert (row.collection_id, row["name"], row.organization_id) == (
        api.collection_id,
        "Sample collection",
        ORG,
    )
    assert json.loads(row.extra) == {"organizationName": "Local organization"}
    assert str(cols.dtypes["name"]) == "string"
    assert client.get_collection(api.collection_id)["name"] == "Sample collection"


def test_tag_catalogue_matches_the_tags_grain(api, client):
    catalogue = client.tag_catalogue(api.collection_id)
    assert catalogue.columns.tolist() == ["key", "value", "extra"]
    tables = cvf.to_tables(client.browse(api.collection_id, progress=False))
    used = set(map(tuple, tables.tags[["key", "value"]].values.tolist()))
    assert set(map(tuple, catalogue[["key", "value"]].values.tolist())) == used
    colors = catalogue.query("key == 'color'").value.tolist()
    assert colors == sorted(colors)


def test_versions_flatten_with_source_and_number(api, client):
    versions = client.versions(ASTRONAUT)
    tables = cvf.to_tables(versions)
    media = tables.media
    assert media.version_number.tolist() == [1, 2]
    assert pd.isna(media.source_media_id[0]) and media.source_media_id[1] == ASTRONAUT
    assert media.media_id.is_unique and tables.frames.frame_id.is_unique
    assert len(client.versions(CAMERA)) == 1


def test_search_ranks_and_tables_against_the_local_api(api, client):
    res = client.search("rocket", limit=3)
    assert len(res.hits) == 3 and res.hits.hit_rank.tolist() == [1, 2, 3]
    hits = res.hits
    assert (hits["rank"] == hits.total_rank).all()
    assert ((hits.text_rank + hits.object_embedding_rank - hits.total_rank).abs() < 1e-9).all()
    assert hits["rank"].is_monotonic_decreasing
    assert set(hits.frame_id) <= set(res.tables.frames.frame_id)
    assert "rocket" in set(res.tables.objects.label)
    assert res.tables.objects.polygon.notna().all() and res.tables.objects.bbox_w.notna().all()


def test_folders_with_item_counts(api, client):
    folders = client.folders(api.collection_id)
    assert folders.columns.tolist() == [
        "folder_id",
        "name",
        "path",
        "parent_path",
        "folder_item_count",
        "extra",
    ]
    counts = dict(zip(folders.name, folders.folder_item_count, strict=True))
    assert counts == {"Textures": 3, "Space": 3, "Launches": 1}
    assert folders.attrs["complete"] is True
    assert "datasetId" in json.loads(folders.extra[0])
    top = client.folders(api.collection_id, recursive=False)
    assert sorted(top.name) == ["Space", "Textures"]
    assert (top.parent_path == api.collection_id).all()
    space = folders.set_index("name").loc["Space", "path"]
    assert client.folders(api.collection_id, path=space).name.tolist() == ["Launches"]


def test_similar_objects_scores_land_in_the_score_column(api, client):
    records = client.similar_objects(FACE, collection_id=api.collection_id)
    scores = [r["_score"] for r in records]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    media = cvf.to_tables(records).media
    assert media.score.tolist() == scores
    faces = client.similar_objects(FACE, collection_id=api.collection_id, model="faces")
    assert [(r["id"], r["_score"]) for r in faces] == [(ASTRONAUT, 1.0)]
    best = client.similar_objects(FACE, collection_id=api.collection_id, min_score=0.45)
    assert [r["_score"] for r in best] == [s for s in scores if s >= 0.45]
    assert len(client.similar_objects(FACE, collection_id=api.collection_id, limit=1)) == 1


# --------------------------------------------------------------------------- browse filters


def test_new_browse_filters_are_sent_only_when_given():
    default = BrowseFilters().to_params()
    assert not {"similarToObjectModel", "clusterId", "mediaId", "minScore"} & set(default)
    params = BrowseFilters(
        similar_to_object_id="o1",
        similar_to_object_model="shoeprints",
        cluster_id="c_1",
        media_id="m-1",
        min_score=0.25,
    ).to_params()
    assert params["similarToObjectModel"] == "shoeprints" and params["clusterId"] == "c_1"
    assert params["mediaId"] == "m-1" and params["minScore"] == "0.25"
    assert BrowseFilters(min_score=1).to_dict() == {"min_score": 1.0}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"similar_to_object_model": "cats"}, ConfigError, "similar_to_object_model"),
        ({"min_score": "high"}, ConfigError, "min_score"),
        ({"min_score": float("inf")}, ConfigError, "min_score"),
        ({"min_score": True}, ConfigError, "min_score"),
        ({"cluster_id": "a/b"}, InvalidIdError, "cluster id"),
        ({"media_id": "../x"}, InvalidIdError, "media id"),
    ],
)
def test_bad_new_filters_are_refused_naming_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        BrowseFilters(**kwargs)


def test_cluster_and_media_filters_against_the_local_api(api, client):
    rockets = client.browse(api.collection_id, cluster_id="cluster-rocket", progress=False)
    assert sorted(r["name"] for r in rockets) == [
        "astronaut.jpg",
        "rocket-launch.gif",
        "rocket.jpg",
    ]
    one = list(client.browse(api.collection_id, media_id=CAMERA, progress=False))
    assert [r["id"] for r in one] == [CAMERA]


def test_similar_objects_sends_what_the_sdk_sends():
    page = {"media": [], "pagination": {"total": 0, "limit": 5, "offset": 0, "hasMore": False}}
    srv = ScriptedServer(lambda path, query: (200, {}, page))
    try:
        with fast_client(srv.base_url) as client:
            assert client.similar_objects("o1", collection_id="c1", model="faces", limit=5) == []
        query = srv.queries[-1][1]
        assert query["similarToObjectId"] == "o1" and query["similarToObjectModel"] == "faces"
        assert query["limit"] == "5" and "sortBy" not in query and "minScore" not in query
    finally:
        srv.close()


# --------------------------------------------------------------------------- extra, shapes


def test_unknown_fields_of_every_listing_land_in_extra():
    bodies = {
        "/api/auth/organization/list": {
            "organizations": [{"id": "o1", "name": "One", "slug": "one", "logo": "x.png"}],
            "total": 1,
        },
        "/api/organization/o1/datasets": [
            {"id": "c1", "name": "C", "type": "default", "organizationId": "o1", "size": 3}
        ],
        "/api/dataset/c1": {"dataset": {"id": "c1", "name": "C", "archived": False}},
        "/api/dataset/c1/tags": {
            "tags": {"color": ["red", {"value": "blue", "count": 3}], "size": "L"},
            "generatedAt": "now",
        },
        "/api/media/m1/versions": {"versions": [{"id": "m1", "versionNumber": 1, "pinned": True}]},
        "/api/dataset/c1/media": {
            "media": [
                {
                    "id": "f1",
                    "type": "folder",
                    "blob": "folder",
                    "name": "F",
                    "path": "c1.f1",
                    "folderItemCount": 2,
                    "folderPreviews": ["a.jpg"],
                },
                {"id": "m1", "type": "image", "name": "a.jpg"},
            ],
            "pagination": {"total": 2, "limit": 100, "offset": 0, "hasMore": False},
        },
    }
    srv = ScriptedServer(lambda path, query: (200, {}, bodies.get(path, {"error": "Not found"})))
    try:
        with fast_client(srv.base_url) as client:
            orgs = client.organizations()
            cols = client.collections("o1")
            coll = client.get_collection("c1")
            tags = client.tag_catalogue("c1")
            versions = client.versions("m1")
            folders = client.folders("c1")
    finally:
        srv.close()
    assert json.loads(orgs.extra[0]) == {"logo": "x.png"} and orgs.attrs["extra"] == {"total": 1}
    assert json.loads(cols.extra[0]) == {"size": 3} and cols.collection_id.tolist() == ["c1"]
    assert coll == {"id": "c1", "name": "C", "archived": False}
    assert tags[["key", "value"]].values.tolist() == [
        ["color", "red"],
        ["color", "blue"],
        ["size", "L"],
    ]
    assert pd.isna(tags.extra[0]) and json.loads(tags.extra[1]) == {"count": 3}
    assert tags.attrs["extra"] == {"generatedAt": "now"}
    assert json.loads(cvf.to_tables(versions).media.extra[0]) == {"pinned": True}
    assert folders.name.tolist() == ["F"] and folders.folder_item_count.tolist() == [2]
    assert json.loads(folders.extra[0]) == {"folderPreviews": ["a.jpg"]}


@pytest.mark.parametrize(
    ("path", "body", "call"),
    [
        ("/api/organization/o1/datasets", {"datasets": 3}, lambda c: c.collections("o1")),
        ("/api/media/m1/versions", {"versions": [1]}, lambda c: c.versions("m1")),
        ("/api/dataset/c1/tags", {"tags": []}, lambda c: c.tag_catalogue("c1")),
        ("/api/dataset/c1", {"name": "no id"}, lambda c: c.get_collection("c1")),
        ("/api/search", {"hits": []}, lambda c: c.search("x", organization_id="o1")),
    ],
)
def test_a_response_of_another_shape_is_an_invalid_response(path, body, call):
    srv = ScriptedServer(lambda p, q: (200, {}, body))
    try:
        with fast_client(srv.base_url) as client, pytest.raises(InvalidResponseError):
            call(client)
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.search(""), ConfigError),
        (lambda c: c.search("x", limit=0), ConfigError),
        (lambda c: c.search("x", organization_id="../x"), InvalidIdError),
        (lambda c: c.collections("a/b"), InvalidIdError),
        (lambda c: c.get_collection("a?b"), InvalidIdError),
        (lambda c: c.tag_catalogue(""), InvalidIdError),
        (lambda c: c.versions("a/b"), InvalidIdError),
        (lambda c: c.folders("a/b"), InvalidIdError),
        (lambda c: c.similar_objects("o/1", collection_id="c1"), InvalidIdError),
        (lambda c: c.similar_objects("o1", collection_id="c1", limit=0), ConfigError),
        (lambda c: c.similar_objects("o1", collection_id="c1", model="cats"), ConfigError),
    ],
)
def test_bad_input_is_refused_before_any_request(call, error):
    srv = ScriptedServer()
    try:
        with fast_client(srv.base_url) as client, pytest.raises(error):
            call(client)
        assert srv.requests == 0
    finally:
        srv.close()


# --------------------------------------------------------------------------- 402


@pytest.mark.parametrize("body", [{"error": "Insufficient credits"}, {}])
def test_402_is_payment_required_and_not_retried(body):
    srv = ScriptedServer()
    srv.script("/api/search", (402, {}, body))
    try:
        with (
            fast_client(srv.base_url, retries=3) as client,
            pytest.raises(PaymentRequiredError) as info,
        ):
            client.search("x", organization_id="o1")
        assert srv.paths["/api/search"] == 1
    finally:
        srv.close()
    err = info.value
    assert isinstance(err, APIStatusError) and err.status == 402
    assert str(err).lower().count("insufficient credits") == 1

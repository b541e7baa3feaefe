"""The local API's catalogue endpoints over real HTTP: me, organisations, collections,
versions, search (documented shape, predictable ranks), the new browse filters, faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from coreviz_frames.local_api import LocalAPI
from coreviz_frames.local_api.catalogue import CatalogueRoutes, edited_version
from coreviz_frames.local_api.search import REDUCED_MEDIA_KEYS, search_frames
from coreviz_frames.local_api.store import SyntheticCollection, cluster_id_of

KEY = "catalogue-key"
ORG = "0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b"
ASTRONAUT = "fbcc40d59151582cb8d387d431d6e91c"
FACE = "f2f79f640a7b5429a95192e0b532916e"
TIMEOUT = 10


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPI]:
    with LocalAPI(api_key=KEY, forbidden_ids=["nope"]) as served:
        yield served


def get(api: LocalAPI, path: str, key: str | None = KEY, **params) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    return requests.get(f"{api.base_url}{path}", params=params, headers=headers, timeout=TIMEOUT)


def test_me_and_the_organisation_list(api):
    me = get(api, "/me").json()
    assert me["organizationId"] == ORG and me["organizationName"] == "Local organization"
    orgs = get(api, "/auth/organization/list").json()
    assert orgs == [{"id": ORG, "name": "Local organization", "slug": "local-organization"}]


def test_collections_of_the_organisation_and_one_collection(api):
    datasets = get(api, f"/organization/{ORG}/datasets").json()["datasets"]
    assert [d["id"] for d in datasets] == [api.collection_id]
    assert datasets[0]["organizationName"] == "Local organization"
    dataset = get(api, f"/dataset/{api.collection_id}").json()["dataset"]
    assert dataset["name"] == "Sample collection" and dataset["organizationId"] == ORG


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/me", {}, 401),
        (f"/organization/{ORG}/datasets", {}, 401),
        ("/search", {"q": "x", "organizationId": ORG}, 401),
    ],
)
def test_catalogue_endpoints_need_the_key(api, path, params, status):
    assert get(api, path, key=None, **params).status_code == status


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/organization/nope/datasets", {}, 403),
        ("/organization/other/datasets", {}, 404),
        ("/dataset/nope", {}, 403),
        ("/dataset/other", {}, 404),
        ("/media/nope/versions", {}, 403),
        ("/media/other/versions", {}, 404),
        ("/media/66e79cdaa8fc5a7ca7f5ea69835f654d/versions", {}, 404),  # a folder
        ("/search", {"q": "x", "organizationId": "nope"}, 403),
        ("/search", {"q": "x", "organizationId": "other"}, 404),
        ("/search", {"organizationId": ORG}, 400),
        ("/search", {"q": "x"}, 400),
        ("/search", {"q": "x", "organizationId": ORG, "limit": "0"}, 400),
    ],
)
def test_error_statuses(api, path, params, status):
    assert get(api, path, **params).status_code == status


def test_versions_of_every_third_media(api):
    versions = get(api, f"/media/{ASTRONAUT}/versions").json()["versions"]
    original, edited = versions
    assert original["id"] == ASTRONAUT and original["versionNumber"] == 1
    assert edited["sourceMediaId"] == ASTRONAUT and edited["versionNumber"] == 2
    assert edited["name"] == "edited-astronaut.jpg"
    old_ids = {f["id"] for f in original["frames"]}
    assert not old_ids & {f["id"] for f in edited["frames"]}
    assert all(f["mediaId"] == edited["id"] for f in edited["frames"])
    counts = []
    for media in get(api, f"/dataset/{api.collection_id}/media", recursive="true", limit=50).json()[
        "media"
    ]:
        if media["type"] != "folder":
            counts.append(len(get(api, f"/media/{media['id']}/versions").json()["versions"]))
    assert counts.count(2) == 5 and counts.count(1) == 10


def test_search_results_have_the_documented_shape(api):
    results = get(api, "/search", q="rocket launch", organizationId=ORG, limit=4).json()["results"]
    assert len(results) == 4
    for result in results:
        assert set(result) == {
            "id",
            "timestamp",
            "blob",
            "width",
            "height",
            "media",
            "captions",
            "objects",
            "rank",
            "rankingMetrics",
        }
        assert set(result["media"]) == set(REDUCED_MEDIA_KEYS)
        assert all(set(c) == {"id", "text"} for c in result["captions"])
        assert all({"id", "type", "label", "blob"} <= set(o) for o in result["objects"])
        metrics = result["rankingMetrics"]
        assert metrics["totalRank"] == result["rank"]
        assert round(metrics["textRank"] + metrics["objectEmbeddingRank"], 4) == result["rank"]
        assert result["blob"].startswith(api.blob_url)  # blob URLs point at the blob server
    ranks = [r["rank"] for r in results]
    assert ranks == sorted(ranks, reverse=True)


def test_search_ranks_are_predictable():
    coll = SyntheticCollection(3)
    hits = search_frames(coll, "person caption", limit=100)
    assert len(hits) == 3  # every frame has a caption with "caption" in it
    for hit in hits:
        metrics, labels = hit["rankingMetrics"], {o["label"] for o in hit["objects"]}
        assert metrics["textRank"] == 0.25  # one of the two words in the text
        assert metrics["objectEmbeddingRank"] == (0.25 if "person" in labels else 0.0)
    assert [h["rank"] for h in hits] == [0.5, 0.25, 0.25]
    assert search_frames(coll, "zebra") == [] and search_frames(coll, "  ") == []
    assert len(search_frames(coll, "caption", limit=2)) == 2


def test_search_faults_apply(api):
    api.add_fault("/api/search", status=429, retry_after=0, count=1)
    assert get(api, "/search", q="x", organizationId=ORG).status_code == 429
    assert get(api, "/search", q="x", organizationId=ORG).status_code == 200


def test_browse_new_filters(api):
    def names(**params):
        body = get(api, f"/dataset/{api.collection_id}/media", recursive="true", **params).json()
        return [(m["name"], m.get("_score")) for m in body["media"]]

    assert sorted(n for n, _ in names(clusterId=cluster_id_of("rocket"))) == [
        "astronaut.jpg",
        "rocket-launch.gif",
        "rocket.jpg",
    ]
    assert names(similarToObjectId=FACE, similarToObjectModel="faces") == [("astronaut.jpg", 1.0)]
    everyone = names(similarToObjectId=FACE)
    assert names(similarToObjectId=FACE, minScore="0.45") == [
        (n, s) for n, s in everyone if s >= 0.45
    ]
    bad = get(api, f"/dataset/{api.collection_id}/media", similarToObjectModel="cats")
    assert bad.status_code == 400
    assert get(api, f"/dataset/{api.collection_id}/media", minScore="x").status_code == 400


def test_routes_and_edited_version_without_a_server():
    routes = CatalogueRoutes(SyntheticCollection(4))
    assert routes.answer("/api/unknown", "") is None
    assert routes.answer("/api/media/nothing/versions", "") == (404, {"error": "Not found"})
    v2 = edited_version({"id": "m", "path": "c.f.m", "frames": [{"id": "f", "captions": []}]})
    assert v2["path"] == f"c.f.{v2['id']}" and v2["frames"][0]["id"] != "f"

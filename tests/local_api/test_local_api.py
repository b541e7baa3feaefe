"""The local API over real HTTP on 127.0.0.1: endpoints, filters, auth, faults, stats, blobs."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageChops

from coreviz_frames.errors import ConfigError
from coreviz_frames.local_api import (
    SAMPLE_COLLECTION_ID,
    SAMPLE_DATA_DIR,
    LocalAPI,
    LocalAPIOptions,
    LocalAPIProcess,
    ServerStats,
    serve_local_api,
)
from coreviz_frames.local_api.__main__ import build_parser
from coreviz_frames.local_api.images import polygon_extent
from coreviz_frames.local_api.options import API_KEY_ENV, option_specs
from coreviz_frames.local_api.process import command_line
from coreviz_frames.local_api.routes import rewrite_blobs as _rewrite_blobs
from coreviz_frames.local_api.store import SyntheticCollection, light_item
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.local_api.wire import HTTPServer, Reply, Request

KEY = "test-key-123"
TIMEOUT = 10


def get(url: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.get(url, **kwargs)


def browse(api: LocalAPI, **params) -> dict:
    response = get(f"{api.base_url}/dataset/{api.collection_id}/media", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def walk(api: LocalAPI, limit: int, **params) -> list[dict]:
    items, offset = [], 0
    while True:
        page = browse(api, limit=limit, offset=offset, **params)
        items += page["media"]
        offset += len(page["media"])
        if not page["pagination"]["hasMore"]:
            return items


def blob_strings(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("blob", "thumbnailBlob") and isinstance(item, str):
                yield item
            else:
                yield from blob_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from blob_strings(item)


def image_of(response: requests.Response) -> Image.Image:
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference (0..255)."""
    assert a.size == b.size
    histogram = ImageChops.difference(a, b).convert("L").histogram()
    return sum(value * count for value, count in enumerate(histogram)) / (a.width * a.height)


# -- the sample collection -----------------------------------------------------------------


def test_sample_collection_is_complete_and_small():
    doc = json.loads((SAMPLE_DATA_DIR / "collection.json").read_text())
    assert doc["dataset"]["id"] == SAMPLE_COLLECTION_ID
    media = doc["media"]
    kinds = [m["type"] for m in media]
    assert kinds.count("image") >= 12 and kinds.count("video") == 1 and kinds.count("pdf") == 1
    video = next(m for m in media if m["type"] == "video")
    assert [f["timestamp"] for f in video["frames"]][:4] == ["0", "0.5", "1", "1.5"]
    pdf = next(m for m in media if m["type"] == "pdf")
    assert all({"pageNumber", "text", "thumbnailBlob"} <= f.keys() for f in pdf["frames"])
    legacy = [m for m in media if "entityId" in m]
    assert len(legacy) == 1 and "-" in legacy[0]["id"] and "exif" in legacy[0]
    assert not {"path", "datasetId", "dataset"} & legacy[0].keys()
    assert sum(m["blob"] is None for m in media) == 1
    objects = [o for m in media for f in m["frames"] for o in f.get("objects", [])]
    assert any(o.get("blob") == "" and o.get("polygon") for o in objects)
    assert any("blob" not in o and "polygon" not in o for o in objects)
    frames = [f for m in media for f in m["frames"]]
    assert any("captions" not in f for f in frames) and any("objects" not in f for f in frames)
    assert any(m["path"].count(".") == 2 for m in media if m.get("path"))  # nested in a folder
    size = sum(p.stat().st_size for p in Path(SAMPLE_DATA_DIR).rglob("*") if p.is_file())
    assert size < 5_000_000
    assert (SAMPLE_DATA_DIR / "README.md").is_file()


def test_sample_crops_are_crops_of_their_frames():
    doc = json.loads((SAMPLE_DATA_DIR / "collection.json").read_text())
    blobs = SAMPLE_DATA_DIR / "blobs"
    checked = 0
    for media in doc["media"]:
        for frame in media["frames"]:
            for obj in frame.get("objects", []):
                if obj.get("blob"):
                    frame_image = Image.open(blobs / frame["blob"][7:]).convert("RGB")
                    crop = Image.open(blobs / obj["blob"][7:]).convert("RGB")
                    cut = frame_image.crop(polygon_extent(obj["polygon"]))
                    assert mean_diff(cut, crop) < 4, obj["id"]
                    checked += 1
    assert checked >= 10


# -- Get Media -----------------------------------------------------------------------------


def test_get_media_full_record_and_404(sample_api):
    page = browse(sample_api, recursive="true", type="image", limit=100)
    media_id = next(m["id"] for m in page["media"] if m["name"] == "astronaut.jpg")
    response = get(f"{sample_api.base_url}/media/{media_id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    record = response.json()["media"]
    assert record["id"] == media_id and record["dataset"]["id"] == SAMPLE_COLLECTION_ID
    assert record["frames"][0]["captions"] and record["frames"][0]["objects"]
    missing = get(f"{sample_api.base_url}/media/doesnotexist")
    assert missing.status_code == 404 and missing.json() == {"error": "Not found"}


def test_get_media_legacy_id_hyphenated_or_not(sample_api):
    items = walk(sample_api, 100, recursive="true")
    legacy = next(m for m in items if "entityId" in m)
    for media_id in (legacy["id"], legacy["id"].replace("-", "")):
        record = get(f"{sample_api.base_url}/media/{media_id}").json()["media"]
        assert record["id"] == legacy["id"]


# -- Browse --------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_browse_pages_yield_every_row_once(sample_api, limit):
    items = walk(sample_api, limit, recursive="true")
    ids = [m["id"] for m in items]
    assert len(ids) == len(set(ids)) == 18  # 15 media + 3 folder rows
    assert sum(m["type"] == "folder" for m in items) == 3


def test_browse_pagination_fields_and_defaults(sample_api):
    page = browse(sample_api, recursive="true")
    assert page["pagination"] == {"total": 18, "limit": 10, "offset": 0, "hasMore": True}
    created = [m["createdAt"] for m in page["media"]]
    assert created == sorted(created, reverse=True)  # default: createdAt desc
    last = browse(sample_api, recursive="true", offset=15)
    assert len(last["media"]) == 3 and last["pagination"]["hasMore"] is False
    asc = browse(sample_api, recursive="true", sortBy="name", sortDirection="asc", limit=100)
    names = [m["name"].casefold() for m in asc["media"]]
    assert names == sorted(names)


def test_browse_folders_and_paths(sample_api):
    root = browse(sample_api, limit=100)["media"]
    folders = {m["name"]: m for m in root if m["type"] == "folder"}
    assert set(folders) == {"Textures", "Space"}  # Launches is nested in Space
    textures = folders["Textures"]
    assert textures["blob"] == "folder" and textures["folderItemCount"] == 3
    assert {"id", "name", "path", "datasetId", "status", "createdAt"} <= textures.keys()
    inside = browse(sample_api, path=textures["path"])["media"]
    assert sorted(m["name"] for m in inside) == ["brick.jpg", "grass.jpg", "gravel.jpg"]
    assert all(m["path"] == f"{textures['path']}.{m['id']}" for m in inside)
    space = browse(sample_api, path=folders["Space"]["path"], limit=100)["media"]
    assert "rocket-launch.gif" not in [m["name"] for m in space]
    deep = browse(sample_api, path=folders["Space"]["path"], recursive="true", limit=100)
    names = [m["name"] for m in deep["media"]]
    assert "rocket-launch.gif" in names and "Launches" in names


def test_browse_filters(sample_api):
    def names(**params):
        return sorted(
            m["name"] for m in browse(sample_api, recursive="true", limit=100, **params)["media"]
        )

    assert names(type="video") == ["rocket-launch.gif"]
    assert names(type="pdf") == ["corner-notes.pdf"]
    assert len(names(type="folder")) == 3 and len(names(type="all")) == 18
    space = names(tagFilters=json.dumps({"subject": ["space"]}))
    assert "astronaut.jpg" in space and "horse.jpg" not in space
    both = names(tagFilters=json.dumps({"subject": ["space"], "color": ["orange"]}))
    assert both == ["astronaut.jpg"]  # AND between keys
    either = names(tagFilters=json.dumps({"subject": ["food", "medical"]}))
    assert either == ["coffee.jpg", "retina.jpg"]  # OR within a key
    assert names(tags="food,medical") == ["coffee.jpg", "retina.jpg"]
    dated = browse(sample_api, recursive="true", dateFrom="2026-01-05", dateTo="2026-01-09")
    assert [m["createdAt"][:10] for m in dated["media"]] == ["2026-01-09", "2026-01-05"]
    one = browse(sample_api, recursive="true", mediaId=dated["media"][0]["id"])
    assert [m["id"] for m in one["media"]] == [dated["media"][0]["id"]]


def test_browse_scored_modes(sample_api):
    found = browse(sample_api, recursive="true", q="CAT")["media"]
    assert found and all("_score" in m for m in found)
    assert "chelsea.jpg" in found[0]["name"]
    scores = [m["_score"] for m in found]
    assert scores == sorted(scores, reverse=True)
    items = walk(sample_api, 100, recursive="true")
    rocket = next(
        o
        for m in items
        for f in m.get("frames", [])
        for o in f.get("objects", [])
        if o["label"] == "rocket"
    )
    similar = browse(sample_api, recursive="true", similarToObjectId=rocket["id"], limit=100)
    names = {m["name"] for m in similar["media"]}
    assert {"astronaut.jpg", "rocket.jpg", "rocket-launch.gif"} <= names
    assert "horse.jpg" not in names


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "x"},
        {"limit": "0"},
        {"offset": "-1"},
        {"type": "gif"},
        {"sortBy": "size"},
        {"sortDirection": "up"},
        {"tagFilters": "{bad"},
        {"dateFrom": "2026/01/01"},
    ],
)
def test_browse_invalid_params_answer_400(sample_api, params):
    url = f"{sample_api.base_url}/dataset/{sample_api.collection_id}/media"
    response = get(url, params=params)
    assert response.status_code == 400 and response.json()["error"] == "Bad request"


def test_unknown_collection_and_tags(sample_api):
    assert get(f"{sample_api.base_url}/dataset/nope/media").status_code == 404
    tags = get(f"{sample_api.base_url}/dataset/{sample_api.collection_id}/tags").json()["tags"]
    assert tags["subject"] == sorted(tags["subject"]) and "space" in tags["subject"]
    assert tags["Tags"] == ["24"]


def test_light_mode_strips_captions_and_objects(local_api_factory):
    api = local_api_factory(light=True)
    items = walk(api, 100, recursive="true")
    frames = [f for m in items for f in m.get("frames", [])]
    assert frames and all(set(f) <= {"id", "timestamp", "blob", "width", "height"} for f in frames)
    full = get(f"{api.base_url}/media/{items[-1]['id']}").json()["media"]
    assert any("captions" in f for f in full["frames"])


@pytest.mark.parametrize("quirk", ["repeat_page", "has_more_forever", "wrong_total"])
def test_browse_quirks(local_api_factory, quirk):
    api = local_api_factory(browse_quirk=quirk)
    first = browse(api, recursive="true", limit=5)
    later = browse(api, recursive="true", limit=5, offset=100)
    if quirk == "repeat_page":
        assert later["media"] == first["media"] and later["pagination"]["hasMore"] is True
    elif quirk == "has_more_forever":
        assert later["media"] == [] and later["pagination"]["hasMore"] is True
    else:
        assert first["pagination"]["total"] == 23


# -- auth ----------------------------------------------------------------------------------


def test_api_key_401_403_404(local_api_factory):
    api = local_api_factory(api_key=KEY, forbidden_ids=[SAMPLE_COLLECTION_ID, "secretmedia"])
    url = f"{api.base_url}/dataset/{api.collection_id}/tags"
    for headers in ({}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = get(url, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "message": "Invalid or missing API key"}
    assert get(url, headers={"x-api-key": KEY}).status_code == 403
    assert get(url, headers={"Authorization": f"Bearer {KEY}"}).json()["error"] == "Forbidden"
    ok = {"x-api-key": KEY}
    assert get(f"{api.base_url}/media/secretmedia", headers=ok).status_code == 403
    assert get(f"{api.base_url}/media/missing", headers=ok).status_code == 404
    assert get(f"{api.blob_url}/frames/horse/0.jpg").status_code == 200  # blobs are public
    assert KEY not in repr(api)


# -- faults and stats ----------------------------------------------------------------------


def test_faults_429_503_and_drop(local_api_factory):
    api = local_api_factory(synthetic=20)
    url = f"{api.base_url}/dataset/synthetic/tags"
    api.add_fault("/api/dataset/", status=429, retry_after=1)
    limited = get(url)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert get(url).status_code == 200
    api.add_fault("/api/dataset", status=503, count=2)
    assert [get(url).status_code for _ in range(3)] == [503, 503, 200]
    api.add_fault("/api/", drop=True)
    with pytest.raises(requests.ConnectionError):
        get(url)
    assert get(url).status_code == 200
    api.add_fault("/synthetic/", status=500)  # the blob server too
    media_id = SyntheticCollection(20).media_id(0)
    assert get(f"{api.blob_url}/synthetic/{media_id}/0.jpg").status_code == 500


def test_stats_count_requests_paths_and_concurrency(local_api_factory):
    api = local_api_factory(synthetic=50, latency=0.2)
    ids = [SyntheticCollection(50).media_id(i) for i in range(8)]
    api.reset_stats()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: get(f"{api.base_url}/media/{i}").status_code, ids))
    assert codes == [200] * 8
    assert api.stats.requests == 8 and api.stats.max_in_flight >= 4
    assert api.stats.paths[f"/api/media/{ids[0]}"] == 1
    api.reset_stats()
    assert api.stats.requests == 0 and api.stats.max_in_flight == 0


# -- blobs ---------------------------------------------------------------------------------


def test_blob_urls_rewritten_and_served(sample_api):
    items = walk(sample_api, 100, recursive="true")
    records = [
        get(f"{sample_api.base_url}/media/{m['id']}").json()["media"]
        for m in items
        if m["type"] != "folder"
    ]
    urls = [u for u in blob_strings(records) if u]
    assert len(urls) > 30 and not any("blob://" in u for u in urls)
    assert all(u.startswith(sample_api.blob_url + "/") for u in urls)
    assert sample_api.blob_url.rsplit(":", 1)[1] != sample_api.base_url.split(":")[2][:5]
    sample_api.reset_stats()
    types = set()
    for url in urls:
        response = get(url, headers={"x-test": "1"})
        assert response.status_code == 200, url
        types.add(response.headers["Content-Type"])
    assert {"image/jpeg", "image/gif", "application/pdf"} <= types
    assert all(h.get("x-test") == "1" for _, h in sample_api.stats.headers)
    assert get(f"{sample_api.blob_url}/nope.jpg").status_code == 404
    assert get(f"{sample_api.blob_url}/..%2Fcollection.json").status_code == 404


def test_crop_served_equals_crop_of_frame(sample_api):
    items = walk(sample_api, 100, recursive="true", type="image")
    record = get(f"{sample_api.base_url}/media/{items[-1]['id']}").json()["media"]
    for media in [record]:
        frame = media["frames"][0]
        obj = next(o for o in frame["objects"] if o.get("blob"))
        cut = image_of(get(frame["blob"])).crop(polygon_extent(obj["polygon"]))
        assert mean_diff(cut, image_of(get(obj["blob"]))) < 4


# -- synthetic -----------------------------------------------------------------------------


def test_synthetic_entries_match_records():
    collection = SyntheticCollection(40)
    for index in range(40):
        entry, record = collection.entry(index), synthetic_media(index)
        assert entry.id == record["id"] and entry.name == record["name"]
        assert entry.type == record["type"] and entry.created_at == record["createdAt"]
        assert entry.parent == record["path"].rsplit(".", 1)[0]
        assert entry.tags == record["metadata"]["tags"]


def test_synthetic_100k_pages_and_blobs(local_api_factory):
    api = local_api_factory(synthetic=100_000)
    assert api.collection_id == "synthetic"
    page = browse(api, recursive="true", sortDirection="asc", limit=100, offset=99_950)
    assert page["pagination"] == {
        "total": 100_000,
        "limit": 100,
        "offset": 99_950,
        "hasMore": False,
    }
    assert page["media"][0]["name"] == "synthetic-0099950.jpg"
    first = browse(api, recursive="true", limit=3)["media"]
    assert first[0]["name"] == "synthetic-0099999.mp4"  # desc by default
    record = get(f"{api.base_url}/media/{first[1]['id']}").json()["media"]
    assert record == json.loads(
        json.dumps(synthetic_media(99_998)).replace("blob://", api.blob_url + "/")
    )
    frame = record["frames"][0]
    obj = next(o for o in frame["objects"] if o["blob"])
    frame_image = image_of(get(frame["blob"]))
    assert frame_image.size == (frame["width"], frame["height"])
    cut = frame_image.crop(polygon_extent(obj["polygon"]))
    assert mean_diff(cut, image_of(get(obj["blob"]))) < 4
    assert get(f"{api.blob_url}/synthetic/{first[1]['id']}/9.jpg").status_code == 404


def test_serve_local_api_yields_base_url():
    with serve_local_api(synthetic=5) as base_url:
        page = get(f"{base_url}/dataset/synthetic/media", params={"recursive": "true"}).json()
        assert page["pagination"]["total"] == 5
    with pytest.raises(requests.ConnectionError):
        get(f"{base_url}/dataset/synthetic/media", timeout=2)


# -- separate process ----------------------------------------------------------------------


def test_local_api_process_stats_faults_and_stop():
    with LocalAPIProcess(synthetic=100, api_key=KEY, latency=0.05) as server:
        assert server.collection_id == "synthetic"
        headers = {"x-api-key": KEY}
        url = f"{server.base_url}/dataset/synthetic/media"
        assert get(url).status_code == 401
        server.reset_stats()
        server.add_fault("/api/dataset/", status=503)
        assert get(url, headers=headers).status_code == 503
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: get(url, headers=headers).status_code, range(4)))
        assert codes == [200] * 4
        stats = server.stats
        assert stats.requests == 5 and stats.max_in_flight >= 2
        assert stats.paths["/api/dataset/synthetic/media"] == 5
        base_url = server.base_url
    with pytest.raises(requests.ConnectionError):
        get(base_url, timeout=2)


def test_command_line_options():
    args = build_parser().parse_args(["--synthetic", "10", "--light", "--latency", "0.5"])
    assert args.synthetic == 10 and args.light and args.latency == 0.5


# -- serving cost: record cache, warm start, fast header parsing ---------------------------


def _expected_body(payload, blob_url: str) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return body.replace('"blob://', f'"{blob_url}/').encode()


@pytest.mark.parametrize("light", [False, True])
def test_cached_bodies_are_the_serialised_records(local_api_factory, light):
    api = local_api_factory(synthetic=50, warm=True, light=light)
    assert len(api._records) == (50 if not light else 100)  # light items and full records
    url = f"{api.base_url}/dataset/synthetic/media"
    params = {"recursive": "true", "sortDirection": "asc", "limit": "7", "offset": "18"}
    for _ in range(2):  # from the warm cache, then again
        got = get(url, params=params).content
        items = [synthetic_media(i) for i in range(18, 25)]
        if light:
            items = [light_item(item) for item in items]
        pagination = {"total": 50, "limit": 7, "offset": 18, "hasMore": True}
        assert got == _expected_body({"media": items, "pagination": pagination}, api.blob_url)
        media_id = items[0]["id"]
        got = get(f"{api.base_url}/media/{media_id}").content
        assert got == _expected_body({"media": synthetic_media(18)}, api.blob_url)
    empty = get(url, params={"recursive": "true", "offset": "50"}).content
    pagination = {"total": 50, "limit": 10, "offset": 50, "hasMore": False}
    assert empty == _expected_body({"media": [], "pagination": pagination}, api.blob_url)


def test_record_cache_is_bounded_by_bytes(local_api_factory):
    api = local_api_factory(synthetic=40, record_cache_bytes=30_000)
    assert api.warm() < 40  # stops when full
    assert api._records.size <= 30_000
    walk(api, 10, recursive="true")  # evicts least recently used records, stays bounded
    assert api._records.size <= 30_000
    page = browse(api, recursive="true", sortDirection="asc", limit=3)
    assert [m["name"] for m in page["media"]] == [f"synthetic-{i:07d}.jpg" for i in range(3)]


def test_rewrite_blobs_matches_the_escaping_rule():
    body = json.dumps({"a": "blob://x/1.jpg", "b": 'say "blob://no" \\', "c": ["blob://y"]})
    rewritten = _rewrite_blobs(body.encode(), b"http://h:1")
    assert json.loads(rewritten) == {
        "a": "http://h:1/x/1.jpg",
        "b": 'say "blob://no" \\',
        "c": ["http://h:1/y"],
    }


def test_warm_option_on_the_command_line_and_process():
    assert build_parser().parse_args(["--warm"]).warm
    assert "--warm" in command_line(synthetic=10, warm=True)
    assert "--warm" not in command_line(synthetic=10)
    with LocalAPIProcess(synthetic=30, warm=True) as server:
        url = f"{server.base_url}/dataset/synthetic/media"
        page = get(url, params={"recursive": "true", "limit": "2"}).json()
        assert [m["name"] for m in page["media"]] == [
            "synthetic-0000029.mp4",
            "synthetic-0000028.jpg",
        ]


def test_unusual_request_headers_parse_as_in_the_standard_library(local_api_factory):
    api = local_api_factory(synthetic=5, api_key=KEY)
    host, port = api.base_url.split("//")[1].split("/")[0].split(":")

    def raw(head: bytes) -> bytes:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(head)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    path = b"GET /api/dataset/synthetic/tags HTTP/1.1\r\n"
    # lower-case name, extra spaces, a duplicate (the first wins), Connection: close
    ok = raw(
        path + b"x-API-key:   " + KEY.encode() + b"\r\nX-Api-Key: nope\r\nConnection: close\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200") and b'"split":["even","odd"]' in ok
    # a folded header line goes through the email parser
    folded = raw(
        path + b"X-Thing: a\r\n  b\r\nx-api-key: " + KEY.encode() + b"\r\nConnection: close\r\n\r\n"
    )
    assert folded.startswith(b"HTTP/1.1 200")
    assert raw(path + b"x-api-key: wrong\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 401")
    assert raw(
        b"GET /api/dataset/synthetic/tags HTTP/1.0\r\nx-api-key: " + KEY.encode() + b"\r\n\r\n"
    ).startswith(b"HTTP/1.1 200")  # HTTP/1.0 closes the connection (raw() would hang otherwise)
    assert b"505" in raw(b"GET /x HTTP/2.0\r\n\r\n")  # the standard parser (no status line)
    assert raw(b"GET /x HTTP/1.1\r\n" + b"A: b\r\n" * 101 + b"\r\n").startswith(b"HTTP/1.1 431")


def test_browse_quirk_low_total_under_reports_and_keeps_has_more_true(local_api_factory):
    api = local_api_factory(browse_quirk="low_total")
    page = browse(api, recursive="true", limit=5)
    assert page["pagination"]["total"] == 18 // 4 and page["pagination"]["hasMore"] is True
    last = browse(api, recursive="true", limit=5, offset=15)
    assert len(last["media"]) == 3 and last["pagination"]["hasMore"] is False


def test_browse_quirk_grows_after_two_requests(local_api_factory):
    api = local_api_factory(browse_quirk="grows")
    totals = [browse(api, recursive="true", limit=100)["pagination"]["total"] for _ in range(3)]
    assert totals == [13, 13, 18]
    assert len(browse(api, recursive="true", limit=100)["media"]) == 18


# -- slow and unusual answers (faults for the HTTP layer's deadline and Retry-After tests) ---


def test_retry_after_may_be_any_text(local_api_factory):
    api = local_api_factory(synthetic=5)
    url = f"{api.base_url}/dataset/synthetic/tags"
    for value, sent in (("soon", "soon"), ("0.5", "0.5"), (0.25, "0.25"), (2, "2")):
        api.add_fault("/api/dataset/", status=429, retry_after=value)
        response = get(url)
        assert response.status_code == 429 and response.headers["Retry-After"] == sent
    assert get(url).status_code == 200


@pytest.mark.parametrize("part", ["trickle_headers", "trickle_body"])
def test_trickled_answers_are_complete_and_slow(local_api_factory, part):
    api = local_api_factory(synthetic=5)
    url = f"{api.base_url}/dataset/synthetic/tags"
    normal = get(url)
    api.add_fault("/api/dataset/", **{part: 0.002})
    start = time.monotonic()
    slow = get(url)
    elapsed = time.monotonic() - start
    assert slow.status_code == 200 and slow.content == normal.content
    sent = len(normal.content) if part == "trickle_body" else 60  # the head is > 60 bytes
    assert elapsed >= sent * 0.002
    assert api.stats.paths["/api/dataset/synthetic/tags"] == 2


def test_trickled_error_status_and_blob_server(local_api_factory):
    api = local_api_factory(synthetic=3)
    api.add_fault("/api/media/", status=503, retry_after="soon", trickle_body=0.001)
    response = get(f"{api.base_url}/media/x")
    assert response.status_code == 503 and response.json()["message"] == "Injected fault"
    blob = api.collection.record(0)["frames"][0]["blob"].replace("blob://", api.blob_url + "/")
    api.add_fault("/synthetic/", trickle_headers=0.001)
    assert get(blob).content.startswith(b"\xff\xd8")


def test_stop_ends_a_trickled_answer(local_api_factory):
    api = local_api_factory(synthetic=3)
    api.add_fault("/api/dataset/", trickle_body=0.5)
    url = f"{api.base_url}/dataset/synthetic/media"
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(get, url, timeout=30)
        for _ in range(500):
            if api.stats.requests:
                break
            time.sleep(0.01)
        start = time.monotonic()
        api.stop()
        with pytest.raises(requests.RequestException):
            future.result(timeout=20)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": 99},
        {"status": 700},
        {"trickle_body": -1},
        {"trickle_headers": float("nan")},
    ],
)
def test_bad_faults_are_config_errors(local_api_factory, kwargs):
    api = local_api_factory(synthetic=3)
    with pytest.raises(ConfigError):
        api.add_fault("/api/", **kwargs)
    root = api.base_url.rsplit("/api", 1)[0]
    body = json.dumps({"path_prefix": "/api/", **kwargs})  # NaN as JSON's NaN extension
    response = requests.post(
        f"{root}/_local/fault",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400


def test_process_faults_trickle_and_text_retry_after():
    with LocalAPIProcess(synthetic=5) as server:
        url = f"{server.base_url}/dataset/synthetic/tags"
        server.add_fault("/api/dataset/", status=503, retry_after="soon")
        response = get(url)
        assert response.status_code == 503 and response.headers["Retry-After"] == "soon"
        server.add_fault("/api/dataset/", trickle_body=0.001)
        assert get(url).json()["tags"]["split"] == ["even", "odd"]


# -- one options value ----------------------------------------------------------------------


def test_options_value_validates_and_hides_the_key(tmp_path):
    opts = LocalAPIOptions(synthetic=10, api_key="sk-hidden", forbidden_ids=("a", "b"))
    assert opts.forbidden_ids == ("a", "b") and "sk-hidden" not in repr(opts)
    assert "sk-hidden" not in " ".join(command_line(opts))
    assert LocalAPIOptions.from_argv(opts.to_argv()) == opts.replace(api_key=None)
    for bad in (
        {"latency": -1},
        {"latency": float("nan")},
        {"browse_quirk": "nope"},
        {"synthetic": -5},
        {"port": 70000},
        {"record_cache_bytes": "big"},
        {"forbidden_ids": "abc"},
    ):
        with pytest.raises(ConfigError):
            LocalAPIOptions(**bad)
    with pytest.raises(TypeError, match="colour"):
        LocalAPI(colour="red")


def test_one_options_value_drives_every_entry_point(local_api_factory):
    opts = LocalAPIOptions(synthetic=7, light=True, latency=0.0)
    api = local_api_factory(options=opts)
    assert api.options == opts and len(browse(api, recursive="true")["media"]) == 7
    assert local_api_factory(options=opts, synthetic=3).options.synthetic == 3
    parsed = build_parser().parse_args(["--synthetic", "7", "--light"])
    assert LocalAPIOptions.from_namespace(parsed) == opts
    fields = [f.name for f in dataclasses.fields(LocalAPIOptions)]
    assert [spec.name for spec in option_specs()] == fields
    from coreviz_frames.cli.serve import serve

    assert sorted(p.name for p in serve.params) == sorted(fields)
    with LocalAPIProcess(options=opts.replace(api_key=KEY)) as server:
        page = get(
            f"{server.base_url}/dataset/synthetic/media",
            params={"recursive": "true"},
            headers={"x-api-key": KEY},
        ).json()
        assert page["pagination"]["total"] == 7
        assert "frames" in page["media"][0] and "captions" not in page["media"][0]["frames"][0]


def test_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert LocalAPIOptions().with_environment().api_key == "from-env"
    assert LocalAPIOptions(api_key="given").with_environment().api_key == "given"


def test_request_handler_serves_any_application():
    """The HTTP plumbing knows the application only by its public methods."""

    class Echo:
        stats = ServerStats()
        stopping = threading.Event()

        def counted(self, request: Request) -> bool:
            return True

        def respond(self, request: Request) -> Reply:
            return Reply(200, [request.path.encode()], "text/plain", {"X-Role": request.role})

    server = HTTPServer(("127.0.0.1", 0), Echo(), "test")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        response = get(f"http://127.0.0.1:{server.server_address[1]}/hello?x=1")
        assert response.text == "/hello" and response.headers["X-Role"] == "test"
        assert Echo.stats.paths["/hello"] == 1
    finally:
        server.shutdown()
        server.server_close()


def test_random_faults_for_soaks(local_api_factory):
    api = local_api_factory(synthetic=20, fault_rate=0.3, fault_seed=7)
    ids = [api.collection.media_id(i) for i in range(20)]
    outcomes: list[int | str] = []
    for _ in range(10):
        for media_id in ids:
            try:
                response = get(f"{api.base_url}/media/{media_id}")
            except requests.ConnectionError:
                outcomes.append("drop")
                continue
            outcomes.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "0.1"
    share = 1 - outcomes.count(200) / len(outcomes)
    assert 0.2 < share < 0.4
    assert {429, 500, 503, "drop"} <= set(outcomes)
    assert get(f"{api.blob_url}/nope.jpg").status_code == 404  # blobs are not faulted
    with pytest.raises(ConfigError):
        LocalAPIOptions(fault_rate=1.5)
    assert "--fault-rate" in command_line(synthetic=5, fault_rate=0.25)

"""Client.iter_media / iter_pages / browse against real servers on 127.0.0.1.

Precise pagination quirks use the scripted server of ``test_http.py``; the tests at the end
run against ``coreviz_frames.local_api`` (skipped until that module exists).
"""

from __future__ import annotations

import json
import time
import warnings
from datetime import date, datetime

import pytest
from helpers import KEY, ScriptedServer, fast_client, media_body

import coreviz_frames as cvf
from coreviz_frames.api.client import FailedFetch, FetchReport, MediaIterator
from coreviz_frames.errors import (
    AuthenticationError,
    ConfigError,
    InvalidResponseError,
    NotFoundError,
    PaginationWarning,
    PermissionDeniedError,
    ServerError,
)
from coreviz_frames.http import transport as cvhttp

COLLECTION = "col1"
PAGES = f"/api/dataset/{COLLECTION}/media"


def make_items(n: int = 25) -> list[dict]:
    """n rows: every 6th a folder, the rest media with full frames."""
    items = []
    for i in range(n):
        if i % 6 == 5:
            items.append({"id": f"folder{i}", "type": "folder", "blob": "folder"})
        else:
            frame = {"id": f"f{i}", "timestamp": "0", "captions": [], "objects": []}
            items.append({"id": f"m{i}", "type": "image", "frames": [frame]})
    return items


def light(item: dict) -> dict:
    if item["type"] == "folder":
        return item
    if int(item["id"][1:]) % 2:
        return {k: v for k, v in item.items() if k != "frames"}
    return {**item, "frames": [{"id": f["id"], "timestamp": "0"} for f in item["frames"]]}


def collection_route(items, *, quirk=None, light_items=False, max_limit=None):
    by_id = {it["id"]: it for it in items}

    def route(path: str, query: dict):
        if path == PAGES:
            limit = int(query.get("limit", 10))
            if max_limit:
                limit = min(limit, max_limit)
            offset = int(query.get("offset", 0))
            if quirk == "repeat_page":
                offset = 0
            page = items[offset : offset + limit]
            if light_items:
                page = [light(it) for it in page]
            total = len(items)
            has_more = offset + limit < total
            if quirk == "has_more_forever":
                has_more = True
            elif quirk == "wrong_total_low":
                total -= 7
            elif quirk == "wrong_total_high":
                total += 50
            pagination = {"total": total, "limit": limit, "offset": offset, "hasMore": has_more}
            body = {"media": page}
            if quirk != "no_pagination":
                body["pagination"] = pagination
            return (200, {}, body)
        if path.startswith("/api/media/"):
            media_id = path.rsplit("/", 1)[1]
            if media_id in by_id:
                return (200, {}, {"media": {**by_id[media_id], "hydrated": True}})
            return (404, {}, {"error": "Media not found"})
        return (404, {}, {"error": "Not found"})

    return route


@pytest.fixture
def collection_server():
    servers = []

    def make(items=None, *, latency=0.0, **kwargs):
        items = make_items() if items is None else items
        srv = ScriptedServer(collection_route(items, **kwargs), latency=latency)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def media_ids(items):
    return [it["id"] for it in items if it["type"] != "folder"]


# ----------------------------------------------------------------------------- iter_media


def test_iter_media_is_concurrent_bounded_and_ordered():
    srv = ScriptedServer(lambda p, q: (200, {}, media_body(p.rsplit("/", 1)[1])), latency=0.03)
    try:
        ids = [f"id{i:03d}" for i in range(200)]
        with fast_client(srv.base_url, max_workers=8) as client:
            it = client.iter_media(reversed(ids), progress=False)
            assert isinstance(it, MediaIterator)
            got = [rec["id"] for rec in it]
        assert got == ids[::-1]
        assert 1 < srv.max_in_flight <= 8
        assert srv.requests == 200
        assert it.report == FetchReport(succeeded=200, failed=[])
        assert client.last_report is it.report and it.report.ok
    finally:
        srv.close()


def test_iter_media_is_lazy_and_fetches_duplicates_once(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url, max_workers=4) as client:
        it = client.iter_media(["m0", "m1", "m0", "m2", "m1"], progress=False)
        assert srv.requests == 0  # nothing until iterated
        assert [r["id"] for r in it] == ["m0", "m1", "m2"]
        assert it.media_ids == ["m0", "m1", "m2"]
    assert srv.paths["/api/media/m0"] == 1 and srv.requests == 3


def test_iter_media_bounded_look_ahead_and_early_close():
    srv = ScriptedServer(lambda p, q: (200, {}, media_body(p.rsplit("/", 1)[1])), latency=0.01)
    try:
        with fast_client(srv.base_url, max_workers=4) as client:
            it = client.iter_media([f"id{i}" for i in range(500)], progress=False)
            first = [next(it) for _ in range(5)]
            it.close()
            assert [r["id"] for r in first] == [f"id{i}" for i in range(5)]
            with pytest.raises(StopIteration):
                next(it)
        assert srv.requests <= 5 + 2 * 4 + 4  # window of 2 * max_workers, never all 500
    finally:
        srv.close()


def test_iter_media_skip_reports_every_failed_id(collection_server):
    srv = collection_server()
    srv.script("/api/media/m3", *[(503, {}, {"error": "busy"})] * 3)
    ids = ["m0", "nope1", "m1", "m3", "nope2", "m2"]
    with fast_client(srv.base_url, retries=1, max_workers=3) as client:
        it = client.iter_media(ids, on_error="skip", progress=False)
        got = [r["id"] for r in it]
    assert got == ["m0", "m1", "m2"]
    report = it.report
    assert report.succeeded == 3 and report.failed_ids == ["nope1", "m3", "nope2"]
    assert [(f.status, f.error_type) for f in report.failed] == [
        (404, "NotFoundError"),
        (503, "ServerError"),
        (404, "NotFoundError"),
    ]
    assert all(f.media_id in f.reason for f in report.failed)
    assert "Media not found" in report.failed[0].reason
    assert isinstance(report.failed[0], FailedFetch) and not report.ok


def test_iter_media_raise_stops_at_first_failure_in_order(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url, max_workers=2) as client:
        it = client.iter_media(["m0", "nope", "m1"], progress=False)
        assert next(it)["id"] == "m0"
        with pytest.raises(NotFoundError, match="nope"):
            next(it)


def test_iter_media_rejects_bad_options(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url) as client:
        with pytest.raises(ConfigError):
            client.iter_media(["m0"], on_error="ignore")
        with pytest.raises(ConfigError):
            client.iter_media("m0")
        assert list(client.iter_media([])) == []
    assert srv.requests == 0


# ----------------------------------------------------------------------------- browse


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_browse_yields_every_media_once_in_order(collection_server, page_size):
    items = make_items(25)
    srv = collection_server(items)
    with fast_client(srv.base_url, max_workers=4) as client, warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [r["id"] for r in client.browse(COLLECTION, page_size=page_size, progress=False)]
    assert got == media_ids(items)
    assert srv.paths["/api/media/m0"] == 0  # full items are not hydrated
    offsets = sorted(int(q["offset"]) for p, q in srv.queries if p == PAGES)
    assert offsets == list(range(0, 25, page_size))


def test_later_pages_are_fetched_concurrently(collection_server):
    items = make_items(60)
    srv = collection_server(items, latency=0.03)
    with fast_client(srv.base_url, max_workers=4) as client:
        got = [r["id"] for r in client.browse(COLLECTION, page_size=5, progress=False)]
    assert got == media_ids(items)
    assert 1 < srv.max_in_flight <= 4


def test_iter_pages_returns_raw_pages_with_folders(collection_server):
    items = make_items(25)
    srv = collection_server(items)
    with fast_client(srv.base_url) as client:
        pages = list(client.iter_pages(COLLECTION, page_size=10, progress=False))
    assert [len(p["media"]) for p in pages] == [10, 10, 5]
    assert [p["pagination"]["offset"] for p in pages] == [0, 10, 20]
    assert [m["id"] for p in pages for m in p["media"]] == [it["id"] for it in items]


def test_browse_deduplicates_across_pages(collection_server):
    items = make_items(12)
    items.insert(7, dict(items[2]))  # m2 appears again on the next page
    srv = collection_server(items)
    with fast_client(srv.base_url) as client:
        got = [r["id"] for r in client.browse(COLLECTION, page_size=5, progress=False)]
    assert got == list(dict.fromkeys(media_ids(items)))


@pytest.mark.parametrize("quirk", ["repeat_page", "has_more_forever"])
def test_pagination_quirks_terminate_with_a_warning(collection_server, quirk):
    items = make_items(25)
    srv = collection_server(items, quirk=quirk)
    client = fast_client(srv.base_url, max_workers=4)
    with client, pytest.warns(PaginationWarning, match="repeats|empty page"):
        got = [r["id"] for r in client.browse(COLLECTION, page_size=10, progress=False)]
    expected = media_ids(items[:10]) if quirk == "repeat_page" else media_ids(items)
    assert got == expected
    assert srv.requests < 40


@pytest.mark.parametrize("quirk", ["wrong_total_low", "wrong_total_high"])
def test_wrong_total_is_reported_and_everything_is_still_fetched(collection_server, quirk):
    items = make_items(25)
    srv = collection_server(items, quirk=quirk)
    client = fast_client(srv.base_url, max_workers=4)
    with client, pytest.warns(PaginationWarning, match="total"):
        got = [r["id"] for r in client.browse(COLLECTION, page_size=4, progress=False)]
    assert got == media_ids(items)


def test_missing_pagination_and_capped_limit(collection_server):
    items = make_items(25)
    for kwargs in ({"quirk": "no_pagination"}, {"max_limit": 7}):
        srv = collection_server(items, **kwargs)
        with fast_client(srv.base_url, max_workers=4) as client, warnings.catch_warnings():
            warnings.simplefilter("error")
            got = [r["id"] for r in client.browse(COLLECTION, page_size=10, progress=False)]
        assert got == media_ids(items), kwargs


def test_max_items_caps_the_walk(collection_server):
    items = make_items(200)
    srv = collection_server(items)
    with fast_client(srv.base_url, max_workers=2) as client:
        got = [r["id"] for r in client.browse(COLLECTION, page_size=10, max_items=13)]
        assert got == media_ids(items)[:13]
        assert srv.paths[PAGES] <= 4
        pages = list(client.iter_pages(COLLECTION, page_size=10, max_items=13))
        assert [len(p["media"]) for p in pages] == [10, 3]
        assert list(client.browse(COLLECTION, max_items=0)) == []


@pytest.mark.parametrize(
    ("hydrate", "expected_gets"), [("auto", "light"), (True, "all"), (False, "none")]
)
def test_hydrate(collection_server, hydrate, expected_gets):
    items = make_items(25)
    srv = collection_server(items, light_items=True)
    with fast_client(srv.base_url, max_workers=4) as client:
        recs = list(client.browse(COLLECTION, page_size=7, hydrate=hydrate, progress=False))
    assert [r["id"] for r in recs] == media_ids(items)
    gets = sum(n for p, n in srv.paths.items() if p.startswith("/api/media/"))
    n_media = len(media_ids(items))
    assert gets == {"light": n_media, "all": n_media, "none": 0}[expected_gets]
    if hydrate is False:
        assert not any(r.get("hydrated") for r in recs)
    else:
        assert all(r["hydrated"] and "captions" in r["frames"][0] for r in recs)


def test_hydrate_auto_only_fetches_incomplete_items(collection_server):
    items = make_items(12)
    route = collection_route(items)

    def mixed(path, query):
        status, headers, body = route(path, query)
        if path == PAGES:
            body["media"] = [light(m) if m["id"] in ("m1", "m2") else m for m in body["media"]]
        return status, headers, body

    srv = ScriptedServer(mixed)
    try:
        with fast_client(srv.base_url) as client:
            recs = list(client.browse(COLLECTION, progress=False))
        assert [r["id"] for r in recs] == media_ids(items)
        fetched = sorted(p for p in srv.paths if p.startswith("/api/media/"))
        assert fetched == ["/api/media/m1", "/api/media/m2"]
    finally:
        srv.close()


def test_query_encoding(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url) as client:
        list(client.iter_pages(COLLECTION, page_size=50))
        list(
            client.iter_pages(
                COLLECTION,
                path=f"{COLLECTION}.folderA",
                recursive=False,
                type="image",
                tag_filters={"color": ["red", "blue"], "season": "spring"},
                date_from=date(2026, 1, 2),
                date_to=datetime(2026, 3, 4, 5, 6),
                q="red shoe",
                similar_to_object_id="obj_1",
                sort_by="name",
                sort_direction="desc",
                page_size=30,
            )
        )
    (_, plain), (_, full) = [(p, q) for p, q in srv.queries if p == PAGES]
    assert plain == {
        "recursive": "true",
        "sortBy": "createdAt",
        "sortDirection": "asc",
        "limit": "50",
        "offset": "0",
    }
    assert json.loads(full.pop("tagFilters")) == {"color": ["red", "blue"], "season": ["spring"]}
    assert full == {
        "path": "col1.folderA",
        "type": "image",
        "dateFrom": "2026-01-02",
        "dateTo": "2026-03-04",
        "q": "red shoe",
        "similarToObjectId": "obj_1",
        "sortBy": "name",
        "sortDirection": "desc",
        "limit": "30",
        "offset": "0",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"date_from": "2026/01/02"},
        {"date_to": "2026-13-40"},
        {"sort_direction": "up"},
        {"page_size": 0},
        {"max_items": -1},
        {"hydrate": "yes"},
        {"tag_filters": ["red"]},
    ],
)
def test_browse_rejects_bad_options_before_any_request(collection_server, kwargs):
    srv = collection_server()
    with fast_client(srv.base_url) as client, pytest.raises(ConfigError):
        client.browse(COLLECTION, **kwargs)
    assert srv.requests == 0


def test_browse_errors_are_typed(collection_server):
    srv = collection_server()
    srv.script(PAGES, (200, {}, {"items": []}))
    srv.script(PAGES, *[(500, {}, {"error": "db down"})] * 3)
    with fast_client(srv.base_url, retries=1) as client:
        with pytest.raises(InvalidResponseError, match="col1"):
            list(client.browse(COLLECTION))
        with pytest.raises(ServerError, match="db down"):
            list(client.browse(COLLECTION))


def test_browse_skips_and_reports_items_that_cannot_be_hydrated(collection_server):
    items = make_items(12)
    srv = collection_server(items, light_items=True)
    srv.script("/api/media/m1", (404, {}, {"error": "Media not found"}))
    srv.script("/api/media/m3", (403, {}, {"error": "Forbidden"}))
    with fast_client(srv.base_url) as client:
        it = client.browse(COLLECTION, page_size=5, progress=False)
        with pytest.warns(UserWarning) as caught:
            got = [r["id"] for r in it]
    assert sorted(str(w.message).split("'")[3] for w in caught) == ["m1", "m3"]
    assert got == [i for i in media_ids(items) if i not in ("m1", "m3")]
    assert it.report.failed_ids == ["m1", "m3"]
    assert [f.status for f in it.report.failed] == [404, 403]
    assert it.report.succeeded == len(got)


def test_client_from_package_namespace():
    assert cvf.Client is cvf.api.client.Client and cvf.FetchReport is FetchReport
    assert "Client" in cvf.__all__ and "FetchReport" in cvf.__all__
    assert KEY not in repr(cvf.Client(api_key=KEY))


# ----------------------------------------------------------------------------- local API

try:
    from coreviz_frames import local_api as _local_api  # noqa: F401
    from coreviz_frames.local_api import LocalAPI

    HAVE_LOCAL_API = True
except Exception:  # the module is being built by another engineer
    HAVE_LOCAL_API = False

needs_local_api = pytest.mark.skipif(not HAVE_LOCAL_API, reason="local_api not available")


@needs_local_api
@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_local_api_browse_sample_every_media_once(page_size):
    with LocalAPI(api_key=KEY) as api, fast_client(api.base_url, max_workers=4) as client:
        pages = list(client.iter_pages(api.collection_id, page_size=100, progress=False))
        expected = [m["id"] for p in pages for m in p["media"] if m.get("type") != "folder"]
        got = [
            r["id"] for r in client.browse(api.collection_id, page_size=page_size, progress=False)
        ]
    assert got == expected and len(got) == len(set(got)) and got


@needs_local_api
@pytest.mark.parametrize("quirk", ["repeat_page", "has_more_forever"])
def test_local_api_quirks_terminate(quirk):
    with LocalAPI(api_key=KEY, browse_quirk=quirk) as api, pytest.warns(PaginationWarning):
        client = fast_client(api.base_url)
        recs = list(client.browse(api.collection_id, page_size=3, progress=False))
        client.close()
    assert recs


@needs_local_api
def test_local_api_light_items_are_hydrated():
    with LocalAPI(api_key=KEY, light=True) as api, fast_client(api.base_url) as client:
        recs = list(client.browse(api.collection_id, page_size=5, progress=False))
        gets = [p for p in api.stats.paths if p.startswith("/api/media/")]
        assert recs and gets
        for rec in recs:
            full = client.get_media(rec["id"])
            assert {k: rec[k] for k in full} == full


@needs_local_api
def test_local_api_iter_media_concurrent_and_faults():
    with LocalAPI(api_key=KEY, synthetic=200, latency=0.02) as api:
        with fast_client(api.base_url, max_workers=8, retries=2) as client:
            ids = [r["id"] for r in client.browse(api.collection_id, hydrate=False, progress=False)]
            assert len(ids) == 200
            api.reset_stats()
            api.add_fault(f"/api/media/{ids[5]}", status=503, count=2)
            it = client.iter_media([*ids, "doesnotexist"], on_error="skip", progress=False)
            got = [r["id"] for r in it]
        assert got == ids
        assert 1 < api.stats.max_in_flight <= 8
        assert it.report.failed_ids == ["doesnotexist"]
        assert all(h.get("x-api-key", KEY) == KEY for _, h in api.stats.headers)


@needs_local_api
def test_local_api_auth_errors_are_typed_and_not_retried():
    with LocalAPI(synthetic=5, api_key=KEY) as api:
        ids = [r["id"] for r in fast_client(api.base_url).browse(api.collection_id)]
    with LocalAPI(synthetic=5, api_key=KEY, forbidden_ids=[ids[1]]) as api:
        api.add_fault("/api/media/", status=429, count=1, retry_after=0)
        with fast_client(api.base_url, retries=2) as client:
            assert client.get_media(ids[0])["id"] == ids[0]  # after one 429
            api.reset_stats()
            with pytest.raises(PermissionDeniedError, match=ids[1]):
                client.get_media(ids[1])
            assert api.stats.requests == 1
        client = fast_client(api.base_url, api_key="wrong-key")
        with client, pytest.raises(AuthenticationError, match=ids[0]):
            client.get_media(ids[0])
        with fast_client(api.base_url, token=KEY, api_key=None) as client:
            assert client.get_media(ids[2])["id"] == ids[2]


def test_full_records_with_sparse_frames_are_not_fetched_again(sample_api):
    """The sample has frames without `captions` or `objects` keys next to frames with them
    (brick, gravel, the video): those records are complete, so browse must not spend a Get
    Media on each. Only the PDF, whose page frames carry neither key, cannot be told apart
    from a light item and is fetched."""
    sample_api.reset_stats()
    with cvf.Client(api_key="k", base_url=sample_api.base_url) as client:
        records = list(client.browse(sample_api.collection_id, progress=False))
    assert len(records) == 15
    fetched = [p.rsplit("/", 1)[1] for p in sample_api.stats.paths if p.startswith("/api/media/")]
    assert fetched == [r["id"] for r in records if r["type"] == "pdf"]


# ----------------------------------------------------------------------------- issue 10


def endless_route(announced_total: int = 30):
    """``hasMore: true`` forever, with new ids on every page, and a total that lies."""

    def route(path: str, query: dict):
        if path == PAGES:
            limit, offset = int(query.get("limit", 10)), int(query.get("offset", 0))
            page = [
                {"id": f"m{i}", "type": "image", "frames": []}
                for i in range(offset, offset + limit)
            ]
            pagination = {"total": announced_total, "offset": offset, "hasMore": True}
            return (200, {}, {"media": page, "pagination": pagination})
        return (404, {}, {"error": "Not found"})

    return route


@pytest.mark.parametrize("quirk", ["repeat_page", "has_more_forever"])
def test_a_walk_cut_short_is_reported_incomplete(collection_server, quirk):
    srv = collection_server(make_items(25), quirk=quirk)
    with fast_client(srv.base_url, max_workers=4) as client:
        it = client.browse(COLLECTION, page_size=10, progress=False)
        pages = client.iter_pages(COLLECTION, page_size=10, progress=False)
        with pytest.warns(PaginationWarning):
            list(it)
            list(pages)
    for report in (it.report, pages.report):
        assert report.complete is False and not report.ok
        assert "repeats" in report.incomplete_reason or "empty page" in report.incomplete_reason


def test_a_finished_walk_is_complete(collection_server):
    srv = collection_server(make_items(25))
    with fast_client(srv.base_url, max_workers=4) as client:
        it = client.browse(COLLECTION, page_size=10, progress=False)
        assert it.report.complete is False  # not before it ran
        list(it)
        capped = client.browse(COLLECTION, page_size=10, max_items=3, progress=False)
        list(capped)
        pages = client.iter_pages(COLLECTION, page_size=10, progress=False)
        list(pages)
        media = client.iter_media(["m0", "nope"], on_error="skip", progress=False)
        list(media)
    for report in (it.report, capped.report, pages.report, media.report):
        assert report.complete is True and report.incomplete_reason is None
    assert pages.report.succeeded == 25 and it.report.ok and not media.report.ok


def test_a_wrong_total_alone_is_not_fatal(collection_server):
    srv = collection_server(make_items(25), quirk="wrong_total_low")
    with fast_client(srv.base_url) as client, pytest.warns(PaginationWarning, match="total"):
        it = client.browse(COLLECTION, page_size=4, progress=False)
        list(it)
    assert it.report.complete is True


def test_a_fatal_error_or_an_early_close_leaves_the_walk_incomplete(collection_server):
    srv = collection_server(make_items(25))
    srv.script(PAGES, (200, {}, {"media": [], "pagination": {"hasMore": True}}))
    srv.script(PAGES, (500, {}, {"error": "db down"}))
    srv.script(PAGES, (500, {}, {"error": "db down"}))
    with fast_client(srv.base_url, retries=1) as client:
        with pytest.warns(PaginationWarning):
            first = client.browse(COLLECTION, progress=False)
            assert list(first) == []
        broken = client.browse(COLLECTION, progress=False)
        with pytest.raises(ServerError):
            list(broken)
        closed = client.browse(COLLECTION, page_size=5, progress=False)
        next(closed)
        closed.close()
        failing = client.iter_media(["m0", "nope"], progress=False)
        with pytest.raises(NotFoundError):
            list(failing)
    assert "empty page" in first.report.incomplete_reason
    assert broken.report.complete is False and "ServerError" in broken.report.incomplete_reason
    assert closed.report.complete is False and "closed" in closed.report.incomplete_reason
    assert failing.report.complete is False and "nope" in failing.report.incomplete_reason


def _walk_until(iterator, limit: int = 20_000) -> int:
    """Consume ``iterator``; fail (instead of hanging) if it passes ``limit`` items."""
    for n, _ in enumerate(iterator, 1):
        if n > limit:
            pytest.fail(f"the walk did not stop after {limit} items")
    return n


def test_has_more_forever_with_new_ids_stops_past_the_total():
    srv = ScriptedServer(endless_route(announced_total=30))
    try:
        with fast_client(srv.base_url, max_workers=4) as client:
            it = client.browse(COLLECTION, page_size=50, hydrate=False, progress=False)
            with pytest.warns(PaginationWarning, match="max_overrun"):
                n = _walk_until(it)
            assert 30 < n <= 30 + 1000 + 50  # the default allowance: max(total, 1000)
            assert it.report.complete is False and "announced total of 30" in (
                it.report.incomplete_reason
            )
            raised = client.iter_pages(COLLECTION, page_size=50, max_overrun=100, progress=False)
            with pytest.warns(PaginationWarning):
                rows = sum(len(p["media"]) for p in raised)
            assert rows <= 30 + 100 and raised.report.complete is False
    finally:
        srv.close()


def test_max_overrun_is_validated(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url) as client:
        for bad in (-1, 1.5, True):
            with pytest.raises(ConfigError, match="max_overrun"):
                client.browse(COLLECTION, max_overrun=bad)
    assert srv.requests == 0


def test_browse_exclude_skips_hydration_and_yield(collection_server):
    items = make_items(25)
    srv = collection_server(items, light_items=True)
    with fast_client(srv.base_url, max_workers=4) as client:
        it = client.browse(COLLECTION, page_size=7, progress=False)
        it.exclude({"m1", "m2", "m13", "unknown"})
        got = [r["id"] for r in it]
        with pytest.raises(ConfigError, match="before"):
            it.exclude({"m3"})
    assert got == [i for i in media_ids(items) if i not in ("m1", "m2", "m13")]
    assert it.report.excluded == 3 and it.report.complete
    assert srv.paths["/api/media/m1"] == 0 and srv.paths["/api/media/m13"] == 0


def test_exclude_compares_normalised_ids():
    uuid = "7938B58D-D60A-43D8-953F-4F56B3CD8410"
    other = "0000b58d-d60a-43d8-953f-4f56b3cd8410"
    srv = ScriptedServer(lambda p, q: (200, {}, media_body(p.rsplit("/", 1)[1])))
    try:
        with fast_client(srv.base_url) as client:
            it = client.iter_media([uuid, other, "plain"], progress=False)
            it.exclude({"7938b58dd60a43d8953f4f56b3cd8410", "plain"})
            assert [r["id"] for r in it] == [other]
        assert it.report.excluded == 2 and srv.requests == 1
    finally:
        srv.close()


def test_iter_media_exclude_fetches_only_the_rest(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url, max_workers=2) as client:
        it = client.iter_media(["m0", "m1", "m2", "m3"], progress=False)
        it.exclude(frozenset({"m1", "m3"}))
        assert [r["id"] for r in it] == ["m0", "m2"]
        nothing = client.iter_media(["m0"], progress=False)
        nothing.exclude({"m0"})
        assert list(nothing) == [] and nothing.report.complete
    assert srv.requests == 2 and it.report.excluded == 2 and it.report.succeeded == 2


def test_a_persistent_failure_of_one_media_is_recorded_not_fatal(collection_server):
    items = make_items(12)
    srv = collection_server(items, light_items=True)
    srv.script("/api/media/m1", *[(503, {}, {"error": "busy"})] * 3)
    srv.script("/api/media/m3", *[("drop",)] * 3)
    srv.script("/api/media/m4", *[(429, {}, {"error": "slow down"})] * 3)
    with fast_client(srv.base_url, retries=1) as client:
        it = client.browse(COLLECTION, page_size=5, progress=False)
        with pytest.warns(cvf.SkippedRecordWarning):
            got = [r["id"] for r in it]
    assert got == [i for i in media_ids(items) if i not in ("m1", "m3", "m4")]
    assert [(f.media_id, f.status, f.error_type) for f in it.report.failed] == [
        ("m1", 503, "ServerError"),
        ("m3", None, "NetworkError"),
        ("m4", 429, "RateLimitError"),
    ]
    assert it.report.complete and not it.report.ok


def test_an_authentication_error_while_hydrating_is_still_fatal(collection_server):
    srv = collection_server(make_items(12), light_items=True)
    srv.script("/api/media/m1", (401, {}, {"error": "Unauthorized"}))
    with fast_client(srv.base_url) as client, pytest.raises(AuthenticationError):
        list(client.browse(COLLECTION, page_size=5, progress=False))


def test_errors_keyword_is_deprecated_but_works(collection_server):
    srv = collection_server()
    with fast_client(srv.base_url) as client:
        with pytest.warns(DeprecationWarning, match="on_error"):
            it = client.iter_media(["m0", "nope"], errors="skip", progress=False)
        assert [r["id"] for r in it] == ["m0"] and it.report.failed_ids == ["nope"]
        with pytest.raises(ConfigError), pytest.warns(DeprecationWarning):
            client.iter_media(["m0"], on_error="raise", errors="skip")


@needs_local_api
def test_local_api_total_that_under_reports_stops_as_incomplete_unless_raised():
    api = LocalAPI(api_key=KEY, synthetic=400, browse_quirk="low_total")
    with api, fast_client(api.start().base_url, max_workers=4) as client:
        cut = client.browse(api.collection_id, hydrate=False, max_overrun=50, progress=False)
        with pytest.warns(PaginationWarning, match="announced total of 100"):
            assert _walk_until(cut) <= 150
        assert cut.report.complete is False
        full = client.browse(api.collection_id, hydrate=False, max_overrun=300, progress=False)
        with pytest.warns(PaginationWarning, match="total=100"):
            assert _walk_until(full) == 400
        assert full.report.complete is True


@needs_local_api
def test_local_api_hydration_faults_are_recorded():
    api = LocalAPI(api_key=KEY, synthetic=30, light=True)
    with api, fast_client(api.start().base_url, max_workers=4, retries=1) as client:
        ids = [r["id"] for r in client.browse(api.collection_id, hydrate=False)]
        api.add_fault(f"/api/media/{ids[3]}", status=500, count=5)
        api.add_fault(f"/api/media/{ids[7]}", drop=True, count=5)
        it = client.browse(api.collection_id, page_size=10, progress=False)
        with pytest.warns(cvf.SkippedRecordWarning):
            got = [r["id"] for r in it]
    assert got == [i for i in ids if i not in (ids[3], ids[7])]
    assert [(f.media_id, f.status) for f in it.report.failed] == [(ids[3], 500), (ids[7], None)]
    assert it.report.complete


def _slow_retry_client(base_url: str, **kwargs) -> cvf.Client:
    """Five retries with a back-off of seconds: without cancellation, a 503 keeps the
    server busy for most of a minute."""
    session = cvhttp.build_session(retries=5, backoff_factor=0.5, backoff_max=4)
    return cvf.Client(api_key=KEY, base_url=base_url, session=session, retries=5, **kwargs)


def _assert_quiet(srv: ScriptedServer) -> None:
    time.sleep(0.5)  # requests already on the wire land
    seen = srv.requests
    time.sleep(3)
    assert srv.requests == seen, "requests went on after the fatal error"


def test_a_fatal_error_in_iter_media_cancels_outstanding_requests():
    def route(path, query):
        if path == "/api/media/bad":
            return (404, {}, {"error": "Media not found"})
        return (503, {}, {"error": "busy"})

    srv = ScriptedServer(route)
    try:
        with _slow_retry_client(srv.base_url, max_workers=4) as client:
            it = client.iter_media(["bad", *[f"s{i}" for i in range(20)]], progress=False)
            with pytest.raises(NotFoundError, match="bad"):
                list(it)
            _assert_quiet(srv)
        # Without cancellation every id is tried 6 times (126 requests over most of a minute).
        # With it, the ids in flight when the 404 lands finish their current attempt; on a
        # loaded machine the 404 can be seen a few back-off rounds late, so the bound is half
        # of the uncancelled count, not a count of in-flight requests.
        assert srv.requests < 63
        assert it.report.complete is False
    finally:
        srv.close()


def test_a_fatal_page_error_in_browse_cancels_outstanding_hydrations():
    def route(path, query):
        if path == PAGES:
            if query.get("offset", "0") != "0":
                return (403, {}, {"error": "Forbidden"})
            media = [{"id": f"s{i}", "type": "image"} for i in range(5)]  # light: hydrated
            return (200, {}, {"media": media, "pagination": {"total": 10, "hasMore": True}})
        return (503, {}, {"error": "busy"})

    srv = ScriptedServer(route)
    try:
        with _slow_retry_client(srv.base_url, max_workers=4) as client:
            it = client.browse(COLLECTION, page_size=5, progress=False)
            with pytest.raises(PermissionDeniedError):
                list(it)
            _assert_quiet(srv)
        assert "PermissionDeniedError" in it.report.incomplete_reason
    finally:
        srv.close()


def test_closing_the_client_stops_its_requests():
    srv = ScriptedServer(lambda path, query: (503, {}, {"error": "busy"}))
    try:
        client = _slow_retry_client(srv.base_url, max_workers=2)
        it = client.iter_media(["s1", "s2"], on_error="skip", progress=False)
        import threading

        done = threading.Event()
        worker = threading.Thread(target=lambda: (list(it), done.set()), daemon=True)
        worker.start()
        time.sleep(0.3)
        client.close()
        assert done.wait(10), "iteration still running 10 s after close()"
        assert [f.error_type for f in it.report.failed] == ["RequestCancelledError"] * 2
        _assert_quiet(srv)
    finally:
        srv.close()


@needs_local_api
def test_local_api_exclude_fetches_nothing_already_had():
    api = LocalAPI(api_key=KEY, synthetic=40, light=True)
    with api, fast_client(api.start().base_url, max_workers=4) as client:
        ids = [r["id"] for r in client.browse(api.collection_id, hydrate=False)]
        done = set(ids[::2])
        api.reset_stats()
        it = client.browse(api.collection_id, page_size=10, progress=False)
        it.exclude(done)
        got = [r["id"] for r in it]
        gets = {p.rsplit("/", 1)[1] for p in api.stats.paths if p.startswith("/api/media/")}
        again = client.iter_media(ids, progress=False)
        again.exclude(done)
        assert [r["id"] for r in again] == ids[1::2]
    assert got == ids[1::2] and gets == set(ids[1::2])
    assert it.report.excluded == again.report.excluded == 20

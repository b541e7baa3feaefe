"""Client.fetch_page: one raw page of a collection, against the local API on 127.0.0.1."""

from __future__ import annotations

import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, InvalidIdError, ServerError


@pytest.fixture
def client(sample_api):
    with cvf.Client(api_key="k", base_url=sample_api.base_url, retries=2) as c:
        yield c


def test_fetch_page_matches_iter_pages(client, sample_api):
    cid = sample_api.collection_id
    pages = list(client.iter_pages(cid, page_size=7, progress=False))
    total = pages[0]["pagination"]["total"]
    walked = [m["id"] for p in pages for m in p["media"]]
    fetched = []
    for offset in range(0, total, 7):
        page = client.fetch_page(cid, offset=offset, limit=7)
        assert page["pagination"]["total"] == total
        assert page["pagination"]["offset"] == offset
        fetched += [m["id"] for m in page["media"]]
    assert fetched == walked
    assert any(m.get("type") == "folder" for p in pages for m in p["media"])


def test_fetch_page_limit_one_and_filters(client, sample_api):
    cid = sample_api.collection_id
    first = client.fetch_page(cid, offset=0, limit=1)
    assert len(first["media"]) == 1
    images = client.fetch_page(cid, offset=0, limit=1000, type="image")
    assert images["media"] and all(m["type"] == "image" for m in images["media"])
    beyond = client.fetch_page(cid, offset=first["pagination"]["total"], limit=5)
    assert beyond["media"] == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"offset": -1}, ConfigError),
        ({"limit": 0}, ConfigError),
        ({"limit": True}, ConfigError),
        ({"sort_direction": "up"}, ConfigError),
    ],
)
def test_fetch_page_validates(client, sample_api, kwargs, error):
    with pytest.raises(error):
        client.fetch_page(sample_api.collection_id, **kwargs)


def test_fetch_page_refuses_bad_id_and_retries(local_api_factory):
    api = local_api_factory(synthetic=20)
    with cvf.Client(api_key="k", base_url=api.base_url, retries=2) as client:
        with pytest.raises(InvalidIdError):
            client.fetch_page("../x")
        prefix = f"/api/dataset/{api.collection_id}/media"
        api.add_fault(prefix, status=503, count=1)
        assert len(client.fetch_page(api.collection_id, limit=5)["media"]) == 5
        api.add_fault(prefix, status=503, count=5)
        with pytest.raises(ServerError):
            client.fetch_page(api.collection_id, limit=5)


# --------------------------------------------------------------------------- iter_range


def test_iter_range_pieces_add_up_to_browse(client, sample_api):
    cid = sample_api.collection_id
    whole = [r["id"] for r in client.browse(cid, page_size=4, progress=False)]
    pieces = [client.iter_range(cid, 0, 8, page_size=4), client.iter_range(cid, 8, 16, page_size=4)]
    pieces.append(client.iter_range(cid, 16, None, page_size=4))
    got = [r["id"] for it in pieces for r in it]
    assert got == whole
    assert all(it.report.complete and it.report.ok for it in pieces)


def test_iter_range_hydrates_like_browse_and_reads_only_its_offsets(local_api_factory):
    api = local_api_factory(synthetic=50, light=True)
    with cvf.Client(api_key="k", base_url=api.base_url) as client:
        expected = list(client.browse(api.collection_id, page_size=10, progress=False))[20:35]
        api.reset_stats()
        it = client.iter_range(api.collection_id, 20, 35, page_size=10)
        assert list(it) == expected
    pages = [p for p in api.stats.paths if p.startswith("/api/dataset/")]
    assert sum(api.stats.paths[p] for p in pages) == 2  # offsets 20 and 30 (limit 5)
    assert all("captions" in f for r in expected for f in r["frames"])


def test_iter_range_validates_its_bounds(client, sample_api):
    for start, stop in [(-1, None), (5, 2), (True, None), (0, 1.5)]:
        with pytest.raises(ConfigError):
            client.iter_range(sample_api.collection_id, start, stop)


# --------------------------------------------------------------------------- filters


def test_browse_takes_filters_as_one_value(client, sample_api):
    cid = sample_api.collection_id
    images = cvf.BrowseFilters(type="image")
    by_value = [r["id"] for r in client.browse(cid, filters=images, progress=False)]
    by_keyword = [r["id"] for r in client.browse(cid, type="image", progress=False)]
    assert by_value == by_keyword and by_value
    overridden = [r["id"] for r in client.browse(cid, filters=images, type="video")]
    assert overridden == [r["id"] for r in client.browse(cid, type="video")]
    page = client.fetch_page(cid, limit=100, filters=images)
    assert [m["id"] for m in page["media"]] == by_value
    with pytest.raises(ConfigError, match="unknown browse filters"):
        client.browse(cid, colour="red")  # type: ignore[call-arg]


def test_an_empty_range_sends_no_request(local_api_factory):
    api = local_api_factory(synthetic=10)
    with cvf.Client(api_key="k", base_url=api.base_url) as client:
        api.reset_stats()
        it = client.iter_range(api.collection_id, 5, 5)
        assert list(it) == [] and it.report.complete
        with pytest.raises(ConfigError, match="single string"):
            client.browse(api.collection_id).exclude("abc")  # type: ignore[arg-type]
    assert api.stats.requests == 0

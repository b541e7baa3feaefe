"""Fewer requests where the API allows (issue 15, item 5), against the local API on 127.0.0.1.

- A server that clamps ``limit`` (the local API's ``max_page_size``) loses nothing when
  browse asks for bigger pages than it serves: every media once, the walk complete.
- ``hydrate="auto"`` spends a Get Media only on items the page did not carry in full:
  none for a collection listed full, one per media for a light listing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests

import coreviz_frames as cvf
from coreviz_frames.api.client import needs_hydration
from coreviz_frames.errors import ConfigError
from coreviz_frames.local_api import LocalAPI
from coreviz_frames.local_api.options import LocalAPIOptions

KEY = "test-key"
PAGES = "/api/dataset/"
GET_MEDIA = "/api/media/"


def _client(api: LocalAPI) -> cvf.Client:
    return cvf.Client(api_key=KEY, base_url=api.base_url, max_workers=4, retries=1)


def _count(api: LocalAPI, prefix: str) -> int:
    return sum(n for path, n in api.stats.paths.items() if path.startswith(prefix))


def _get_media_ids(api: LocalAPI) -> Counter:
    return Counter(path.rsplit("/", 1)[1] for path in api.stats.paths if path.startswith(GET_MEDIA))


# ----------------------------------------------------------------------- max_page_size


def test_max_page_size_is_a_validated_option():
    opts = LocalAPIOptions(max_page_size=100)
    assert opts.to_argv() == ["--max-page-size", "100"]
    assert LocalAPIOptions.from_argv(opts.to_argv()) == opts
    assert LocalAPIOptions().max_page_size is None
    bad_values: tuple[Any, ...] = (0, -1, 2.5, True, "100")
    for bad in bad_values:
        with pytest.raises(ConfigError, match="max_page_size"):
            LocalAPIOptions(max_page_size=bad)


def test_server_clamps_the_limit_to_max_page_size(local_api_factory):
    api = local_api_factory(synthetic=250, api_key=KEY, max_page_size=100)
    url = f"{api.base_url}/dataset/{api.collection_id}/media"
    params = {"recursive": "true", "limit": "1000", "offset": "200"}
    page = requests.get(url, params=params, headers={"x-api-key": KEY}, timeout=30).json()
    assert len(page["media"]) == 50 and page["pagination"]["hasMore"] is False
    page = requests.get(
        url, params={**params, "offset": "0"}, headers={"x-api-key": KEY}, timeout=30
    ).json()
    assert len(page["media"]) == 100 and page["pagination"]["hasMore"] is True
    assert page["pagination"]["total"] == 250


@pytest.mark.parametrize("n_media", [1050, 1000, 99])
def test_browse_bigger_pages_than_the_server_serves_loses_nothing(local_api_factory, n_media):
    """page_size 1000 against a server clamping at 100: every media exactly once, complete."""
    reference = local_api_factory(synthetic=n_media, api_key=KEY)
    with _client(reference) as client:
        expected = [r["id"] for r in client.browse(reference.collection_id, progress=False)]
    api = local_api_factory(synthetic=n_media, api_key=KEY, max_page_size=100)
    with _client(api) as client:
        it = client.browse(api.collection_id, page_size=1000, progress=False)
        got = [r["id"] for r in it]
    assert got == expected and len(got) == n_media == len(set(got))
    assert it.report.complete is True and it.report.failed == []
    assert _count(api, PAGES) >= -(-n_media // 100)  # the server really served pages of 100
    assert _count(api, GET_MEDIA) == 0


def test_iter_range_bigger_pages_than_the_server_serves_loses_nothing(local_api_factory):
    api = local_api_factory(synthetic=700, api_key=KEY, max_page_size=64)
    with _client(api) as client:
        expected = [r["id"] for r in client.browse(api.collection_id, progress=False)]
        it = client.iter_range(api.collection_id, 130, 610, page_size=500)
        got = [r["id"] for r in it]
    assert got == expected[130:610] and it.report.complete is True


# ----------------------------------------------------------------------- hydrate="auto"


def test_sample_collection_fetches_only_what_the_listing_lacks(sample_api):
    """The sample is listed full; the only Get Media calls are for items whose every frame
    lacks both ``captions`` and ``objects`` (the PDF's pages: a light item looks the same),
    each exactly once."""
    with cvf.Client(api_key=KEY, base_url=sample_api.base_url) as client:
        listed = [
            m
            for page in client.iter_pages(sample_api.collection_id, progress=False)
            for m in page["media"]
            if m.get("type") != "folder"
        ]
        sample_api.reset_stats()
        records = list(client.browse(sample_api.collection_id, progress=False))
    fetched = _get_media_ids(sample_api)
    assert [r["id"] for r in records] == [m["id"] for m in listed]
    assert fetched == Counter(m["id"] for m in listed if needs_hydration(m))
    assert sum(fetched.values()) <= 1  # only the PDF: every other record was used as listed


def test_synthetic_collection_served_full_needs_no_get_media(local_api_factory):
    api = local_api_factory(synthetic=300, api_key=KEY)
    with _client(api) as client:
        records = list(client.browse(api.collection_id, page_size=100, progress=False))
    assert len(records) == 300
    assert _count(api, GET_MEDIA) == 0
    assert _count(api, PAGES) == 3  # the walk plans by the announced total: no page beyond


def test_light_listing_fetches_each_media_once(local_api_factory):
    api = local_api_factory(synthetic=120, api_key=KEY, light=True)
    with _client(api) as client:
        records = list(client.browse(api.collection_id, page_size=50, progress=False))
    fetched = _get_media_ids(api)
    assert len(records) == 120
    assert fetched == Counter(r["id"] for r in records)  # one Get Media per media, no more
    assert all("captions" in f for r in records for f in r["frames"])


def test_hydrate_false_and_true_bound_auto(local_api_factory):
    api = local_api_factory(synthetic=40, api_key=KEY)
    with _client(api) as client:
        list(client.browse(api.collection_id, hydrate=False, progress=False))
        assert _count(api, GET_MEDIA) == 0
        list(client.browse(api.collection_id, hydrate=True, progress=False))
        assert _count(api, GET_MEDIA) == 40

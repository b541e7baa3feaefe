"""client.search(q, collection_id=...): the collection's scored browse, as SearchResults."""

from __future__ import annotations

import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, InvalidIdError
from coreviz_frames.local_api import LocalAPI


@pytest.fixture(scope="module")
def served():
    with LocalAPI() as api, cvf.Client(api_key="k", base_url=api.base_url) as client:
        yield api, client


def test_search_in_one_collection_is_the_scored_browse(served):
    api, client = served
    results = client.search("rocket", collection_id=api.collection_id, limit=3)
    browsed = list(
        client.browse(
            api.collection_id,
            q="rocket",
            max_items=3,
            progress=False,
            sort_by=None,
            sort_direction=None,
        )
    )
    assert [r["id"] for r in browsed]  # the sample has rockets
    assert results.hits.media_id.tolist() == [r["id"] for r in browsed]
    assert results.hits["rank"].tolist() == [r["_score"] for r in browsed]
    assert results.hits.hit_rank.tolist() == list(range(1, len(browsed) + 1))
    assert results.hits.frame_id.isna().all()  # one hit per media, not per frame
    assert results.collection_id == api.collection_id
    assert f"collection_id={api.collection_id!r}" in repr(results)
    # whole records: every frame, caption and object of those media
    assert set(results.tables.media.media_id) == set(results.hits.media_id)
    assert len(results.tables.objects) == len(cvf.to_tables(browsed).objects)
    assert "rocket" in set(results.tables.objects.label)
    assert results.to_text().startswith(f"{len(browsed)} hit(s) for 'rocket'")


def test_search_in_a_collection_refuses_what_it_cannot_do(served):
    api, client = served
    with pytest.raises(ConfigError, match="not both"):
        client.search("rocket", collection_id=api.collection_id, organization_id="o1")
    with pytest.raises(InvalidIdError, match="collection id"):
        client.search("rocket", collection_id="../x")
    with pytest.raises(ConfigError, match="limit"):
        client.search("rocket", collection_id=api.collection_id, limit=0)

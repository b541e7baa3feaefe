"""Browse never surprises silently: a filter that cannot match says why; a used walk says so."""

from __future__ import annotations

import warnings

import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, CorevizWarning
from coreviz_frames.local_api import LocalAPI


@pytest.fixture(scope="module")
def served():
    with LocalAPI() as api, cvf.Client(api_key="k", base_url=api.base_url) as client:
        yield api, client


def test_a_tag_key_the_collection_lacks_warns_with_the_keys_it_has(served):
    api, client = served
    filters = cvf.BrowseFilters(tag_filters={"label": ["rocket"]})
    with pytest.warns(
        CorevizWarning,
        match=r"0 media, because tag_filters key 'label' is not a "
        r"tag key of the collection; its keys: Tags, color, motion, subject",
    ):
        records = list(client.browse(api.collection_id, filters=filters, progress=False))
    assert records == []


def test_a_tag_value_nobody_has_warns_with_the_values_of_that_key(served):
    api, client = served
    with pytest.warns(
        CorevizWarning,
        match=r"tag_filters 'color': no media has the value "
        r"'mauve'; the values of 'color': .*red",
    ):
        assert list(client.browse(api.collection_id, tag_filters={"color": "mauve"})) == []


def test_a_filter_that_matches_or_an_empty_walk_without_tag_filters_is_quiet(served):
    api, client = served
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(client.browse(api.collection_id, tag_filters={"color": "red"}, progress=False))
        assert list(client.browse(api.collection_id, type="folder", progress=False)) == []


def test_a_used_walk_says_to_call_browse_again_instead_of_yielding_nothing(served):
    api, client = served
    walk = client.browse(api.collection_id, progress=False)
    first = cvf.to_tables(walk)
    assert len(first.media) == 15
    with pytest.raises(
        ConfigError,
        match=rf"used up or closed \(it yielded 15 records\).*"
        rf"call client.browse\('{api.collection_id}', \.\.\.\) again",
    ):
        cvf.to_tables(walk)
    with pytest.raises(ConfigError, match="already used up"):
        list(walk)


def test_a_closed_or_used_media_iterator_says_so_too(served):
    api, client = served
    walk = client.browse(api.collection_id, progress=False)
    walk.close()  # closed before it started: not a silent empty walk either
    with pytest.raises(ConfigError, match="yielded 0 records"):
        list(walk)
    ids = [r["id"] for r in client.browse(api.collection_id, max_items=2, progress=False)]
    it = client.iter_media(ids)
    assert len(list(it)) == 2
    with pytest.raises(ConfigError, match=r"MediaIterator was already used up.*call the same"):
        list(it)
    partial = client.browse(api.collection_id, progress=False)
    assert next(partial)["id"]  # a walk stopped half-way goes on where it stopped
    assert len(list(partial)) == 14

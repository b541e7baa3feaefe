"""MediaTables.where / subset: every grain restricted to the same media, consistently."""

from __future__ import annotations

import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, CorevizWarning
from coreviz_frames.local_api import LocalAPI


@pytest.fixture(scope="module")
def tables() -> cvf.MediaTables:
    """The sample collection, fetched from the local API over HTTP."""
    with LocalAPI() as api, cvf.Client(api_key="k", base_url=api.base_url) as client:
        return cvf.to_tables(client.browse(api.collection_id, progress=False))


def _consistent(sub: cvf.MediaTables, full: cvf.MediaTables, ids: set[str]) -> None:
    """Every grain holds exactly the rows of ``ids``, in the full tables' order."""
    assert set(sub.media.media_id) == ids
    for grain, frame in full.items():
        expected = frame[frame.media_id.isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(getattr(sub, grain), expected)


def test_where_label_keeps_the_media_with_that_label_and_all_their_rows(tables):
    rockets = tables.where(label="rocket")
    ids = set(tables.objects.loc[tables.objects.label == "rocket", "media_id"])
    assert ids and len(ids) < len(tables.media)
    _consistent(rockets, tables, ids)
    assert len(rockets.captions) == tables.captions.media_id.isin(ids).sum() > 0


def test_where_each_criterion(tables):
    objects, tags, captions, media = tables.objects, tables.tags, tables.captions, tables.media
    faces = set(objects.loc[objects.type == "face", "media_id"])
    _consistent(tables.where(object_type="face"), tables, faces)
    red = set(tags.loc[(tags.key == "color") & (tags.value == "red"), "media_id"])
    _consistent(tables.where(tag_filters={"color": "red"}), tables, red)
    space = set(tags.loc[(tags.key == "subject") & (tags.value == "space"), "media_id"])
    both = tables.where(tag_filters={"color": ["red", "white"], "subject": ["space"]})
    white = set(tags.loc[(tags.key == "color") & (tags.value == "white"), "media_id"])
    _consistent(both, tables, (red | white) & space)
    cats = set(captions.loc[captions.text.str.contains("cat", case=False), "media_id"])
    _consistent(tables.where(caption="CAT"), tables, cats)
    videos = set(media.loc[media.type == "video", "media_id"])
    _consistent(tables.where(media_type="video"), tables, videos)


def test_where_predicates_on_any_grain_and_criteria_combine_with_and(tables):
    objects = tables.objects
    cut = float(objects.bbox_w.median())
    big = set(objects.loc[objects.bbox_w > cut, "media_id"])
    assert big
    _consistent(tables.where(objects=lambda o: o.bbox_w > cut), tables, big)
    _consistent(tables.where(objects=f"bbox_w > {cut}"), tables, big)
    images = set(tables.media.loc[tables.media.type == "image", "media_id"])
    rockets = set(objects.loc[objects.label == "rocket", "media_id"])
    _consistent(tables.where(label="rocket", media_type="image"), tables, rockets & images)
    later = set(tables.frames.loc[tables.frames.frame_index >= 1, "media_id"])
    _consistent(tables.where(frames=lambda f: f.frame_index >= 1), tables, later)


def test_where_with_no_match_and_no_criterion(tables):
    none = tables.where(label="no such label")
    assert repr(none) == "MediaTables(media=0, frames=0, captions=0, objects=0, tags=0)"
    assert none.objects.dtypes.equals(tables.objects.dtypes)
    _consistent(tables.where(), tables, set(tables.media.media_id))


def test_where_tag_key_that_no_media_has_warns_with_the_keys(tables):
    with pytest.warns(CorevizWarning, match=r"no media has a tag key 'label'.*color.*subject"):
        assert len(tables.where(tag_filters={"label": "rocket"}).media) == 0


def test_where_refuses_bad_predicates_by_name(tables):
    with pytest.raises(ConfigError, match="objects= must give one True/False per row"):
        tables.where(objects=lambda o: 3)
    with pytest.raises(ConfigError, match="objects= predicate failed"):
        tables.where(objects="no_such_column > 1")
    with pytest.raises(ConfigError, match="label= takes a string or a list"):
        tables.where(label=[1, 2])


def test_subset_by_ids_normalises_and_warns_about_unknown_ids(tables):
    first = tables.media.media_id.iloc[0]
    hyphenated = f"{first[:8]}-{first[8:12]}-{first[12:16]}-{first[16:20]}-{first[20:]}".upper()
    _consistent(tables.subset(media_ids=[hyphenated]), tables, {first})
    with pytest.warns(CorevizWarning, match="1 of the 2 media ids are not in these tables"):
        sub = tables.subset(media_ids=[first, "nope"])
    _consistent(sub, tables, {first})
    with pytest.raises(ConfigError, match="not a single string"):
        tables.subset(media_ids=first)

"""BrowseFilters: one frozen, validated value for the browse filters, and its encoding."""

from __future__ import annotations

import json
import pickle
from dataclasses import FrozenInstanceError
from datetime import date, datetime

import pytest

import coreviz_frames as cvf
from coreviz_frames.api.filters import FILTER_NAMES, BrowseFilters
from coreviz_frames.errors import ConfigError, InvalidIdError


def test_defaults_encode_like_the_api_expects():
    assert BrowseFilters().to_params() == {
        "recursive": "true",
        "sortBy": "createdAt",
        "sortDirection": "asc",
    }
    assert BrowseFilters().to_dict() == {}


def test_every_filter_is_encoded_once():
    f = BrowseFilters(
        path="col1.folderA",
        recursive=False,
        type="image",
        tag_filters={"color": ["red", "blue"], "season": "spring"},
        date_from=date(2026, 1, 2),
        date_to=datetime(2026, 3, 4, 5, 6),
        q="red shoe",
        similar_to_object_id="obj_1",
        sort_by="name",
        sort_direction="desc",
    )
    params = f.to_params()
    assert json.loads(params.pop("tagFilters")) == {"color": ["red", "blue"], "season": ["spring"]}
    assert params == {
        "path": "col1.folderA",
        "type": "image",
        "dateFrom": "2026-01-02",
        "dateTo": "2026-03-04",
        "q": "red shoe",
        "similarToObjectId": "obj_1",
        "sortBy": "name",
        "sortDirection": "desc",
    }


def test_the_value_is_frozen_hashable_comparable_and_picklable():
    a = BrowseFilters(type="image", tag_filters={"color": "red"}, date_from="2026-01-02")
    b = BrowseFilters(type="image", tag_filters='{"color":["red"]}', date_from=date(2026, 1, 2))
    assert a == b and hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(FrozenInstanceError):
        a.type = "video"  # type: ignore[misc]
    assert cvf.BrowseFilters is BrowseFilters


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"date_from": "2026/01/02"}, ConfigError, "date_from"),
        ({"date_to": "2026-13-40"}, ConfigError, "date_to"),
        ({"sort_direction": "up"}, ConfigError, "sort_direction"),
        ({"tag_filters": ["red"]}, ConfigError, "tag_filters"),
        ({"recursive": "false"}, ConfigError, "recursive"),
        ({"type": 3}, ConfigError, "type"),
        ({"similar_to_object_id": "../x"}, InvalidIdError, "object id"),
    ],
)
def test_bad_values_are_typed_errors_naming_the_field(kwargs, error, field):
    with pytest.raises(error, match=field):
        BrowseFilters(**kwargs)


def test_build_applies_keywords_over_a_value_and_refuses_unknown_names():
    base = BrowseFilters(type="image", q="shoe")
    assert BrowseFilters.build(base, q="boot") == BrowseFilters(type="image", q="boot")
    assert BrowseFilters.build(None) == BrowseFilters()
    assert BrowseFilters.build(base) is base
    with pytest.raises(ConfigError, match="unknown browse filters"):
        BrowseFilters.build(None, colour="red")
    with pytest.raises(ConfigError, match="BrowseFilters"):
        BrowseFilters.build({"type": "image"})  # type: ignore[arg-type]
    assert FILTER_NAMES[0] == "path" and len(FILTER_NAMES) == 14


def test_empty_strings_mean_unset():
    assert BrowseFilters(path="", q="", type="") == BrowseFilters()

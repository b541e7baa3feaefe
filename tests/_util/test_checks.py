"""The package's one set of argument checks (coreviz_frames._util.checks)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames._util.checks import (
    check_choice,
    check_int,
    check_on_error,
    is_int,
    is_missing,
)
from coreviz_frames.errors import ConfigError


@pytest.mark.parametrize("value", [0, 1, 7, np.int64(3)])
def test_check_int_returns_integers_within_bounds(value):
    assert check_int("n", value, minimum=0, maximum=7) == value


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"minimum": 1}, 0, "limit must be an integer >= 1, not 0"),
        ({"minimum": 1}, True, "limit must be an integer >= 1, not True"),
        ({"minimum": 0}, 2.0, "limit must be an integer >= 0, not 2.0"),
        ({"minimum": 0}, "3", "limit must be an integer >= 0, not '3'"),
        ({"maximum": 5}, 6, "limit must be an integer <= 5, not 6"),
        ({"minimum": 1, "maximum": 5}, 9, "limit must be an integer from 1 to 5, not 9"),
        ({"minimum": 0, "allow_none": True}, -1, "limit must be None or an integer >= 0, not -1"),
    ],
)
def test_check_int_names_the_parameter_in_one_style(kwargs, value, message):
    with pytest.raises(ConfigError) as caught:
        check_int("limit", value, **kwargs)
    assert str(caught.value) == message


def test_check_int_none_only_when_allowed():
    assert check_int("stop", None, minimum=0, allow_none=True) is None
    with pytest.raises(ConfigError, match="stop must be an integer"):
        check_int("stop", None, minimum=0)


def test_check_choice():
    assert check_choice("task", "detect", ("detect", "segment")) == "detect"
    with pytest.raises(ConfigError) as caught:
        check_choice("task", "pose", ("detect", "segment"))
    assert str(caught.value) == "task must be one of 'detect', 'segment', not 'pose'"
    with pytest.raises(ConfigError, match="must be one of"):
        check_choice("task", ["detect"], frozenset({"detect"}))  # unhashable: refused, no TypeError


@pytest.mark.parametrize(
    ("allowed", "value", "expected"),
    [
        (("raise", "skip"), None, "raise"),
        (("raise", "skip"), "skip", "skip"),
        (("raise", "record"), "record", "record"),
        (("raise", "skip", "record"), "skip", "skip"),
    ],
)
def test_check_on_error_per_caller_modes(allowed, value, expected):
    assert check_on_error(value, allowed=allowed) == expected


def test_check_on_error_refuses_a_mode_the_caller_lacks():
    with pytest.raises(ConfigError) as caught:
        check_on_error("skip", allowed=("raise", "record"))
    assert str(caught.value) == "on_error must be one of 'raise', 'record', not 'skip'"


def test_check_on_error_deprecated_errors_spelling():
    with pytest.warns(DeprecationWarning, match="use on_error="):
        assert check_on_error(None, allowed=("raise", "skip"), errors="skip") == "skip"
    with (
        warnings.catch_warnings(),
        pytest.raises(ConfigError, match="disagree"),
    ):
        warnings.simplefilter("ignore", DeprecationWarning)
        check_on_error("raise", allowed=("raise", "skip"), errors="skip")


@pytest.mark.parametrize(
    "value",
    [None, float("nan"), np.float32("nan"), np.float64("nan"), pd.NA, pd.NaT, np.datetime64("NaT")],
)
def test_is_missing_true_for_missing_scalars(value):
    assert is_missing(value)


@pytest.mark.parametrize("value", [0, 0.0, "", "x", [None], (), np.int64(0), pd.Timestamp(0)])
def test_is_missing_false_for_values_and_containers(value):
    assert not is_missing(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, True), (np.int32(3), True), (-1, True), (True, False), (3.0, False), ("3", False)],
)
def test_is_int_excludes_bools_floats_and_text(value, expected):
    assert is_int(value) is expected


@pytest.mark.parametrize(
    "call",
    [
        lambda: cvf.Client(api_key="k", base_url="http://127.0.0.1:9/api", max_workers=0),
        lambda: cvf.Client(api_key="k", base_url="http://127.0.0.1:9/api", retries=-1),
        lambda: cvf.load_images([], workers=0),
        lambda: cvf.export_yolo(None, "out", task="pose"),
        lambda: cvf.load_images([], on_error="skip"),
    ],
)
def test_callers_use_the_one_message_style(call):
    with pytest.raises(ConfigError, match=r"must be (an integer >= \d|one of '[a-z]+', )"):
        call()

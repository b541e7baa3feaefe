"""plan_dataset and what the writers share, on hand-made tables (no network)."""

from __future__ import annotations

import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.training.frames import (
    DatasetReport,
    assign_splits,
    plan_dataset,
    polygon_area,
    run_frames,
)


def _tables(frame_blobs, objects) -> cvf.MediaTables:
    empty = cvf.MediaTables.empty()
    frames = pd.DataFrame(
        {
            "frame_id": [f"f{i}" for i in range(len(frame_blobs))],
            "media_id": [f"m{i}" for i in range(len(frame_blobs))],
            "frame_index": [0] * len(frame_blobs),
            "blob": frame_blobs,
            "width": [100] * len(frame_blobs),
            "height": [50] * len(frame_blobs),
        }
    )
    objs = pd.DataFrame(
        objects,
        columns=["object_id", "frame_id", "label", "bbox_x", "bbox_y", "bbox_w", "bbox_h"],
    )
    objs["polygon"] = None
    objs["media_id"] = objs["frame_id"].str.replace("f", "m")
    tags = pd.DataFrame({"media_id": ["m0"], "key": ["color"], "value": ["red"]})
    return cvf.MediaTables(empty.media, frames, empty.captions, objs, tags)


def test_frames_without_a_usable_blob_are_reported_with_their_objects():
    tables = _tables(
        ["https://b/f0.jpg", None, "/etc/passwd", "file:///etc/passwd"],
        [
            ("o0", "f0", "cat", 1.0, 2.0, 3.0, 4.0),
            ("o1", "f1", "cat", 1.0, 2.0, 3.0, 4.0),
            ("o2", "f2", "dog", 1.0, 2.0, 3.0, 4.0),
            ("o3", "f0", None, 1.0, 2.0, 3.0, 4.0),
            ("o4", "f0", "cat", None, None, None, None),
            ("o5", "f9", "cat", 1.0, 2.0, 3.0, 4.0),
        ],
    )
    plan = plan_dataset(tables)
    assert [it.frame_id for it in plan.items] == ["f0"]
    assert plan.skipped_frames["f1"] == "no frame blob"
    assert "not an http(s) URL" in plan.skipped_frames["f2"]
    assert "not an http(s) URL" in plan.skipped_frames["f3"]
    assert plan.skipped_objects["o1"] == "frame f1 left out: no frame blob"
    assert plan.skipped_objects["o3"].startswith("no label (include_unlabeled=True")
    assert plan.skipped_objects["o4"] == "no geometry"
    assert "not in the frames table" in plan.skipped_objects["o5"]
    assert plan.categories == ["cat"]  # "dog" has no exported object
    (ann,) = plan.items[0].annotations
    assert (ann.ann_id, ann.object_id, ann.area) == (1, "o0", 12.0)


def test_tag_label_and_splits():
    tables = _tables(
        ["https://b/f0.jpg", "https://b/f1.jpg"],
        [("o0", "f0", "cat", 1.0, 2.0, 3.0, 4.0), ("o1", "f1", "cat", 1.0, 2.0, 3.0, 4.0)],
    )
    plan = plan_dataset(tables, label="tag:color")
    assert plan.categories == ["red"] and plan.skipped_objects == {"o1": "no single tag:color"}
    names, owner = assign_splits(["m0", "m0", "m1"], (0.5, 0.5, 0.0), seed=0)
    assert names == ["train", "val", "test"] and set(owner) == {"m0", "m1"}
    assert owner["m0"] != owner["m1"]
    with pytest.raises(ConfigError, match="in two splits"):
        assign_splits(["m0"], {"a": ["m0"], "b": pd.DataFrame({"media_id": ["m0"]})})
    with pytest.raises(ConfigError, match="media_id"):
        assign_splits(["m0"], {"a": pd.DataFrame({"x": [1]})})
    with pytest.raises(ConfigError, match="tag key"):
        plan_dataset(tables, label="tag:")


def test_report_summary_and_helpers():
    report = DatasetReport(
        "yolo",
        "out",
        {"train": 3, "val": 1},
        {"train": 5, "val": 2},
        ["a", "b"],
        failed_frames={"f9": "404"},
        skipped_objects={"o1": "no geometry"},
    )
    assert report.summary() == (
        "yolo: 4 images, 7 annotations, 2 categories, 1 failures (1 objects skipped) -> out"
    )
    assert report.to_dict()["failed_frames"] == {"f9": "404"}
    assert polygon_area([0, 0, 2, 0, 2, 2]) == 2.0
    assert run_frames([], lambda item: item) == ({}, {})

"""Box conversions of the objects table, and the Box dataclass."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from coreviz_frames.tables.boxes import Box, boxes_to_normalized_xywh, boxes_to_xyxy, boxes_to_yolo
from coreviz_frames.tables.media_tables import to_tables


@pytest.fixture
def objects() -> pd.DataFrame:
    rec = {
        "id": "m",
        "frames": [
            {
                "id": "f",
                "width": 200,
                "height": 100,
                "objects": [
                    {
                        "id": "a",
                        "label": "dog",
                        "polygon": [{"x": 20, "y": 10}, {"x": 60, "y": 50}],
                    },
                    {"id": "b", "label": "cat"},
                    {
                        "id": "c",
                        "label": "bird",
                        "polygon": [{"x": 0, "y": 0}, {"x": 200, "y": 100}],
                    },
                ],
            }
        ],
    }
    df = to_tables([rec]).objects
    df.index = pd.Index([10, 11, 12])  # results keep the input's index
    return df


def test_xyxy(objects):
    out = boxes_to_xyxy(objects)
    assert out.index.tolist() == [10, 11, 12]
    assert out.loc[10].tolist() == [20.0, 10.0, 60.0, 50.0]
    assert out.loc[11].isna().all()


def test_normalized(objects):
    out = boxes_to_normalized_xywh(objects)
    assert out.loc[10].tolist() == [0.1, 0.1, 0.2, 0.4]
    assert out.loc[12].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert out.loc[11].isna().all()


def test_normalized_missing_or_zero_frame_size_is_null(objects):
    df = objects.copy()
    df["frame_width"] = pd.array([pd.NA, 0, 200], dtype="Int64")
    out = boxes_to_normalized_xywh(df)
    assert out.loc[10, ["x", "w"]].isna().all()
    assert np.isfinite(out.loc[12]).all()


def test_yolo(objects):
    out = boxes_to_yolo(objects)
    assert str(out.class_index.dtype) == "Int64"
    assert out.class_index.tolist() == [2, 1, 0]  # sorted labels: bird, cat, dog
    assert out.loc[10, ["cx", "cy", "w", "h"]].tolist() == pytest.approx([0.2, 0.3, 0.2, 0.4])
    assert out.loc[11, ["cx", "w"]].isna().all()
    out = boxes_to_yolo(objects, classes=["dog"])
    assert out.class_index.tolist()[0] == 0 and out.class_index.isna().sum() == 2
    out = boxes_to_yolo(objects, classes={"bird": 7})
    assert out.class_index.tolist()[2] == 7


def test_empty_objects_table():
    empty = to_tables([]).objects
    assert list(boxes_to_xyxy(empty).columns) == ["x1", "y1", "x2", "y2"]
    assert len(boxes_to_yolo(empty)) == 0


def test_missing_columns():
    with pytest.raises(KeyError):
        boxes_to_xyxy(pd.DataFrame({"x": [1]}))


def test_box_validation():
    with pytest.raises(ValueError):
        Box(0, 0, -1, 1)
    with pytest.raises(ValueError):
        Box(0, 0, math.inf, 1)
    with pytest.raises(TypeError):
        Box(0, 0, "1", 1)
    assert Box(np.int64(1), 2, 3, 4).x == 1.0


def test_box_geometry():
    box = Box(10, 20, 30, 40)
    assert box.xyxy == (10.0, 20.0, 40.0, 60.0)
    assert box.area == 1200.0
    assert Box.from_xyxy(*box.xyxy) == box
    assert box.pad(0.5).xyxy == (-5.0, 0.0, 55.0, 80.0)
    assert box.square().xyxy == (5.0, 20.0, 45.0, 60.0)
    inside, changed = box.clamp(100, 100)
    assert inside is box and not changed
    cut, changed = Box(-10, 90, 30, 30).clamp(100, 100)
    assert changed and cut.xyxy == (0.0, 90.0, 20.0, 100.0)
    gone, changed = Box(150, 150, 10, 10).clamp(100, 100)
    assert changed and gone.area == 0.0

"""export_yolo, checked with supervision's reader; the COCO -> YOLO -> COCO property test."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dataset_helpers import browse_tables, objects_with_geometry, table_boxes, with_frame_blob
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageDraw

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.training.coco import export_coco
from coreviz_frames.training.frames import plan_dataset
from coreviz_frames.training.yolo import data_yaml, export_yolo, yolo_labels, yolo_to_coco


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


@pytest.fixture(scope="module")
def synthetic_tables():
    from coreviz_frames.local_api import LocalAPI

    api = LocalAPI(synthetic=12).start()
    try:
        yield browse_tables(api)
    finally:
        api.stop()


def _sv():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("supervision", reason="supervision (dev extra)")


def _load_yolo(out: Path, split: str, masks: bool = False):
    return _sv().DetectionDataset.from_yolo(
        str(out / "images" / split),
        str(out / "labels" / split),
        str(out / "data.yaml"),
        force_masks=masks,
    )


def _object_ids(tables, plan_items) -> dict[str, list[str]]:
    return {it.name: [a.object_id for a in it.annotations] for it in plan_items}


def _check_boxes(tables, out: Path, split: str, names: dict[str, list[str]]) -> int:
    ds = _load_yolo(out, split)
    expected = table_boxes(tables)
    labels = tables.objects.set_index("object_id").label
    checked = 0
    for path, _image, det in ds:
        oids = names[Path(path).stem]
        assert len(det) == len(oids)
        for box, class_id, oid in zip(det.xyxy, det.class_id, oids, strict=True):
            np.testing.assert_allclose(box, expected[oid], atol=1.0)
            assert ds.classes[class_id] == labels[oid]
            checked += 1
    return checked


def test_supervision_from_yolo_sample_boxes_within_a_pixel(tables, tmp_path):
    report = export_yolo(tables, tmp_path, progress=False)
    names = _object_ids(tables, plan_dataset(tables).items)
    assert _check_boxes(tables, tmp_path, "all", names) == 19 == report.total_annotations
    assert report.files[-3:] == ["data.yaml", "splits.csv", "labels.json"]


def test_supervision_from_yolo_synthetic_with_splits(synthetic_tables, tmp_path):
    tables = synthetic_tables
    report = export_yolo(tables, tmp_path, splits=(0.5, 0.25, 0.25), seed=2, progress=False)
    names = _object_ids(tables, plan_dataset(tables, splits=(0.5, 0.25, 0.25), seed=2).items)
    checked = sum(_check_boxes(tables, tmp_path, s, names) for s in ("train", "val", "test"))
    assert checked == len(objects_with_geometry(tables)) == report.total_annotations
    frames = tables.frames.set_index("frame_id").media_id
    owners: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for label_file in (tmp_path / "labels" / split).iterdir():
            assert (tmp_path / "images" / split / f"{label_file.stem}.jpg").is_file()
            assert owners.setdefault(frames[label_file.stem], split) == split


def _polygon_mask(points: list[dict], size: tuple[int, int]) -> np.ndarray:
    img = Image.new("1", size, 0)
    ImageDraw.Draw(img).polygon([(p["x"], p["y"]) for p in points], fill=1)
    return np.asarray(img, dtype=bool)


def test_yolo_segment_polygons_within_a_pixel(tables, tmp_path):
    from scipy import ndimage

    export_yolo(tables, tmp_path, task="segment", progress=False)
    items = plan_dataset(tables).items
    names = _object_ids(tables, items)
    polygons = tables.objects.set_index("object_id").polygon
    ds = _load_yolo(tmp_path, "all", masks=True)
    checked = 0
    for path, image, det in ds:
        oids = names[Path(path).stem]
        if not oids:
            assert len(det) == 0
            continue
        assert det.mask is not None and len(det.mask) == len(oids)
        height, width = image.shape[:2]
        for mask, oid in zip(det.mask, oids, strict=True):
            ours = _polygon_mask(list(polygons[oid]), (width, height))
            edge = ours ^ ndimage.binary_erosion(ours)
            near_edge = ndimage.binary_dilation(edge, iterations=2)
            assert not ((mask ^ ours) & ~near_edge).any(), oid
            checked += 1
    assert checked == 19
    # the label file holds the polygon's points, normalised
    item = next(it for it in items if it.annotations)
    lines = (tmp_path / "labels" / "all" / f"{item.name}.txt").read_text().splitlines()
    first = item.annotations[0]
    values = [float(v) for v in lines[0].split()[1:]]
    pixels = [v * (item.width if i % 2 == 0 else item.height) for i, v in enumerate(values)]
    np.testing.assert_allclose(pixels, first.polygon, atol=0.01)


def test_empty_frames_get_empty_label_files_and_data_yaml(tables, tmp_path):
    report = export_yolo(tables, tmp_path, splits=(0.6, 0.2, 0.2), seed=1, images="none")
    empty = set(tables.frames.frame_id) - set(objects_with_geometry(tables).frame_id)
    written = {p.stem: p.read_text() for p in (tmp_path / "labels").rglob("*.txt")}
    assert len(written) == 19 == report.total_images
    assert {f for f, text in written.items() if text == ""} == empty
    assert not (tmp_path / "images").exists()
    yaml_text = (tmp_path / "data.yaml").read_text()
    assert 'train: "images/train"' in yaml_text and 'test: "images/test"' in yaml_text
    assert "path:" not in yaml_text  # the folder can move: Ultralytics roots it at the yaml
    assert '  0: "cat"' in yaml_text
    none = export_yolo(tables, tmp_path / "none", images="none", include_empty=False)
    assert none.total_images == 19 - len(empty)


def test_label_files_byte_identical_and_media_in_one_split(tables, tmp_path):
    for name in ("a", "b"):
        export_yolo(tables, tmp_path / name, splits=(0.6, 0.2, 0.2), seed=5, images="none")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.txt"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.txt"))
    assert files_a == files_b and len(files_a) == 19
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    media = tables.frames.set_index("frame_id").media_id
    split_of = {}
    for rel in files_a:
        assert split_of.setdefault(media[rel.stem], rel.parts[1]) == rel.parts[1]


def test_failed_frame_gets_no_image_and_no_label(tables, sample_api, tmp_path):
    victim = tables.frames.frame_id[0]
    broken = with_frame_blob(tables, victim, f"{sample_api.blob_url}/frames/nope/0.jpg")
    report = export_yolo(broken, tmp_path, progress=False)
    assert list(report.failed_frames) == [victim]
    assert not list(tmp_path.rglob(f"{victim}.*"))
    assert len(list((tmp_path / "labels" / "all").iterdir())) == 18
    assert len(list((tmp_path / "images" / "all").iterdir())) == 18


def test_bad_task_is_a_config_error(tables, tmp_path):
    with pytest.raises(ConfigError, match="task"):
        export_yolo(tables, tmp_path, task="pose")
    with pytest.raises(ConfigError, match="task"):
        yolo_labels(plan_dataset(tables), task="obb")


def test_data_yaml_without_train_split():
    text = data_yaml(["fit", "val"], ['a "quoted" label'])
    assert 'train: "images/fit"' in text and 'val: "images/val"' in text
    assert "test: null" in text and '0: "a \\"quoted\\" label"' in text
    assert "path" not in yaml.safe_load(text)


# --------------------------------------------------------------------------- property


def _tables_of_boxes(boxes, width, height) -> cvf.MediaTables:
    n = len(boxes)
    empty = cvf.MediaTables.empty()
    frames = pd.concat(
        [
            empty.frames,
            pd.DataFrame(
                {
                    "frame_id": ["f1"],
                    "media_id": ["m1"],
                    "frame_index": [0],
                    "blob": ["https://blob.example/f1.jpg"],
                    "width": [width],
                    "height": [height],
                }
            ),
        ]
    ).astype(empty.frames.dtypes.to_dict())
    objects = pd.DataFrame(
        {
            "object_id": [f"o{i}" for i in range(n)],
            "frame_id": ["f1"] * n,
            "media_id": ["m1"] * n,
            "object_index": list(range(n)),
            "label": [f"c{i % 3}" for i in range(n)],
            "bbox_x": [b[0] for b in boxes],
            "bbox_y": [b[1] for b in boxes],
            "bbox_w": [b[2] for b in boxes],
            "bbox_h": [b[3] for b in boxes],
            "frame_width": [width] * n,
            "frame_height": [height] * n,
            "polygon": [
                [
                    {"x": x, "y": y},
                    {"x": x + w, "y": y},
                    {"x": x + w, "y": y + h},
                    {"x": x, "y": y + h},
                ]
                for x, y, w, h in boxes
            ],
        }
    )
    return cvf.MediaTables(empty.media, frames, empty.captions, objects, empty.tags)


_coord = st.floats(-200, 3000, allow_nan=False, allow_infinity=False)
_size = st.floats(0.5, 2000, allow_nan=False, allow_infinity=False)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    boxes=st.lists(st.tuples(_coord, _coord, _size, _size), min_size=1, max_size=6),
    width=st.integers(1, 4000),
    height=st.integers(1, 4000),
)
def test_coco_yolo_coco_round_trip_and_coordinates_inside(boxes, width, height, tmp_path_factory):
    tables = _tables_of_boxes(boxes, width, height)
    out = tmp_path_factory.mktemp("prop")
    coco = export_coco(tables, out / "coco", images="none")
    export_yolo(tables, out / "yolo", images="none")
    export_yolo(tables, out / "seg", images="none", task="segment")
    doc = json.loads((out / "coco/annotations/instances_all.json").read_text())
    anns = doc["annotations"]
    assert len(anns) + len(coco.skipped_objects) == len(boxes)
    for ann in anns:
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= width + 1e-9 and y + h <= height + 1e-9
        seg = ann["segmentation"][0]
        assert all(0 <= v <= (width if i % 2 == 0 else height) for i, v in enumerate(seg))
    lines = (out / "yolo/labels/all/f1.txt").read_text().splitlines()
    assert len(lines) == len(anns)
    for line, ann in zip(lines, anns, strict=True):
        cls, *values = line.split()
        assert doc["categories"][int(cls)]["id"] == ann["category_id"]
        assert all(0.0 <= float(v) <= 1.0 for v in values)
        back = yolo_to_coco(*map(float, values), width, height)
        # six decimals of a fraction of the frame: within 1e-6 of the frame size
        np.testing.assert_allclose(back, ann["bbox"], atol=1e-6 * max(width, height) + 1e-9)
    for line in (out / "seg/labels/all/f1.txt").read_text().splitlines():
        assert all(0.0 <= float(v) <= 1.0 for v in line.split()[1:])


@given(
    x=st.floats(0, 1000),
    y=st.floats(0, 1000),
    w=st.floats(0.01, 1000),
    h=st.floats(0.01, 1000),
    width=st.integers(1, 5000),
    height=st.integers(1, 5000),
)
def test_yolo_conversion_inverts_boxes_to_yolo(x, y, w, h, width, height):
    df = pd.DataFrame(
        {
            "bbox_x": [x],
            "bbox_y": [y],
            "bbox_w": [w],
            "bbox_h": [h],
            "frame_width": [width],
            "frame_height": [height],
            "label": ["a"],
        }
    ).astype({"frame_width": "Int64", "frame_height": "Int64"})
    row = cvf.boxes_to_yolo(df).iloc[0]
    back = yolo_to_coco(row.cx, row.cy, row.w, row.h, width, height)
    np.testing.assert_allclose(back, (x, y, w, h), rtol=1e-9, atol=1e-9)

"""One class list for every split, and the selection options shared by every writer."""

from __future__ import annotations

import json
import os
import warnings

import pytest
from dataset_helpers import browse_tables
from PIL import Image

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, SkippedRecordWarning
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.training.coco import export_coco
from coreviz_frames.training.crop_dataset import CLASSES_NAME, CropDataset, export_crops
from coreviz_frames.training.detection import DetectionDataset
from coreviz_frames.training.frames import plan_dataset
from coreviz_frames.training.labels import UNLABELED
from coreviz_frames.training.selection import DatasetOptions, thin_frames


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def _image_folder_classes(root) -> dict[str, int]:
    """What torchvision's ImageFolder computes: sorted class folder names, indexed."""
    names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    return {name: i for i, name in enumerate(names)}


def test_every_split_of_a_crop_export_has_the_same_class_to_idx(tables, tmp_path):
    objects = tables.objects.copy()
    objects.loc[objects.index[0], "label"] = None  # an object without a label
    unlabeled = cvf.MediaTables(tables.media, tables.frames, tables.captions, objects, tables.tags)
    manifest = export_crops(unlabeled, tmp_path, splits=(0.6, 0.2, 0.2), seed=0, progress=False)
    classes = (tmp_path / CLASSES_NAME).read_text().splitlines()
    mappings = [_image_folder_classes(tmp_path / s) for s in ("train", "val", "test")]
    assert mappings[0] == mappings[1] == mappings[2] == {c: i for i, c in enumerate(classes)}
    assert UNLABELED not in classes and not list(tmp_path.rglob(UNLABELED))
    skipped = manifest[manifest.status == "skipped"]
    no_label = skipped[~skipped.reason.str.contains("no geometry")]  # the sample's spoon aside
    assert no_label.object_id.tolist() == [objects.object_id.iloc[0]]
    assert no_label.reason.iloc[0].startswith("no label (include_unlabeled=True")
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert sorted(labels["folders"]) == classes
    try:
        from torchvision.datasets import ImageFolder
    except ImportError:  # pragma: no cover - torchvision is in the dev extra
        return
    real = [
        ImageFolder(str(tmp_path / s), allow_empty=True).class_to_idx
        for s in ("train", "val", "test")
    ]
    assert real[0] == real[1] == real[2] == mappings[0]


def test_include_unlabeled_labels_and_label_map_in_crops(tables, tmp_path):
    objects = tables.objects.copy()
    objects.loc[objects.index[0], "label"] = None
    unlabeled = cvf.MediaTables(tables.media, tables.frames, tables.captions, objects, tables.tags)
    kept = export_crops(unlabeled, tmp_path / "a", include_unlabeled=True, progress=False)
    assert (tmp_path / "a" / UNLABELED).is_dir()
    assert kept.label.iloc[0] == UNLABELED
    some = export_crops(
        tables,
        tmp_path / "b",
        classes=["person", "rocket"],
        label_map={"astronaut": "person"},
        progress=False,
    )
    assert (tmp_path / "b" / CLASSES_NAME).read_text().splitlines() == ["person", "rocket"]
    written = some[some.status == "written"]
    assert set(written.label) <= {"person", "rocket"}
    astronauts = tables.objects[tables.objects.label == "astronaut"].object_id
    assert set(astronauts) <= set(written.object_id)
    others = some[~some.label.isin(["person", "rocket"])]
    assert (others.status == "skipped").all()
    labels = json.loads((tmp_path / "b" / "labels.json").read_text())
    assert labels["label_map"] == {"astronaut": "person"}
    assert labels["options"]["classes"] == ["person", "rocket"]


def test_label_map_and_labels_in_detection_writers_and_datasets(tables, tmp_path):
    report = export_coco(
        tables,
        tmp_path,
        images="none",
        classes=["person", "rocket"],
        label_map={"astronaut": "person"},
    )
    assert report.categories == ["person", "rocket"]
    doc = json.loads((tmp_path / "annotations/instances_all.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["person", "rocket"]
    assert json.loads((tmp_path / "labels.json").read_text())["classes"] == ["person", "rocket"]
    ds = DetectionDataset(tables, options=DatasetOptions(label_map={"astronaut": "person"}))
    assert "astronaut" not in ds.classes and "person" in ds.classes
    with pytest.raises(ConfigError, match="pass either options= or classes"):
        DetectionDataset(tables, options=DatasetOptions(), classes=["x"])
    with pytest.warns(SkippedRecordWarning, match="not among classes="):
        crops = CropDataset(tables, classes=["rocket"])
    assert crops.classes == ["rocket"] and set(crops.targets) == {0}


def _video_tables():
    """One synthetic video (51 frames) and one still."""
    return cvf.to_tables([synthetic_media(9), synthetic_media(1)])


def test_frame_stride_max_frames_min_size_object_types_and_include_empty():
    tables = _video_tables()
    frames = tables.frames.assign(blob="https://blob.invalid/" + tables.frames.frame_id)
    tables = cvf.MediaTables(tables.media, frames, tables.captions, tables.objects, tables.tags)
    by_media = tables.frames.groupby("media_id").size().to_dict()
    video = max(by_media, key=by_media.get)
    full = plan_dataset(tables)
    strided = plan_dataset(tables, options=DatasetOptions(frame_stride=10))
    video_frames = [it for it in strided.items if it.media_id == video]
    assert len(video_frames) == 6  # frames 0, 10, ..., 50
    assert [it.frame_index for it in video_frames] == [0, 10, 20, 30, 40, 50]
    assert sum(1 for why in strided.skipped_frames.values() if why == "frame_stride=10") == 45
    capped = plan_dataset(tables, options=DatasetOptions(max_frames_per_media=5))
    assert len([it for it in capped.items if it.media_id == video]) == 5
    assert (
        len([it for it in capped.items if it.media_id != video])
        == by_media[next(m for m in by_media if m != video)]
    )
    small = plan_dataset(tables, options=DatasetOptions(min_size=40))
    kept = [a for it in small.items for a in it.annotations]
    assert kept and all(min(a.box.w, a.box.h) >= 40 for a in kept)
    assert any("smaller than min_size=40" in why for why in small.skipped_objects.values())
    faces = plan_dataset(tables, object_types=["face"], include_empty=False)
    types = tables.objects.set_index("object_id").type
    kept = [a.object_id for it in faces.items for a in it.annotations]
    assert kept and all(types[o] == "face" for o in kept)
    assert all(it.annotations for it in faces.items)  # include_empty=False: no empty frame
    assert any(why == "no object (include_empty=False)" for why in faces.skipped_frames.values())
    assert any("not among object_types=" in why for why in faces.skipped_objects.values())
    assert len(full.items) == len(tables.frames)
    assert thin_frames(["a", "b", "c", "d", "e"], DatasetOptions(max_frames_per_media=2)) == {
        "b": "max_frames_per_media=2",
        "d": "max_frames_per_media=2",
        "e": "max_frames_per_media=2",
    }
    with pytest.raises(ConfigError, match="frame_stride"):
        DatasetOptions(frame_stride=0)


def test_selection_options_apply_to_crops_too(tmp_path):
    tables = _video_tables()
    objects = tables.objects.assign(blob=None)
    frames = tables.frames.assign(blob="blob://never-fetched")
    tables = cvf.MediaTables(tables.media, frames, tables.captions, objects, tables.tags)
    manifest = export_crops(
        tables, tmp_path, options=DatasetOptions(frame_stride=10, min_size=40), progress=False
    )
    skipped = manifest[manifest.status == "skipped"]
    assert skipped.reason.str.contains("frame_stride=10|smaller than min_size=40").all()
    on_kept_frames = tables.objects[
        ~tables.objects.object_id.isin(skipped.object_id)
    ].frame_id.unique()
    index = tables.frames.set_index("frame_id").frame_index
    assert all(int(index[f]) % 10 == 0 for f in on_kept_frames)
    with pytest.raises(ConfigError, match="pass frames="):
        export_crops(tables.objects, tmp_path / "b", frame_stride=2, progress=False)


def test_square_crops_are_square_at_the_edges_with_the_fill_colour(tables):
    frame = tables.frames.iloc[0]
    w, h = int(frame.width), int(frame.height)
    corner = tables.objects.head(1).assign(
        frame_id=frame.frame_id,
        blob=None,
        bbox_x=w - 5.0,
        bbox_y=1.0,
        bbox_w=5.0,
        bbox_h=float(h) - 2,
        frame_width=w,
        frame_height=h,
    )
    [crop] = cvf.load_crops(
        corner, frames=tables.frames, square=True, fill=(0, 255, 0), progress=False
    )
    side = h - 2 if h - 2 <= w else w
    assert crop.size[0] == crop.size[1] >= side
    big = corner.assign(bbox_x=0.0, bbox_y=0.0, bbox_w=float(w), bbox_h=float(h) * 1.5)
    [padded] = cvf.load_crops(
        big, frames=tables.frames, square=True, fill=(0, 255, 0), progress=False
    )
    assert padded.size[0] == padded.size[1] == max(w, round(h * 1.5))
    green = padded.getpixel((0, padded.size[1] - 1)) if padded.size[1] > h else None
    if green is not None:
        assert green[1] > 200 and green[0] < 60
    with pytest.raises(ConfigError, match="fill"):
        cvf.load_crops(corner, frames=tables.frames, square=True, fill=300)
    assert isinstance(padded, Image.Image)


def test_load_crops_raise_says_record_and_record_keeps_the_others(tables):
    objs = tables.objects.head(20).copy()
    objs.loc[objs.index[3], ["bbox_x", "bbox_y", "bbox_w", "bbox_h", "blob"]] = None
    with pytest.raises(cvf.errors.ImageLoadError, match='on_error="record"'):
        cvf.load_crops(objs, frames=tables.frames, progress=False)
    results = cvf.load_crops(objs, frames=tables.frames, on_error="record", progress=False)
    failed = [r for r in results if not r.ok]
    assert len(failed) >= 1 and sum(r.ok for r in results) >= len(results) - len(failed)
    assert any("no crop blob and no geometry" in r.error for r in failed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordWarning)
        with pytest.raises(ConfigError, match="pass frames="):
            CropDataset(objs[objs.blob.isna()])

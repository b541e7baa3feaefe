"""One DatasetOptions for every writer and dataset: splits, seed, label, classes and filters
in one value, one spelling each, the older spellings warning."""

from __future__ import annotations

import json

import pytest
from dataset_helpers import browse_tables

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, SkippedRecordWarning
from coreviz_frames.training.coco import export_coco
from coreviz_frames.training.crop_dataset import CropDataset, export_crops
from coreviz_frames.training.detection import DetectionDataset
from coreviz_frames.training.frames import plan_dataset
from coreviz_frames.training.selection import DatasetOptions


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def test_one_value_carries_splits_seed_and_classes_to_every_writer(tables, tmp_path):
    opts = DatasetOptions(splits=(0.5, 0.5), seed=7, classes=["rocket", "person"])
    report = export_coco(tables, tmp_path / "coco", options=opts, images="none")
    assert report.categories == ["rocket", "person"] and sorted(report.images) == ["train", "val"]
    train = DetectionDataset(tables, options=opts, split="train", target_format="numpy")
    assert train.classes == ["rocket", "person"] and train.options is opts
    coco_train = json.loads((tmp_path / "coco/annotations/instances_train.json").read_text())
    assert {im["coreviz_frame_id"] for im in coco_train["images"]} == {
        it.frame_id for it in train.items
    }
    with pytest.warns(SkippedRecordWarning):
        crops = CropDataset(tables, options=opts, split="val")
    val_media = set(plan_dataset(tables, opts).assignment.items())
    assert {(m, "val") for m in crops.objects.media_id} <= val_media
    assert crops.classes == ["rocket", "person"]  # the order given, as every writer
    labels = json.loads((tmp_path / "coco/labels.json").read_text())
    assert labels["options"]["splits"] == {"train": 0.5, "val": 0.5}
    assert labels["options"]["seed"] == 7 and labels["options"]["label"] == "label"


def test_a_dataset_takes_a_tag_as_its_label_as_the_writers_do(tables, tmp_path):
    with pytest.warns(SkippedRecordWarning):
        ds = CropDataset(tables, label="tag:color")
    manifest = export_crops(tables, tmp_path, label="tag:color", progress=False)
    written = manifest[manifest.status == "written"]
    assert ds.classes == sorted(set(written.label)) and len(ds) == len(written)
    with pytest.raises(ConfigError, match="tag key"):
        CropDataset(tables, label="tag:")


def test_the_older_spellings_warn_and_still_work(tables, tmp_path):
    with pytest.warns(FutureWarning, match="select= is deprecated"):
        old = export_coco(
            tables, tmp_path / "a", images="none", select=DatasetOptions(classes=["rocket"])
        )
    new = export_coco(
        tables, tmp_path / "b", images="none", options=DatasetOptions(classes=["rocket"])
    )
    assert old.categories == new.categories == ["rocket"]
    assert old.total_annotations == new.total_annotations
    with pytest.warns(FutureWarning, match="labels= is deprecated"):
        opts = DatasetOptions(labels=["person", "rocket"])
    assert opts.classes == ("person", "rocket")
    with pytest.warns(FutureWarning, match="labels= is deprecated"):
        ds = DetectionDataset(tables, labels=["person"], target_format="numpy")
    assert ds.classes == ["person"]
    with pytest.raises(ConfigError, match="classes= alone"):
        DatasetOptions(labels=["a"], classes=["a"])
    with pytest.raises(ConfigError, match="options= alone"):
        export_coco(tables, tmp_path / "c", select=DatasetOptions(), options=DatasetOptions())


def test_options_and_the_same_keyword_are_refused_together(tables):
    with pytest.raises(ConfigError, match="pass either options= or splits, not both"):
        DetectionDataset(tables, options=DatasetOptions(), splits=(0.5, 0.5))
    with pytest.raises(ConfigError, match="seed must be an int"):
        DatasetOptions(seed="1")
    with pytest.raises(ConfigError, match="label must be"):
        DatasetOptions(label="")
    assert DatasetOptions(splits={"a": ["m1"]}).to_dict()["splits"] == {"pinned": ["a"]}
    assert cvf.DatasetOptions is DatasetOptions


def test_from_splits_takes_the_splits_of_its_options(tables):
    opts = DatasetOptions(splits=(0.5, 0.5), seed=3)
    parts = DetectionDataset.from_splits(tables, options=opts, target_format="numpy")
    assert sorted(parts) == ["train", "val"]
    assert parts["train"].classes == parts["val"].classes
    assert {it.media_id for it in parts["train"].items}.isdisjoint(
        {it.media_id for it in parts["val"].items}
    )

"""to_hf_dataset and export_hf, read back with datasets.load_dataset (offline)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from dataset_helpers import browse_tables, objects_with_geometry, table_boxes, with_frame_blob

from coreviz_frames.errors import ConfigError, EmptySplitWarning, SkippedRecordWarning
from coreviz_frames.training.huggingface import export_hf, to_hf_dataset

datasets = pytest.importorskip("datasets", reason="Hugging Face datasets (hf or dev extra)")


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return tmp_path / "hf-cache"


def _check_frame_rows(tables, ds) -> int:
    expected = table_boxes(tables)
    labels = tables.objects.set_index("object_id").label
    names = ds.features["objects"]["category"].feature.names
    n = 0
    for row in ds:
        objs = row["objects"]
        for bbox, cat, oid in zip(objs["bbox"], objs["category"], objs["object_id"], strict=True):
            x, y, w, h = bbox
            np.testing.assert_allclose([x, y, x + w, y + h], expected[oid], atol=1e-3)
            assert names[cat] == labels[oid]
            n += 1
    return n


def test_to_hf_dataset_frames(tables):
    ds = to_hf_dataset(tables, progress=False)
    assert len(ds) == 19
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["objects"]["category"].feature, datasets.ClassLabel)
    assert _check_frame_rows(tables, ds) == len(objects_with_geometry(tables))
    row = ds[0]
    assert row["image"].size == (row["width"], row["height"])
    parts = to_hf_dataset(tables, splits=(0.6, 0.2, 0.2), seed=1, images=False)
    assert sorted(parts) == ["test", "train", "validation"]
    assert "image" not in parts["train"].features
    media = [set(parts[s]["media_id"]) for s in ("train", "validation", "test")]
    assert not (media[0] & media[1] or media[0] & media[2] or media[1] & media[2])


def test_to_hf_dataset_objects(tables):
    ds = to_hf_dataset(tables, grain="objects", progress=False)
    geo = objects_with_geometry(tables).set_index("object_id")
    assert len(ds) == len(geo)
    names = ds.features["label"].names
    for row in ds.select(range(5)):
        obj = geo.loc[row["object_id"]]
        assert names[row["label"]] == obj.label
        assert (
            abs(row["image"].width - obj.bbox_w) <= 2 and abs(row["image"].height - obj.bbox_h) <= 2
        )
    with pytest.raises(ConfigError, match="grain"):
        to_hf_dataset(tables, grain="media")


def test_export_hf_loads_offline_and_first_frame_boxes_match(tables, tmp_path, offline):
    out = tmp_path / "hf"
    report = export_hf(
        tables, out, splits=(0.6, 0.2, 0.2), seed=2, rows_per_shard=4, progress=False
    )
    assert report.total_images == 19 and report.failed_frames == {}
    assert (out / "README.md").read_text().startswith("---\nconfigs:\n")
    assert any("-00001-of-" in f for f in report.files)  # sharded
    loaded = datasets.load_dataset(str(out), cache_dir=str(offline))
    assert sorted(loaded) == ["test", "train", "validation"]
    assert sum(len(loaded[s]) for s in loaded) == 19
    first = loaded["train"][0]
    expected = table_boxes(tables)
    oids = first["objects"]["object_id"]
    frame_objects = objects_with_geometry(tables)
    assert sorted(oids) == sorted(
        frame_objects[frame_objects.frame_id == first["frame_id"]].object_id
    )
    for (x, y, w, h), oid in zip(first["objects"]["bbox"], oids, strict=True):
        np.testing.assert_allclose([x, y, x + w, y + h], expected[oid], atol=1e-3)
    assert first["image"].size == (first["width"], first["height"])
    features = loaded["train"].features
    assert isinstance(features["objects"]["category"].feature, datasets.ClassLabel)
    assert (
        _check_frame_rows(tables, loaded["validation"])
        + _check_frame_rows(tables, loaded["test"])
        + _check_frame_rows(tables, loaded["train"])
        == 19
    )
    # a second export with fewer shards leaves no stale shard behind
    export_hf(tables, out, splits=(0.6, 0.2, 0.2), seed=2, images=False, overwrite=True)
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]


def test_export_hf_failed_frame_is_reported(tables, sample_api, tmp_path):
    victim = tables.frames.frame_id[3]
    broken = with_frame_blob(tables, victim, f"{sample_api.blob_url}/frames/gone/0.jpg")
    report = export_hf(broken, tmp_path, progress=False)
    assert list(report.failed_frames) == [victim] and report.total_images == 18
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = to_hf_dataset(broken, progress=False)
    assert len(ds) == 18 and victim not in ds["frame_id"]
    assert any(issubclass(w.category, SkippedRecordWarning) for w in caught)


def test_export_hf_every_image_failing_is_reported_not_a_traceback(
    tables, sample_api, tmp_path, offline
):
    broken = tables
    for frame_id in tables.frames.frame_id:
        broken = with_frame_blob(broken, frame_id, f"{sample_api.blob_url}/frames/gone/0.jpg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = export_hf(broken, tmp_path / "hf", progress=False)
        ds = to_hf_dataset(broken, progress=False)
    assert report.total_images == 0 and len(report.failed_frames) == len(tables.frames)
    assert len(ds) == 0 and "image" in ds.features
    assert any(
        issubclass(w.category, EmptySplitWarning) and "no row was written" in str(w.message)
        for w in caught
    )


def test_export_hf_split_whose_images_all_fail_is_left_out_and_the_rest_loads(
    tables, sample_api, tmp_path, offline
):
    plan = export_hf(tables, tmp_path / "probe", splits=(0.5, 0.5), images=False, progress=False)
    assignment = pd.read_csv(tmp_path / "probe" / "splits.csv", dtype=str)
    val_media = set(assignment.loc[assignment.split == "val", "media_id"])
    assert plan.images["validation"] > 0 and val_media
    broken = tables
    for frame_id in tables.frames.loc[tables.frames.media_id.isin(val_media), "frame_id"]:
        broken = with_frame_blob(broken, frame_id, f"{sample_api.blob_url}/frames/gone/0.jpg")
    with pytest.warns(EmptySplitWarning, match="'validation'"):
        report = export_hf(broken, tmp_path / "hf", splits=(0.5, 0.5), progress=False)
    assert report.images["validation"] == 0 and report.images["train"] > 0
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(offline))
    assert list(loaded) == ["train"] and len(loaded["train"]) == report.images["train"]


def test_missing_datasets_gives_the_install_hint():
    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "from coreviz_frames.training.huggingface import to_hf_dataset\n"
        "from coreviz_frames.errors import MissingDependencyError\n"
        "try:\n    to_hf_dataset(None)\n"
        "except MissingDependencyError as e:\n    print(e, '|', e.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "coreviz-frames[hf]"' in out.stdout and out.stdout.endswith("| datasets\n")


def test_export_hf_same_input_and_seed_give_identical_files(tables, tmp_path):
    for name in ("a", "b"):
        export_hf(tables, tmp_path / name, splits=(0.6, 0.2, 0.2), seed=1, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 6  # three shards, the card, splits.csv and labels.json
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_export_hf_objects_grain_reports_failed_crops_as_skipped_objects(
    tables, sample_api, tmp_path, offline
):
    victim = tables.frames.frame_id[3]
    broken = with_frame_blob(tables, victim, f"{sample_api.blob_url}/frames/gone/0.jpg")
    lost = set(tables.objects[tables.objects.frame_id == victim].object_id)
    report = export_hf(broken, tmp_path / "hf", grain="objects", progress=False)
    assert report.failed_frames == {} and lost and lost <= set(report.skipped_objects)
    assert report.images == report.annotations == {"train": report.total_images}
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(offline))
    assert len(loaded["train"]) == report.total_images
    assert lost.isdisjoint(loaded["train"]["object_id"])

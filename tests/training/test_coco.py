"""export_coco, checked with readers nobody here wrote (pycocotools, supervision)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import browse_tables, objects_with_geometry, table_boxes, with_frame_blob

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, EmptySplitWarning, ImageLoadError
from coreviz_frames.training.coco import coco_document, export_coco, url_file_name
from coreviz_frames.training.frames import plan_dataset

pycocotools_coco = pytest.importorskip("pycocotools.coco", reason="pycocotools (dev extra)")


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


@pytest.fixture(scope="module")
def synthetic_tables():
    from coreviz_frames.local_api import LocalAPI

    api = LocalAPI(synthetic=12).start()
    try:
        yield browse_tables(api), api
    finally:
        api.stop()


def _load(path: Path):
    return pycocotools_coco.COCO(str(path))


def test_pycocotools_loads_every_split_with_the_tables_counts(tables, tmp_path):
    report = export_coco(tables, tmp_path, splits=(0.6, 0.2, 0.2), seed=3, progress=False)
    geo = objects_with_geometry(tables)
    labels = sorted(geo.label.unique())
    n_images = n_anns = 0
    media_seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        coco = _load(tmp_path / "annotations" / f"instances_{split}.json")
        n_images += len(coco.imgs)
        n_anns += len(coco.anns)
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == labels
        for img in coco.imgs.values():
            assert (tmp_path / "images" / split / img["file_name"]).is_file()
            assert media_seen.setdefault(img["coreviz_media_id"], split) == split
    assert n_images == tables.frames.blob.notna().sum() == report.total_images == 19
    assert n_anns == len(geo) == report.total_annotations == 19
    assert report.skipped_objects == {
        oid: "no geometry" for oid in tables.objects[tables.objects.bbox_x.isna()].object_id
    }
    assert report.failed_frames == {}


def test_ann_to_mask_on_a_segmented_annotation(tables, tmp_path):
    export_coco(tables, tmp_path, progress=False)
    coco = _load(tmp_path / "annotations" / "instances_all.json")
    ann = next(
        a for a in coco.anns.values() if a["coreviz_object_id"] == tables.objects.object_id[1]
    )
    assert len(ann["segmentation"]) == 1 and len(ann["segmentation"][0]) >= 6
    mask = coco.annToMask(ann)
    img = coco.imgs[ann["image_id"]]
    assert mask.shape == (img["height"], img["width"])
    assert abs(int(mask.sum()) - ann["area"]) <= 0.05 * ann["area"] + 200
    x, y, w, h = ann["bbox"]
    ys, xs = np.nonzero(mask)
    assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
    assert abs(xs.max() + 1 - (x + w)) <= 1 and abs(ys.max() + 1 - (y + h)) <= 1


def test_image_and_annotation_fields(tables, tmp_path):
    export_coco(tables, tmp_path, progress=False)
    doc = json.loads((tmp_path / "annotations" / "instances_all.json").read_text())
    frames = tables.frames.set_index("frame_id")
    for img in doc["images"]:
        frame = frames.loc[img["coreviz_frame_id"]]
        assert (img["width"], img["height"]) == (frame.width, frame.height)
        assert img["coreviz_media_id"] == frame.media_id
    objs = tables.objects.set_index("object_id")
    for ann in doc["annotations"]:
        assert ann["iscrowd"] == 0 and ann["category_id"] >= 1
        obj = objs.loc[ann["coreviz_object_id"]]
        assert ann["coreviz_frame_id"] == obj.frame_id
        assert doc["categories"][ann["category_id"] - 1]["name"] == obj.label
        assert ann["bbox"][2] > 0 and ann["bbox"][3] > 0
    ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ids)) == len(ids)
    # video frames and PDF pages are images too
    media_types = tables.media.set_index("media_id").type
    kinds = {media_types[img["coreviz_media_id"]] for img in doc["images"]}
    assert kinds == {"image", "video", "pdf"}


def _supervision():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("supervision", reason="supervision (dev extra)")


def _check_supervision_coco(tables, out: Path, split: str) -> int:
    sv = _supervision()
    ds = sv.DetectionDataset.from_coco(
        str(out / "images" / split), str(out / "annotations" / f"instances_{split}.json")
    )
    doc = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
    by_file = {im["file_name"]: im["id"] for im in doc["images"]}
    anns: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    expected = table_boxes(tables)
    checked = 0
    for path, _image, det in ds:
        oids = [a["coreviz_object_id"] for a in anns.get(by_file[Path(path).name], [])]
        assert len(det) == len(oids)
        for box, class_id, oid in zip(det.xyxy, det.class_id, oids, strict=True):
            np.testing.assert_allclose(box, expected[oid], atol=1.0)
            label = tables.objects.set_index("object_id").label[oid]
            assert ds.classes[class_id] == label
            checked += 1
    return checked


def test_supervision_from_coco_sample_boxes_within_a_pixel(tables, tmp_path):
    export_coco(tables, tmp_path, progress=False)
    assert _check_supervision_coco(tables, tmp_path, "all") == 19


def test_supervision_from_coco_synthetic_boxes_within_a_pixel(synthetic_tables, tmp_path):
    tables, _ = synthetic_tables
    report = export_coco(tables, tmp_path, splits=(0.5, 0.25, 0.25), progress=False)
    checked = sum(_check_supervision_coco(tables, tmp_path, s) for s in report.images)
    assert checked == len(objects_with_geometry(tables)) == report.total_annotations > 30


def test_same_input_and_seed_give_byte_identical_files(tables, tmp_path):
    shuffled = cvf.MediaTables(
        tables.media,
        tables.frames.sample(frac=1, random_state=1),
        tables.captions,
        tables.objects.sample(frac=1, random_state=2),
        tables.tags,
    )
    export_coco(tables, tmp_path / "a", splits=(0.6, 0.2, 0.2), seed=7, images="none")
    export_coco(shuffled, tmp_path / "b", splits=(0.6, 0.2, 0.2), seed=7, images="none")
    for split in ("train", "val", "test"):
        name = f"annotations/instances_{split}.json"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    export_coco(tables, tmp_path / "c", splits=(0.6, 0.2, 0.2), seed=8, images="none")
    assert any(
        (tmp_path / "a" / n).read_bytes() != (tmp_path / "c" / n).read_bytes()
        for n in ("annotations/instances_train.json", "annotations/instances_val.json")
    )


def test_split_dict_from_split_by_media_and_overlap_refused(tables, tmp_path):
    parts = cvf.split_by_media(tables.frames, (0.5, 0.5, 0.0), seed=1)
    with pytest.warns(EmptySplitWarning, match="'test' has no media"):
        report = export_coco(tables, tmp_path, splits=parts, images="none")
    assert sorted(report.images) == ["test", "train", "val"] and report.images["test"] == 0
    seen = set()
    for split in report.images:
        doc = json.loads((tmp_path / f"annotations/instances_{split}.json").read_text())
        media = {im["coreviz_media_id"] for im in doc["images"]}
        assert not media & seen
        seen |= media
    mid = tables.frames.media_id[0]
    with pytest.raises(ConfigError, match=mid):
        export_coco(tables, tmp_path / "two", splits={"a": [mid], "b": [mid]}, images="none")
    with pytest.raises(ConfigError, match="split name"):
        export_coco(tables, tmp_path / "bad", splits={"../x": [mid]}, images="none")
    assert not (tmp_path / "two").exists() and not (tmp_path / "bad").exists()
    only = export_coco(tables, tmp_path / "one", splits={"train": [mid]}, images="none")
    assert only.total_images == 1
    assert all("in no split" in why for why in only.skipped_frames.values())


def test_a_frame_whose_image_fails_is_reported_and_left_out(tables, sample_api, tmp_path):
    victim = tables.objects.frame_id[1]  # the astronaut frame: five objects
    broken = with_frame_blob(tables, victim, f"{sample_api.blob_url}/frames/missing/0.jpg")
    report = export_coco(broken, tmp_path, progress=False)
    assert list(report.failed_frames) == [victim]
    assert "404" in report.failed_frames[victim] or "missing" in report.failed_frames[victim]
    doc = json.loads((tmp_path / "annotations" / "instances_all.json").read_text())
    assert victim not in {im["coreviz_frame_id"] for im in doc["images"]}
    assert victim not in {a["coreviz_frame_id"] for a in doc["annotations"]}
    files = {p.name for p in (tmp_path / "images" / "all").iterdir()}
    assert len(files) == len(doc["images"]) == 18
    assert {im["file_name"] for im in doc["images"]} == files
    assert report.total_annotations == 19 - 5 == len(doc["annotations"])
    with pytest.raises(ImageLoadError, match=victim):
        export_coco(broken, tmp_path / "raise", on_error="raise", progress=False)


def test_images_none_writes_annotations_only_with_url_names(tables, tmp_path):
    report = export_coco(tables, tmp_path, images="none")
    assert not (tmp_path / "images").exists()
    doc = json.loads((tmp_path / "annotations" / "instances_all.json").read_text())
    names = [im["file_name"] for im in doc["images"]]
    assert len(set(names)) == len(names) == report.total_images
    assert "frames/chelsea/0.jpg" in names
    name = url_file_name("https://h/a%20b/../c.jpg")
    assert name.startswith("a b/") and name.endswith("/c.jpg") and ".." not in name.split("/")


def test_segmentation_off_classes_given_and_no_zero_boxes(tables, tmp_path):
    report = export_coco(
        tables, tmp_path, images="none", segmentation=False, classes=["rocket", "person"]
    )
    doc = json.loads((tmp_path / "annotations" / "instances_all.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["rocket", "person"]
    assert [c["id"] for c in doc["categories"]] == [1, 2]
    assert all("segmentation" not in a for a in doc["annotations"])
    assert len(doc["annotations"]) == 8 == report.total_annotations
    assert all(a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in doc["annotations"])
    skipped = report.skipped_objects
    assert any("not among classes=" in why for why in skipped.values())
    # include_empty=False drops frames without objects
    plan = plan_dataset(tables, classes=["rocket"], include_empty=False)
    assert {len(it.annotations) > 0 for it in plan.items} == {True}


def test_a_box_outside_the_frame_is_clipped_and_reported(tables, tmp_path):
    objects = tables.objects.copy()
    oid = objects.object_id[12]  # the clock
    objects.loc[objects.object_id == oid, ["bbox_x", "bbox_w"]] = [350.0, 100.0]
    objects.loc[objects.object_id == oid, "polygon"] = None
    moved = cvf.MediaTables(tables.media, tables.frames, tables.captions, objects, tables.tags)
    report = export_coco(moved, tmp_path, images="none")
    assert report.clipped_objects == [oid]
    doc = json.loads((tmp_path / "annotations" / "instances_all.json").read_text())
    ann = next(a for a in doc["annotations"] if a["coreviz_object_id"] == oid)
    assert ann["bbox"][0] + ann["bbox"][2] == 400 and ann["area"] == 50 * 132
    assert "segmentation" not in ann


def test_bad_options_are_config_errors(tables, tmp_path):
    with pytest.raises(ConfigError, match="images"):
        export_coco(tables, tmp_path, images="link")
    with pytest.raises(ConfigError, match="on_error"):
        export_coco(tables, tmp_path, on_error="ignore")
    with pytest.raises(ConfigError, match="fractions"):
        export_coco(tables, tmp_path, splits=(0.5, 0.1))
    with pytest.raises(ConfigError, match="classes"):
        export_coco(tables, tmp_path, classes="cat")
    with pytest.raises(TypeError):  # the older spelling, never documented, is gone
        export_coco(tables, tmp_path, categories=["cat"])
    with pytest.raises(TypeError):
        export_coco(tables.objects, tmp_path)
    with pytest.raises(TypeError):
        export_coco(tables, tmp_path, bogus=1)


def test_coco_document_leaves_out_failed_frames(tables):
    plan = plan_dataset(tables)
    first = plan.items[0].frame_id
    doc = coco_document(plan, "all", failed={first})
    assert first not in {im["coreviz_frame_id"] for im in doc["images"]}
    assert len(doc["images"]) == len(plan.items) - 1


def test_a_blob_url_that_cannot_be_parsed_still_names_its_file(tables, tmp_path):
    """An unbalanced ``[`` in a server's URL (urlsplit's ValueError) was a raw traceback."""
    assert url_file_name("http://a]b/frames/x/0.jpg?sig=1") == "frames/x/0.jpg"
    assert url_file_name("https://[::1") == "frame.jpg"
    frame_id = tables.frames.frame_id.iloc[0]
    bad = with_frame_blob(tables, frame_id, "http://[::1/frames/bad/0.jpg")
    export_coco(bad, tmp_path, images="none")
    doc = json.loads((tmp_path / "annotations" / "instances_all.json").read_text())
    assert "frames/bad/0.jpg" in [im["file_name"] for im in doc["images"]]

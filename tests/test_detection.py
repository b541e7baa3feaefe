"""DetectionDataset and detection_collate, with a torch DataLoader when torch is installed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from dataset_helpers import browse_tables, objects_with_geometry, table_boxes
from PIL import Image

from coreviz_frames.detection import DetectionDataset, detection_collate
from coreviz_frames.errors import ConfigError


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def test_items_targets_and_classes(tables):
    ds = DetectionDataset(tables)
    geo = objects_with_geometry(tables)
    assert len(ds) == 19
    assert ds.classes == sorted(geo.label.unique())
    assert ds.class_to_idx == {c: i for i, c in enumerate(ds.classes)}
    expected = table_boxes(tables)
    labels = tables.objects.set_index("object_id").label
    n_boxes = 0
    for i in range(len(ds)):
        target = ds.target(i)
        assert target["boxes"].dtype == np.float32 and target["boxes"].shape[1] == 4
        assert target["labels"].dtype == np.int64
        assert len(target["labels"]) == len(target["object_ids"]) == len(target["boxes"])
        for box, lab, oid in zip(
            target["boxes"], target["labels"], target["object_ids"], strict=True
        ):
            np.testing.assert_allclose(box, expected[oid], atol=1e-3)
            assert ds.classes[lab] == labels[oid]
        n_boxes += len(target["boxes"])
    assert n_boxes == len(geo)
    image, target = ds[1]
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    frame = tables.frames.set_index("frame_id").loc[target["frame_id"]]
    assert image.size == (frame.width, frame.height) and target["media_id"] == frame.media_id
    assert ds[-1][1]["frame_id"] == ds.items[-1].frame_id
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert "spoon" not in ds.classes and list(ds.skipped.values()) == ["no geometry"]


def test_classes_offset_transform_and_splits(tables):
    ds = DetectionDataset(
        tables,
        classes=["rocket", "person"],
        label_offset=1,
        include_empty=False,
        transform=lambda image, target: (image.size, target["labels"].tolist()),
    )
    assert ds.classes == ["rocket", "person"]
    assert all(set(ds[i][1]) <= {1, 2} and ds[i][1] for i in range(len(ds)))
    parts = DetectionDataset.from_splits(tables, (0.6, 0.2, 0.2), seed=4)
    assert sorted(parts) == ["test", "train", "val"]
    assert sum(len(p) for p in parts.values()) == 19
    assert len({tuple(p.classes) for p in parts.values()}) == 1
    media = [{it.media_id for it in p.items} for p in parts.values()]
    assert not (media[0] & media[1] or media[0] & media[2] or media[1] & media[2])
    with pytest.raises(ConfigError, match="split"):
        DetectionDataset(tables, split="train")
    with pytest.raises(ConfigError, match="split"):
        DetectionDataset(tables, splits=(0.8, 0.1, 0.1), split="holdout")


def test_pickles_and_collates(tables):
    ds = DetectionDataset(tables, cache_dir=False)
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone) == len(ds)
    np.testing.assert_array_equal(clone.target(1)["boxes"], ds.target(1)["boxes"])
    images, targets = detection_collate([ds[0], ds[1]])
    assert len(images) == len(targets) == 2
    assert [len(t["boxes"]) for t in targets] == [len(ds.target(i)["boxes"]) for i in (0, 1)]


def test_torch_dataloader_with_two_workers(tables):
    torch = pytest.importorskip("torch")
    ds = DetectionDataset(tables, transform=_to_tensors)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=detection_collate, timeout=120
    )
    frames, boxes = 0, 0
    for images, targets in loader:
        assert len(images) == len(targets)
        for image, target in zip(images, targets, strict=True):
            assert image.ndim == 3 and image.shape[0] == 3
            assert target["boxes"].dtype == torch.float32
            boxes += len(target["boxes"])
        frames += len(images)
    assert frames == 19 and boxes == 19


def _to_tensors(image, target):
    import torch

    array = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
    return array, {
        **target,
        "boxes": torch.from_numpy(target["boxes"]),
        "labels": torch.from_numpy(target["labels"]),
    }

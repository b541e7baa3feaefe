"""DetectionDataset and detection_collate, with a torch DataLoader when torch is installed."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from dataset_helpers import browse_tables, claiming, objects_with_geometry, table_boxes
from PIL import Image

from coreviz_frames.errors import ConfigError, MissingDependencyError
from coreviz_frames.training.detection import DetectionDataset, detection_collate


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def test_items_targets_and_classes(tables):
    ds = DetectionDataset(tables, target_format="numpy")
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


def test_numpy_targets_carry_image_id_area_and_iscrowd(tables):
    ds = DetectionDataset(tables, target_format="numpy", include_empty=False)
    image, target = ds[0]
    assert isinstance(image, Image.Image) and isinstance(target["boxes"], np.ndarray)
    assert target["image_id"] == ds.items[0].image_id
    assert target["area"].dtype == np.float32 and len(target["area"]) == len(target["boxes"])
    assert target["iscrowd"].dtype == np.int64 and not target["iscrowd"].any()
    with pytest.raises(ConfigError, match="target_format"):
        DetectionDataset(tables, target_format="tensorflow")


def test_claimed_size_far_from_the_image_scales_the_boxes(tables):
    ds = DetectionDataset(tables, target_format="numpy", include_empty=False)
    item = ds.items[0]
    big = claiming(tables, item.frame_id, 60000, 60000)
    scaled = DetectionDataset(big, target_format="numpy", include_empty=False)
    pos = next(i for i, it in enumerate(scaled.items) if it.frame_id == item.frame_id)
    image, target = scaled[pos]
    assert image.size == (item.width, item.height)  # the real image, never 60000 x 60000
    assert (target["boxes"][:, 2] <= item.width + 1e-3).all()
    assert (target["boxes"][:, 3] <= item.height + 1e-3).all()
    claimed = scaled.target(pos)["boxes"]  # in the claimed frame's pixels
    sx, sy = item.width / 60000, item.height / 60000
    np.testing.assert_allclose(target["boxes"], claimed * [sx, sy, sx, sy], rtol=1e-5)


def _torchvision():
    """torch and torchvision, or a skip saying why (printed with -ra)."""
    torch = pytest.importorskip("torch", reason="torch is not installed (make test installs it)")
    try:
        import torchvision
        from torchvision import tv_tensors
        from torchvision.transforms import v2
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"torchvision cannot be imported beside torch {torch.__version__}: {exc}")
    return torch, torchvision, tv_tensors, v2


def test_torch_items_are_tv_tensors(tables):
    torch, _, tv_tensors, _ = _torchvision()
    ds = DetectionDataset(tables, include_empty=False)
    assert ds.target_format == "torch"
    image, target = ds[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32
    assert image.shape[0] == 3 and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    boxes = target["boxes"]
    assert isinstance(boxes, tv_tensors.BoundingBoxes)
    assert boxes.format == tv_tensors.BoundingBoxFormat.XYXY
    assert tuple(boxes.canvas_size) == tuple(image.shape[-2:])
    np.testing.assert_allclose(boxes.numpy(), ds.target(0)["boxes"], atol=1e-4)
    assert target["labels"].dtype == torch.int64 and target["iscrowd"].dtype == torch.int64
    assert target["area"].dtype == torch.float32 and target["image_id"] == ds.items[0].image_id


def test_random_horizontal_flip_moves_the_boxes_with_the_image(tables):
    torch, _, tv_tensors, v2 = _torchvision()
    ds = DetectionDataset(tables, include_empty=False)
    image, target = ds[0]
    flipped, moved = v2.RandomHorizontalFlip(p=1)(image, target)
    width = image.shape[-1]
    assert torch.equal(flipped, image.flip(-1))
    before, after = target["boxes"], moved["boxes"]
    assert isinstance(after, tv_tensors.BoundingBoxes)
    torch.testing.assert_close(after[:, 0], width - before[:, 2])
    torch.testing.assert_close(after[:, 2], width - before[:, 0])
    torch.testing.assert_close(after[:, 1::2], before[:, 1::2])
    # the usual pipeline as the dataset's transform: labels stay labels
    pipeline = v2.Compose(
        [v2.RandomHorizontalFlip(p=1), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    )
    composed = DetectionDataset(tables, include_empty=False, transform=pipeline)
    _, target2 = composed[0]
    assert torch.equal(target2["labels"], target["labels"])
    torch.testing.assert_close(target2["boxes"], after)


@pytest.mark.slow
def test_faster_rcnn_trains_on_a_two_worker_loader_with_no_adapter(tables):
    torch, torchvision, _, _ = _torchvision()
    ds = DetectionDataset(tables, label_offset=1)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=detection_collate, timeout=120
    )
    torch.manual_seed(0)
    # the box head samples 64 proposals per image for its loss, not 512: the same training
    # step on the loader's batch, without most of its matrix work
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=len(ds.classes) + 1,
        box_batch_size_per_image=64,
    )
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    frames = boxes = 0
    for step, (images, targets) in enumerate(loader):
        frames += len(images)
        boxes += sum(len(t["boxes"]) for t in targets)
        if step == 0:
            losses = model(images, targets)
            loss = sum(losses.values())
            assert torch.isfinite(loss) and {"loss_classifier", "loss_box_reg"} <= set(losses)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert frames == 19 and boxes == 19


def test_auto_without_torch_gives_numpy(tables, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    ds = DetectionDataset(tables)
    assert ds.target_format == "numpy"
    image, target = ds[0]
    assert isinstance(image, Image.Image) and isinstance(target["labels"], np.ndarray)
    monkeypatch.setitem(sys.modules, "torch", None)  # and an import of it fails
    with pytest.raises(
        MissingDependencyError, match=r'needs torch: pip install "coreviz-frames\[torch\]"'
    ):
        DetectionDataset(tables, target_format="torch")

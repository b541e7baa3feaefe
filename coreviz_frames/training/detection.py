"""A map-style detection dataset of whole frames and their boxes, in torchvision's convention.

:class:`DetectionDataset` gives ``(image, target)`` per frame::

    target = {"boxes": N x 4 (x1, y1, x2, y2 in the image's pixels), "labels": int64 N,
              "image_id": int, "area": float32 N, "iscrowd": int64 N,
              "object_ids": [...], "frame_id": str, "media_id": str}

When torch is importable (``target_format="auto"``, the default) the image is a float32
``C x H x W`` tensor in [0, 1] and the arrays are tensors; with torchvision too the image is
a ``tv_tensors.Image`` and ``boxes`` a ``tv_tensors.BoundingBoxes`` (XYXY, ``canvas_size``),
so torchvision v2 transforms move the boxes with the image and its detection models and
reference scripts take the items unchanged. ``target_format="numpy"`` gives a PIL image and
numpy arrays. torch is imported on the first item, never when the package is imported.

:func:`detection_collate` batches items with different numbers of boxes for a torch
``DataLoader`` (``collate_fn=detection_collate``).

Example:
    >>> ds = DetectionDataset(tables, splits=(0.8, 0.1, 0.1), split="train")   # doctest: +SKIP
    >>> image, target = ds[0]                                                  # doctest: +SKIP
    >>> type(target["boxes"]).__name__, target["labels"].dtype                 # doctest: +SKIP
    ('BoundingBoxes', torch.int64)
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2,
    ...                                      collate_fn=detection_collate)     # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from coreviz_frames._util.checks import check_choice
from coreviz_frames._util.optional import import_optional
from coreviz_frames.images.loading import load_blob
from coreviz_frames.images.options import DownloadOptions
from coreviz_frames.training.frames import FrameItem, plan_dataset
from coreviz_frames.training.labels import class_index
from coreviz_frames.training.selection import (
    DatasetKwargs,
    DatasetOptions,
    dataset_options,
    writer_options,
)
from coreviz_frames.training.splits import SplitsArg, pick_split

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.training.selection import DatasetDownloadKwargs

__all__ = ["DetectionDataset", "detection_collate"]

Target = dict[str, Any]
TargetFormat = Literal["auto", "torch", "numpy"]


def resolve_target_format(target_format: str) -> str:
    """``"torch"`` or ``"numpy"``: ``"auto"`` is torch when it can be imported.

    ``"auto"`` imports nothing (``importlib.util.find_spec`` only looks); ``"torch"``
    imports torch, or raises :class:`~coreviz_frames.errors.MissingDependencyError` with
    the install hint.

    Example:
        >>> resolve_target_format("numpy")
        'numpy'
    """
    check_choice("target_format", target_format, ("auto", "torch", "numpy"))
    if target_format == "torch":
        import_optional("torch", extra="torch", purpose='target_format="torch"')
    if target_format == "auto":
        return "torch" if importlib.util.find_spec("torch") is not None else "numpy"
    return target_format


@functools.lru_cache(maxsize=1)
def _tv_tensors() -> Any:
    """torchvision's ``tv_tensors`` module, or None when torchvision cannot be imported
    (absent, or a build that does not match the installed torch)."""
    return import_optional(
        "torchvision.tv_tensors", extra="torch", purpose="torchvision boxes", required=False
    )


def to_torch(image: Image.Image, target: Target) -> tuple[Any, Target]:
    """``(image, target)`` as torch values: a float32 ``C x H x W`` image in [0, 1], tensors
    for ``boxes``, ``labels``, ``area`` and ``iscrowd``; with torchvision a
    ``tv_tensors.Image`` and ``tv_tensors.BoundingBoxes`` (XYXY, ``canvas_size``).

    Example:
        >>> image, target = to_torch(pil_image, numpy_target)   # doctest: +SKIP
        >>> target["boxes"].canvas_size                         # doctest: +SKIP
        (520, 400)
    """
    torch = import_optional("torch", extra="torch", purpose="to_torch")
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    height, width = array.shape[:2]
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)
    out = dict(target)
    boxes = torch.from_numpy(np.ascontiguousarray(target["boxes"], dtype=np.float32))
    for key in ("labels", "area", "iscrowd"):
        out[key] = torch.from_numpy(np.ascontiguousarray(target[key]))
    tv = _tv_tensors()
    if tv is not None:
        pixels = tv.Image(pixels)
        boxes = tv.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))
    out["boxes"] = boxes
    return pixels, out


def scale_target(target: Target, claimed: tuple[int, int], real: tuple[int, int]) -> Target:
    """``target`` with boxes and areas moved from the ``claimed`` frame size to the ``real``
    size of its image (``(width, height)`` each): no image is resized to match.

    Example:
        >>> t = {"boxes": np.array([[0, 0, 10, 10]], np.float32), "area": np.array([100.0])}
        >>> scaled = scale_target(t, (100, 100), (50, 200))
        >>> scaled["boxes"].tolist(), scaled["area"].tolist()
        ([[0.0, 0.0, 5.0, 20.0]], [100.0])
    """
    if claimed == real:
        return target
    sx, sy = real[0] / claimed[0], real[1] / claimed[1]
    factor = np.array([sx, sy, sx, sy], dtype=np.float32)
    out = dict(target)
    out["boxes"] = (target["boxes"] * factor).astype(np.float32)
    out["area"] = (target["area"] * (sx * sy)).astype(np.float32)
    return out


def detection_collate(batch: Sequence[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """``[(image, target), ...]`` as ``([images], [targets])``: no stacking of boxes.

    Example:
        >>> detection_collate([("img1", {"boxes": 1}), ("img2", {"boxes": 2})])
        (['img1', 'img2'], [{'boxes': 1}, {'boxes': 2}])
    """
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets


class DetectionDataset:
    """Frames with their boxes, as a map-style dataset.

    One item per frame with a blob (video frames and PDF pages included; frames without
    objects too unless ``include_empty=False``). ``classes`` (labels in index order;
    sorted labels by default) and ``class_to_idx`` are as in
    :class:`~coreviz_frames.CropDataset`; ``label_offset=1`` shifts the labels for
    models that keep 0 for the background (torchvision's Faster R-CNN). ``target_format``:
    ``"auto"`` (torch tensors and torchvision ``tv_tensors`` when importable, see the
    module docstring), ``"torch"`` or ``"numpy"`` (a PIL image and numpy arrays). An
    image whose real size is not the frame's claimed size is kept as it is and the boxes
    are scaled to it (never resized to the claimed size). ``splits`` and
    ``split`` pick one split (fractions with ``seed``, a dict of splits or a splits
    file); :meth:`from_splits` builds one
    dataset per split with the same classes. ``transform(image, target)`` returns the
    new ``(image, target)`` (the torchvision v2 convention). Images load through
    :func:`~coreviz_frames.images.loading.load_blob` (the cache, size caps, no credentials);
    it pickles cleanly for ``DataLoader`` worker processes. What goes in is ``options``
    (or its fields as keywords: ``splits``, ``seed``, ``label``, ``classes``,
    ``label_map``, ``min_size``, ``object_types``, ``frame_stride``,
    ``max_frames_per_media``, ``include_empty``...), the
    :class:`~coreviz_frames.training.selection.DatasetOptions` of every writer, kept as
    ``self.options``.

    Example:
        >>> ds = DetectionDataset(tables, classes=["person", "rocket"])   # doctest: +SKIP
        >>> ds.class_to_idx                                              # doctest: +SKIP
        {'person': 0, 'rocket': 1}
    """

    def __init__(
        self,
        tables: Any,
        *,
        split: str | None = None,
        transform: Callable[[Image.Image, Target], Any] | None = None,
        label_offset: int = 0,
        target_format: TargetFormat = "auto",
        options: DatasetOptions | None = None,
        download: DownloadOptions | None = None,
        **kwargs: Unpack[DatasetDownloadKwargs],
    ) -> None:
        self.options, self.download = writer_options(kwargs, options=options, download=download)
        self.target_format = resolve_target_format(target_format)
        plan = plan_dataset(tables, self.options)
        self.split = pick_split(plan.splits, self.options.splits, split)
        self.items: list[FrameItem] = (
            list(plan.items) if self.split is None else plan.split_items(self.split)
        )
        self.classes: list[str] = list(plan.categories)
        self.class_to_idx: dict[str, int] = class_index(self.classes)
        self.label_offset = int(label_offset)
        self.transform = transform
        self.skipped: dict[str, str] = dict(plan.skipped_objects)
        self.skipped_frames: dict[str, str] = dict(plan.skipped_frames)

    @classmethod
    def from_splits(
        cls, tables: Any, splits: SplitsArg = (0.8, 0.1, 0.1), **kwargs: Any
    ) -> dict[str, DetectionDataset]:
        """``{split name: DetectionDataset}``, every split with the same classes.

        Example:
            >>> parts = DetectionDataset.from_splits(tables, seed=1)   # doctest: +SKIP
            >>> sorted(parts)                                         # doctest: +SKIP
            ['test', 'train', 'val']
        """
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in DatasetKwargs.__annotations__}
        options = dataset_options(given, kwargs.pop("options", None))
        if options.splits is None:
            options = replace(options, splits=splits)
        plan = plan_dataset(tables, options)
        options = replace(options, classes=plan.categories)
        return {name: cls(tables, split=name, options=options, **kwargs) for name in plan.splits}

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        boxes = sum(len(it.annotations) for it in self.items)
        return f"<DetectionDataset: {len(self)} frames, {boxes} boxes, {len(self.classes)} classes>"

    def target(self, index: int) -> Target:
        """The numpy target of item ``index`` in the frame's pixels (no image loaded)."""
        item = self.items[index]
        anns = item.annotations
        boxes = np.array([a.box.xyxy for a in anns], dtype=np.float32).reshape(len(anns), 4)
        labels = np.array([a.category + self.label_offset for a in anns], dtype=np.int64)
        return {
            "boxes": boxes,
            "labels": labels,
            "image_id": item.image_id,
            "area": np.array([a.area for a in anns], dtype=np.float32),
            "iscrowd": np.zeros(len(anns), dtype=np.int64),
            "object_ids": [a.object_id for a in anns],
            "frame_id": item.frame_id,
            "media_id": item.media_id,
        }

    def load(self, index: int) -> Image.Image:
        """The image of item ``index`` as stored (RGB); not resized to the frame's size."""
        return load_blob(self.items[index].url, download=self.download)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        item = self.items[index]
        image = self.load(index)
        target = scale_target(self.target(index), (item.width, item.height), image.size)
        if self.target_format == "torch":
            image, target = to_torch(image, target)
        if self.transform is not None:
            result: tuple[Any, Any] = self.transform(image, target)
            return result
        return image, target

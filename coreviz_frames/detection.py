"""A map-style detection dataset of whole frames and their boxes (torch-compatible, torch-free).

:class:`DetectionDataset` gives ``(image, target)`` per frame in the torchvision detection
convention, as numpy arrays (torch is never imported here)::

    target = {"boxes": float32 N x 4 (x1, y1, x2, y2 in frame pixels),
              "labels": int64 N, "object_ids": [...], "frame_id": str, "media_id": str}

:func:`detection_collate` batches items with different numbers of boxes for a torch
``DataLoader`` (``collate_fn=detection_collate``).

Example:
    >>> ds = DetectionDataset(tables, splits=(0.8, 0.1, 0.1), split="train")   # doctest: +SKIP
    >>> image, target = ds[0]                                                  # doctest: +SKIP
    >>> target["boxes"].shape, target["labels"].dtype                          # doctest: +SKIP
    ((5, 4), dtype('int64'))
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2,
    ...                                      collate_fn=detection_collate)     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import ConfigError
from .frameset import FrameItem, SplitsArg, frame_image, plan_dataset
from .options import DownloadOptions, download_options

if TYPE_CHECKING:
    from typing import Unpack

    from .options import DownloadKwargs

__all__ = ["DetectionDataset", "detection_collate"]

Target = dict[str, Any]


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
    models that keep 0 for the background (torchvision's Faster R-CNN). ``splits`` and
    ``split`` pick one split (fractions with ``seed``, or the dict
    :func:`~coreviz_frames.split_by_media` returns); :meth:`from_splits` builds one
    dataset per split with the same classes. ``transform(image, target)`` returns the
    new ``(image, target)`` (the torchvision v2 convention). Images load through
    :func:`~coreviz_frames.images.load_blob` (the cache, size caps, no credentials);
    it pickles cleanly for ``DataLoader`` worker processes.

    Example:
        >>> ds = DetectionDataset(tables, classes=["person", "rocket"])   # doctest: +SKIP
        >>> ds.class_to_idx                                              # doctest: +SKIP
        {'person': 0, 'rocket': 1}
    """

    def __init__(
        self,
        tables: Any,
        *,
        classes: Sequence[str] | None = None,
        transform: Callable[[Image.Image, Target], Any] | None = None,
        splits: SplitsArg = None,
        split: str | None = None,
        seed: int = 0,
        include_empty: bool = True,
        label: str = "label",
        label_offset: int = 0,
        download: DownloadOptions | None = None,
        **options: Unpack[DownloadKwargs],
    ) -> None:
        self.download = download_options(options, download)
        plan = plan_dataset(
            tables,
            splits=splits,
            seed=seed,
            categories=classes,
            include_empty=include_empty,
            label=label,
        )
        if splits is None and split is not None:
            raise ConfigError("split= needs splits= (fractions or a dict of splits)")
        if splits is not None:
            if split not in plan.splits:
                raise ConfigError(f"split must be one of {plan.splits}, got {split!r}")
            self.items: list[FrameItem] = plan.split_items(split)
        else:
            self.items = list(plan.items)
        self.split = split
        self.classes: list[str] = list(plan.categories)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
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
        plan = plan_dataset(
            tables,
            splits=splits,
            seed=kwargs.get("seed", 0),
            categories=kwargs.get("classes"),
            label=kwargs.get("label", "label"),
        )
        kwargs["classes"] = plan.categories
        names = plan.splits
        return {name: cls(tables, splits=splits, split=name, **kwargs) for name in names}

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        boxes = sum(len(it.annotations) for it in self.items)
        return f"<DetectionDataset: {len(self)} frames, {boxes} boxes, {len(self.classes)} classes>"

    def target(self, index: int) -> Target:
        """The target of item ``index`` (no image loaded)."""
        item = self.items[index]
        anns = item.annotations
        boxes = np.array([a.box.xyxy for a in anns], dtype=np.float32).reshape(len(anns), 4)
        labels = np.array([a.category + self.label_offset for a in anns], dtype=np.int64)
        return {
            "boxes": boxes,
            "labels": labels,
            "object_ids": [a.object_id for a in anns],
            "frame_id": item.frame_id,
            "media_id": item.media_id,
        }

    def load(self, index: int) -> Image.Image:
        """The frame image of item ``index``, at the frame's size (boxes are in its pixels)."""
        return frame_image(self.items[index], self.download)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        image, target = self.load(index), self.target(index)
        if self.transform is not None:
            result: tuple[Any, Any] = self.transform(image, target)
            return result
        return image, target

"""The rows of a Hugging Face dataset, grain by grain, built a batch at a time.

Each grain (:data:`HF_GRAINS`) says what one row is, split by split (``units``), how the
images of a batch of rows are made (``images``: frame JPEGs, or crops cut from the
frames), how a row is written (``row``) and its ``datasets`` features:

- ``frames``: one row per frame, its ``objects`` (COCO ``bbox``, ``ClassLabel`` category,
  area, ids);
- ``objects``: one crop per object, its ``label`` (``ClassLabel``), ``bbox`` and ids;
- ``captions``: one row per caption, its frame's image, ``text`` and the caption, frame
  and media ids (a captioning or vision-language fine-tune reads it as it is).

:func:`iter_batches` yields the rows of one split a batch at a time, so a writer holds
one batch of images, never the dataset (:mod:`coreviz_frames.training.huggingface` writes
them as Parquet row groups as they come).

Example:
    >>> grain, failed = HF_GRAINS["captions"], {}                             # doctest: +SKIP
    >>> units = grain.units(plan, "train", run)                           # doctest: +SKIP
    >>> for rows in iter_batches(units, grain, True, run, 64, failed):    # doctest: +SKIP
    ...     print(len(rows), sorted(rows[0]))
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from coreviz_frames.errors import ConfigError
from coreviz_frames.images.crop_plan import column, iter_crops, present
from coreviz_frames.images.options import CropOptions, OnError
from coreviz_frames.training.frames import (
    Annotation,
    DatasetPlan,
    FrameItem,
    Run,
    frame_jpeg,
    run_frames,
)

__all__ = ["HF_GRAINS", "RowRun", "caption_rows", "iter_batches"]


@dataclass(frozen=True)
class RowRun(Run):
    """How images are loaded and encoded for one build (:class:`~coreviz_frames.training.frames.Run`)
    and the ``captions`` by frame id (the ``captions`` grain only)."""  # noqa: E501

    captions: dict[str, list[tuple[str, int | None, str]]] = field(default_factory=dict)


Images = tuple[list[bytes | None], dict[str, str]]


@dataclass(frozen=True)
class Grain:
    """What one row of a grain is, how its images are made and how it is written."""

    name: str
    units: Callable[[DatasetPlan, str, RowRun], list[Any]]
    images: Callable[[list[Any], RowRun], Images]
    row: Callable[[Any, bytes | None], dict[str, Any]]
    features: Callable[[Any, list[str], bool], Any]
    failures: str  # "frames": failures are frame ids; "objects": object ids


# --------------------------------------------------------------------------- images


def _frame_jpegs(items: Sequence[FrameItem], run: Run) -> tuple[dict[str, bytes], dict[str, str]]:
    download, quality = run.download, run.quality
    return run_frames(
        items,
        lambda item: frame_jpeg(item, download, quality),
        on_error=run.on_error,
        workers=run.workers,
        progress=False,
    )


def _frames_images(items: list[FrameItem], run: RowRun) -> Images:
    jpegs, failed = _frame_jpegs(items, run)
    return [jpegs.get(item.frame_id) for item in items], failed


def _captions_images(units: list[tuple[FrameItem, Any]], run: RowRun) -> Images:
    items = list({item.frame_id: item for item, _ in units}.values())
    jpegs, failed = _frame_jpegs(items, run)
    return [jpegs.get(item.frame_id) for item, _ in units], failed


def _objects_images(units: list[tuple[FrameItem, Annotation]], run: RowRun) -> Images:
    """Each annotation's crop, cut from its frame, as JPEG (None when it failed)."""

    def col(get: Callable[[FrameItem, Annotation], Any]) -> list[Any]:
        return [get(it, a) for it, a in units]

    objects = pd.DataFrame(
        {
            "object_id": col(lambda it, a: a.object_id),
            "frame_id": col(lambda it, a: it.frame_id),
            "bbox_x": col(lambda it, a: a.box.x),
            "bbox_y": col(lambda it, a: a.box.y),
            "bbox_w": col(lambda it, a: a.box.w),
            "bbox_h": col(lambda it, a: a.box.h),
            "frame_width": col(lambda it, a: it.width),
            "frame_height": col(lambda it, a: it.height),
        }
    )
    items = list({it.frame_id: it for it, _ in units}.values())
    frames = pd.DataFrame(
        {
            "frame_id": [it.frame_id for it in items],
            "blob": [it.url for it in items],
            "width": [it.width for it in items],
            "height": [it.height for it in items],
        }
    )
    on_error: OnError = "raise" if run.on_error == "raise" else "record"
    crops: list[bytes | None] = [None] * len(units)
    failed: dict[str, str] = {}
    results = iter_crops(
        objects,
        frames,
        CropOptions(source="frame"),
        run.download,
        on_error=on_error,
        workers=run.workers,
        progress=False,
    )
    for pos, result in results:
        if result.image is None:
            failed[result.object_id] = result.error or "cannot crop"
            continue
        buf = io.BytesIO()
        result.image.save(buf, "JPEG", quality=run.quality)
        crops[pos] = buf.getvalue()
    return crops, failed


# --------------------------------------------------------------------------- rows


def _image(image: bytes | None) -> dict[str, Any]:
    return {} if image is None else {"image": {"bytes": image, "path": None}}


def _frame_row(item: FrameItem, image: bytes | None) -> dict[str, Any]:
    anns = item.annotations
    return {
        **_image(image),
        "image_id": item.image_id,
        "frame_id": item.frame_id,
        "media_id": item.media_id,
        "width": item.width,
        "height": item.height,
        "image_url": item.url,
        "objects": {
            "id": [a.ann_id for a in anns],
            "object_id": [a.object_id for a in anns],
            "bbox": [[a.box.x, a.box.y, a.box.w, a.box.h] for a in anns],
            "category": [a.category for a in anns],
            "area": [a.area for a in anns],
        },
    }


def _object_row(unit: tuple[FrameItem, Annotation], image: bytes | None) -> dict[str, Any]:
    item, ann = unit
    return {
        **_image(image),
        "label": ann.category,
        "object_id": ann.object_id,
        "frame_id": item.frame_id,
        "media_id": item.media_id,
        "bbox": [ann.box.x, ann.box.y, ann.box.w, ann.box.h],
    }


def _caption_row(
    unit: tuple[FrameItem, tuple[str, int | None, str]], image: bytes | None
) -> dict[str, Any]:
    item, (caption_id, caption_index, text) = unit
    return {
        **_image(image),
        "text": text,
        "caption_id": caption_id,
        "caption_index": caption_index,
        "frame_id": item.frame_id,
        "media_id": item.media_id,
        "image_id": item.image_id,
        "width": item.width,
        "height": item.height,
        "image_url": item.url,
    }


# --------------------------------------------------------------------------- features


def _with_image(ds: Any, images: bool, feats: dict[str, Any]) -> Any:
    return ds.Features({"image": ds.Image(), **feats} if images else feats)


def _frame_features(ds: Any, categories: list[str], images: bool) -> Any:
    return _with_image(
        ds,
        images,
        {
            "image_id": ds.Value("int64"),
            "frame_id": ds.Value("string"),
            "media_id": ds.Value("string"),
            "width": ds.Value("int32"),
            "height": ds.Value("int32"),
            "image_url": ds.Value("string"),
            "objects": {
                "id": ds.List(ds.Value("int64")),
                "object_id": ds.List(ds.Value("string")),
                "bbox": ds.List(ds.List(ds.Value("float32"), length=4)),
                "category": ds.List(ds.ClassLabel(names=categories)),
                "area": ds.List(ds.Value("float32")),
            },
        },
    )


def _object_features(ds: Any, categories: list[str], images: bool) -> Any:
    return _with_image(
        ds,
        images,
        {
            "label": ds.ClassLabel(names=categories),
            "object_id": ds.Value("string"),
            "frame_id": ds.Value("string"),
            "media_id": ds.Value("string"),
            "bbox": ds.List(ds.Value("float32"), length=4),
        },
    )


def _caption_features(ds: Any, categories: list[str], images: bool) -> Any:
    return _with_image(
        ds,
        images,
        {
            "text": ds.Value("string"),
            "caption_id": ds.Value("string"),
            "caption_index": ds.Value("int64"),
            "frame_id": ds.Value("string"),
            "media_id": ds.Value("string"),
            "image_id": ds.Value("int64"),
            "width": ds.Value("int32"),
            "height": ds.Value("int32"),
            "image_url": ds.Value("string"),
        },
    )


# --------------------------------------------------------------------------- grains


def caption_rows(tables: Any) -> dict[str, list[tuple[str, int | None, str]]]:
    """``{frame id: [(caption id, caption index, text), ...]}`` of captions with text, in
    caption order.

    Example:
        >>> import types
        >>> caps = pd.DataFrame({"caption_id": ["c2", "c1"], "frame_id": ["f", "f"],
        ...                      "caption_index": [1, 0], "text": ["b", "a"]})
        >>> caption_rows(types.SimpleNamespace(captions=caps))
        {'f': [('c1', 0, 'a'), ('c2', 1, 'b')]}
    """
    captions = getattr(tables, "captions", None)
    if not isinstance(captions, pd.DataFrame):
        raise ConfigError('grain="captions" needs tables with a captions table (MediaTables)')
    rows = zip(
        column(captions, "caption_id"),
        column(captions, "frame_id"),
        column(captions, "caption_index"),
        column(captions, "text"),
        strict=True,
    )
    out: dict[str, list[tuple[str, int | None, str]]] = {}
    for cid, fid, idx, text in rows:
        if present(text) and present(fid):
            out.setdefault(str(fid), []).append(
                (str(cid), int(idx) if present(idx) else None, str(text))
            )
    for entries in out.values():
        entries.sort(key=lambda e: (e[1] is None, e[1] or 0, e[0]))
    return out


HF_GRAINS: dict[str, Grain] = {
    "frames": Grain(
        "frames",
        lambda plan, split, run: plan.split_items(split),
        _frames_images,
        _frame_row,
        _frame_features,
        "frames",
    ),
    "objects": Grain(
        "objects",
        lambda plan, split, run: [
            (it, a) for it in plan.split_items(split) for a in it.annotations
        ],
        _objects_images,
        _object_row,
        _object_features,
        "objects",
    ),
    "captions": Grain(
        "captions",
        lambda plan, split, run: [
            (it, cap) for it in plan.split_items(split) for cap in run.captions.get(it.frame_id, [])
        ],
        _captions_images,
        _caption_row,
        _caption_features,
        "frames",
    ),
}


def iter_batches(
    units: Sequence[Any],
    grain: Grain,
    images: bool,
    run: RowRun,
    batch: int,
    failed: dict[str, str],
) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``units``, ``batch`` at a time (a row whose image failed is left out
    and its reason added to ``failed``).

    Example:
        >>> failed = {}
        >>> list(iter_batches([], HF_GRAINS["frames"], False, run, 64, failed))   # doctest: +SKIP
        []
    """
    for start in range(0, len(units), batch):
        chunk = list(units[start : start + batch])
        if images:
            blobs, lost = grain.images(chunk, run)
            failed.update(lost)
        else:
            blobs = [None] * len(chunk)
        yield [
            grain.row(unit, blob)
            for unit, blob in zip(chunk, blobs, strict=True)
            if not images or blob is not None
        ]

"""COCO detection and segmentation export: :func:`export_coco`.

Layout: ``out_dir/annotations/instances_<split>.json`` and
``out_dir/images/<split>/<frame>.jpg`` (``.png`` or ``.webp`` for a frame copied in its
own format; one split ``all`` when ``splits`` is None). One COCO image per frame with a
blob (video frames and PDF pages included), ``width`` and ``height`` from the frame;
annotations with ``bbox`` ``[x, y, w, h]`` in frame pixels (clipped to the frame),
``area`` (polygon area when there is a polygon, else box area), ``segmentation``
``[[x1, y1, x2, y2, ...]]`` when there is a polygon, ``iscrowd`` 0 and ``category_id``
numbered from 1 (the same mapping in every split). Integer ids are stable for the same
input; every image and annotation keeps its CoreViz ids (``coreviz_frame_id``,
``coreviz_media_id``, ``coreviz_object_id``).

Example:
    >>> report = export_coco(tables, "coco/", splits=(0.8, 0.1, 0.1), seed=0)  # doctest: +SKIP
    >>> report.summary()                                                       # doctest: +SKIP
    'coco: 18 images, 19 annotations, 13 categories, 0 failures -> coco'
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames._version import __version__
from coreviz_frames.images.options import DownloadOptions
from coreviz_frames.training.datasetdir import dataset_folder, make_dir
from coreviz_frames.training.frames import (
    DatasetOnError,
    DatasetPlan,
    DatasetReport,
    FrameItem,
    Images,
    Run,
    check_images,
    dataset_report,
    plan_and_copy,
    write_assignment,
)
from coreviz_frames.training.names import safe_name
from coreviz_frames.training.selection import DatasetOptions, writer_options

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.training.selection import DatasetDownloadKwargs

__all__ = ["export_coco"]


def url_file_name(url: str, fallback: str = "frame.jpg") -> str:
    """A relative file name derived from a blob URL's path (each segment made safe).

    Example:
        >>> url_file_name("https://blob.example/frames/chelsea/0.jpg?sig=1")
        'frames/chelsea/0.jpg'
    """
    try:
        path = urlsplit(url).path
    except ValueError:  # an unbalanced "[" in a server's URL: the path split by hand
        path = url.partition("://")[2].partition("/")[2].split("?")[0].split("#")[0]
    parts = [safe_name(unquote(p), fallback="_") for p in path.split("/") if p]
    return "/".join(parts) or fallback


def _image_entry(item: FrameItem, file_name: str) -> dict[str, Any]:
    return {
        "id": item.image_id,
        "file_name": file_name,
        "width": item.width,
        "height": item.height,
        "coco_url": item.url,
        "coreviz_frame_id": item.frame_id,
        "coreviz_media_id": item.media_id,
        "coreviz_frame_index": item.frame_index,
    }


def _annotation_entries(item: FrameItem, segmentation: bool) -> list[dict[str, Any]]:
    out = []
    for ann in item.annotations:
        entry: dict[str, Any] = {
            "id": ann.ann_id,
            "image_id": item.image_id,
            "category_id": ann.category + 1,
            "bbox": [ann.box.x, ann.box.y, ann.box.w, ann.box.h],
            "area": ann.area,
            "iscrowd": 0,
        }
        if segmentation and ann.polygon is not None:
            entry["segmentation"] = [list(ann.polygon)]
        entry["coreviz_object_id"] = ann.object_id
        entry["coreviz_frame_id"] = item.frame_id
        entry["coreviz_media_id"] = item.media_id
        out.append(entry)
    return out


def _file_name(plan: DatasetPlan, item: FrameItem) -> str:
    """The image file of ``item`` as copied (its original format where kept)."""
    return plan.file_names.get(item.frame_id, f"{item.name}.jpg")


def coco_document(
    plan: DatasetPlan,
    split: str,
    *,
    segmentation: bool = True,
    images: Images = "copy",
    failed: Sequence[str] | set[str] = (),
) -> dict[str, Any]:
    """The COCO dict of one split of ``plan``, leaving out the frames in ``failed``.

    Example:
        >>> doc = coco_document(plan_dataset(tables), "all")   # doctest: +SKIP
        >>> sorted(doc)                                       # doctest: +SKIP
        ['annotations', 'categories', 'images', 'info', 'licenses']
    """
    left_out = set(failed)
    items = [it for it in plan.split_items(split) if it.frame_id not in left_out]
    return {
        "info": {"description": "CoreViz frames", "version": f"coreviz_frames {__version__}"},
        "licenses": [],
        "images": [
            _image_entry(it, _file_name(plan, it) if images == "copy" else url_file_name(it.url))
            for it in items
        ],
        "annotations": [a for it in items for a in _annotation_entries(it, segmentation)],
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "object"}
            for i, name in enumerate(plan.categories)
        ],
    }


def export_coco(
    tables: Any,
    out_dir: str | os.PathLike[str],
    *,
    images: Images = "copy",
    segmentation: bool = True,
    on_error: DatasetOnError = "record",
    progress: bool | None = None,
    workers: int = 8,
    quality: int = 95,
    overwrite: bool = False,
    options: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
    **kwargs: Unpack[DatasetDownloadKwargs],
) -> DatasetReport:
    """Write ``tables`` as a COCO dataset in ``out_dir``; returns a :class:`DatasetReport`.

    What goes in is ``options`` (or its fields as keywords: ``splits`` and ``seed``,
    ``label``, ``classes``, ``label_map``, ``min_size``...; see
    :class:`~coreviz_frames.training.selection.DatasetOptions`): ``splits`` is None (one
    split ``all``), fractions ``(train, val, test)`` (grouped by media, with ``seed``), a
    dict of splits or a splits file. ``images="copy"`` downloads each frame's image once
    (through the cache, with the download options ``timeout``, ``max_bytes``,
    ``cache_dir``... or ``download=``); ``"none"`` writes annotations only, ``file_name``
    derived from the frame's URL. A frame whose image fails is left out and listed in
    ``report.failed_frames`` (``on_error="raise"`` raises instead). Objects with no
    geometry are left out and listed in ``report.skipped_objects``, never written with a
    zero box. ``splits.csv`` (media id -> split) is written beside the data; ``splits=``
    takes it back. A folder that is not empty is refused unless ``overwrite=True``, which
    builds the new dataset beside the old and swaps it in
    (:mod:`coreviz_frames.training.datasetdir`).

    Example:
        >>> report = export_coco(tables, "coco/", splits=(0.8, 0.1, 0.1))   # doctest: +SKIP
        >>> from pycocotools.coco import COCO                              # doctest: +SKIP
        >>> COCO("coco/annotations/instances_train.json")                   # doctest: +SKIP
    """
    check_images(images)
    options, download = writer_options(kwargs, options=options, download=download)
    run = Run(download, on_error, workers, progress, quality)
    with dataset_folder(out_dir, overwrite=overwrite) as (stage, out):
        plan, failed = plan_and_copy(tables, stage, images=images, options=options, run=run)
        ann_dir = make_dir(stage, "annotations")
        files = []
        for split in plan.splits:
            doc = coco_document(
                plan, split, segmentation=segmentation, images=images, failed=set(failed)
            )
            name = f"instances_{split}.json"
            atomic_write_bytes(ann_dir / name, json.dumps(doc, separators=(",", ":")).encode())
            files.append(f"annotations/{name}")
        files += write_assignment(stage, plan)
    return dataset_report("coco", out, plan, failed, files)

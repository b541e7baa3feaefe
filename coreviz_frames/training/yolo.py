"""YOLO (Ultralytics) detection and segmentation export: :func:`export_yolo`.

Layout: ``images/<split>/<name>.jpg``, ``labels/<split>/<name>.txt`` and ``data.yaml``
(``train``, ``val``, ``test`` relative to the yaml's folder, no ``path``, so the folder can
be moved or copied; ``names`` read back exactly by PyYAML). One line per object: ``class cx cy
w h`` normalised to the frame (``task="segment"``: ``class x1 y1 x2 y2 ...``, the
normalised polygon, or the box's corners for an object without one). Classes are
numbered from 0 in the order of ``categories`` (sorted labels by default). Coordinates
are clipped to [0, 1]; clipped boxes are listed in ``report.clipped_objects``.

Example:
    >>> report = export_yolo(tables, "yolo/", splits=(0.8, 0.1, 0.1))   # doctest: +SKIP
    >>> print(open("yolo/data.yaml").read())                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from coreviz_frames._util.checks import check_choice
from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames._util.textsafe import yaml_string
from coreviz_frames.images.options import DownloadOptions
from coreviz_frames.tables.boxes import boxes_to_yolo
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
from coreviz_frames.training.selection import DatasetOptions, writer_options

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.training.selection import DatasetDownloadKwargs

__all__ = ["export_yolo"]

Task = Literal["detect", "segment"]
#: The Ultralytics tasks :func:`export_yolo` writes labels for.
TASKS = ("detect", "segment")


def yolo_to_coco(
    cx: float, cy: float, w: float, h: float, width: float, height: float
) -> tuple[float, float, float, float]:
    """A normalised YOLO box back to a COCO box ``(x, y, w, h)`` in pixels.

    Example:
        >>> yolo_to_coco(0.25, 0.5, 0.5, 0.5, 100, 40)
        (0.0, 10.0, 50.0, 20.0)
    """
    return ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)


def _unit(value: float) -> str:
    return f"{min(max(float(value), 0.0), 1.0):.6f}"


def _boxes_table(plan: DatasetPlan, items: Sequence[FrameItem]) -> pd.DataFrame:
    rows = [
        (a.box.x, a.box.y, a.box.w, a.box.h, it.width, it.height, plan.categories[a.category])
        for it in items
        for a in it.annotations
    ]
    return pd.DataFrame(
        rows,
        columns=["bbox_x", "bbox_y", "bbox_w", "bbox_h", "frame_width", "frame_height", "label"],
    ).astype({"frame_width": "Int64", "frame_height": "Int64"})


def yolo_labels(
    plan: DatasetPlan, items: Sequence[FrameItem] | None = None, *, task: Task = "detect"
) -> dict[str, str]:
    """``{frame id: label file text}`` for ``items`` (all of ``plan`` by default).

    Example:
        >>> yolo_labels(plan_dataset(tables))["63006191e4645058afff6099ccdcfcea"]  # doctest: +SKIP
        '0 0.500000 0.500000 1.000000 1.000000\\n'
    """
    check_choice("task", task, TASKS)
    items = plan.items if items is None else items
    rows = boxes_to_yolo(_boxes_table(plan, items), classes=plan.categories)
    values = rows[["class_index", "cx", "cy", "w", "h"]].to_numpy(dtype="float64")
    out: dict[str, str] = {}
    pos = 0
    for it in items:
        lines = []
        for a in it.annotations:
            cls, cx, cy, w, h = values[pos]
            pos += 1
            if task == "detect":
                coords = [cx, cy, w, h]
            else:
                x1, y1, x2, y2 = a.box.xyxy
                flat = a.polygon if a.polygon is not None else (x1, y1, x2, y1, x2, y2, x1, y2)
                coords = [v / (it.width if i % 2 == 0 else it.height) for i, v in enumerate(flat)]
            lines.append(" ".join([str(int(cls)), *map(_unit, coords)]))
        out[it.frame_id] = "".join(f"{line}\n" for line in lines)
    return out


def data_yaml(splits: Sequence[str], names: Sequence[str]) -> str:
    """The ``data.yaml`` text: ``train``, ``val``, ``test`` and ``names``, and no ``path``.

    Split folders are relative to the yaml's own folder: without a ``path`` key every
    Ultralytics release takes the folder holding the yaml as the dataset root (a relative
    ``path`` is resolved against Ultralytics' own datasets folder, an absolute one breaks
    when the folder moves), so the dataset can be moved or copied. Without a ``train``
    split the first split trains; without ``val`` the train split validates (Ultralytics
    needs both); ``test`` is null when there is no such split. Names are written with
    :func:`yaml_string`, so PyYAML reads every one back exactly.

    Example:
        >>> print(data_yaml(["all"], ["cat", "🚀 rocket"]), end="")
        train: "images/all"
        val: "images/all"
        test: null
        names:
          0: "cat"
          1: "🚀 rocket"
    """
    train = "train" if "train" in splits else splits[0]
    val = next((s for s in ("val", "validation", "valid") if s in splits), train)
    test = "test" if "test" in splits else None
    lines = [
        f"train: {yaml_string(f'images/{train}')}",
        f"val: {yaml_string(f'images/{val}')}",
        f"test: {'null' if test is None else yaml_string(f'images/{test}')}",
        "names:",
        *(f"  {i}: {yaml_string(name)}" for i, name in enumerate(names)),
    ]
    return "\n".join(lines) + "\n"


def export_yolo(
    tables: Any,
    out_dir: str | os.PathLike[str],
    *,
    task: Task = "detect",
    images: Images = "copy",
    on_error: DatasetOnError = "record",
    progress: bool | None = None,
    workers: int = 8,
    quality: int = 95,
    overwrite: bool = False,
    options: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
    **kwargs: Unpack[DatasetDownloadKwargs],
) -> DatasetReport:
    """Write ``tables`` as an Ultralytics YOLO dataset in ``out_dir``.

    ``images``, ``on_error``, ``overwrite``, the dataset ``options`` (``splits``,
    ``seed``, ``classes``...) and the download options are those of
    :func:`~coreviz_frames.training.coco.export_coco` (``splits.csv`` too). With
    ``include_empty`` a frame without objects gets an empty label file (a background
    image). A frame whose image fails gets neither image nor label file and is listed in
    ``report.failed_frames``.

    Example:
        >>> export_yolo(tables, "yolo/", task="segment").files[-3:]   # doctest: +SKIP
        ['data.yaml', 'splits.csv', 'labels.json']
    """
    check_images(images)
    check_choice("task", task, TASKS)
    options, download = writer_options(kwargs, options=options, download=download)
    run = Run(download, on_error, workers, progress, quality)
    with dataset_folder(out_dir, overwrite=overwrite) as (stage, out):
        plan, failed = plan_and_copy(tables, stage, images=images, options=options, run=run)
        files = _write_labels(stage, plan, failed, task)
        yaml = data_yaml(plan.splits, plan.categories)
        atomic_write_bytes(stage / "data.yaml", yaml.encode())
        files.append("data.yaml")
        files += write_assignment(stage, plan)
    return dataset_report("yolo", out, plan, failed, files)


def _write_labels(out: Path, plan: DatasetPlan, failed: dict[str, str], task: Task) -> list[str]:
    """One label file per frame written (``labels/<split>/<name>.txt``); their names."""
    kept = [it for it in plan.items if it.frame_id not in failed]
    texts = yolo_labels(plan, kept, task=task)
    dirs = {split: make_dir(out, "labels", split) for split in plan.splits}
    files = []
    for it in kept:
        atomic_write_bytes(
            dirs[it.split] / f"{it.name}.txt", texts[it.frame_id].encode(), fsync=False
        )
        files.append(f"labels/{it.split}/{it.name}.txt")
    return files

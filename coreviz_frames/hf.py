"""Hugging Face ``datasets``: :func:`to_hf_dataset` and :func:`export_hf`.

Optional (``pip install "coreviz-frames[hf]"``): ``datasets`` is imported only when one
of these functions runs, and its absence is a :class:`HFNotInstalledError` with the
install hint.

- ``grain="frames"``: one row per frame, an ``image`` column (the ``Image`` feature,
  JPEG bytes embedded), ``objects`` holding ``bbox`` (COCO ``[x, y, w, h]`` in frame
  pixels), ``category`` (a ``ClassLabel``), ``area`` and ``object_id``, plus the frame,
  media and image ids, width and height.
- ``grain="objects"``: one crop per row, its ``label`` (a ``ClassLabel``), ``bbox`` and
  ids.

:func:`export_hf` writes Parquet shards ``data/<split>-NNNNN-of-NNNNN.parquet`` (image
bytes embedded) and a dataset card ``README.md`` whose ``configs:`` let
``datasets.load_dataset(out_dir)`` load it offline.

Example:
    >>> ds = to_hf_dataset(tables)                          # doctest: +SKIP
    >>> ds.features["objects"]["category"].feature.names[:2]  # doctest: +SKIP
    ['cat', 'clock']
    >>> report = export_hf(tables, "hf/", splits=(0.8, 0.1, 0.1))   # doctest: +SKIP
    >>> datasets.load_dataset("hf/")["train"][0]["image"]            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .crop_jobs import iter_crops
from .datasetdir import check_dataset_folder, dataset_folder
from .errors import ConfigError, SkippedRecordWarning
from .fileio import atomic_write_bytes, atomic_writer
from .frameset import (
    DatasetOnError,
    DatasetPlan,
    DatasetReport,
    FrameItem,
    SplitsArg,
    check_dataset_on_error,
    frame_jpeg,
    make_dir,
    plan_dataset,
    run_frames,
    write_assignment,
)
from .options import CropOptions, DownloadOptions, OnError
from .selection import DatasetOptions, writer_options

if TYPE_CHECKING:
    from typing import Unpack

    from .selection import DatasetDownloadKwargs

__all__ = ["HFNotInstalledError", "export_hf", "to_hf_dataset"]

Grain = Literal["frames", "objects"]
_HINT = 'pip install "coreviz-frames[hf]"'


class HFNotInstalledError(ConfigError, ImportError):
    """Hugging Face ``datasets`` is not installed: ``pip install "coreviz-frames[hf]"``."""


def _datasets() -> Any:
    try:
        return importlib.import_module("datasets")
    except ImportError as exc:
        raise HFNotInstalledError(f"this needs Hugging Face datasets: {_HINT} ({exc})") from exc


# --------------------------------------------------------------------------- rows


@dataclass
class _Built:
    """Rows per split, the features, and what failed."""

    rows: dict[str, list[dict[str, Any]]]
    features: Any
    failed: dict[str, str]
    plan: DatasetPlan


def _frame_features(ds: Any, categories: list[str], images: bool) -> Any:
    feats: dict[str, Any] = {}
    if images:
        feats["image"] = ds.Image()
    feats.update(
        image_id=ds.Value("int64"),
        frame_id=ds.Value("string"),
        media_id=ds.Value("string"),
        width=ds.Value("int32"),
        height=ds.Value("int32"),
        image_url=ds.Value("string"),
        objects={
            "id": ds.List(ds.Value("int64")),
            "object_id": ds.List(ds.Value("string")),
            "bbox": ds.List(ds.List(ds.Value("float32"), length=4)),
            "category": ds.List(ds.ClassLabel(names=categories)),
            "area": ds.List(ds.Value("float32")),
        },
    )
    return ds.Features(feats)


def _frame_row(item: FrameItem, image: bytes | None) -> dict[str, Any]:
    anns = item.annotations
    row: dict[str, Any] = {} if image is None else {"image": {"bytes": image, "path": None}}
    row.update(
        image_id=item.image_id,
        frame_id=item.frame_id,
        media_id=item.media_id,
        width=item.width,
        height=item.height,
        image_url=item.url,
        objects={
            "id": [a.ann_id for a in anns],
            "object_id": [a.object_id for a in anns],
            "bbox": [[a.box.x, a.box.y, a.box.w, a.box.h] for a in anns],
            "category": [a.category for a in anns],
            "area": [a.area for a in anns],
        },
    )
    return row


@dataclass(frozen=True)
class _Run:
    """How images are loaded and encoded for one HF build (validated by :func:`_build`)."""

    download: DownloadOptions
    on_error: DatasetOnError
    workers: int
    progress: bool | None
    quality: int


def _frames_rows(plan: DatasetPlan, images: bool, run: _Run) -> _Built:
    ds = _datasets()
    jpegs: dict[str, bytes] = {}
    failed: dict[str, str] = {}
    if images:
        download = run.download
        jpegs, failed = run_frames(
            plan.items,
            lambda item: frame_jpeg(item, download, run.quality),
            on_error=run.on_error,
            workers=run.workers,
            progress=run.progress,
        )
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in plan.splits}
    for item in plan.items:
        if item.frame_id in failed:
            continue
        rows[item.split].append(_frame_row(item, jpegs.pop(item.frame_id, None)))
    return _Built(rows, _frame_features(ds, plan.categories, images), failed, plan)


def _objects_rows(plan: DatasetPlan, images: bool, run: _Run) -> _Built:
    """One row per annotation of ``plan``: its crop (cut from the frame), label and ids."""
    import pandas as pd

    ds = _datasets()
    anns = [(it, a) for it in plan.items for a in it.annotations]
    crops: dict[int, bytes] = {}
    failed: dict[str, str] = {}
    if images:
        objects = pd.DataFrame(
            {
                "object_id": [a.object_id for _, a in anns],
                "frame_id": [it.frame_id for it, _ in anns],
                "bbox_x": [a.box.x for _, a in anns],
                "bbox_y": [a.box.y for _, a in anns],
                "bbox_w": [a.box.w for _, a in anns],
                "bbox_h": [a.box.h for _, a in anns],
                "frame_width": [it.width for it, _ in anns],
                "frame_height": [it.height for it, _ in anns],
            }
        )
        frames = pd.DataFrame(
            {
                "frame_id": [it.frame_id for it in plan.items],
                "blob": [it.url for it in plan.items],
                "width": [it.width for it in plan.items],
                "height": [it.height for it in plan.items],
            }
        )
        on_error: OnError = "raise" if run.on_error == "raise" else "record"
        results = iter_crops(
            objects,
            frames,
            CropOptions(source="frame"),
            run.download,
            on_error=on_error,
            workers=run.workers,
            progress=run.progress,
        )
        for pos, result in results:
            if result.image is None:
                failed[result.object_id] = result.error or "cannot crop"
                continue
            buf = io.BytesIO()
            result.image.save(buf, "JPEG", quality=run.quality)
            crops[pos] = buf.getvalue()
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in plan.splits}
    for pos, (item, ann) in enumerate(anns):
        if images and pos not in crops:
            continue
        row: dict[str, Any] = {"image": {"bytes": crops[pos], "path": None}} if images else {}
        row.update(
            label=ann.category,
            object_id=ann.object_id,
            frame_id=item.frame_id,
            media_id=item.media_id,
            bbox=[ann.box.x, ann.box.y, ann.box.w, ann.box.h],
        )
        rows[item.split].append(row)
    feats: dict[str, Any] = {"image": ds.Image()} if images else {}
    feats.update(
        label=ds.ClassLabel(names=plan.categories),
        object_id=ds.Value("string"),
        frame_id=ds.Value("string"),
        media_id=ds.Value("string"),
        bbox=ds.List(ds.Value("float32"), length=4),
    )
    return _Built(rows, ds.Features(feats), failed, plan)


def _build(tables: Any, grain: str, images: bool, plan_args: dict[str, Any], run: _Run) -> _Built:
    if grain not in ("frames", "objects"):
        raise ConfigError(f"grain must be 'frames' or 'objects', got {grain!r}")
    check_dataset_on_error(run.on_error)
    if not 1 <= int(run.quality) <= 100:
        raise ConfigError(f"quality must be 1..100, got {run.quality!r}")
    _datasets()
    plan = plan_dataset(tables, **plan_args)
    build = _frames_rows if grain == "frames" else _objects_rows
    return build(plan, bool(images), run)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide datasets' own bars ("Creating parquet..."): ours is the one progress bar."""
    ds = _datasets()
    if ds.are_progress_bars_disabled():
        yield
        return
    ds.disable_progress_bars()
    try:
        yield
    finally:
        ds.enable_progress_bars()


def _dataset(built: _Built, split: str) -> Any:
    return _datasets().Dataset.from_list(built.rows[split], features=built.features)


# --------------------------------------------------------------------------- public


def to_hf_dataset(
    tables: Any,
    *,
    grain: Grain = "frames",
    images: bool = True,
    splits: SplitsArg = None,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    label: str = "label",
    on_error: DatasetOnError = "record",
    workers: int = 8,
    progress: bool | None = None,
    quality: int = 95,
    select: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
    **options: Unpack[DatasetDownloadKwargs],
) -> Any:
    """A ``datasets.Dataset`` of the frames (or object crops) of ``tables``.

    With ``splits`` (fractions with ``seed``, or a dict of splits) a ``DatasetDict``, no
    media id in two splits. ``images=False`` leaves out the image column (the
    ``image_url`` column remains at the frames grain). Frames or crops whose image fails
    are left out with a :class:`~coreviz_frames.errors.SkippedRecordWarning`
    (``on_error="raise"`` raises).

    Example:
        >>> ds = to_hf_dataset(tables, grain="objects")   # doctest: +SKIP
        >>> ds.features["label"].names[:2]                 # doctest: +SKIP
        ['cat', 'clock']
    """
    select, download = writer_options(options, select=select, download=download)
    plan_args = {
        "splits": splits,
        "seed": seed,
        "categories": categories,
        "label": label,
        "select": select,
    }
    run = _Run(download, on_error, workers, progress, quality)
    built = _build(tables, grain, images, plan_args, run)
    if built.failed:
        warnings.warn(
            f"{len(built.failed)} images could not be loaded and were left out: "
            f"{next(iter(built.failed.values()))}",
            SkippedRecordWarning,
            stacklevel=2,
        )
    if splits is None:
        return _dataset(built, built.plan.splits[0])
    ds = _datasets()
    return ds.DatasetDict({s: _dataset(built, s) for s in built.plan.splits})


def _write_shards(ds: Any, data: Path, split: str, rows_per_shard: int) -> list[str]:
    """``ds`` as ``data/<split>-NNNNN-of-NNNNN.parquet`` files; older shards removed."""
    n = max(1, math.ceil(len(ds) / rows_per_shard))
    files = []
    for i in range(n):
        name = f"{split}-{i:05d}-of-{n:05d}.parquet"
        with atomic_writer(data / name) as fh, _quiet_datasets():
            ds.shard(num_shards=n, index=i, contiguous=True).to_parquet(fh)
        files.append(f"data/{name}")
    for stale in data.glob(f"{split}-*-of-*.parquet"):  # shards of an earlier export
        if f"data/{stale.name}" not in files:
            stale.unlink()
    return files


def _write_splits_hf(
    built: _Built, out: Path, grain: str, rows_per_shard: int
) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """Every split's shards under ``out/data``: the files, rows and annotations per split."""
    data = make_dir(out, "data")
    files: list[str] = []
    counts: dict[str, int] = {}
    annotations: dict[str, int] = {}
    for split in built.plan.splits:
        ds = _dataset(built, split)
        counts[split] = len(ds)
        if grain == "frames":
            annotations[split] = sum(len(r["objects"]["id"]) for r in built.rows[split])
        else:
            annotations[split] = len(ds)
        files += _write_shards(ds, data, split, rows_per_shard)
    return files, counts, annotations


def _card(splits: Sequence[str], grain: str, plan: DatasetPlan, counts: dict[str, int]) -> str:
    """The dataset card: YAML ``configs`` for ``load_dataset`` and a short description."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: data/{split}-*.parquet"]
    lines += ["---", "", "# CoreViz frames", ""]
    what = "frames with their objects" if grain == "frames" else "object crops"
    lines.append(f"Exported by coreviz_frames: {what} (grain `{grain}`).")
    lines.append("")
    lines.append("| split | rows |")
    lines.append("|---|---|")
    lines += [f"| {s} | {counts[s]} |" for s in splits]
    lines += ["", f"Categories: {json.dumps(plan.categories)}", ""]
    return "\n".join(lines)


def export_hf(
    tables: Any,
    out_dir: str | os.PathLike[str],
    *,
    grain: Grain = "frames",
    images: bool = True,
    splits: SplitsArg = None,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    label: str = "label",
    rows_per_shard: int = 1000,
    on_error: DatasetOnError = "record",
    workers: int = 8,
    progress: bool | None = None,
    quality: int = 95,
    overwrite: bool = False,
    select: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
    **options: Unpack[DatasetDownloadKwargs],
) -> DatasetReport:
    """Write a Hugging Face dataset to ``out_dir``: Parquet shards and a ``README.md`` card.

    ``data/<split>-NNNNN-of-NNNNN.parquet`` hold at most ``rows_per_shard`` rows each, the
    image bytes embedded and the features (``Image``, ``ClassLabel``) in their metadata;
    the card's ``configs:`` name the splits, so ``datasets.load_dataset(out_dir)`` reads
    it with no network. Options are those of :func:`to_hf_dataset`. Frames whose image
    fails are left out and listed in ``report.failed_frames``. ``splits.csv`` and
    ``overwrite`` are as for :func:`~coreviz_frames.coco.export_coco`.

    Example:
        >>> export_hf(tables, "hf/").summary()   # doctest: +SKIP
        'hf: 19 images, 19 annotations, 13 categories, 0 failures -> hf'
    """
    if isinstance(rows_per_shard, bool) or int(rows_per_shard) < 1:
        raise ConfigError(f"rows_per_shard must be a positive int, got {rows_per_shard!r}")
    select, download = writer_options(options, select=select, download=download)
    plan_args = {
        "splits": splits,
        "seed": seed,
        "categories": categories,
        "label": label,
        "select": select,
    }
    run = _Run(download, on_error, workers, progress, quality)
    check_dataset_folder(out_dir, overwrite=overwrite)  # refused before any download
    built = _build(tables, grain, images, plan_args, run)
    with dataset_folder(out_dir, overwrite=overwrite) as (stage, out):
        files, counts, annotations = _write_splits_hf(built, stage, grain, int(rows_per_shard))
        card = _card(built.plan.splits, grain, built.plan, counts)
        atomic_write_bytes(stage / "README.md", card.encode())
        files.append("README.md")
        files += write_assignment(stage, built.plan)
    failed = built.failed
    return DatasetReport(
        "hf",
        str(out),
        counts,
        annotations,
        list(built.plan.categories),
        failed_frames=dict(failed) if grain == "frames" else {},
        skipped_frames=dict(built.plan.skipped_frames),
        skipped_objects={**built.plan.skipped_objects, **(failed if grain == "objects" else {})},
        clipped_objects=built.plan.clipped,
        files=files,
    )

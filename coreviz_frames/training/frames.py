"""What the detection-dataset writers share: the frames, their annotations, splits, ids.

COCO (:mod:`coreviz_frames.training.coco`), YOLO (:mod:`coreviz_frames.training.yolo`),
Hugging Face (:mod:`coreviz_frames.training.huggingface`) and
:class:`~coreviz_frames.training.detection.DetectionDataset` all start from one
:class:`DatasetPlan` made by :func:`plan_dataset`:

- one :class:`FrameItem` per frame with an http(s) blob and a size, in a stable order
  (media id, frame index, frame id), with integer ``image_id`` from 1;
- its :class:`Annotation` values: the object's box clipped to the frame (``Box``), its
  polygon clipped to the frame (flat ``x1, y1, x2, y2, ...``), the area, a category
  index into ``plan.categories`` and integer ``ann_id`` from 1;
- the split of each frame: no media id is in two splits;
- what was left out and why (objects with no geometry or no label, frames with no blob).

What goes in is one :class:`~coreviz_frames.training.selection.DatasetOptions`; how images
are loaded and written is one :class:`Run`. :func:`copy_frame_images` downloads frame
images through the image loader (cache, size caps, no credentials, concurrent, each frame
once) and writes them atomically; :func:`plan_and_copy` is the first step every file
writer shares. :class:`DatasetReport` is what every writer returns. The format modules
(COCO, YOLO, Hugging Face) take what they share from here and never import each other.

Example:
    >>> plan = plan_dataset(tables, splits=(0.8, 0.1, 0.1), seed=0)   # doctest: +SKIP
    >>> plan.categories[:2], len(plan.items)                         # doctest: +SKIP
    (['cat', 'clock'], 18)
    >>> Run(DownloadOptions(), workers=2).quality
    95
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd
from PIL import Image

from coreviz_frames._util.checks import check_choice, check_int, check_on_error
from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames.errors import ConfigError, ExportError, ImageLoadError
from coreviz_frames.http.urls import safe_url
from coreviz_frames.images.crop_plan import column, present
from coreviz_frames.images.loading import (
    is_http_url,
    load_blob,
    load_blob_bytes,
    original_suffix,
    run_ordered,
)
from coreviz_frames.images.options import DownloadOptions
from coreviz_frames.tables.boxes import Box
from coreviz_frames.training.datasetdir import make_dir
from coreviz_frames.training.labels import class_index, class_list, write_labels
from coreviz_frames.training.names import safe_name
from coreviz_frames.training.selection import (
    DatasetOptions,
    dataset_options,
    select_objects,
    thinned_frames,
)
from coreviz_frames.training.splits import assign_splits, write_splits

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.training.selection import DatasetKwargs

__all__ = [
    "Annotation",
    "DatasetOnError",
    "DatasetPlan",
    "DatasetReport",
    "FrameItem",
    "Images",
    "Run",
    "check_images",
    "dataset_report",
    "frame_image",
    "frame_jpeg",
    "plan_and_copy",
    "plan_dataset",
    "run_frames",
    "write_assignment",
]

DatasetOnError = Literal["raise", "skip", "record"]
#: The ``on_error`` modes of the dataset writers. ``"skip"`` and ``"record"`` do the same:
#: a frame whose image fails is left out of the annotations and listed in the report (a
#: file cannot hold a placeholder).
DATASET_ON_ERROR: tuple[str, ...] = ("raise", "skip", "record")
#: ``"copy"`` the frame images into the dataset, or ``"none"`` (annotations only).
Images = Literal["copy", "none"]
T = TypeVar("T")


def check_images(images: str) -> None:
    """Refuse an ``images`` other than ``"copy"`` or ``"none"``.

    Example:
        >>> check_images("none")
    """
    check_choice("images", images, ("copy", "none"))


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Run:
    """How a writer loads and writes images: the download options, what a failed image
    does (``on_error``), how many at a time (``workers``), the progress bar and the JPEG
    ``quality`` (1..100) of re-encoded images. Checked when made.

    Example:
        >>> Run(DownloadOptions(), quality=101)
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: quality must be an integer from 1 to 100, not 101
    """

    download: DownloadOptions
    on_error: DatasetOnError = "record"
    workers: int = 8
    progress: bool | None = None
    quality: int = 95

    def __post_init__(self) -> None:
        check_on_error(self.on_error, allowed=DATASET_ON_ERROR)
        object.__setattr__(
            self, "quality", int(check_int("quality", self.quality, minimum=1, maximum=100))
        )


@dataclass(frozen=True)
class Annotation:
    """One object of a frame: box and polygon clipped to the frame, in frame pixels."""

    ann_id: int
    object_id: str
    category: int
    box: Box
    polygon: tuple[float, ...] | None
    area: float
    clipped: bool


@dataclass(frozen=True)
class FrameItem:
    """One frame of a dataset: where its image is, its size, split, ids and annotations."""

    image_id: int
    frame_id: str
    media_id: str
    frame_index: int | None
    url: str
    width: int
    height: int
    split: str
    name: str
    annotations: tuple[Annotation, ...]


@dataclass
class DatasetPlan:
    """The frames of a dataset and what was left out (see :func:`plan_dataset`)."""

    items: list[FrameItem]
    categories: list[str]
    splits: list[str]
    skipped_frames: dict[str, str] = field(default_factory=dict)
    skipped_objects: dict[str, str] = field(default_factory=dict)
    #: ``{media id: split}`` of every media of the frames table in a split (``splits.csv``).
    assignment: dict[str, str] = field(default_factory=dict)
    #: The options the plan was made with (written to ``labels.json``).
    options: DatasetOptions = field(default_factory=DatasetOptions)
    #: ``{frame id: image file name}`` of the frames copied (``<name>.jpg``, ``.png``...).
    file_names: dict[str, str] = field(default_factory=dict)

    def split_items(self, split: str) -> list[FrameItem]:
        """The frames of one split, in plan order."""
        return [item for item in self.items if item.split == split]

    @property
    def clipped(self) -> list[str]:
        """Object ids whose box or polygon reached outside the frame and was clipped."""
        return [a.object_id for item in self.items for a in item.annotations if a.clipped]


@dataclass
class DatasetReport:
    """What a dataset writer did: counts per split, categories, what was left out and why.

    ``failed_frames`` are frames whose image could not be downloaded or written (left
    out of the annotations); ``skipped_frames`` frames with no usable blob or size or in
    no split; ``skipped_objects`` objects with no geometry, no label, a label outside the
    categories or a box outside the frame; ``clipped_objects`` boxes cut back to the frame.

    Example:
        >>> r = DatasetReport("coco", "out", {"all": 2}, {"all": 3}, ["cat"])
        >>> r.summary()
        'coco: 2 images, 3 annotations, 1 categories, 0 failures -> out'
    """

    format: str
    out_dir: str | None
    images: dict[str, int]
    annotations: dict[str, int]
    categories: list[str]
    failed_frames: dict[str, str] = field(default_factory=dict)
    skipped_frames: dict[str, str] = field(default_factory=dict)
    skipped_objects: dict[str, str] = field(default_factory=dict)
    clipped_objects: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def total_images(self) -> int:
        """Images written, over all splits."""
        return sum(self.images.values())

    @property
    def total_annotations(self) -> int:
        """Annotations written, over all splits."""
        return sum(self.annotations.values())

    def summary(self) -> str:
        """One line: images, annotations, categories, failures and where it went."""
        line = (
            f"{self.format}: {self.total_images} images, {self.total_annotations} annotations, "
            f"{len(self.categories)} categories, {len(self.failed_frames)} failures"
        )
        extra = [
            f"{len(v)} {k}"
            for k, v in (
                ("frames skipped", self.skipped_frames),
                ("objects skipped", self.skipped_objects),
                ("boxes clipped", self.clipped_objects),
            )
            if v
        ]
        if extra:
            line += f" ({', '.join(extra)})"
        return line + (f" -> {self.out_dir}" if self.out_dir else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "format": self.format,
            "out_dir": self.out_dir,
            "images": dict(self.images),
            "annotations": dict(self.annotations),
            "categories": list(self.categories),
            "failed_frames": dict(self.failed_frames),
            "skipped_frames": dict(self.skipped_frames),
            "skipped_objects": dict(self.skipped_objects),
            "clipped_objects": list(self.clipped_objects),
            "files": list(self.files),
        }


# --------------------------------------------------------------------------- geometry


def polygon_area(flat: Sequence[float]) -> float:
    """Area of a simple polygon given as flat ``x1, y1, x2, y2, ...`` (shoelace formula).

    Example:
        >>> polygon_area([0, 0, 4, 0, 4, 3, 0, 3])
        12.0
    """
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    twice = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
    return abs(twice) / 2.0


def _flat_polygon(value: Any) -> list[float] | None:
    """``[{x, y}, ...]`` (or ``[(x, y), ...]``) as flat floats; None when unusable."""
    if value is None or isinstance(value, (str, bytes, float)):
        return None
    try:
        points = list(value)
    except TypeError:
        return None
    flat: list[float] = []
    for p in points:
        try:
            x, y = (p["x"], p["y"]) if isinstance(p, Mapping) else (p[0], p[1])
            x, y = float(x), float(y)
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        flat += [x, y]
    return flat if len(flat) >= 6 else None


def _clip_polygon(flat: list[float], width: int, height: int) -> tuple[list[float], bool]:
    """Each point moved inside ``[0, width] x [0, height]``; True when one moved."""
    out = [min(max(v, 0.0), float(width if i % 2 == 0 else height)) for i, v in enumerate(flat)]
    return out, out != flat


def _annotation(
    row: tuple[Any, ...], size: tuple[int, int], category: int, ann_id: int
) -> Annotation | str:
    """The annotation of one object row, or why it is left out."""
    oid, bx, by, bw, bh, poly = row
    width, height = size
    polygon = _flat_polygon(poly)
    if all(present(v) for v in (bx, by, bw, bh)):
        try:
            box = Box(float(bx), float(by), float(bw), float(bh))
        except (TypeError, ValueError) as exc:
            return f"invalid box ({exc})"
    elif polygon is not None:
        xs, ys = polygon[0::2], polygon[1::2]
        box = Box.from_xyxy(min(xs), min(ys), max(xs), max(ys))
    else:
        return "no geometry"
    box, clipped = box.clamp(width, height)
    if box.w <= 0 or box.h <= 0:
        return f"box outside the frame or empty ({width}x{height})"
    if polygon is not None:
        polygon, moved = _clip_polygon(polygon, width, height)
        clipped = clipped or moved
    area = polygon_area(polygon) if polygon is not None else box.area
    poly = tuple(polygon) if polygon is not None else None
    return Annotation(ann_id, oid, category, box, poly, area, clipped)


# --------------------------------------------------------------------------- planning


def _frames_table(tables: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames, objects = getattr(tables, "frames", None), getattr(tables, "objects", None)
    if not isinstance(frames, pd.DataFrame) or not isinstance(objects, pd.DataFrame):
        raise TypeError(f"expected MediaTables (frames and objects), got {type(tables).__name__}")
    for name, df, needed in (
        ("frames", frames, ("frame_id", "media_id", "blob")),
        ("objects", objects, ("object_id", "frame_id", "label")),
    ):
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ConfigError(f"the {name} table has no column {', '.join(missing)}")
    return frames, objects


def _int_or_none(value: Any) -> int | None:
    return int(value) if present(value) else None


_Usable = tuple[str, str, int | None, str, int, int]


def _usable_frames(frames: pd.DataFrame, skipped: dict[str, str]) -> list[_Usable]:
    """``(frame_id, media_id, index, url, width, height)`` of usable frames, sorted."""
    rows = zip(
        *(column(frames, c) for c in ("frame_id", "media_id", "frame_index", "blob")),
        column(frames, "width"),
        column(frames, "height"),
        strict=True,
    )
    out: dict[str, tuple[str, str, int | None, str, int, int]] = {}
    for fid, mid, index, blob, w, h in rows:
        fid = str(fid)
        if fid in out:
            skipped.setdefault(fid, "repeated frame id (the first row is used)")
            continue
        if not present(blob):
            skipped[fid] = "no frame blob"
        elif not is_http_url(blob):
            skipped[fid] = f"frame blob is not an http(s) URL: {str(blob)[:80]}"
        elif not (present(w) and present(h) and int(w) > 0 and int(h) > 0):
            skipped[fid] = "no frame width and height"
        else:
            out[fid] = (fid, str(mid), _int_or_none(index), str(blob), int(w), int(h))
    return sorted(out.values(), key=lambda r: (r[1], -1 if r[2] is None else r[2], r[0]))


def _candidate_objects(
    objects: Any,
    labels: list[str | None],
    drop: dict[int, str],
    size: dict[str, tuple[Any, Any]],
    skipped_frames: dict[str, str],
    skipped_objects: dict[str, str],
) -> tuple[dict[str, list[tuple[tuple[Any, ...], str, Annotation]]], list[str | None]]:
    """Objects with a class and usable geometry on a usable frame, by frame id (the rest
    are listed in ``skipped_objects``; ``drop`` says why a row has no class), and the
    classes of those kept."""
    geometry = zip(
        *(column(objects, c) for c in ("object_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h")),
        column(objects, "polygon"),
        column(objects, "frame_id"),
        column(objects, "object_index"),
        strict=True,
    )
    candidates: dict[str, list[tuple[tuple[Any, ...], str, Annotation]]] = {}
    kept_labels: list[str | None] = []
    for pos, (row, lab) in enumerate(zip(geometry, labels, strict=True)):
        oid, fid = str(row[0]), str(row[6])
        if fid not in size:
            why = skipped_frames.get(fid, "frame not in the frames table")
            skipped_objects[oid] = f"frame {fid} left out: {why}"
        elif lab is None:
            skipped_objects[oid] = drop.get(pos, "no label")
        else:
            ann = _annotation((oid, *row[1:6]), size[fid], 0, 0)
            if isinstance(ann, str):
                skipped_objects[oid] = ann
                continue
            candidates.setdefault(fid, []).append((row, lab, ann))
            kept_labels.append(lab)
    return candidates, kept_labels


def _thinned(
    usable: list[_Usable], frames: pd.DataFrame, opts: DatasetOptions, skipped: dict[str, str]
) -> list[_Usable]:
    """``usable`` less the frames ``frame_stride`` / ``max_frames_per_media`` leave out."""
    thinned = thinned_frames(frames, opts)
    for fid, why in thinned.items():
        skipped.setdefault(fid, why)
    return [row for row in usable if row[0] not in thinned]


def plan_dataset(
    tables: Any, options: DatasetOptions | None = None, **kwargs: Unpack[DatasetKwargs]
) -> DatasetPlan:
    """The frames of ``tables`` as a :class:`DatasetPlan` (pure: no I/O).

    What goes in is ``options`` (or its fields as keywords:
    :class:`~coreviz_frames.training.selection.DatasetOptions`): the splits (frames of
    media in no split are left out and reported), the ``label`` column or ``"tag:KEY"``,
    the ``classes`` in index order (sorted labels when None; objects with another label
    are left out), and the object and frame filters.

    Example:
        >>> plan = plan_dataset(tables, classes=["rocket"])   # doctest: +SKIP
    """
    opts = dataset_options(kwargs, options)
    frames, objects = _frames_table(tables)
    skipped_frames: dict[str, str] = {}
    skipped_objects: dict[str, str] = {}
    usable = _thinned(_usable_frames(frames, skipped_frames), frames, opts, skipped_frames)
    labels, drop = select_objects(objects, opts, getattr(tables, "tags", None))
    size = {r[0]: (r[4], r[5]) for r in usable}
    candidates, kept_labels = _candidate_objects(
        objects, labels, drop, size, skipped_frames, skipped_objects
    )
    cats = class_list(kept_labels, opts.classes)
    media = [str(m) for m in column(frames, "media_id") if present(m)]
    names, owner = assign_splits(media, opts.splits, opts.seed)
    plan = DatasetPlan([], cats, names, skipped_frames, skipped_objects, owner, opts)
    _add_items(plan, usable, candidates, opts.include_empty)
    return plan


def _add_items(
    plan: DatasetPlan,
    usable: list[_Usable],
    candidates: dict[str, list[tuple[tuple[Any, ...], str, Annotation]]],
    include_empty: bool,
) -> None:
    """Append a :class:`FrameItem` per usable frame in a split to ``plan.items``."""
    index = class_index(plan.categories)
    taken: set[str] = set()
    ann_id = 0
    for fid, mid, fidx, url, w, h in usable:
        split = plan.assignment.get(mid)
        if split is None:
            plan.skipped_frames[fid] = f"media {mid} is in no split"
            for row, _, _ in candidates.get(fid, []):
                plan.skipped_objects[str(row[0])] = f"media {mid} is in no split"
            continue
        anns: list[Annotation] = []
        for _, lab, ann in sorted(candidates.get(fid, []), key=_object_order):
            ann_id += 1
            anns.append(replace(ann, category=index[lab], ann_id=ann_id))
        if not anns and not include_empty:
            plan.skipped_frames[fid] = "no object (include_empty=False)"
            continue
        name = safe_name(fid, fallback="frame")
        if name.lower() in taken:
            name = f"{name}~{len(plan.items)}"
        taken.add(name.lower())
        item = FrameItem(len(plan.items) + 1, fid, mid, fidx, url, w, h, split, name, tuple(anns))
        plan.items.append(item)


def _object_order(entry: tuple[tuple[Any, ...], str, Annotation]) -> tuple[int, str]:
    row = entry[0]
    idx = row[7]
    return (int(idx) if present(idx) else -1, str(row[0]))


# --------------------------------------------------------------------------- writing


#: How far a frame's claimed size may be from its image's real size, per side, for the
#: image to be resized to it; further off, the frame is reported, never upscaled to it.
MAX_RESIZE = 2.0


def check_frame_size(item: FrameItem, real: tuple[int, int]) -> None:
    """Refuse an image whose real ``(width, height)`` is far from ``item``'s claimed size.

    More than :data:`MAX_RESIZE` times larger or smaller on a side is an
    :class:`~coreviz_frames.errors.ImageLoadError` (reason ``"size mismatch"``): the
    writers report such a frame and leave it out instead of making an image of the
    claimed size (a frame claiming 60000 x 60000 pixels would take gigabytes).

    Example:
        >>> item = FrameItem(1, "f", "m", 0, "https://x/f.jpg", 60000, 60000, "all", "f", ())
        >>> try:
        ...     check_frame_size(item, (400, 520))
        ... except ImageLoadError as exc:
        ...     print(exc.reason)
        size mismatch
    """
    ratios = (item.width / max(real[0], 1), item.height / max(real[1], 1))
    if all(1 / MAX_RESIZE <= r <= MAX_RESIZE for r in ratios):
        return
    raise ImageLoadError(
        f"frame {item.frame_id} claims {item.width}x{item.height}, its image is "
        f"{real[0]}x{real[1]}: left out",
        url=safe_url(item.url),
        reason="size mismatch",
    )


def frame_image(item: FrameItem, download: DownloadOptions) -> Image.Image:
    """The frame image of ``item`` (RGB), resized to the frame's size if it is not.

    An image far from the frame's size is refused (:func:`check_frame_size`).

    Example:
        >>> frame_image(plan.items[0], DownloadOptions()).size   # doctest: +SKIP
        (400, 520)
    """
    image = load_blob(item.url, download=download)
    if image.size != (item.width, item.height):
        check_frame_size(item, image.size)
        image = image.resize((item.width, item.height), Image.Resampling.LANCZOS)
    return image


def frame_file(
    item: FrameItem,
    download: DownloadOptions,
    quality: int = 95,
    keep: Sequence[str] = (".jpg", ".png", ".webp"),
) -> tuple[bytes, str]:
    """The frame image of ``item`` at the frame's size, as ``(bytes, file suffix)``.

    Loaded through :func:`~coreviz_frames.images.loading.load_blob_bytes` (http(s) only, cache,
    caps, no credentials, decoded to check it). A blob of the frame's size whose format
    is in ``keep`` (shown as stored: no EXIF rotation) is given as its original bytes;
    any other image is resized to the frame's size when it is not (annotations are in
    frame pixels) and encoded as JPEG at ``quality``.
    """
    data, image = load_blob_bytes(item.url, download=download)
    if image.size == (item.width, item.height):
        suffix = original_suffix(data)
        if suffix is not None and suffix in keep:
            return data, suffix
    else:
        check_frame_size(item, image.size)
        image = image.resize((item.width, item.height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), ".jpg"


def frame_jpeg(item: FrameItem, download: DownloadOptions, quality: int = 95) -> bytes:
    """The frame image of ``item`` as JPEG bytes at the frame's size (:func:`frame_file`:
    the original bytes of a JPEG blob of that size, else encoded at ``quality``)."""
    return frame_file(item, download, quality, keep=(".jpg",))[0]


def run_frames(
    items: Sequence[FrameItem],
    work: Callable[[FrameItem], T],
    *,
    on_error: DatasetOnError = "record",
    workers: int = 8,
    progress: bool | None = None,
) -> tuple[dict[str, T], dict[str, str]]:
    """``work(item)`` for each frame, ``workers`` at a time, each frame once.

    Returns ``({frame id: result}, {frame id: reason})``: an image that cannot be loaded
    (:class:`~coreviz_frames.errors.ImageLoadError`) or a file that cannot be written
    (``OSError``) is a failure, raised with ``on_error="raise"``.

    Example:
        >>> run_frames([], lambda item: 1)
        ({}, {})
    """
    check_on_error(on_error, allowed=DATASET_ON_ERROR)
    by_id = {item.frame_id: item for item in items}

    def task(fid: str) -> tuple[bool, Any]:
        try:
            return True, work(by_id[fid])
        except ImageLoadError as exc:
            if on_error == "raise":
                raise ImageLoadError(
                    f"frame {fid}: {exc}", url=exc.url, reason=exc.reason
                ) from None
            return False, f"frame {fid}: {exc}"
        except OSError as exc:
            reason = f"frame {fid}: cannot write: {exc.strerror or exc}"
            if on_error == "raise":
                raise ExportError(reason, path=exc.filename) from None
            return False, reason

    done = run_ordered(
        list(by_id), task, workers=workers, on_error="raise", progress=progress, desc="frames"
    )
    results: dict[str, T] = {}
    failed: dict[str, str] = {}
    for fid, value in done.items():
        assert isinstance(value, tuple)
        ok, payload = value
        if ok:
            results[fid] = payload
        else:
            failed[fid] = str(payload)
    return results, failed


def copy_frame_images(
    items: Sequence[FrameItem], target: Callable[[FrameItem, str], Path], run: Run
) -> tuple[dict[str, Path], dict[str, str]]:
    """Write each frame's image to ``target(item, suffix)``: ``({frame id: path written},
    {frame id: reason})``.

    Images come from :func:`frame_file` (original bytes where they will do, the suffix
    saying their format), ``run.workers`` at a time, each frame once, and are written
    atomically. With ``on_error="raise"`` the first failure raises.

    Example:
        >>> written, failed = copy_frame_images(
        ...     plan.items, lambda it, suffix: out / f"{it.name}{suffix}",
        ...     Run(DownloadOptions()))   # doctest: +SKIP
    """

    def work(item: FrameItem) -> Path:
        data, suffix = frame_file(item, run.download, run.quality)
        path = target(item, suffix)
        atomic_write_bytes(path, data, fsync=False)
        return path

    return run_frames(
        items, work, on_error=run.on_error, workers=run.workers, progress=run.progress
    )


def write_images(plan: DatasetPlan, out: Path, folder: str, run: Run) -> dict[str, str]:
    """Copy every frame of ``plan`` to ``out/<folder>/<split>/<name>.<suffix>``: failures
    by id. The file names written go to ``plan.file_names``.

    Example:
        >>> failed = write_images(plan, Path("out"), "images", Run(DownloadOptions()))  # doctest: +SKIP
    """  # noqa: E501
    dirs = {split: make_dir(out, folder, split) for split in plan.splits}
    written, failed = copy_frame_images(
        plan.items, lambda it, suffix: dirs[it.split] / f"{it.name}{suffix}", run
    )
    plan.file_names.update({fid: path.name for fid, path in written.items()})
    return failed


def write_assignment(out: Path, plan: DatasetPlan) -> list[str]:
    """Write what every dataset holds beside its data: ``splits.csv`` (media id -> split)
    and ``labels.json`` (the classes in index order, the label map and options).

    Example:
        >>> write_assignment(Path("coco"), plan)   # doctest: +SKIP
        ['splits.csv', 'labels.json']
    """
    return [
        write_splits(out, plan.assignment),
        write_labels(out, plan.categories, plan.options.to_dict()),
    ]


def dataset_report(
    fmt: str, out: Path | None, plan: DatasetPlan, failed: dict[str, str], files: list[str]
) -> DatasetReport:
    """The :class:`DatasetReport` of ``plan`` written less the ``failed`` frames.

    Example:
        >>> dataset_report("coco", None, plan, {}, []).total_images   # doctest: +SKIP
        18
    """
    images: dict[str, int] = {}
    annotations: dict[str, int] = {}
    for split in plan.splits:
        kept = [it for it in plan.split_items(split) if it.frame_id not in failed]
        images[split] = len(kept)
        annotations[split] = sum(len(it.annotations) for it in kept)
    return DatasetReport(
        fmt,
        None if out is None else str(out),
        images,
        annotations,
        list(plan.categories),
        failed_frames=dict(failed),
        skipped_frames=dict(plan.skipped_frames),
        skipped_objects=dict(plan.skipped_objects),
        clipped_objects=plan.clipped,
        files=files,
    )


def plan_and_copy(
    tables: Any, out: Path, *, images: Images, options: DatasetOptions, run: Run
) -> tuple[DatasetPlan, dict[str, str]]:
    """The first steps every frame writer shares: plan ``tables`` (:func:`plan_dataset`)
    and with ``images="copy"`` copy the frame images into ``out/images/<split>/``
    (:func:`write_images`). Returns the plan and the failed frames by id.

    Example:
        >>> plan, failed = plan_and_copy(tables, Path("coco/"), images="none",
        ...     options=DatasetOptions(), run=Run(DownloadOptions()))   # doctest: +SKIP
    """
    plan = plan_dataset(tables, options)
    failed = write_images(plan, out, "images", run) if images == "copy" else {}
    return plan, failed

"""What goes into a training set: one frozen value shared by every writer and dataset.

:class:`DatasetOptions` holds the keywords every dataset writer (``export_coco``,
``export_yolo``, ``export_hf``, ``to_hf_dataset``, ``export_crops``) and dataset
(``DetectionDataset``, ``CropDataset``) accepts, spelled once:

- classes: ``labels`` (allow-list), ``label_map`` (rename or merge; a label mapped to
  None is left out), ``include_unlabeled`` (objects without a label become the class
  ``_unlabeled`` instead of being left out and reported);
- objects: ``min_size`` (pixels: both box sides at least this), ``object_types``
  (``object``, ``face``, ``text``...);
- frames: ``frame_stride`` (every n-th frame of a media: videos, PDF pages) and
  ``max_frames_per_media`` (at most this many, evenly spaced), ``include_empty``
  (frames without any object kept, as background images).

Functions take the fields as keywords or one ``select=`` value (as ``download=``).
In the crop functions ``min_size`` keeps its crop meaning (grow small boxes): the
filter goes through ``select=DatasetOptions(min_size=...)`` there.

Example:
    >>> opts = DatasetOptions(label_map={"kitty": "cat"}, labels=["cat"], min_size=8)
    >>> map_labels(["kitty", "dog", None], opts)
    (['cat', None, None], {1: "label 'dog' is not among labels=", 2: 'no label (include_unlabeled=True keeps it)'})
"""  # noqa: E501

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames.errors import ConfigError
from coreviz_frames.images.crop_plan import column, present
from coreviz_frames.images.options import (
    CropDownloadKwargs,
    DownloadKwargs,
    DownloadOptions,
    download_options,
    merge_value,
)

__all__ = [
    "LABELS_FILE",
    "UNLABELED",
    "CropDatasetKwargs",
    "DatasetDownloadKwargs",
    "DatasetKwargs",
    "DatasetOptions",
    "dataset_options",
    "map_labels",
    "object_reasons",
    "select_objects",
    "thin_frames",
    "thinned_frames",
    "write_labels",
    "writer_options",
]

#: The class of objects without a label, with ``include_unlabeled=True``.
UNLABELED = "_unlabeled"
#: Written beside every dataset: the classes in index order and how labels were mapped.
LABELS_FILE = "labels.json"


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ConfigError(f"{what} must be a list of names, got {value!r}")
    names = tuple(str(v) for v in value)
    if not names:
        raise ConfigError(f"{what} must name at least one value")
    return names


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{what} must be a positive int, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class DatasetOptions:
    """Which objects and frames go into a dataset, and under which class names.

    Example:
        >>> DatasetOptions(object_types=["face"], frame_stride=5).frame_stride
        5
        >>> DatasetOptions(min_size=-1)
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: min_size must be a non-negative number of pixels, got -1
    """

    labels: Sequence[str] | None = None
    label_map: Mapping[str, str | None] | None = None
    include_unlabeled: bool = False
    min_size: float | None = None
    object_types: Sequence[str] | None = None
    max_frames_per_media: int | None = None
    frame_stride: int = 1
    include_empty: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "labels", _names(self.labels, "labels"))
        set_(self, "object_types", _names(self.object_types, "object_types"))
        if self.label_map is not None:
            if not isinstance(self.label_map, Mapping):
                raise ConfigError(f"label_map must be a dict, got {self.label_map!r}")
            pairs = {str(k): (None if v is None else str(v)) for k, v in self.label_map.items()}
            set_(self, "label_map", pairs)
        size = self.min_size
        if size is not None and (
            isinstance(size, bool)
            or not isinstance(size, numbers.Real)
            or not math.isfinite(size)
            or size < 0
        ):
            raise ConfigError(f"min_size must be a non-negative number of pixels, got {size!r}")
        set_(
            self, "max_frames_per_media", _count(self.max_frames_per_media, "max_frames_per_media")
        )
        set_(self, "frame_stride", _count(self.frame_stride, "frame_stride"))
        set_(self, "include_unlabeled", bool(self.include_unlabeled))
        set_(self, "include_empty", bool(self.include_empty))

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values.

        Example:
            >>> DatasetOptions().to_dict()["frame_stride"]
            1
        """
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("labels", "object_types"):
            out[key] = None if out[key] is None else list(out[key])
        return out


class DatasetKwargs(TypedDict, total=False):
    """The keyword arguments that build a :class:`DatasetOptions` (see its fields)."""

    labels: Sequence[str] | None
    label_map: Mapping[str, str | None] | None
    include_unlabeled: bool
    min_size: float | None
    object_types: Sequence[str] | None
    max_frames_per_media: int | None
    frame_stride: int
    include_empty: bool


class DatasetDownloadKwargs(DatasetKwargs, DownloadKwargs, total=False):
    """The keywords of both :class:`DatasetOptions` and ``DownloadOptions`` (the writers')."""


class CropDatasetKwargs(CropDownloadKwargs, total=False):
    """The crop functions' keywords: crop, download, and the dataset options but
    ``min_size`` (there the crop option; the filter goes through ``select=``)."""

    labels: Sequence[str] | None
    label_map: Mapping[str, str | None] | None
    include_unlabeled: bool
    object_types: Sequence[str] | None
    max_frames_per_media: int | None
    frame_stride: int
    include_empty: bool


DATASET_FIELDS = frozenset(DatasetKwargs.__annotations__)


def writer_options(
    options: Mapping[str, Any],
    *,
    select: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
) -> tuple[DatasetOptions, DownloadOptions]:
    """The dataset and download values of a writer's keywords; unknown ones are a TypeError.

    Example:
        >>> opts, dl = writer_options({"min_size": 4, "timeout": 5})
        >>> opts.min_size, dl.timeout
        (4, 5.0)
    """
    rest = {k: v for k, v in options.items() if k not in DATASET_FIELDS}
    return dataset_options(options, select), download_options(rest, download)


def dataset_options(
    options: Mapping[str, Any], select: DatasetOptions | None = None
) -> DatasetOptions:
    """The :class:`DatasetOptions` of a function's keywords (or its ``select=`` value).

    Giving ``select=`` and a keyword that differs from its default is an error.

    Example:
        >>> dataset_options({"frame_stride": 2}).frame_stride
        2
    """
    given = {k: v for k, v in options.items() if k in DATASET_FIELDS}
    result: DatasetOptions = merge_value(DatasetOptions, select, given, "select")
    return result


def map_labels(
    labels: Sequence[str | None], opts: DatasetOptions
) -> tuple[list[str | None], dict[int, str]]:
    """Each row's class (None: left out) and ``{row position: why it is left out}``.

    ``label_map`` first, then ``include_unlabeled``, then the ``labels`` allow-list.
    """
    mapping = opts.label_map or {}
    allowed = None if opts.labels is None else set(opts.labels)
    out: list[str | None] = []
    reasons: dict[int, str] = {}
    for pos, label in enumerate(labels):
        value = mapping.get(label, label) if label is not None else None
        if label is not None and value is None:
            reasons[pos] = f"label {label!r} is mapped to None by label_map="
        elif value is None and not opts.include_unlabeled:
            reasons[pos] = "no label (include_unlabeled=True keeps it)"
        elif value is None:
            value = UNLABELED
        if value is not None and allowed is not None and value not in allowed:
            reasons[pos] = f"label {value!r} is not among labels="
            value = None
        out.append(value if pos not in reasons else None)
    return out, reasons


def object_reasons(
    types: Sequence[Any], sides: Sequence[tuple[Any, Any]], opts: DatasetOptions
) -> dict[int, str]:
    """``{row position: why}`` for objects of another type or smaller than ``min_size``.

    ``sides`` holds each object's box ``(w, h)`` in pixels (None when it has no box).

    Example:
        >>> object_reasons(["face", "object"], [(4, 4), (20, 20)], DatasetOptions(min_size=8))
        {0: 'box 4x4 is smaller than min_size=8'}
    """
    wanted = None if opts.object_types is None else set(opts.object_types)
    reasons: dict[int, str] = {}
    for pos, (kind, (w, h)) in enumerate(zip(types, sides, strict=True)):
        if wanted is not None and str(kind) not in wanted:
            reasons[pos] = f"type {kind!r} is not among object_types="
        elif opts.min_size and w is not None and min(float(w), float(h)) < opts.min_size:
            size = f"{float(w):g}x{float(h):g}"
            reasons[pos] = f"box {size} is smaller than min_size={opts.min_size:g}"
    return reasons


def thin_frames(frame_ids: Sequence[str], opts: DatasetOptions) -> dict[str, str]:
    """``{frame id: why}`` of the frames of ONE media (in order) that ``frame_stride`` and
    ``max_frames_per_media`` leave out: every ``stride``-th frame from the first, then at
    most ``max`` of those, evenly spaced.

    Example:
        >>> thin_frames(["f0", "f1", "f2", "f3"], DatasetOptions(frame_stride=2))
        {'f1': 'frame_stride=2', 'f3': 'frame_stride=2'}
    """
    stride = opts.frame_stride or 1
    out = {f: f"frame_stride={stride}" for i, f in enumerate(frame_ids) if i % stride}
    kept = [f for i, f in enumerate(frame_ids) if not i % stride]
    top = opts.max_frames_per_media
    if top is not None and len(kept) > top:
        step = len(kept) / top
        chosen = {kept[math.floor(i * step)] for i in range(top)}
        out.update({f: f"max_frames_per_media={top}" for f in kept if f not in chosen})
    return out


def select_objects(
    objects: pd.DataFrame, labels: Sequence[str | None], opts: DatasetOptions
) -> tuple[list[str | None], dict[int, str]]:
    """Each object row's class (None: left out) and ``{row: why}``: :func:`map_labels`,
    then :func:`object_reasons` on the ``type`` and ``bbox_w``/``bbox_h`` columns.

    Example:
        >>> objs = pd.DataFrame({"type": ["face", "object"], "bbox_w": [4, 9], "bbox_h": [4, 9]})
        >>> select_objects(objs, ["a", "b"], DatasetOptions(min_size=5))
        ([None, 'b'], {0: 'box 4x4 is smaller than min_size=5'})
    """
    classes, drop = map_labels(labels, opts)
    sides = [
        (w, h) if present(w) and present(h) else (None, None)
        for w, h in zip(column(objects, "bbox_w"), column(objects, "bbox_h"), strict=True)
    ]
    for pos, why in object_reasons(column(objects, "type"), sides, opts).items():
        drop.setdefault(pos, why)
        classes[pos] = None
    return classes, drop


def thinned_frames(frames: pd.DataFrame | None, opts: DatasetOptions) -> dict[str, str]:
    """``{frame id: why}`` of the frames ``frame_stride`` and ``max_frames_per_media`` leave
    out, each media's frames taken in ``frame_index`` order (:func:`thin_frames`).

    Example:
        >>> frames = pd.DataFrame({"frame_id": ["a", "b"], "media_id": ["m", "m"],
        ...                        "frame_index": [1, 0]})
        >>> thinned_frames(frames, DatasetOptions(frame_stride=2))
        {'a': 'frame_stride=2'}
    """
    if opts.frame_stride == 1 and opts.max_frames_per_media is None:
        return {}
    if not isinstance(frames, pd.DataFrame) or "frame_id" not in frames.columns:
        raise ConfigError(
            "frame_stride and max_frames_per_media need the frames table: pass frames="
        )
    index = pd.Series(column(frames, "frame_index"), index=frames.index, dtype="Float64")
    order = frames.assign(_i=index, _m=[str(m) for m in column(frames, "media_id")])
    order = order.sort_values(["_m", "_i", "frame_id"], kind="stable", na_position="first")
    dropped: dict[str, str] = {}
    for _, group in order.groupby("_m", sort=False):
        dropped.update(thin_frames([str(f) for f in group["frame_id"]], opts))
    return dropped


def write_labels(out: Path, classes: Sequence[str], opts: DatasetOptions, **extra: Any) -> str:
    """``labels.json``: the classes in index order, the label options, and ``extra``.

    Example:
        >>> import tempfile
        >>> write_labels(Path(tempfile.mkdtemp()), ["cat"], DatasetOptions())
        'labels.json'
    """
    doc = {
        "classes": list(classes),
        "label_map": dict(opts.label_map or {}),
        "labels": None if opts.labels is None else list(opts.labels),
        "include_unlabeled": opts.include_unlabeled,
        "options": opts.to_dict(),
        **extra,
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    atomic_write_bytes(out / LABELS_FILE, text.encode("utf-8", "surrogatepass"))
    return LABELS_FILE

"""What goes into a training set: one frozen value shared by every writer and dataset.

:class:`DatasetOptions` holds the keywords every dataset writer (``export_coco``,
``export_yolo``, ``export_hf``, ``to_hf_dataset``, ``export_crops``) and dataset
(``DetectionDataset``, ``CropDataset``) accepts, spelled once (as Hugging Face's
``ImageFolderConfig`` and the package's own ``CropOptions``):

- splits: ``splits`` (fractions, a dict of splits, or a splits file / dataset folder;
  :mod:`coreviz_frames.training.splits`) and ``seed``;
- classes: ``label`` (the objects column, or ``"tag:KEY"``), ``classes`` (allow-list and
  index order), ``label_map`` (rename or merge; a label mapped to None is left out),
  ``include_unlabeled`` (objects without a label become the class ``_unlabeled`` instead
  of being left out and reported); :mod:`coreviz_frames.training.labels` applies them;
- objects: ``min_size`` (pixels: both box sides at least this), ``object_types``
  (``object``, ``face``, ``text``...);
- frames: ``frame_stride`` (every n-th frame of a media: videos, PDF pages) and
  ``max_frames_per_media`` (at most this many, evenly spaced), ``include_empty``
  (frames without any object kept, as background images).

Functions take the fields as keywords or one ``options=`` value (as ``download=``).
In the crop functions ``min_size`` keeps its crop meaning (grow small boxes): the
filter goes through ``options=DatasetOptions(min_size=...)`` there. The older
spellings ``select=`` and ``labels=`` still work, with a ``FutureWarning``.

Example:
    >>> opts = DatasetOptions(label_map={"kitty": "cat"}, classes=["cat"], min_size=8)
    >>> select_objects(pd.DataFrame({"label": ["kitty", "dog"]}), opts)[0]
    ['cat', None]
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import InitVar, dataclass, fields
from typing import Any, TypedDict

import pandas as pd

from coreviz_frames._util.checks import check_int
from coreviz_frames.errors import ConfigError
from coreviz_frames.images.crop_plan import column, present
from coreviz_frames.images.options import (
    CropDownloadKwargs,
    DownloadKwargs,
    DownloadOptions,
    download_options,
    merge_value,
)
from coreviz_frames.training.labels import check_classes, map_labels, object_labels
from coreviz_frames.training.splits import SplitsArg, fraction_map

__all__ = [
    "CropDatasetKwargs",
    "DatasetDownloadKwargs",
    "DatasetKwargs",
    "DatasetOptions",
    "crop_dataset_options",
    "dataset_options",
    "select_objects",
    "thinned_frames",
    "writer_options",
]


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
    return int(check_int(what, value, minimum=1))


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old}= is deprecated and will be removed: pass {new}= (the same values)",
        FutureWarning,
        stacklevel=4,
    )


def _splits_json(splits: Any) -> Any:
    """``splits`` as ``labels.json`` records it: fractions, a path, or the pinned names."""
    if splits is None or isinstance(splits, str | os.PathLike):
        return None if splits is None else os.fspath(splits)
    if isinstance(splits, Mapping) and not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in splits.values()
    ):
        return {"pinned": [str(name) for name in splits]}
    return fraction_map(splits)


@dataclass(frozen=True)
class DatasetOptions:
    """Which media go to which split, which objects and frames go in, under which classes.

    ``labels`` is the deprecated spelling of ``classes`` (a ``FutureWarning``).

    Example:
        >>> DatasetOptions(object_types=["face"], frame_stride=5, splits=(0.8, 0.2)).splits
        (0.8, 0.2)
        >>> DatasetOptions(min_size=-1)
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: min_size must be a non-negative number of pixels, got -1
    """

    splits: SplitsArg = None
    seed: int = 0
    label: str = "label"
    classes: Sequence[str] | None = None
    label_map: Mapping[str, str | None] | None = None
    include_unlabeled: bool = False
    min_size: float | None = None
    object_types: Sequence[str] | None = None
    max_frames_per_media: int | None = None
    frame_stride: int = 1
    include_empty: bool = True
    labels: InitVar[Sequence[str] | None] = None

    def __post_init__(self, labels: Sequence[str] | None) -> None:
        set_ = object.__setattr__
        if labels is not None:
            if self.classes is not None:
                raise ConfigError("pass classes= alone (labels= is its older spelling)")
            _deprecated("labels", "classes")
            set_(self, "classes", labels)
        set_(self, "classes", check_classes(self.classes))
        set_(self, "object_types", _names(self.object_types, "object_types"))
        if not isinstance(self.label, str) or not self.label:
            raise ConfigError(f"label must be a column name or 'tag:KEY', got {self.label!r}")
        check_int("seed", self.seed)
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
        """The options as JSON-ready values (pinned splits by their names).

        Example:
            >>> DatasetOptions(splits=(0.8, 0.2)).to_dict()["splits"]
            {'train': 0.8, 'val': 0.2}
        """
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("classes", "object_types"):
            out[key] = None if out[key] is None else list(out[key])
        out["splits"] = _splits_json(self.splits)
        return out


class SelectionKwargs(TypedDict, total=False):
    """The :class:`DatasetOptions` keywords every function takes as they are (all but
    ``min_size``, which the crop functions keep for the crop option)."""

    splits: SplitsArg
    seed: int
    label: str
    classes: Sequence[str] | None
    label_map: Mapping[str, str | None] | None
    include_unlabeled: bool
    object_types: Sequence[str] | None
    max_frames_per_media: int | None
    frame_stride: int
    include_empty: bool
    labels: Sequence[str] | None  # deprecated: classes
    select: DatasetOptions | None  # deprecated: options


class DatasetKwargs(SelectionKwargs, total=False):
    """The keyword arguments that build a :class:`DatasetOptions` (see its fields)."""

    min_size: float | None


class DatasetDownloadKwargs(DatasetKwargs, DownloadKwargs, total=False):
    """The keywords of both :class:`DatasetOptions` and ``DownloadOptions`` (the writers')."""


class CropDatasetKwargs(CropDownloadKwargs, SelectionKwargs, total=False):
    """The crop functions' keywords: crop, download, and the dataset options but
    ``min_size`` (there the crop option; the filter goes through ``options=``)."""


_FIELDS = frozenset(DatasetKwargs.__annotations__)


def dataset_options(
    kwargs: Mapping[str, Any], options: DatasetOptions | None = None
) -> DatasetOptions:
    """The :class:`DatasetOptions` of a function's keywords (or its ``options=`` value).

    Giving ``options=`` and a keyword that differs from its default is an error; the
    older ``select=`` (for ``options=``) and ``labels=`` (for ``classes=``) warn.

    Example:
        >>> dataset_options({"frame_stride": 2}).frame_stride
        2
    """
    given = {k: v for k, v in kwargs.items() if k in _FIELDS}
    if "select" in given:
        select = given.pop("select")
        if select is not None:
            if options is not None:
                raise ConfigError("pass options= alone (select= is its older spelling)")
            _deprecated("select", "options")
            options = select
    result: DatasetOptions = merge_value(DatasetOptions, options, given, "options")
    return result


def writer_options(
    kwargs: Mapping[str, Any],
    *,
    options: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
) -> tuple[DatasetOptions, DownloadOptions]:
    """The dataset and download values of a writer's keywords; unknown ones are a TypeError.

    Example:
        >>> opts, dl = writer_options({"min_size": 4, "timeout": 5})
        >>> opts.min_size, dl.timeout
        (4, 5.0)
    """
    rest = {k: v for k, v in kwargs.items() if k not in _FIELDS}
    return dataset_options(kwargs, options), download_options(rest, download)


def crop_dataset_options(
    kwargs: Mapping[str, Any], options: DatasetOptions | None = None
) -> tuple[DatasetOptions, dict[str, Any]]:
    """The crop functions' :class:`DatasetOptions`, and the keywords left (crop and
    download): there ``min_size`` is the crop option, not the filter.

    Example:
        >>> opts, rest = crop_dataset_options({"min_size": 8, "classes": ["cat"]})
        >>> opts.classes, rest
        (('cat',), {'min_size': 8})
    """
    own = {k: v for k, v in kwargs.items() if k in _FIELDS and k != "min_size"}
    rest = {k: v for k, v in kwargs.items() if k not in own}
    return dataset_options(own, options), rest


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
    objects: pd.DataFrame, opts: DatasetOptions, tags: Any = None
) -> tuple[list[str | None], dict[int, str]]:
    """Each object row's class (None: left out) and ``{row: why}``: its label
    (:func:`~coreviz_frames.training.labels.object_labels` of ``opts.label``; ``tags`` for
    ``"tag:KEY"``), mapped (:func:`~coreviz_frames.training.labels.map_labels`), then
    :func:`object_reasons` on the ``type`` and ``bbox_w``/``bbox_h`` columns.

    Example:
        >>> objs = pd.DataFrame({"label": ["a", "b"], "type": ["face", "object"],
        ...                      "bbox_w": [4, 9], "bbox_h": [4, 9]})
        >>> select_objects(objs, DatasetOptions(min_size=5))
        ([None, 'b'], {0: 'box 4x4 is smaller than min_size=5'})
    """
    raw = object_labels(objects, opts.label, tags)
    classes, drop = map_labels(
        raw,
        label_map=opts.label_map,
        include_unlabeled=opts.include_unlabeled,
        classes=opts.classes,
    )
    if opts.label != "label" and not opts.include_unlabeled:
        for pos in drop:
            if raw[pos] is None:
                drop[pos] = f"no single {opts.label}"
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

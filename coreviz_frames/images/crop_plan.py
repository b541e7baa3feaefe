"""Planning and cutting object crops: the internals shared by ``crops`` and ``training``.

Not part of the top-level API (``load_crops``, ``CropDataset`` and ``export_crops`` are):
the named home of what both public modules need.

- :func:`plan_crops` groups object rows by the one image each needs (its crop blob, or
  its frame's image) as :class:`CropJob` values; rows that cannot be served get a
  :class:`CropResult` saying why at once. Blob URLs must be http(s): a local path or
  ``file://`` URL in a record is refused here, never read.
- :func:`run_job` loads a job's image once and cuts every crop it serves.
- :func:`iter_crops` runs the jobs on a bounded thread pool, yielding results as they
  are ready.

Example:
    >>> import pandas as pd
    >>> objects = pd.DataFrame({"object_id": ["o1"], "frame_id": ["f1"], "blob": ["/etc/x"]})
    >>> jobs, failed = plan_crops(objects, None, CropOptions())
    >>> jobs, failed[0].error  # doctest: +ELLIPSIS
    ([], 'object o1: cannot load image /etc/x: not an http(s) URL ...')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from PIL import Image

from coreviz_frames._util.checks import check_int, check_on_error, is_missing
from coreviz_frames._util.concurrency import run_as_completed
from coreviz_frames._util.progress import progress_bar
from coreviz_frames.errors import ConfigError, ImageLoadError
from coreviz_frames.images.loading import is_http_url, load_blob, refuse_url
from coreviz_frames.images.options import (
    IMAGE_ON_ERROR,
    CropOptions,
    DownloadOptions,
    MaxSize,
    OnError,
    size_pair,
)
from coreviz_frames.tables.boxes import Box

__all__ = [
    "CropResult",
    "blob_loader",
    "column",
    "iter_crops",
    "plan_crops",
    "present",
    "run_job",
    "split_input",
]

#: Loads the image of a URL, shrunk to a max size (or not): ``load(url, max_size)``.
Loader = Callable[[str, MaxSize], Image.Image]
_FrameSize = tuple[Any, Any]
_NO_FRAME = "frame not in the frames table"
#: Said by every crop error raised with ``on_error="raise"``.
RECORD_HINT = 'pass on_error="record" to get the other crops and a reason for each failure'
_OBJECT_COLUMNS = (
    "object_id",
    "frame_id",
    "blob",
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "frame_width",
    "frame_height",
)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class CropResult:
    """One object's crop from ``load_crops(..., on_error="record")``.

    ``source`` is ``"blob"`` or ``"frame"`` (where the pixels came from), ``url`` the
    image downloaded, ``box`` the pixel box cut from the frame image (None for a blob),
    ``clamped`` True when that box reached outside the image and was cut back.

    Example:
        >>> r = CropResult("obj1", None, error="no crop blob and no geometry")
        >>> r.ok
        False
    """

    object_id: str
    image: Image.Image | None
    error: str | None = None
    source: str | None = None
    url: str | None = None
    box: tuple[int, int, int, int] | None = None
    clamped: bool = False

    @property
    def ok(self) -> bool:
        """True when the crop loaded."""
        return self.image is not None


@dataclass
class CropJob:
    """Objects served by one image: its URL, and per row (position, object id, box, frame size).

    ``kind`` is ``"blob"`` (the row's crop image, box None) or ``"frame"`` (boxes cut out).
    """

    url: str
    kind: str
    rows: list[tuple[int, str, Box | None, _FrameSize]] = field(default_factory=list)


# --------------------------------------------------------------------------- input


def split_input(tables_or_objects: Any, frames: pd.DataFrame | None) -> tuple[pd.DataFrame, Any]:
    """``(objects, frames)`` from a ``MediaTables``, an objects DataFrame or one row.

    Example:
        >>> split_input(pd.DataFrame({"object_id": ["a"]}), None)[0].object_id.tolist()
        ['a']
    """
    objects = getattr(tables_or_objects, "objects", None)
    if isinstance(objects, pd.DataFrame):
        if frames is None:
            frames = tables_or_objects.frames
        return objects, frames
    if isinstance(tables_or_objects, pd.DataFrame):
        return tables_or_objects, frames
    if isinstance(tables_or_objects, pd.Series):
        return tables_or_objects.to_frame().T, frames
    raise TypeError(
        f"expected MediaTables or an objects DataFrame, got {type(tables_or_objects).__name__}"
    )


def present(value: Any) -> bool:
    """False for None, NA/NaN and ``""``; True for any other value.

    Example:
        >>> present(None), present(float("nan")), present(""), present(0)
        (False, False, False, True)
    """
    return not is_missing(value) and not (isinstance(value, str) and value == "")


def column(df: pd.DataFrame, name: str) -> list[Any]:
    """The values of column ``name`` as a list, or Nones when there is no such column.

    Example:
        >>> column(pd.DataFrame({"a": [1]}), "b")
        [None]
    """
    if name in df.columns:
        return df[name].tolist()
    return [None] * len(df)


def _frame_lookup(frames: pd.DataFrame | None) -> dict[str, tuple[Any, Any, Any]]:
    if frames is None or len(frames) == 0 or "frame_id" not in frames.columns:
        return {}
    ids, blobs = frames["frame_id"].tolist(), column(frames, "blob")
    widths, heights = column(frames, "width"), column(frames, "height")
    return {str(f): (b, w, h) for f, b, w, h in zip(ids, blobs, widths, heights, strict=True)}


# --------------------------------------------------------------------------- boxes


def _scale(box: Box, sx: float, sy: float) -> Box:
    """``box`` with x multiplied by ``sx`` and y by ``sy`` (frame pixels to image pixels)."""
    return Box(box.x * sx, box.y * sy, box.w * sx, box.h * sy)


def _grow_to(box: Box, min_w: float, min_h: float) -> Box:
    """``box`` grown around its centre to at least ``min_w`` by ``min_h``."""
    dx, dy = max(0.0, min_w - box.w) / 2, max(0.0, min_h - box.h) / 2
    return Box(box.x - dx, box.y - dy, box.w + 2 * dx, box.h + 2 * dy)


def _adjust(box: Box, crop: CropOptions) -> Box:
    """``box`` padded, squared and grown as ``crop`` asks."""
    if crop.pad:
        box = box.pad(crop.pad)
    if crop.square:
        box = box.square()
    min_pair = size_pair(crop.min_size)
    if min_pair is not None:
        box = _grow_to(box, *min_pair)
    return box


def pixels(box: Box) -> tuple[int, int, int, int]:
    """The integer box a crop is cut at: floor of the minima, ceil of the maxima.

    The same rule the sample collection's crop images were cut with.

    Example:
        >>> pixels(Box(1.5, 2.0, 3.2, 4.0))
        (1, 2, 5, 6)
    """
    x1, y1, x2, y2 = box.xyxy
    eps = 1e-6  # 12.000000001 from float arithmetic is 12, not 13
    return (math.floor(x1 + eps), math.floor(y1 + eps), math.ceil(x2 - eps), math.ceil(y2 - eps))


# --------------------------------------------------------------------------- planning


def _route(
    row: tuple[Any, ...], lookup: dict[str, tuple[Any, Any, Any]], crop: CropOptions
) -> CropResult | tuple[str, str, Box | None, _FrameSize]:
    """Where one object row's pixels come from: ``(kind, url, box, frame size)``, or why not."""
    oid, fid, blob, bx, by, bw, bh, fw, fh = row
    box: Box | None = None
    if all(present(v) for v in (bx, by, bw, bh)):
        try:
            box = Box(float(bx), float(by), float(bw), float(bh))
        except (TypeError, ValueError) as exc:
            return CropResult(oid, None, f"object {oid}: invalid box ({exc})")
    frame_blob, frame_w, frame_h = lookup.get(str(fid), (None, None, None))
    if not present(fw):
        fw, fh = frame_w, frame_h
    has_blob, can_cut = present(blob), box is not None and present(frame_blob)
    if crop.source == "blob" or (
        crop.source == "auto" and has_blob and not (crop.adjusts and can_cut)
    ):
        if not has_blob:
            return CropResult(oid, None, f"object {oid}: no crop blob")
        if not is_http_url(blob):
            return CropResult(
                oid, None, f"object {oid}: {refuse_url(str(blob))}", "blob", str(blob)
            )
        return "blob", str(blob), None, (fw, fh)
    if box is None:
        reason = "no geometry" if crop.source == "frame" else "no crop blob and no geometry"
        return CropResult(oid, None, f"object {oid}: {reason}", source="frame")
    if not present(frame_blob):
        reason = _NO_FRAME if str(fid) not in lookup else "no frame blob"
        return CropResult(oid, None, f"object {oid}: {reason} (frame {fid})")
    if not is_http_url(frame_blob):
        refused = refuse_url(str(frame_blob))
        return CropResult(oid, None, f"object {oid}: {refused}", "frame", str(frame_blob))
    return "frame", str(frame_blob), _adjust(box, crop), (fw, fh)


def plan_crops(
    objects: pd.DataFrame, frames: pd.DataFrame | None, crop: CropOptions
) -> tuple[list[CropJob], dict[int, CropResult]]:
    """Group the rows by the image they need; rows that cannot be served get a result now.

    Returns the jobs (each distinct image once) and ``{row position: failed result}``.
    Without a frames table, a row that needs its frame image is a ``ConfigError`` saying
    to pass ``frames=``.
    """
    lookup = _frame_lookup(frames)
    jobs: dict[tuple[str, str], CropJob] = {}
    failed: dict[int, CropResult] = {}
    columns = [column(objects, c) for c in _OBJECT_COLUMNS]
    for pos, values in enumerate(zip(*columns, strict=True)):
        routed = _route((str(values[0]), *values[1:]), lookup, crop)
        if isinstance(routed, CropResult):
            if frames is None and (routed.error or "").endswith(f"{_NO_FRAME} (frame {values[1]})"):
                raise ConfigError(
                    f"object {values[0]} is cut from its frame image, and no frames table was "
                    "given: pass frames=tables.frames (or the MediaTables itself)"
                )
            failed[pos] = routed
            continue
        kind, url, box, frame_size = routed
        job = jobs.setdefault((kind, url), CropJob(url, kind))
        job.rows.append((pos, str(values[0]), box, frame_size))
    return list(jobs.values()), failed


# --------------------------------------------------------------------------- cutting


def _shift_inside(box: Box, width: int, height: int) -> tuple[Box, bool]:
    """``box`` moved (not resized) to lie inside the image along each axis where it fits.

    A box that does not overlap the image is left where it is (and found empty later).
    """
    x, y = box.x, box.y
    if not (x < width and x + box.w > 0 and y < height and y + box.h > 0):
        return box, False
    if box.w <= width:
        x = min(max(x, 0.0), width - box.w)
    if box.h <= height:
        y = min(max(y, 0.0), height - box.h)
    if (x, y) == (box.x, box.y):
        return box, False
    return Box(x, y, box.w, box.h), True


def _square_at(box: Box, width: int, height: int) -> tuple[int, int, int, bool]:
    """``(x0, y0, side, moved)``: the integer square around ``box``'s centre, moved
    inside the image along each axis where it fits."""
    side = max(1, math.ceil(max(box.w, box.h) - 1e-6))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    centred = (x0, y0)
    if not (box.x < width and box.x + box.w > 0 and box.y < height and box.y + box.h > 0):
        return x0, y0, side, False  # outside the image: found empty by the caller
    if side <= width:
        x0 = min(max(x0, 0), width - side)
    if side <= height:
        y0 = min(max(y0, 0), height - side)
    return x0, y0, side, (x0, y0) != centred


def _cut_square(
    image: Image.Image, box: Box, fill: tuple[int, int, int]
) -> tuple[Image.Image | None, tuple[int, int, int, int], bool]:
    """A ``side x side`` crop around ``box``; what lies outside the image is ``fill``."""
    x0, y0, side, moved = _square_at(box, image.width, image.height)
    cut_at = (x0, y0, x0 + side, y0 + side)
    inside = (max(x0, 0), max(y0, 0), min(x0 + side, image.width), min(y0 + side, image.height))
    if inside[2] <= inside[0] or inside[3] <= inside[1]:
        return None, cut_at, True
    if inside == cut_at:
        return image.crop(cut_at), cut_at, moved
    canvas = Image.new(image.mode, (side, side), fill if image.mode == "RGB" else fill[0])
    canvas.paste(image.crop(inside), (inside[0] - x0, inside[1] - y0))
    return canvas, cut_at, True


def _cut(
    image: Image.Image, box: Box, frame_size: _FrameSize, crop: CropOptions
) -> tuple[Image.Image | None, tuple[int, int, int, int], bool]:
    """Crop ``box`` (frame pixels) from ``image``, scaled if the image is not frame-sized.

    A box grown by ``square`` or ``min_size`` (``crop.fit``) is first moved back inside
    the image where it fits, so it keeps its shape and size; with ``square`` what still
    reaches outside is padded with ``crop.fill`` (the crop stays square), otherwise it is
    clamped. Either way the result is flagged ``clamped``.
    """
    fw, fh = frame_size
    known = present(fw) and present(fh) and int(fw) > 0 and int(fh) > 0
    if known and (int(fw), int(fh)) != image.size:
        box = _scale(box, image.width / int(fw), image.height / int(fh))
    if crop.square:
        return _cut_square(image, box, crop.fill if isinstance(crop.fill, tuple) else (0, 0, 0))
    shifted = False
    if crop.fit:
        box, shifted = _shift_inside(box, image.width, image.height)
    box, clamped = box.clamp(image.width, image.height)
    clamped = clamped or shifted
    cut_at = pixels(box)
    x0, y0, x1, y1 = cut_at
    if x1 <= x0 or y1 <= y0:
        return None, cut_at, clamped
    return image.crop(cut_at), cut_at, clamped


def blob_loader(download: DownloadOptions) -> Loader:
    """A :data:`Loader` fetching http(s) blobs with ``download`` (see ``images.load_blob``)."""

    def load(url: str, max_size: MaxSize) -> Image.Image:
        return load_blob(url, max_size=max_size, download=download)

    return load


def run_job(
    job: CropJob, crop: CropOptions, *, on_error: OnError, load: Loader
) -> list[tuple[int, CropResult]]:
    """Load the job's image once (with ``load``) and give every row it serves its crop."""
    try:
        image = load(job.url, crop.max_size if job.kind == "blob" else None)
    except ImageLoadError as exc:
        if on_error == "raise":
            oid = job.rows[0][1]
            message = f"object {oid}: {exc} ({RECORD_HINT})"
            raise ImageLoadError(message, url=exc.url, reason=exc.reason) from None
        return [
            (pos, CropResult(oid, None, f"object {oid}: {exc}", job.kind, job.url))
            for pos, oid, _, _ in job.rows
        ]
    out = []
    max_pair = size_pair(crop.max_size)
    for i, (pos, oid, box, frame_size) in enumerate(job.rows):
        if box is None:
            crop_image = image if i == len(job.rows) - 1 else image.copy()
            out.append((pos, CropResult(oid, crop_image, None, "blob", job.url)))
            continue
        cut, cut_at, clamped = _cut(image, box, frame_size, crop)
        if cut is None:
            msg = f"object {oid}: box {cut_at} lies outside the frame image {image.size}"
            if on_error == "raise":
                raise ImageLoadError(
                    f"{msg} ({RECORD_HINT})", url=job.url, reason="box outside image"
                )
            out.append((pos, CropResult(oid, None, msg, "frame", job.url, cut_at, clamped)))
            continue
        if max_pair is not None:
            cut.thumbnail(max_pair, Image.Resampling.LANCZOS)
        out.append((pos, CropResult(oid, cut, None, "frame", job.url, cut_at, clamped)))
    return out


# --------------------------------------------------------------------------- running


def iter_crops(
    tables_or_objects: Any,
    frames: pd.DataFrame | None = None,
    crop: CropOptions | None = None,
    download: DownloadOptions | None = None,
    *,
    on_error: OnError = "raise",
    workers: int = 8,
    progress: bool | None = None,
) -> Iterator[tuple[int, CropResult]]:
    """Yield ``(row position, CropResult)`` as crops become ready (not in row order).

    At most ``2 * workers`` images are in flight, so memory stays bounded however many
    frames there are: the streaming core of ``load_crops`` and ``export_crops``.

    Example:
        >>> objects = pd.DataFrame({"object_id": ["o1"], "blob": [None]})
        >>> [(pos, r.error) for pos, r in iter_crops(objects, on_error="record")]
        [(0, 'object o1: no crop blob and no geometry')]
    """
    check_on_error(on_error, allowed=IMAGE_ON_ERROR)
    check_int("workers", workers, minimum=1)
    crop = crop if crop is not None else CropOptions()
    load = blob_loader(download if download is not None else DownloadOptions())
    objects, frames = split_input(tables_or_objects, frames)
    jobs, failed = plan_crops(objects, frames, crop)
    if failed and on_error == "raise":
        first = failed[min(failed)]
        count = f"{len(failed)} of {len(objects)} objects cannot be cropped"
        message = f"{first.error or 'cannot crop'} ({count}; {RECORD_HINT})"
        raise ImageLoadError(message, url=first.url, reason="cannot crop")
    yield from failed.items()

    def task(job: CropJob) -> list[tuple[int, CropResult]]:
        return run_job(job, crop, on_error=on_error, load=load)

    jobs.sort(key=lambda j: -len(j.rows))  # largest first: one busy frame does not finish last
    total = sum(len(j.rows) for j in jobs)
    with progress_bar(total=total, desc="crops", unit="crop", progress=progress) as bar:
        batches = map(task, jobs) if workers == 1 else run_as_completed(jobs, task, workers=workers)
        for results in batches:
            bar.update(len(results))
            yield from results

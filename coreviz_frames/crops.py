"""Object crops as PIL images: the crop blob, or the box cut out of the frame image.

- :func:`load_crops` gives one crop per object row, in row order. ``source="auto"``
  uses the object's crop blob when it has one and otherwise cuts its box (the
  ``bbox_*`` columns, frame pixels) out of the owning frame's image; each image is
  downloaded once for all the objects that need it. A box reaching outside the image
  is clamped, and flagged in the :class:`CropResult`.
- :func:`show_crops` is an inline notebook gallery of small labelled thumbnails.

Example:
    >>> import coreviz_frames as cvf
    >>> crops = cvf.load_crops(tables, pad=0.1)                  # doctest: +SKIP
    >>> results = cvf.load_crops(tables, on_error="record")      # doctest: +SKIP
    >>> [r.error for r in results if not r.ok]                   # doctest: +SKIP
    >>> cvf.show_crops(tables.objects[tables.objects.label == "dog"])   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import requests
from PIL import Image

from .boxes import Box
from .cache import DiskCache, resolve_cache
from .errors import ConfigError, ImageLoadError
from .images import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    MaxSize,
    OnError,
    _load_one,
    _size_pair,
    check_on_error,
    is_http_url,
    refuse_url,
)
from .progress import progress_bar

__all__ = ["CropGallery", "CropResult", "load_crops", "show_crops"]

Source = Literal["auto", "blob", "frame"]
CacheArg = DiskCache | str | os.PathLike[str] | bool | None


# --------------------------------------------------------------------------- boxes


def _scale(box: Box, sx: float, sy: float) -> Box:
    """``box`` with x multiplied by ``sx`` and y by ``sy`` (frame pixels to image pixels)."""
    return Box(box.x * sx, box.y * sy, box.w * sx, box.h * sy)


def _grow_to(box: Box, min_w: float, min_h: float) -> Box:
    """``box`` grown around its centre to at least ``min_w`` by ``min_h``."""
    dx, dy = max(0.0, min_w - box.w) / 2, max(0.0, min_h - box.h) / 2
    return Box(box.x - dx, box.y - dy, box.w + 2 * dx, box.h + 2 * dy)


def _pixels(box: Box) -> tuple[int, int, int, int]:
    """The integer box a crop is cut at: floor of the minima, ceil of the maxima.

    The same rule the sample collection's crop images were cut with.

    Example:
        >>> _pixels(Box(1.5, 2.0, 3.2, 4.0))
        (1, 2, 5, 6)
    """
    x1, y1, x2, y2 = box.xyxy
    eps = 1e-6  # 12.000000001 from float arithmetic is 12, not 13
    return (math.floor(x1 + eps), math.floor(y1 + eps), math.ceil(x2 - eps), math.ceil(y2 - eps))


# --------------------------------------------------------------------------- results


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
class _Job:
    """Objects served by one image: its URL, and per row (position, object id, box, frame size)."""

    url: str
    kind: str  # "blob" or "frame"
    rows: list[tuple[int, str, Box | None, tuple[Any, Any]]] = field(default_factory=list)


# --------------------------------------------------------------------------- planning


def _split_input(tables_or_objects: Any, frames: pd.DataFrame | None):
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


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        if pd.isna(value):
            return False
    except (TypeError, ValueError):
        pass
    return not (isinstance(value, str) and value == "")


def _column(df: pd.DataFrame, name: str) -> list:
    if name in df.columns:
        return df[name].tolist()
    return [None] * len(df)


def _frame_lookup(frames: pd.DataFrame | None) -> dict[str, tuple[Any, Any, Any]]:
    if frames is None or len(frames) == 0 or "frame_id" not in frames.columns:
        return {}
    ids, blobs = frames["frame_id"].tolist(), _column(frames, "blob")
    widths, heights = _column(frames, "width"), _column(frames, "height")
    return {str(f): (b, w, h) for f, b, w, h in zip(ids, blobs, widths, heights, strict=True)}


def _plan(
    objects: pd.DataFrame,
    frames: pd.DataFrame | None,
    *,
    source: Source,
    pad: float,
    square: bool,
    min_size: MaxSize,
) -> tuple[list[_Job], dict[int, CropResult]]:
    """Group the rows by the image they need; rows that cannot be served get a result now."""
    if source not in ("auto", "blob", "frame"):
        raise ConfigError(f"source must be 'auto', 'blob' or 'frame', got {source!r}")
    if pad < 0 or not math.isfinite(pad):
        raise ConfigError(f"pad must be a non-negative fraction, got {pad!r}")
    min_pair = _size_pair(min_size)
    adjusts = bool(pad) or square or min_pair is not None
    if source == "blob" and adjusts:
        raise ConfigError("pad, square and min_size need the frame: use source='auto' or 'frame'")
    lookup = _frame_lookup(frames)
    jobs: dict[tuple[str, str], _Job] = {}
    failed: dict[int, CropResult] = {}
    columns = [
        _column(objects, c)
        for c in (
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
    ]
    for pos, (oid, fid, blob, bx, by, bw, bh, fw, fh) in enumerate(zip(*columns, strict=True)):
        oid = str(oid)
        has_blob = _present(blob)
        box: Box | None = None
        if all(_present(v) for v in (bx, by, bw, bh)):
            try:
                box = Box(float(bx), float(by), float(bw), float(bh))
            except (TypeError, ValueError) as exc:
                failed[pos] = CropResult(oid, None, f"object {oid}: invalid box ({exc})")
                continue
        frame_blob, frame_w, frame_h = lookup.get(str(fid), (None, None, None))
        if not _present(fw):
            fw, fh = frame_w, frame_h
        can_cut = box is not None and _present(frame_blob)
        if source == "blob" or (source == "auto" and has_blob and not (adjusts and can_cut)):
            if not has_blob:
                failed[pos] = CropResult(oid, None, f"object {oid}: no crop blob")
                continue
            if not is_http_url(blob):
                refused = refuse_url(str(blob))
                failed[pos] = CropResult(oid, None, f"object {oid}: {refused}", "blob", str(blob))
                continue
            key = ("blob", str(blob))
            jobs.setdefault(key, _Job(str(blob), "blob")).rows.append((pos, oid, None, (fw, fh)))
            continue
        if box is None:
            reason = "no geometry" if source == "frame" else "no crop blob and no geometry"
            failed[pos] = CropResult(oid, None, f"object {oid}: {reason}", source="frame")
            continue
        if not _present(frame_blob):
            reason = "frame not in the frames table" if str(fid) not in lookup else "no frame blob"
            failed[pos] = CropResult(oid, None, f"object {oid}: {reason} (frame {fid})")
            continue
        if not is_http_url(frame_blob):
            refused = refuse_url(str(frame_blob))
            failed[pos] = CropResult(
                oid, None, f"object {oid}: {refused}", "frame", str(frame_blob)
            )
            continue
        if bool(pad):
            box = box.pad(pad)
        if square:
            box = box.square()
        if min_pair is not None:
            box = _grow_to(box, *min_pair)
        key = ("frame", str(frame_blob))
        jobs.setdefault(key, _Job(str(frame_blob), "frame")).rows.append((pos, oid, box, (fw, fh)))
    return list(jobs.values()), failed


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


def _cut(
    image: Image.Image, box: Box, frame_size: tuple[Any, Any], *, fit: bool = False
) -> tuple[Image.Image | None, tuple[int, int, int, int], bool]:
    """Crop ``box`` (frame pixels) from ``image``, scaled if the image is not frame-sized.

    ``fit`` (a box grown by ``square`` or ``min_size``) first moves a box that reaches
    outside the image back inside where it fits, so it keeps its shape and size; what
    still reaches outside is clamped. Either way the result is flagged ``clamped``.
    """
    fw, fh = frame_size
    known = _present(fw) and _present(fh) and int(fw) > 0 and int(fh) > 0
    if known and (int(fw), int(fh)) != image.size:
        box = _scale(box, image.width / int(fw), image.height / int(fh))
    shifted = False
    if fit:
        box, shifted = _shift_inside(box, image.width, image.height)
    box, clamped = box.clamp(image.width, image.height)
    clamped = clamped or shifted
    pixels = _pixels(box)
    x0, y0, x1, y1 = pixels
    if x1 <= x0 or y1 <= y0:
        return None, pixels, clamped
    return image.crop(pixels), pixels, clamped


def _run_job(job: _Job, opts: dict[str, Any]) -> list[tuple[int, CropResult]]:
    max_size = opts["max_size"]
    loader = opts.get("loader") or _load_one
    try:
        image = loader(
            job.url,
            max_size=max_size if job.kind == "blob" else None,
            cache=opts["cache"],
            timeout=opts["timeout"],
            max_bytes=opts["max_bytes"],
            max_pixels=opts["max_pixels"],
            session=opts["session"],
        )
    except ImageLoadError as exc:
        if opts["on_error"] == "raise":
            oid = job.rows[0][1]
            raise ImageLoadError(f"object {oid}: {exc}", url=exc.url, reason=exc.reason) from None
        return [
            (pos, CropResult(oid, None, f"object {oid}: {exc}", job.kind, job.url))
            for pos, oid, _, _ in job.rows
        ]
    out = []
    target = _size_pair(max_size)
    for i, (pos, oid, box, frame_size) in enumerate(job.rows):
        if box is None:
            crop = image if i == len(job.rows) - 1 else image.copy()
            out.append((pos, CropResult(oid, crop, None, "blob", job.url)))
            continue
        crop, pixels, clamped = _cut(image, box, frame_size, fit=opts.get("fit", False))
        if crop is None:
            msg = f"object {oid}: box {pixels} lies outside the frame image {image.size}"
            if opts["on_error"] == "raise":
                raise ImageLoadError(msg, url=job.url, reason="box outside image")
            out.append((pos, CropResult(oid, None, msg, "frame", job.url, pixels, clamped)))
            continue
        if target is not None:
            crop.thumbnail(target, Image.Resampling.LANCZOS)
        out.append((pos, CropResult(oid, crop, None, "frame", job.url, pixels, clamped)))
    return out


def iter_crops(
    tables_or_objects: Any,
    *,
    frames: pd.DataFrame | None = None,
    source: Source = "auto",
    pad: float = 0.0,
    square: bool = False,
    min_size: MaxSize = None,
    max_size: MaxSize = None,
    on_error: OnError = "raise",
    workers: int = 8,
    cache_dir: CacheArg = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    session: requests.Session | None = None,
    progress: bool | None = None,
) -> Iterator[tuple[int, CropResult]]:
    """Yield ``(row position, CropResult)`` as crops become ready (not in row order).

    At most ``2 * workers`` images are in flight, so memory stays bounded however many
    frames there are: the streaming core of :func:`load_crops` and ``export_crops``.
    """
    check_on_error(on_error)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    objects, frames = _split_input(tables_or_objects, frames)
    jobs, failed = _plan(objects, frames, source=source, pad=pad, square=square, min_size=min_size)
    if failed and on_error == "raise":
        pos = min(failed)
        first = failed[pos]
        raise ImageLoadError(first.error or "cannot crop", url=first.url, reason="cannot crop")
    opts = {
        "max_size": max_size,
        "cache": resolve_cache(cache_dir),
        "timeout": timeout,
        "max_bytes": max_bytes,
        "max_pixels": max_pixels,
        "session": session,
        "on_error": on_error,
        "fit": bool(square) or min_size is not None,
    }
    yield from failed.items()
    # Largest jobs first, so one busy frame does not finish last.
    jobs.sort(key=lambda j: -len(j.rows))
    total = sum(len(j.rows) for j in jobs)
    with progress_bar(total=total, desc="crops", unit="crop", progress=progress) as bar:
        if workers == 1:
            for job in jobs:
                results = _run_job(job, opts)
                bar.update(len(results))
                yield from results
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            queue = iter(jobs)
            pending = set()
            try:
                for job in queue:
                    pending.add(pool.submit(_run_job, job, opts))
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        results = fut.result()
                        bar.update(len(results))
                        yield from results
                        nxt = next(queue, None)
                        if nxt is not None:
                            pending.add(pool.submit(_run_job, nxt, opts))
            finally:
                for fut in pending:
                    fut.cancel()


def load_crops(
    tables_or_objects: Any,
    *,
    frames: pd.DataFrame | None = None,
    source: Source = "auto",
    pad: float = 0.0,
    square: bool = False,
    min_size: MaxSize = None,
    max_size: MaxSize = None,
    on_error: OnError = "raise",
    workers: int = 8,
    cache_dir: CacheArg = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    session: requests.Session | None = None,
    progress: bool | None = None,
) -> list[Image.Image] | list[CropResult]:
    """One RGB crop per object row, in row order.

    ``tables_or_objects`` is a ``MediaTables`` or an objects DataFrame (then pass
    ``frames=`` to cut boxes out of frame images). ``source``: ``"blob"`` the crop
    image, ``"frame"`` the box cut from the frame, ``"auto"`` the blob when there is one
    (the frame when ``pad``, ``square`` or ``min_size`` change the box), else the frame.
    ``pad`` grows each side by a fraction of the box, ``square`` makes the box square,
    ``min_size`` grows small boxes, ``max_size`` shrinks crops to thumbnails. Boxes are
    clamped to the image. ``on_error="raise"`` returns images and raises
    :class:`~coreviz_frames.errors.ImageLoadError`; ``"record"`` returns one
    :class:`CropResult` per row.

    Example:
        >>> crops = load_crops(tables, square=True, pad=0.1, max_size=224)   # doctest: +SKIP
        >>> crops[0].size                                                     # doctest: +SKIP
        (224, 224)
    """
    objects, frames = _split_input(tables_or_objects, frames)
    out: list[CropResult | None] = [None] * len(objects)
    for pos, result in iter_crops(
        objects,
        frames=frames,
        source=source,
        pad=pad,
        square=square,
        min_size=min_size,
        max_size=max_size,
        on_error=on_error,
        workers=workers,
        cache_dir=cache_dir,
        timeout=timeout,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        session=session,
        progress=progress,
    ):
        out[pos] = result
    if on_error == "raise":
        return [r.image for r in out]  # type: ignore[union-attr,misc]
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- gallery


def _thumb_data_uri(image: Image.Image, size: int) -> tuple[str, int, int]:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), *thumb.size


class CropGallery:
    """A grid of labelled thumbnails; Jupyter renders it through ``_repr_html_``.

    Example:
        >>> CropGallery([], [], size=64)._repr_html_().startswith("<div")
        True
    """

    def __init__(
        self,
        images: Sequence[Image.Image | None],
        labels: Sequence[str | None],
        *,
        size: int = 96,
        columns: int = 8,
        errors: Sequence[str | None] | None = None,
    ) -> None:
        self.images = list(images)
        self.labels = list(labels)
        self.errors = list(errors) if errors is not None else [None] * len(self.images)
        self.size = int(size)
        self.columns = max(1, int(columns))

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"<CropGallery of {len(self.images)} crops>"

    def _repr_html_(self) -> str:
        s = self.size
        cells = []
        for image, label, error in zip(self.images, self.labels, self.errors, strict=True):
            text = html.escape("" if label is None else str(label))
            if image is None:
                tip = html.escape(error or "no image")
                inner = (
                    f'<div title="{tip}" style="width:{s}px;height:{s}px;background:#ddd;'
                    'display:flex;align-items:center;justify-content:center;color:#900">'
                    "&#10007;</div>"
                )
            else:
                uri, w, h = _thumb_data_uri(image, s)
                inner = f'<img src="{uri}" width="{w}" height="{h}" alt="{text}">'
            cells.append(
                f'<figure style="margin:0;text-align:center;width:{s}px">{inner}'
                f'<figcaption style="font-size:11px;overflow:hidden;text-overflow:ellipsis;'
                f'white-space:nowrap" title="{text}">{text}</figcaption></figure>'
            )
        return (
            f'<div style="display:grid;grid-template-columns:repeat({self.columns},{s}px);'
            f'gap:6px;align-items:end">' + "".join(cells) + "</div>"
        )


def show_crops(
    objects: Any,
    n: int = 24,
    *,
    size: int = 96,
    columns: int = 8,
    frames: pd.DataFrame | None = None,
    label_column: str = "label",
    source: Source = "auto",
    cache_dir: CacheArg = None,
    workers: int = 8,
    progress: bool | None = False,
) -> CropGallery:
    """An inline gallery of the first ``n`` crops with their labels (small base64 JPEGs).

    ``objects`` is a ``MediaTables``, an objects DataFrame (with ``frames=``), or a list
    of PIL images / :class:`CropResult`. Crops that fail show as a grey cell whose
    tooltip gives the reason.

    Example:
        >>> show_crops(tables.objects.sample(16), frames=tables.frames)  # doctest: +SKIP
    """
    if isinstance(objects, list | tuple):
        items = list(objects)[:n]
        images = [getattr(i, "image", i) for i in items]
        labels = [getattr(i, "object_id", None) for i in items]
        errors = [getattr(i, "error", None) for i in items]
        return CropGallery(images, labels, size=size, columns=columns, errors=errors)
    table, frames = _split_input(objects, frames)
    table = table.head(n)
    results = load_crops(
        table,
        frames=frames,
        source=source,
        max_size=(size, size),
        on_error="record",
        workers=workers,
        cache_dir=cache_dir,
        progress=progress,
    )
    labels = _column(table, label_column)
    labels = [None if not _present(v) else str(v) for v in labels]
    return CropGallery(
        [r.image for r in results],
        labels,
        size=size,
        columns=columns,  # type: ignore[union-attr]
        errors=[r.error for r in results],  # type: ignore[union-attr]
    )

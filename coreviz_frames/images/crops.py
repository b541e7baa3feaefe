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

import dataclasses
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from PIL import Image

from coreviz_frames.images.crop_plan import CropResult, column, iter_crops, present, split_input
from coreviz_frames.images.options import CropOptions, DownloadOptions, OnError, split_options
from coreviz_frames.tables.preview import block_html, img_html, thumbnail

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.images.options import CropDownloadKwargs

__all__ = ["load_crops", "show_crops"]


def load_crops(
    tables_or_objects: Any,
    *,
    frames: pd.DataFrame | None = None,
    on_error: OnError = "raise",
    workers: int = 8,
    progress: bool | None = None,
    crop: CropOptions | None = None,
    download: DownloadOptions | None = None,
    **options: Unpack[CropDownloadKwargs],
) -> list[Image.Image] | list[CropResult]:
    """One RGB crop per object row, in row order.

    ``tables_or_objects`` is a ``MediaTables`` or an objects DataFrame (then pass
    ``frames=`` to cut boxes out of frame images). The crop options (one ``crop=``
    :class:`~coreviz_frames.images.options.CropOptions`, or its fields as keywords):
    ``source``: ``"blob"`` the crop image, ``"frame"`` the box cut from the frame,
    ``"auto"`` the blob when there is one (the frame when ``pad``, ``square`` or
    ``min_size`` change the box), else the frame. ``pad`` grows each side by a fraction
    of the box, ``square`` makes the box square, ``min_size`` grows small boxes,
    ``max_size`` shrinks crops to thumbnails. Boxes are clamped to the image. The
    download options (``timeout``, ``max_bytes``, ``max_pixels``, ``cache_dir``,
    ``session``, or one ``download=``) are those of ``load_image``; blob URLs are
    fetched only over http(s). ``on_error="raise"`` returns images and raises
    :class:`~coreviz_frames.errors.ImageLoadError`; ``"record"`` returns one
    :class:`CropResult` per row.

    Example:
        >>> crops = load_crops(tables, square=True, pad=0.1, max_size=224)   # doctest: +SKIP
        >>> crops[0].size                                                     # doctest: +SKIP
        (224, 224)
    """
    crop, download = split_options(options, crop=crop, download=download)
    objects, frames = split_input(tables_or_objects, frames)
    out: list[CropResult | None] = [None] * len(objects)
    results = iter_crops(
        objects, frames, crop, download, on_error=on_error, workers=workers, progress=progress
    )
    for pos, result in results:
        out[pos] = result
    done = cast(list[CropResult], out)  # every row has its result now
    if on_error == "raise":
        return cast(list[Image.Image], [r.image for r in done])  # a failure raised instead
    return done


# --------------------------------------------------------------------------- gallery


class CropGallery:
    """A grid of labelled thumbnails; Jupyter renders it through ``_repr_html_``.

    Example:
        >>> CropGallery([], [], size=64)._repr_html_().startswith('<div class="coreviz-frames">')
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
                inner = img_html(thumbnail(image, s), alt=text)
            cells.append(
                f'<figure style="margin:0;text-align:center;width:{s}px">{inner}'
                f'<figcaption class="cvf-note" style="overflow:hidden;text-overflow:ellipsis;'
                f'white-space:nowrap" title="{text}">{text}</figcaption></figure>'
            )
        grid = (
            f'<div style="display:grid;grid-template-columns:repeat({self.columns},{s}px);'
            f'gap:6px;align-items:end">' + "".join(cells) + "</div>"
        )
        return block_html(None, grid)


def show_crops(
    objects: Any,
    n: int = 24,
    *,
    size: int = 96,
    columns: int = 8,
    frames: pd.DataFrame | None = None,
    label_column: str = "label",
    workers: int = 8,
    progress: bool | None = False,
    crop: CropOptions | None = None,
    download: DownloadOptions | None = None,
    **options: Unpack[CropDownloadKwargs],
) -> CropGallery:
    """An inline gallery of the first ``n`` crops with their labels (small base64 JPEGs).

    ``objects`` is a ``MediaTables``, an objects DataFrame (with ``frames=``), or a list
    of PIL images / :class:`CropResult`. Crops that fail show as a grey cell whose
    tooltip gives the reason. Crop and download options are those of
    :func:`load_crops` (thumbnails are ``size`` pixels whatever ``max_size`` says).

    Example:
        >>> show_crops(tables.objects.sample(16), frames=tables.frames)  # doctest: +SKIP
    """
    if isinstance(objects, list | tuple):
        items = list(objects)[:n]
        images = [getattr(i, "image", i) for i in items]
        labels = [getattr(i, "object_id", None) for i in items]
        errors = [getattr(i, "error", None) for i in items]
        return CropGallery(images, labels, size=size, columns=columns, errors=errors)
    crop_opts, download_opts = split_options(options, crop=crop, download=download)
    table, frames = split_input(objects, frames)
    table = table.head(n)
    results: list[CropResult] = load_crops(  # type: ignore[assignment]
        table,
        frames=frames,
        on_error="record",
        workers=workers,
        progress=progress,
        crop=dataclasses.replace(crop_opts, max_size=(size, size)),
        download=download_opts,
    )
    labels = [str(v) if present(v) else None for v in column(table, label_column)]
    return CropGallery(
        [r.image for r in results],
        labels,
        size=size,
        columns=columns,
        errors=[r.error for r in results],
    )

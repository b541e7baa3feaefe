"""The notebook preview of :class:`~coreviz_frames.tables.media_tables.MediaTables`: compact rows.

Each grain shows a few rows with short cells: ids cut to 8 characters (the full id in a
tooltip), polygons as ``4 pts``, lists as their first items, long text clipped (full text
in the tooltip), timestamps to the second; at most ``pd.options.display.max_columns``
columns (the first and last ones, an ellipsis between). The objects preview puts a small
crop thumbnail first on each row whose crop image is already in the disk cache
(``$COREVIZ_FRAMES_CACHE``): a repr never downloads anything.

Example:
    >>> cell(pd.Series(["0123456789abcdef"], dtype="string")[0], "media_id")
    ('01234567…', '0123456789abcdef')
    >>> cell([{"x": 0.0, "y": 0.0}] * 4, "polygon")
    ('4 pts', None)
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from coreviz_frames._util.diskcache import resolve_cache
from coreviz_frames.images.options import DEFAULT_MAX_BYTES

__all__ = ["cached_thumbnail", "cell", "frame_html", "tables_html"]

ID_CHARS = 8
TEXT_CHARS = 40
THUMB_SIZE = 48
_STYLE = (
    "<style>.cvf-preview td,.cvf-preview th{padding:2px 6px;font-size:12px;white-space:nowrap;"
    "text-align:left}.cvf-preview td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".cvf-preview img{display:block}</style>"
)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _clip(text: str, limit: int) -> tuple[str, str | None]:
    text = " ".join(text.split())  # no newline inside a cell
    return (text, None) if len(text) <= limit else (text[: limit - 1] + "…", text)


def cell(value: Any, column: str) -> tuple[str, str | None]:
    """``(shown text, tooltip or None)`` for one value of ``column``."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        if value and isinstance(value[0], Mapping):
            return f"{len(value)} pts", None
        return _clip(", ".join(str(v) for v in value), TEXT_CHARS)
    if _missing(value):
        return "", None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S"), value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}", None
    text = str(value)
    if column.endswith("_id") and len(text) > ID_CHARS + 1:
        return text[:ID_CHARS] + "…", text
    if column == "blob" or column.endswith("_blob"):
        tail = text.split("?", 1)[0]
        return (text, None) if len(tail) <= 24 else ("…" + tail[-23:], text)
    return _clip(text, TEXT_CHARS)


def cached_thumbnail(url: Any, size: int = THUMB_SIZE) -> str | None:
    """A data URI of the cached image at ``url``, or None: the disk cache is read, the
    network never.

    Example:
        >>> cached_thumbnail(None) is None
        True
    """
    if _missing(url) or not str(url):
        return None
    cache = resolve_cache(None)
    data = cache.read(str(url), DEFAULT_MAX_BYTES) if cache is not None else None
    if data is None:  # no entry, or one that is not a regular file (never waited on)
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (size, size))
            thumb = image.convert("RGB")
            thumb.thumbnail((size, size))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shown_columns(columns: list[str]) -> list[str | None]:
    """The columns to show, ``None`` standing for the elided middle ones."""
    limit = pd.get_option("display.max_columns")
    if not limit or len(columns) <= limit:
        return list(columns)
    head = (limit + 1) // 2
    return [*columns[:head], None, *columns[len(columns) - (limit - head) :]]


def _td(value: Any, column: str) -> str:
    text, title = cell(value, column)
    numeric = isinstance(value, int | float | np.integer | np.floating) and not _missing(value)
    attrs = ' class="n"' if numeric and not isinstance(value, bool) else ""
    if title is not None:
        attrs += f' title="{html.escape(title)}"'
    return f"<td{attrs}>{html.escape(text)}</td>"


def frame_html(frame: pd.DataFrame, rows: int = 5, *, thumbnails: bool = False) -> str:
    """The first ``rows`` rows of ``frame`` as a compact HTML table (escaped).

    With ``thumbnails``, a first column shows the cached image of each row's ``blob``.
    """
    head = frame.head(rows)
    shown = _shown_columns(list(frame.columns))
    thumbs = thumbnails and "blob" in frame.columns
    header = "<th></th>" if thumbs else ""
    header += "".join("<th>…</th>" if c is None else f"<th>{html.escape(c)}</th>" for c in shown)
    body = []
    for record in head.to_dict("records"):
        cells = ""
        if thumbs:
            uri = cached_thumbnail(record.get("blob"))
            cells += f'<td><img src="{uri}" alt=""></td>' if uri else "<td></td>"
        cells += "".join("<td>…</td>" if c is None else _td(record[c], c) for c in shown)
        body.append(f"<tr>{cells}</tr>")
    more = f"<p>… {len(frame) - rows:,} more rows</p>" if len(frame) > rows else ""
    return (
        f'<table class="cvf-preview"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


def tables_html(items: Iterable[tuple[str, pd.DataFrame]], rows: int = 5) -> str:
    """Row counts, then a compact preview of each grain (the first one open).

    Example:
        >>> from coreviz_frames.tables.media_tables import MediaTables
        >>> "objects" in tables_html(MediaTables.empty().items())
        True
    """
    items = list(items)
    counts = "".join(
        f'<tr><th>{html.escape(g)}</th><td class="n">{len(f):,}</td></tr>' for g, f in items
    )
    parts = [
        f'<div class="coreviz-frames">{_STYLE}<strong>MediaTables</strong>',
        f'<table class="cvf-preview"><tr><th>grain</th><th>rows</th></tr>{counts}</table>',
    ]
    for grain, frame in items:
        opened = " open" if grain == "objects" and len(frame) else ""
        parts.append(
            f"<details{opened}><summary>{html.escape(grain)} ({len(frame):,} rows)</summary>"
            + frame_html(frame, rows, thumbnails=grain == "objects")
            + "</details>"
        )
    parts.append("</div>")
    return "".join(parts)

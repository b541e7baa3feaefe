"""The package's notebook HTML: one compact style for every ``_repr_html_``.

:class:`~coreviz_frames.tables.media_tables.MediaTables`, ``SearchResults``, the listings
(collections, tags, folders, search hits) and the crop gallery all render through here.
Each table shows a few rows with short cells: ids cut to 8 characters (the full id in a
tooltip), polygons as ``4 pts``, lists as their first items, long text clipped (full text
in the tooltip), timestamps to the second. Columns people look for first (name, label,
text, type, sizes, time) lead; ids, then mostly-empty columns come last; at most
``pd.options.display.max_columns`` columns are shown (the rest named in the tooltip of a
last ``…`` column). The objects preview puts a small crop thumbnail first on each row
whose crop image is already in the disk cache (``$COREVIZ_FRAMES_CACHE``): a repr never
downloads anything.

Every size and alignment that matters is an attribute or an inline style, so that
notebook stylesheets (JupyterLab's ``img {max-width: 100%; height: auto}`` and right-aligned
cells, classic Notebook's, VS Code's) cannot shrink a thumbnail to nothing or move text.

Example:
    >>> cell(pd.Series(["0123456789abcdef"], dtype="string")[0], "media_id")
    ('01234567…', '0123456789abcdef')
    >>> cell([{"x": 0.0, "y": 0.0}] * 4, "polygon")
    ('4 pts', None)
    >>> frame = pd.DataFrame({"object_id": ["o1"], "label": ["cat"], "extra": [None]})
    >>> ordered_columns(frame)
    ['label', 'object_id', 'extra']
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from PIL import Image

from coreviz_frames._util.checks import is_missing
from coreviz_frames._util.diskcache import DEFAULT_MAX_BYTES, resolve_cache

__all__ = ["block_html", "img_html", "listing_html", "tables_html", "thumbnail"]

ID_CHARS = 8
TEXT_CHARS = 40
THUMB_SIZE = 48
#: Columns people look for first, in this order (sizes and time after what a row is).
FIRST_COLUMNS = (
    "name",
    "label",
    "text",
    "key",
    "value",
    "type",
    "width",
    "height",
    "bbox_w",
    "bbox_h",
    "size_bytes",
    "duration",
    "timestamp",
    "created_at",
)
#: Long values a thumbnail or a tooltip says better: after the other columns, before ids.
_DETAIL_COLUMNS = frozenset(("blob", "polygon", "path", "folder_path", "moderation_categories"))
#: A column empty in more than this share of the rows looked at goes last.
MOSTLY_NULL = 0.5
_NULL_SAMPLE = 1_000
_STYLE = (
    "<style>.cvf-preview{border-collapse:collapse;margin:2px 0 6px 0}"
    ".cvf-preview td,.cvf-preview th{padding:2px 6px;font-size:12px;white-space:nowrap;"
    "vertical-align:middle}.cvf-preview caption{caption-side:top;text-align:left;"
    "font-size:12px;padding:2px 0}.cvf-note{font-size:12px;margin:2px 0}</style>"
)
_LEFT = ' style="text-align:left"'
_RIGHT = ' style="text-align:right;font-variant-numeric:tabular-nums"'


class Thumbnail(NamedTuple):
    """A small JPEG as a data URI, with its pixel size (declared on the ``<img>``)."""

    uri: str
    width: int
    height: int


def _clip(text: str, limit: int) -> tuple[str, str | None]:
    text = " ".join(text.split())  # no newline inside a cell
    return (text, None) if len(text) <= limit else (text[: limit - 1] + "…", text)


def _is_id(column: str) -> bool:
    return column == "id" or column.endswith(("_id", "_index"))


def cell(value: Any, column: str) -> tuple[str, str | None]:
    """``(shown text, tooltip or None)`` for one value of ``column``."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        if value and isinstance(value[0], Mapping):
            return f"{len(value)} pts", None
        return _clip(", ".join(str(v) for v in value), TEXT_CHARS)
    if is_missing(value):
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


# --------------------------------------------------------------------------- thumbnails


def thumbnail(image: Image.Image, size: int = THUMB_SIZE) -> Thumbnail:
    """``image`` fitted to ``size`` pixels on its longest side, as a JPEG data URI: small
    crops are scaled up (a 12-pixel face is a visible thumbnail), large ones down; the
    aspect ratio is kept.

    Example:
        >>> thumbnail(Image.new("RGB", (12, 6)), 96)[1:]
        (96, 48)
    """
    scale = size / max(image.size) if max(image.size) else 1.0
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    thumb = image.resize(fitted, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.convert("RGB").save(buffer, "JPEG", quality=80)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Thumbnail(uri, *thumb.size)


def cached_thumbnail(url: Any, size: int = THUMB_SIZE) -> Thumbnail | None:
    """A :class:`Thumbnail` of the cached image at ``url``, or None: the disk cache is
    read, the network never.

    Example:
        >>> cached_thumbnail(None) is None
        True
    """
    if is_missing(url) or not str(url):
        return None
    cache = resolve_cache(None)
    data = cache.read(str(url), DEFAULT_MAX_BYTES) if cache is not None else None
    if data is None:  # no entry, or one that is not a regular file (never waited on)
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (size, size))
            return thumbnail(image.convert("RGB"), size)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def img_html(thumb: Thumbnail, alt: str = "") -> str:
    """An ``<img>`` whose size no notebook stylesheet overrides: width and height as
    attributes and inline (``max-width:none``: JupyterLab's ``max-width:100%`` in an
    auto-width cell renders it 0×0).

    Example:
        >>> tag = img_html(Thumbnail("data:,", 48, 30))
        >>> 'width="48" height="30"' in tag and "max-width:none;width:48px;height:30px" in tag
        True
    """
    w, h = thumb.width, thumb.height
    return (
        f'<img src="{thumb.uri}" width="{w}" height="{h}" alt="{html.escape(alt)}" '
        f'style="max-width:none;width:{w}px;height:{h}px;display:block">'
    )


def _thumb_td(url: Any, size: int = THUMB_SIZE) -> str:
    thumb = cached_thumbnail(url, size)
    inner = img_html(thumb) if thumb is not None else ""
    return f'<td style="min-width:{size}px;width:{size}px;padding:1px 4px">{inner}</td>'


# --------------------------------------------------------------------------- columns


def _mostly_null(frame: pd.DataFrame) -> set[str]:
    """Columns empty in more than :data:`MOSTLY_NULL` of the first rows (and ``extra``)."""
    sample = frame.head(_NULL_SAMPLE)
    share = sample.isna().mean() if len(sample) else pd.Series(0.0, index=frame.columns)
    return {str(c) for c, s in share.items() if s > MOSTLY_NULL} | {"extra"}


def ordered_columns(frame: pd.DataFrame, lead: Sequence[str] = ()) -> list[str]:
    """The columns in preview order: ``lead``, :data:`FIRST_COLUMNS`, the others, long
    detail columns (``blob``, ``polygon``, paths), ids and positions, mostly-empty ones."""
    columns = [str(c) for c in frame.columns]
    sparse = _mostly_null(frame)

    def group(column: str) -> int:
        if column in lead:
            return 0
        if column in sparse:
            return 5
        if column in FIRST_COLUMNS:
            return 1
        if _is_id(column):
            return 4
        return 3 if column in _DETAIL_COLUMNS or column.endswith("_blob") else 2

    def key(column: str) -> tuple[int, int]:
        rank = group(column)
        order = {0: lead, 1: FIRST_COLUMNS}.get(rank, columns)
        return rank, list(order).index(column)

    return sorted(columns, key=key)


def _shown_columns(columns: list[str]) -> tuple[list[str], list[str]]:
    """``(shown, hidden)``: the first ``display.max_columns`` columns, and the rest."""
    limit = pd.get_option("display.max_columns")
    if not limit or len(columns) <= limit:
        return list(columns), []
    return columns[:limit], columns[limit:]


# --------------------------------------------------------------------------- tables


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _td(value: Any, column: str, align: str) -> str:
    text, title = cell(value, column)
    tip = f' title="{html.escape(title)}"' if title is not None else ""
    return f"<td{align}{tip}>{html.escape(text)}</td>"


def _header(shown: list[str], aligns: dict[str, str], hidden: list[str], thumbs: bool) -> str:
    cells = "<th></th>" if thumbs else ""
    cells += "".join(f"<th{aligns[c]}>{html.escape(c)}</th>" for c in shown)
    if hidden:
        tip = html.escape(f"{len(hidden)} more columns: {', '.join(hidden)}")
        cells += f'<th{_LEFT} title="{tip}">…</th>'
    return f"<thead><tr>{cells}</tr></thead>"


def frame_html(
    frame: pd.DataFrame,
    rows: int = 5,
    *,
    thumbnails: bool = False,
    caption: str | None = None,
    lead: Sequence[str] = (),
) -> str:
    """The first ``rows`` rows of ``frame`` as a compact HTML table (escaped), its
    columns in :func:`ordered_columns` order, at most ``display.max_columns`` of them.

    With ``thumbnails``, a first column shows the cached image of each row's ``blob``;
    ``caption`` is said once, above the table.
    """
    shown, hidden = _shown_columns(ordered_columns(frame, lead))
    aligns = {c: _RIGHT if _numeric(frame[c]) else _LEFT for c in shown}
    thumbs = thumbnails and "blob" in frame.columns
    body = []
    for record in frame.head(rows).to_dict("records"):
        cells = _thumb_td(record.get("blob")) if thumbs else ""
        cells += "".join(_td(record[c], c, aligns[c]) for c in shown)
        cells += f"<td{_LEFT}>…</td>" if hidden else ""
        body.append(f"<tr>{cells}</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    more = f'<p class="cvf-note">… {len(frame) - rows:,} more rows</p>' if len(frame) > rows else ""
    return (
        f'<table class="cvf-preview">{title}{_header(shown, aligns, hidden, thumbs)}'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


def block_html(title: str | None, *parts: str) -> str:
    """The wrapper of every HTML repr of the package: the shared style, a bold title.

    Example:
        >>> block_html("Hits", "<p>x</p>").startswith('<div class="coreviz-frames">')
        True
    """
    head = f"<strong>{html.escape(title)}</strong>" if title else ""
    return f'<div class="coreviz-frames">{_STYLE}{head}{"".join(parts)}</div>'


def _listing_rows(count: int) -> int:
    """As pandas: every row up to ``display.max_rows``, else ``display.min_rows``."""
    most = pd.get_option("display.max_rows")
    if most is None or count <= most:
        return count
    return pd.get_option("display.min_rows") or most


def listing_html(frame: pd.DataFrame, caption: str | None = None, lead: Sequence[str] = ()) -> str:
    """A listing (collections, tags, folders, hits) in the shared compact style.

    Example:
        >>> "<th" in listing_html(pd.DataFrame({"name": ["a"]}))
        True
    """
    rows = _listing_rows(len(frame))
    return block_html(None, frame_html(frame, rows, caption=caption, lead=lead))


def tables_html(items: Iterable[tuple[str, pd.DataFrame]], rows: int = 5) -> str:
    """Row counts, then a compact preview of each grain (the objects one open).

    Example:
        >>> from coreviz_frames.tables.media_tables import MediaTables
        >>> "objects" in tables_html(MediaTables.empty().items())
        True
    """
    items = list(items)
    counts = "".join(
        f"<tr><th{_LEFT}>{html.escape(g)}</th><td{_RIGHT}>{len(f):,}</td></tr>" for g, f in items
    )
    parts = [
        f'<table class="cvf-preview"><thead><tr><th{_LEFT}>grain</th><th{_RIGHT}>rows</th>'
        f"</tr></thead><tbody>{counts}</tbody></table>"
    ]
    for grain, frame in items:
        opened = " open" if grain == "objects" and len(frame) else ""
        parts.append(
            f"<details{opened}><summary>{html.escape(grain)} ({len(frame):,} rows)</summary>"
            + frame_html(frame, rows, thumbnails=grain == "objects")
            + "</details>"
        )
    return block_html("MediaTables", *parts)

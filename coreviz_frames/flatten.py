"""The column-wise flattening engine behind :func:`coreviz_frames.to_tables`.

One Python pass per grain gathers the nested dicts into flat lists (plain list
appends: no per-row dicts, no pandas); every column is then built as one Arrow
array of its declared type, with vectorised casts (numeric strings, ISO-8601
dates, UUID ids) and ancestor ids / list positions computed with numpy from
the list lengths. Slow, per-value Python code runs only when a fast cast fails,
to coerce tolerated spellings (``"320"`` for a width) or to name the offending
field in a :class:`~coreviz_frames.errors.SchemaError`.

Example:
    >>> from coreviz_frames.flatten import flatten
    >>> arrow_tables, report = flatten([{"id": "m1", "frames": []}])
    >>> arrow_tables["media"].num_rows, report.skipped_count
    (1, 0)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import SchemaError, SkippedRecordWarning
from .ids import normalize_id
from .schema import SCHEMAS

__all__ = ["FlattenReport", "SkippedRecordWarning", "flatten"]

_STR = pa.string()
_INT = pa.int64()
_FLOAT = pa.float64()
_TS = pa.timestamp("us", tz="UTC")
_POLYGON = SCHEMAS["objects"].field("polygon").type
_STR_LIST = SCHEMAS["media"].field("moderation_categories").type
_NONE = type(None)
_UUID_RE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# The dates a pandas frame can print (Python datetimes: years 1 to 9999), in microseconds.
_TS_MIN = -62135596800000000  # 0001-01-01T00:00:00Z
_TS_MAX = 253402300799999999  # 9999-12-31T23:59:59.999999Z

# (column, API key, kind) of the fields read straight from each grain's dicts.
_MEDIA_FIELDS = (
    ("media_id", "id", "id"),
    ("name", "name", "str"),
    ("type", "type", "str"),
    ("status", "status", "str"),
    ("blob", "blob", "str"),
    ("path", "path", "str"),
    ("entity_id", "entityId", "id"),
    ("width", "width", "int"),
    ("height", "height", "int"),
    ("duration", "duration", "float"),
    ("size_bytes", "sizeBytes", "int"),
    ("created_at", "createdAt", "ts"),
    ("updated_at", "updatedAt", "ts"),
    ("created_by_id", "createdById", "id"),
    ("updated_by_id", "updatedById", "id"),
    ("source_media_id", "sourceMediaId", "id"),
    ("version_number", "versionNumber", "int"),
    ("score", "_score", "float"),
)
_FRAME_FIELDS = (
    ("frame_id", "id", "id"),
    ("timestamp", "timestamp", "float"),
    ("blob", "blob", "str"),
    ("width", "width", "int"),
    ("height", "height", "int"),
    ("status", "status", "str"),
    ("created_at", "createdAt", "ts"),
    ("page_number", "pageNumber", "int"),
    ("end_timestamp", "endTimestamp", "float"),
    ("thumbnail_blob", "thumbnailBlob", "str"),
    ("text", "text", "str"),
)
_CAPTION_FIELDS = (
    ("caption_id", "id", "id"),
    ("text", "text", "str"),
    ("status", "status", "str"),
    ("created_at", "createdAt", "ts"),
)
_OBJECT_FIELDS = (
    ("object_id", "id", "id"),
    ("type", "type", "str"),
    ("label", "label", "str"),
    ("status", "status", "str"),
    ("blob", "blob", "str"),
    ("polygon", "polygon", "polygon"),
)

# Keys consumed into columns (never repeated in ``extra``).
_MEDIA_KEYS = frozenset(k for _, k, _ in _MEDIA_FIELDS) | {
    "datasetId",
    "dataset",
    "metadata",
    "frames",
}
_FRAME_KEYS = frozenset(k for _, k, _ in _FRAME_FIELDS) | {"mediaId", "captions", "objects"}
_CAPTION_KEYS = frozenset(k for _, k, _ in _CAPTION_FIELDS) | {"frameId"}
_OBJECT_KEYS = frozenset(k for _, k, _ in _OBJECT_FIELDS)
_DATASET_KEYS = frozenset({"id", "name", "organizationId"})
_MODERATION_KEYS = frozenset({"status", "categories", "moderatedAt"})
_METADATA_KEYS = frozenset({"tags", "moderation"})


@dataclass
class FlattenReport:
    """What :func:`flatten` left out: pass one as ``to_tables(..., report=...)``.

    ``skipped`` holds one :class:`SchemaError` per malformed media record
    skipped with ``errors="skip"``; ``folders`` counts folder rows (not media).

    Example:
        >>> report = FlattenReport()
        >>> report.skipped_count
        0
    """

    skipped: list[SchemaError] = field(default_factory=list)
    folders: int = 0

    @property
    def skipped_count(self) -> int:
        """Number of malformed media records skipped."""
        return len(self.skipped)


class _Retry(Exception):
    """Raised in skip mode: these record positions are malformed, drop them and rerun."""

    def __init__(self, bad: dict[int, SchemaError]):
        super().__init__(f"{len(bad)} malformed records")
        self.bad = bad


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def clean_text(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD (a valid pair is joined).

    A lone surrogate (the JSON escape ``\\ud800``) is valid JSON but not Unicode:
    no UTF-8 encoder, hence no Arrow or Parquet string, can hold it.

    Example:
        >>> clean_text("a\\ud800b")
        'a\\ufffdb'
    """
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _clean(value: object) -> object:
    """``value`` with :func:`clean_text` applied to every string inside it."""
    if type(value) is str:
        return clean_text(value)
    if type(value) is list:
        return [_clean(v) for v in value]
    if type(value) is dict:
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def _array(values: list, typ: pa.DataType) -> pa.Array:
    """``pa.array(values, type=typ)``; text holding a lone surrogate is cleaned, not fatal."""
    try:
        return pa.array(values, type=typ)
    except UnicodeEncodeError:
        return pa.array(_clean(values), type=typ)


def _expand(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Owner position and index-within-owner of every child, from per-owner counts."""
    c = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(c), dtype=np.int64), c)
    starts = np.cumsum(c) - c
    index = np.arange(len(owner), dtype=np.int64) - np.repeat(starts, c)
    return owner, index


# --- per-value conversions, used only when a vectorised cast fails -------------------------


def _py_str(v):
    if v is None or isinstance(v, str):
        return v
    raise TypeError(f"expected a string, got {type(v).__name__}")


def _py_float(v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError("expected a number, got bool")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return None
        try:
            return float(s)
        except ValueError:
            raise ValueError(f"expected a number, got {v!r}") from None
    raise TypeError(f"expected a number, got {type(v).__name__}")


def _py_int(v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError("expected an integer, got bool")
    if not isinstance(v, int):
        f = _py_float(v)
        if f is None:
            return None
        if not f.is_integer():
            raise ValueError(f"expected an integer, got {v!r}")
        v = int(f)
    if not -(2**63) <= v < 2**63:
        raise ValueError(f"integer {v} out of the int64 range")
    return v


def _py_str_list(v):
    if v is None:
        return None
    if not isinstance(v, list):
        raise TypeError(f"expected a list, got {type(v).__name__}")
    return [_py_str(x) for x in v]


def _py_polygon(v):
    if v is None:
        return None
    if not isinstance(v, list):
        raise TypeError(f"expected a list of {{x, y}} points, got {type(v).__name__}")
    out: list = []
    for p in v:
        if p is None:
            out.append(None)  # reported, with its position, by _check_polygons
        elif not isinstance(p, dict):
            raise TypeError(f"expected a {{x, y}} point, got {type(p).__name__}")
        else:
            out.append({"x": _py_float(p.get("x")), "y": _py_float(p.get("y"))})
    return out


_PY = {
    "str": _py_str,
    "id": _py_str,
    "int": _py_int,
    "float": _py_float,
    "polygon": _py_polygon,
    "strlist": _py_str_list,
}
_TYPES = {
    "str": _STR,
    "id": _STR,
    "int": _INT,
    "float": _FLOAT,
    "ts": _TS,
    "polygon": _POLYGON,
    "strlist": _STR_LIST,
}


class _Grain:
    """Locates a row of one grain for error messages (media position + field path)."""

    def __init__(self, ctx: _Context, locate: Callable[[int], tuple[int, str]]):
        self.ctx = ctx
        self.locate = locate

    def fail(self, rows: Iterable[int], key: str, message: str | Callable[[int], str]) -> None:
        """Report malformed rows: raise (errors="raise") or collect them (errors="skip")."""
        for row in rows:
            pos, prefix = self.locate(int(row))
            msg = message(int(row)) if callable(message) else message
            self.ctx.bad_record(pos, f"{prefix}{key}", msg)  # raises unless skipping
        self.ctx.flush()

    def fail_each(self, bad: Mapping[int, tuple[str, str]]) -> None:
        """Report malformed rows, each with its own field (under the row's path) and message."""
        for row in sorted(bad):
            key, msg = bad[row]
            pos, prefix = self.locate(int(row))
            self.ctx.bad_record(pos, f"{prefix}{key}", msg)
        self.ctx.flush()

    def column(self, values: list, kind: str, key: str) -> pa.Array:
        """Build one Arrow column of ``kind`` from raw values, vectorised where possible."""
        if kind == "ts":
            return self._timestamps(values, key)
        typ = _TYPES[kind]
        types = set(map(type, values))
        arr = None
        try:
            if kind in ("str", "id"):
                if types <= {str, _NONE}:
                    arr = _array(values, _STR)
            elif kind == "int":
                if types <= {int, _NONE}:  # floats would be truncated silently
                    arr = pa.array(values, type=_INT)
            elif kind == "float":
                if types <= {float, int, _NONE}:
                    arr = pa.array(values, type=_FLOAT)
                elif types <= {str, _NONE}:
                    arr = pa.array(values, type=_STR).cast(_FLOAT)
            elif kind == "strlist":
                if types <= {list, _NONE}:  # pyarrow would split a string into characters
                    arr = _array(values, typ)
            else:
                arr = _array(values, typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            arr = None
        if arr is None:
            arr = self._slow(values, kind, key)
        if kind == "id":
            arr = _normalize_ids(arr)
        return arr

    def _slow(self, values: list, kind: str, key: str) -> pa.Array:
        conv = _PY[kind]
        out = []
        bad: dict[int, str] = {}
        for i, v in enumerate(values):
            try:
                out.append(conv(v))
            except (TypeError, ValueError, OverflowError) as exc:
                bad[i] = str(exc)
                out.append(None)
        if bad:
            self.fail(bad, key, bad.__getitem__)
        return _array(out, _TYPES[kind])

    def _timestamps(self, values: list, key: str) -> pa.Array:
        try:
            arr = pa.array(values, type=_STR).cast(_TS)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            pass
        else:
            self.check_dates(arr, key, values.__getitem__)
            return arr
        bad = {
            i: f"expected an ISO-8601 date string, got {type(v).__name__}"
            for i, v in enumerate(values)
            if v is not None and not isinstance(v, str)
        }
        cleaned = [None if (i in bad or v == "") else v for i, v in enumerate(values)]
        parsed = pd.to_datetime(
            pd.Series(cleaned, dtype=object), format="ISO8601", utc=True, errors="coerce"
        )
        given = pd.notna(pd.Series(cleaned, dtype=object)).to_numpy()
        unparsed = np.flatnonzero(parsed.isna().to_numpy() & given)
        for i in unparsed:
            bad[int(i)] = f"unparsable date {values[int(i)]!r}"
        if bad:
            self.fail(sorted(bad), key, bad.__getitem__)
        arr = pa.array(parsed.dt.floor("us").dt.as_unit("us"), type=_TS)
        self.check_dates(arr, key, values.__getitem__)
        return arr

    def check_dates(self, arr: pa.Array, key: str, raw: Callable[[int], object]) -> None:
        """Dates outside years 1 to 9999 (which pandas cannot print) are malformed."""
        if arr.null_count == len(arr):
            return
        micros = arr.cast(_INT)
        outside = pc.or_(pc.less(micros, _TS_MIN), pc.greater(micros, _TS_MAX))
        rows = np.flatnonzero(pc.fill_null(outside, False).to_numpy(zero_copy_only=False))
        if len(rows):
            self.fail(rows, key, lambda r: f"date {raw(r)!r} is outside years 1 to 9999")

    def required(self, arr: pa.Array, key: str) -> None:
        """Every row must have a value (ids of children)."""
        if arr.null_count:
            rows = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
            self.fail(rows, key, "missing id")


def _normalize_ids(arr: pa.Array) -> pa.Array:
    """Hyphen-less lower case for canonical UUIDs, vectorised (see ids.normalize_id)."""
    if len(arr) == arr.null_count or not pc.any(pc.match_substring(arr, "-")).as_py():
        return arr
    mask = pc.match_substring_regex(arr, _UUID_RE)
    return pc.if_else(mask, pc.utf8_lower(pc.replace_substring(arr, "-", "")), arr)


class _Context:
    def __init__(self, media: list[dict], skip: bool):
        self.media = media
        self.skip = skip
        self.bad: dict[int, SchemaError] = {}

    def bad_record(self, pos: int, field: str, message: str) -> None:
        raw = self.media[pos].get("id") if isinstance(self.media[pos], dict) else None
        media_id = raw if isinstance(raw, str) else (None if raw is None else str(raw))
        media_id = None if media_id is None else clean_text(media_id)
        err = SchemaError(
            f"media {media_id!r}: field {field!r}: {message}", media_id=media_id, field=field
        )
        if not self.skip:
            raise err
        self.bad.setdefault(pos, err)

    def flush(self) -> None:
        if self.bad:
            raise _Retry(self.bad)


def _unwrap(records: Iterable, report: FlattenReport) -> tuple[list, list[SchemaError | None]]:
    """Media dicts from records, browse items or ``{"media": ...}`` responses; folders dropped."""
    if isinstance(records, Mapping):
        records = [records]
    out: list = []
    errs: list[SchemaError | None] = []
    for rec in records:
        if isinstance(rec, dict) and "id" not in rec and "media" in rec:
            inner = rec["media"]
            items = inner if isinstance(inner, list) else [inner]
        else:
            items = [rec]
        for item in items:
            if not isinstance(item, dict):
                errs.append(
                    SchemaError(
                        f"expected a media object, got {type(item).__name__}",
                        media_id=None,
                        field="<record>",
                    )
                )
                out.append(None)
                continue
            if item.get("type") == "folder":
                report.folders += 1
                continue
            out.append(item)
            errs.append(None)
    return out, errs


def flatten(
    records: Iterable, *, errors: str = "raise", report: FlattenReport | None = None
) -> tuple[dict[str, pa.Table], FlattenReport]:
    """Flatten media records into one Arrow table per grain, typed by :data:`schema.SCHEMAS`.

    Example:
        >>> tables, _ = flatten([{"id": "m1", "frames": [{"id": "f1", "timestamp": "1.5"}]}])
        >>> tables["frames"].column("timestamp").to_pylist()
        [1.5]
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    report = report if report is not None else FlattenReport()
    items, unwrap_errors = _unwrap(records, report)
    for err in unwrap_errors:
        if err is not None:
            if errors == "raise":
                raise err
            report.skipped.append(err)
    rows = [m for m in items if m is not None]
    while True:
        try:
            tables = _build(rows, skip=errors == "skip")
            break
        except _Retry as retry:
            report.skipped.extend(retry.bad[pos] for pos in sorted(retry.bad))
            rows = [m for pos, m in enumerate(rows) if pos not in retry.bad]
    for err in report.skipped:
        warnings.warn(f"skipped malformed record: {err}", SkippedRecordWarning, stacklevel=3)
    return tables, report


def _build(media_rows: list[dict], *, skip: bool) -> dict[str, pa.Table]:
    ctx = _Context(media_rows, skip)
    g_media = _Grain(ctx, lambda i: (i, ""))

    # --- media pass: nested dataset/metadata, tags, extra, gather frames ------------------
    n_media = len(media_rows)
    dataset_ids: list = [None] * n_media
    dataset_names: list = [None] * n_media
    org_ids: list = [None] * n_media
    folder_paths: list = [None] * n_media
    mod_status: list = [None] * n_media
    mod_categories: list = [None] * n_media
    mod_at: list = [None] * n_media
    media_extra: list = [None] * n_media
    frame_counts: list[int] = []
    frame_rows: list = []
    tag_owner: list[int] = []
    tag_keys: list[str] = []
    tag_values: list[str] = []

    for i, m in enumerate(media_rows):
        extra = None
        if not m.keys() <= _MEDIA_KEYS:
            extra = {k: v for k, v in m.items() if k not in _MEDIA_KEYS}
        if m.get("id") is None:
            ctx.bad_record(i, "id", "missing id")
        frames = m.get("frames")
        if frames is None:
            frame_counts.append(0)
        elif type(frames) is list:
            frame_rows.extend(frames)
            frame_counts.append(len(frames))
        else:
            frame_counts.append(0)
            ctx.bad_record(i, "frames", f"expected a list, got {type(frames).__name__}")
        path = m.get("path")
        if type(path) is str and "." in path:
            folder_paths[i] = path.rsplit(".", 1)[0]
        dataset_id = m.get("datasetId")
        ds = m.get("dataset")
        if ds is not None:
            if type(ds) is not dict:
                ctx.bad_record(i, "dataset", f"expected an object, got {type(ds).__name__}")
            else:
                ds_id = ds.get("id")
                if dataset_id is None:
                    dataset_id = ds_id
                dataset_names[i] = ds.get("name")
                org_ids[i] = ds.get("organizationId")
                ds_extra = None
                if not ds.keys() <= _DATASET_KEYS:
                    ds_extra = {k: v for k, v in ds.items() if k not in _DATASET_KEYS}
                if ds_id is not None and normalize_id(ds_id) != normalize_id(dataset_id):
                    ds_extra = {"id": ds_id, **(ds_extra or {})}  # disagrees with datasetId
                if ds_extra:
                    extra = extra or {}
                    extra["dataset"] = ds_extra
        dataset_ids[i] = dataset_id
        meta = m.get("metadata")
        if meta is not None:
            if type(meta) is not dict:
                ctx.bad_record(i, "metadata", f"expected an object, got {type(meta).__name__}")
                continue
            meta_extra = None
            if not meta.keys() <= _METADATA_KEYS:
                meta_extra = {k: v for k, v in meta.items() if k not in _METADATA_KEYS}
            mod = meta.get("moderation")
            if mod is not None:
                if type(mod) is not dict:
                    ctx.bad_record(
                        i, "metadata.moderation", f"expected an object, got {type(mod).__name__}"
                    )
                    continue
                mod_status[i] = mod.get("status")
                mod_categories[i] = mod.get("categories")
                mod_at[i] = mod.get("moderatedAt")
                if not mod.keys() <= _MODERATION_KEYS:
                    meta_extra = meta_extra or {}
                    meta_extra["moderation"] = {
                        k: v for k, v in mod.items() if k not in _MODERATION_KEYS
                    }
            tags = meta.get("tags")
            if tags is not None:
                if type(tags) is not dict:
                    ctx.bad_record(
                        i, "metadata.tags", f"expected an object, got {type(tags).__name__}"
                    )
                    continue
                empty_groups = None
                for key, values in tags.items():
                    if type(values) is str:
                        values = [values]
                    elif type(values) is not list:
                        ctx.bad_record(
                            i,
                            f"metadata.tags.{key}",
                            f"expected a list of strings, got {type(values).__name__}",
                        )
                        break
                    if not values:
                        empty_groups = empty_groups or {}
                        empty_groups[key] = values
                    for j, value in enumerate(values):
                        if type(value) is not str:
                            ctx.bad_record(
                                i,
                                f"metadata.tags.{key}[{j}]",
                                f"expected a string, got {type(value).__name__}",
                            )
                            break
                        tag_owner.append(i)
                        tag_keys.append(key)
                        tag_values.append(value)
                if empty_groups:  # a tag group with no values: keep the key, in extra
                    meta_extra = meta_extra or {}
                    meta_extra["tags"] = empty_groups
            if meta_extra:
                extra = extra or {}
                extra["metadata"] = meta_extra
        if extra:
            media_extra[i] = _dumps(extra)
    ctx.flush()

    frame_owner, frame_index = _expand(frame_counts)

    def locate_frame(r: int) -> tuple[int, str]:
        return int(frame_owner[r]), f"frames[{frame_index[r]}]."

    g_frames = _Grain(ctx, locate_frame)

    # --- frames pass: check shape, extra, gather captions and objects ----------------------
    n_frames = len(frame_rows)
    frame_extra: list = [None] * n_frames
    caption_counts: list[int] = []
    object_counts: list[int] = []
    caption_rows: list = []
    object_rows: list = []
    for r, f in enumerate(frame_rows):
        if type(f) is not dict:
            caption_counts.append(0)
            object_counts.append(0)
            pos, prefix = locate_frame(r)
            ctx.bad_record(pos, prefix[:-1], f"expected an object, got {type(f).__name__}")
            continue
        if not f.keys() <= _FRAME_KEYS:
            frame_extra[r] = _dumps({k: v for k, v in f.items() if k not in _FRAME_KEYS})
        caps = f.get("captions")
        if caps is None:
            caption_counts.append(0)
        elif type(caps) is list:
            caption_rows.extend(caps)
            caption_counts.append(len(caps))
        else:
            caption_counts.append(0)
            pos, prefix = locate_frame(r)
            ctx.bad_record(pos, prefix + "captions", f"expected a list, got {type(caps).__name__}")
        objs = f.get("objects")
        if objs is None:
            object_counts.append(0)
        elif type(objs) is list:
            object_rows.extend(objs)
            object_counts.append(len(objs))
        else:
            object_counts.append(0)
            pos, prefix = locate_frame(r)
            ctx.bad_record(pos, prefix + "objects", f"expected a list, got {type(objs).__name__}")
    ctx.flush()

    caption_frame, caption_index = _expand(caption_counts)
    object_frame, object_index = _expand(object_counts)

    def child_locator(owner: np.ndarray, index: np.ndarray, name: str):
        def locate(r: int) -> tuple[int, str]:
            fr = int(owner[r])
            return int(frame_owner[fr]), f"frames[{frame_index[fr]}].{name}[{index[r]}]."

        return locate

    g_captions = _Grain(ctx, child_locator(caption_frame, caption_index, "captions"))
    g_objects = _Grain(ctx, child_locator(object_frame, object_index, "objects"))
    caption_extra = _child_extra(caption_rows, _CAPTION_KEYS, g_captions)
    object_extra = _child_extra(object_rows, _OBJECT_KEYS, g_objects)
    _keep_rich_polygons(object_rows, object_extra)
    ctx.flush()

    # --- columns ---------------------------------------------------------------------------
    media_cols = _columns(media_rows, _MEDIA_FIELDS, g_media)
    media_id = media_cols["media_id"]
    dataset_id = g_media.column(dataset_ids, "id", "datasetId")
    media_cols.update(
        dataset_id=dataset_id,
        dataset_name=g_media.column(dataset_names, "str", "dataset.name"),
        organization_id=g_media.column(org_ids, "id", "dataset.organizationId"),
        folder_path=_array(folder_paths, _STR),
        moderation_status=g_media.column(mod_status, "str", "metadata.moderation.status"),
        moderation_categories=g_media.column(
            mod_categories, "strlist", "metadata.moderation.categories"
        ),
        moderated_at=g_media.column(mod_at, "ts", "metadata.moderation.moderatedAt"),
        frame_count=pa.array(frame_counts, type=_INT),
        extra=_array(media_extra, _STR),
    )

    frame_cols = _columns(frame_rows, (*_FRAME_FIELDS, ("_parent", "mediaId", "id")), g_frames)
    g_frames.required(frame_cols["frame_id"], "id")
    frame_owner_arr = pa.array(frame_owner)
    _keep_disagreeing_parent(
        frame_rows,
        "mediaId",
        frame_cols.pop("_parent"),
        media_id.take(frame_owner_arr),
        frame_extra,
    )
    frame_cols.update(
        media_id=media_id.take(frame_owner_arr),
        dataset_id=dataset_id.take(frame_owner_arr),
        frame_index=pa.array(frame_index, type=_INT),
        caption_count=pa.array(caption_counts, type=_INT),
        object_count=pa.array(object_counts, type=_INT),
        extra=_array(frame_extra, _STR),
    )

    caption_cols = _columns(
        caption_rows, (*_CAPTION_FIELDS, ("_parent", "frameId", "id")), g_captions
    )
    g_captions.required(caption_cols["caption_id"], "id")
    _keep_disagreeing_parent(
        caption_rows,
        "frameId",
        caption_cols.pop("_parent"),
        frame_cols["frame_id"].take(pa.array(caption_frame)),
        caption_extra,
    )
    caption_cols.update(
        _inherit(frame_cols, caption_frame, ("frame_id", "media_id", "dataset_id", "timestamp")),
        caption_index=pa.array(caption_index, type=_INT),
        extra=_array(caption_extra, _STR),
    )

    object_cols = _columns(object_rows, _OBJECT_FIELDS, g_objects)
    g_objects.required(object_cols["object_id"], "id")
    blob = object_cols["blob"]
    if len(blob) and pc.any(pc.equal(blob, "")).as_py():
        object_cols["blob"] = pc.if_else(pc.equal(blob, ""), pa.scalar(None, _STR), blob)
    inherited = _inherit(
        frame_cols, object_frame, ("frame_id", "media_id", "dataset_id", "timestamp")
    )
    sizes = _inherit(frame_cols, object_frame, ("width", "height"))
    object_cols.update(
        inherited,
        frame_width=sizes["width"],
        frame_height=sizes["height"],
        object_index=pa.array(object_index, type=_INT),
        extra=_array(object_extra, _STR),
    )
    object_cols.update(_bbox(object_cols["polygon"]))

    tag_owner_arr = pa.array(np.asarray(tag_owner, dtype=np.int64))
    tag_cols = {
        "media_id": media_id.take(tag_owner_arr),
        "dataset_id": dataset_id.take(tag_owner_arr),
        "key": _array(tag_keys, _STR),
        "value": _array(tag_values, _STR),
    }
    ctx.flush()

    return {
        "media": _table(media_cols, "media"),
        "frames": _table(frame_cols, "frames"),
        "captions": _table(caption_cols, "captions"),
        "objects": _table(object_cols, "objects"),
        "tags": _table(tag_cols, "tags"),
    }


def _child_extra(rows: list, known: frozenset, grain: _Grain) -> list:
    """Check each child is a dict and collect its unknown keys as JSON text."""
    extra: list = [None] * len(rows)
    bad = []
    for r, row in enumerate(rows):
        if type(row) is not dict:
            bad.append(r)
        elif not row.keys() <= known:
            extra[r] = _dumps({k: v for k, v in row.items() if k not in known})
    if bad:
        for r in bad:
            pos, prefix = grain.locate(r)
            grain.ctx.bad_record(
                pos, prefix[:-1], f"expected an object, got {type(rows[r]).__name__}"
            )
    return extra


def _keep_rich_polygons(rows: list, extra: list) -> None:
    """A polygon whose points carry more than ``x`` and ``y`` is also kept whole in ``extra``.

    The ``polygon`` column holds only the coordinates; this keeps any other point field
    (under the API's spelling) so nothing is dropped. Plain ``{x, y}`` points cost one
    length check each.
    """
    for r, row in enumerate(rows):
        polygon = row.get("polygon") if type(row) is dict else None
        if type(polygon) is not list:
            continue
        for point in polygon:
            if (
                type(point) is dict
                and (len(point) != 2 or "x" not in point or "y" not in point)
                and not point.keys() <= _POINT_KEYS
            ):
                kept = json.loads(extra[r]) if extra[r] is not None else {}
                extra[r] = _dumps({**kept, "polygon": polygon})
                break


_POINT_KEYS = frozenset(("x", "y"))


# Kinds whose raw JSON values convert exactly (no silent coercion) inside one struct array.
# (Not lists of strings: pyarrow would split a string given for one into characters.)
_STRUCT_RAW = {"str": _STR, "id": _STR, "ts": _STR, "polygon": _POLYGON}


def _keep_disagreeing_parent(
    rows: list, key: str, given: pa.Array, parent_ids: pa.Array, extra: list
) -> None:
    """A child's parent id (``mediaId``, ``frameId``) is consumed, unless it names another parent.

    Such a disagreeing value is kept in the child's ``extra`` so nothing is lost.
    """
    if given.null_count == len(given):
        return
    differs = pc.fill_null(pc.not_equal(given, parent_ids), False)
    for r in np.flatnonzero(differs.to_numpy(zero_copy_only=False)):
        r = int(r)
        kept = json.loads(extra[r]) if extra[r] is not None else {}
        extra[r] = _dumps({key: rows[r][key], **kept})


def _columns(rows: list, spec: tuple, grain: _Grain) -> dict[str, pa.Array]:
    """The columns of ``spec`` read from ``rows`` (dicts), one Arrow array each.

    Fast path: the text-like fields (strings, ids, dates, polygons) of all rows
    go through one C++ conversion into a struct array (no Python ``dict.get``
    per cell); numbers, and everything if that conversion fails, are read as
    one Python list per field and converted by :meth:`_Grain.column`.
    """
    out: dict[str, pa.Array] = {}
    structable = [f for f in spec if f[2] in _STRUCT_RAW]
    struct = None
    if rows and structable:
        struct_type = pa.struct([(key, _STRUCT_RAW[kind]) for _, key, kind in structable])
        try:
            struct = pa.array(rows, type=struct_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            struct = None
    if struct is not None:
        for i, (col, key, kind) in enumerate(structable):
            arr = struct.field(i)
            if kind == "id":
                arr = _normalize_ids(arr)
            elif kind == "ts":
                try:
                    text = arr
                    arr = arr.cast(_TS)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    arr = grain.column([r.get(key) for r in rows], kind, key)
                else:
                    grain.check_dates(arr, key, lambda r, text=text: text[r].as_py())
            out[col] = arr
    for col, key, kind in spec:
        if col not in out:
            out[col] = grain.column([r.get(key) for r in rows], kind, key)
        if kind == "polygon":
            _check_polygons(out[col], lambda r, key=key: rows[r].get(key), grain, key)
    return {col: out[col] for col, _, _ in spec}


def _check_polygons(
    polygon: pa.Array, raw: Callable[[int], object], grain: _Grain, key: str
) -> None:
    """What pyarrow converts silently is malformed: a null point (it would read as (0, 0)),
    a missing or null coordinate, a boolean coordinate (it would read as 0 or 1), NaN or
    infinity. Vectorised; only points at exactly 0 or 1 are looked up in Python (booleans).
    """
    offsets = polygon.offsets.to_numpy()
    if not len(polygon) or offsets[-1] == offsets[0]:
        return
    lo = int(offsets[0])
    points = polygon.values.slice(lo, int(offsets[-1]) - lo)
    xs = points.field("x").to_numpy(zero_copy_only=False)
    ys = points.field("y").to_numpy(zero_copy_only=False)
    null_point = ~points.is_valid().to_numpy(zero_copy_only=False)
    bad_x = ~null_point & ~np.isfinite(xs)  # a null coordinate reads as NaN
    bad_y = ~null_point & ~np.isfinite(ys)
    maybe_bool = ~null_point & ((xs == 0) | (xs == 1) | (ys == 0) | (ys == 1))
    found: dict[int, tuple[str, str]] = {}
    for i in np.flatnonzero(null_point | bad_x | bad_y | maybe_bool)[::-1]:
        row = int(np.searchsorted(offsets, lo + i, side="right")) - 1
        j = lo + int(i) - int(offsets[row])
        if null_point[i]:
            found[row] = (f"{key}[{j}]", "point is null")
            continue
        point = raw(row)[j]  # type: ignore[index]
        for axis, bad in (("y", bad_y[i]), ("x", bad_x[i])):
            given = point.get(axis)
            if type(given) is bool:
                found[row] = (f"{key}[{j}].{axis}", "expected a number, got bool")
            elif bad:
                what = "missing" if given is None else f"not a finite number ({given!r})"
                found[row] = (f"{key}[{j}].{axis}", f"coordinate is {what}")
    if found:
        grain.fail_each(found)


def _inherit(parent: dict[str, pa.Array], owner: np.ndarray, names: tuple) -> dict:
    idx = pa.array(owner)
    return {name: parent[name].take(idx) for name in names}


def _bbox(polygon: pa.Array) -> dict[str, pa.Array]:
    """COCO box (x, y, w, h) from each polygon's extent; null when there is no point."""
    n = len(polygon)
    offsets = polygon.offsets.to_numpy()
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    if polygon.null_count:
        nonempty &= polygon.is_valid().to_numpy(zero_copy_only=False)
    out = {name: np.full(n, np.nan) for name in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")}
    if nonempty.any():
        points = polygon.values
        xs = points.field("x").to_numpy(zero_copy_only=False).astype(float)
        ys = points.field("y").to_numpy(zero_copy_only=False).astype(float)
        starts = offsets[:-1][nonempty]
        x0 = np.minimum.reduceat(xs, starts)
        y0 = np.minimum.reduceat(ys, starts)
        x1 = np.maximum.reduceat(xs, starts)
        y1 = np.maximum.reduceat(ys, starts)
        out["bbox_x"][nonempty] = x0
        out["bbox_y"][nonempty] = y0
        out["bbox_w"][nonempty] = x1 - x0
        out["bbox_h"][nonempty] = y1 - y0
    return {name: pa.array(values, type=_FLOAT, from_pandas=True) for name, values in out.items()}


def _table(columns: dict[str, pa.Array], grain: str) -> pa.Table:
    schema = SCHEMAS[grain]
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)

"""Typed Arrow columns from raw JSON values, each bad value named: the casts of flattening.

:class:`GrainReader` builds one column of a declared kind (``id``, ``str``, ``int``,
``float``, ``ts``, ``strlist``, ``polygon``: see :class:`~coreviz_frames.schema.Column`)
from the raw values of one grain, vectorised where pyarrow converts exactly, with a
per-value Python path only for tolerated spellings (``"320"`` for a width) and to name
what is wrong. pyarrow's permissive conversions are never trusted silently: a boolean
is not a number, a string is not a list, a null polygon point is not (0, 0), a date
outside years 1 to 9999 is refused, and a lone surrogate is replaced by U+FFFD.

Every problem goes to one :class:`RecordErrors`: it raises a
:class:`~coreviz_frames.errors.SchemaError` naming the media id and the field path, or
(skip mode) collects the bad record positions and raises :class:`MalformedRecords`.

Example:
    >>> errors = RecordErrors([{"id": "m1"}], skip=False)
    >>> reader = GrainReader(errors, lambda row: (row, ""))
    >>> reader.column(["320", 240], "int", "width").to_pylist()
    [320, 240]
    >>> reader.column([True], "int", "width")
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.SchemaError: media 'm1': field 'width': expected an integer, got bool
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from coreviz_frames._util.arrowmemory import table_pool
from coreviz_frames.errors import SchemaError
from coreviz_frames.schema import KIND_TYPES, ApiField

__all__ = [
    "CHUNK_ROWS",
    "ChunkedRows",
    "GrainReader",
    "MalformedRecords",
    "RecordErrors",
    "normalize_id_array",
    "read_columns",
    "text_array",
]

_STR, _INT, _FLOAT, _TS = (KIND_TYPES[k] for k in ("str", "int", "float", "ts"))
_POLYGON, _STR_LIST = KIND_TYPES["polygon"], KIND_TYPES["strlist"]
_NONE = type(None)
_UUID_RE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# The dates a pandas frame can print (Python datetimes: years 1 to 9999), in microseconds.
_TS_MIN = -62135596800000000  # 0001-01-01T00:00:00Z
_TS_MAX = 253402300799999999  # 9999-12-31T23:59:59.999999Z
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


class MalformedRecords(Exception):
    """Raised in skip mode: these record positions are malformed, drop them and rerun."""

    def __init__(self, bad: dict[int, SchemaError]):
        super().__init__(f"{len(bad)} malformed records")
        self.bad = bad


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


def text_array(values: list, typ: pa.DataType) -> pa.Array:
    """``pa.array(values, type=typ)``; text holding a lone surrogate is cleaned, not fatal."""
    try:
        return pa.array(values, type=typ, memory_pool=table_pool())
    except UnicodeEncodeError:
        return pa.array(_clean(values), type=typ, memory_pool=table_pool())


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


def _exact_array(values: list, kind: str) -> pa.Array | None:
    """``values`` as one Arrow array of ``kind`` when pyarrow converts them exactly, else None.

    Only value types pyarrow cannot coerce silently go this way: no float for an
    integer (truncated), no bool for a number (1.0), no string for a list (split).
    """
    types = set(map(type, values))
    pool = table_pool()
    try:
        if kind in ("str", "id"):
            return text_array(values, _STR) if types <= {str, _NONE} else None
        if kind == "int":
            return pa.array(values, type=_INT, memory_pool=pool) if types <= {int, _NONE} else None
        if kind == "float":
            if types <= {float, int, _NONE}:
                return pa.array(values, type=_FLOAT, memory_pool=pool)
            if types <= {str, _NONE}:
                return pc.cast(pa.array(values, type=_STR), _FLOAT, memory_pool=pool)
            return None
        if kind == "strlist":
            return text_array(values, _STR_LIST) if types <= {list, _NONE} else None
        return text_array(values, KIND_TYPES[kind])
    except _CAST_ERRORS:
        return None


class RecordErrors:
    """Where malformed values go: a SchemaError at once, or (skip mode) collected by record.

    ``media`` are the media dicts being flattened; a problem is reported by media
    position and field path, and the error names the media by its id.

    Example:
        >>> errors = RecordErrors([{"id": "m1"}, {"id": "m2"}], skip=True)
        >>> errors.bad_record(1, "width", "expected an integer, got bool")
        >>> sorted(errors.bad), errors.bad[1].field
        ([1], 'width')
    """

    def __init__(self, media: list[dict], skip: bool):
        self.media = media
        self.skip = skip
        self.bad: dict[int, SchemaError] = {}

    def bad_record(self, pos: int, field: str, message: str) -> None:
        """Media ``pos`` is malformed at ``field``: raise, or remember it (skip mode)."""
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
        """In skip mode, stop the work with :class:`MalformedRecords` if any was found."""
        if self.bad:
            raise MalformedRecords(self.bad)


class GrainReader:
    """Builds the typed columns of one grain; ``locate(row)`` gives the row's media
    position and field path prefix (``frames[2].objects[0].``) for error messages.

    Example:
        >>> reader = GrainReader(RecordErrors([{"id": "m1"}], skip=False), lambda r: (0, ""))
        >>> reader.column(["2026-01-01T00:00:00Z"], "ts", "createdAt").type
        TimestampType(timestamp[us, tz=UTC])
    """

    def __init__(self, ctx: RecordErrors, locate: Callable[[int], tuple[int, str]]):
        self.ctx = ctx
        self.locate = locate

    def fail(self, rows: Iterable[int], key: str, message: str | Callable[[int], str]) -> None:
        """Report malformed rows: raise (on_error="raise") or collect them ("skip")."""
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
        arr = _exact_array(values, kind)
        if arr is None:
            arr = self._slow(values, kind, key)
        if kind == "id":
            arr = normalize_id_array(arr)
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
        return text_array(out, KIND_TYPES[kind])

    def _timestamps(self, values: list, key: str) -> pa.Array:
        try:
            arr = pc.cast(pa.array(values, type=_STR), _TS, memory_pool=table_pool())
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


def normalize_id_array(arr: pa.Array) -> pa.Array:
    """Hyphen-less lower case for canonical UUIDs, vectorised (see ids.normalize_id)."""
    if len(arr) == arr.null_count or not pc.any(pc.match_substring(arr, "-")).as_py():
        return arr
    mask = pc.match_substring_regex(arr, _UUID_RE)
    hyphenless = pc.utf8_lower(pc.replace_substring(arr, "-", ""))
    return pc.if_else(mask, hyphenless, arr, memory_pool=table_pool())


# Kinds whose raw JSON values convert exactly (no silent coercion) inside one struct array.
# (Not lists of strings: pyarrow would split a string given for one into characters.)
_STRUCT_RAW = {"str": _STR, "id": _STR, "ts": _STR, "polygon": _POLYGON}


def read_columns(
    rows: list,
    fields: Sequence[ApiField],
    reader: GrainReader,
    chunked: ChunkedRows | None = None,
) -> dict[str, pa.Array]:
    """The columns of ``fields`` read from ``rows`` (dicts), one Arrow array each.

    A field's key in a row is the last part of its source (``"status"`` of
    ``"metadata.moderation.status"``: the rows are then the moderation objects);
    errors name the whole source. Fast path: the text-like fields (strings, ids,
    dates, polygons) of all rows go through one C++ conversion into a struct array
    (no Python ``dict.get`` per cell); numbers, and everything if that conversion
    fails, are read as one Python list per field by :meth:`GrainReader.column`.
    ``chunked`` (the same ``rows``, converted while a pass visited them) saves both reads.

    Example:
        >>> reader = GrainReader(RecordErrors([{"id": "m1"}], skip=False), lambda r: (0, ""))
        >>> cols = read_columns([{"status": "ok"}], [ApiField("s", "a.status", "str")], reader)
        >>> cols["s"].to_pylist()
        ['ok']
    """
    out: dict[str, pa.Array] = {}
    keyed = _keyed(fields)
    structable = [(f, key) for f, key in keyed if f.kind in _STRUCT_RAW]
    struct = chunked.struct(len(rows)) if chunked is not None else None
    raw = chunked.raw if chunked is not None and chunked.rows == len(rows) else None
    if struct is None and rows and structable:
        try:
            struct = pa.array(rows, type=_struct_type(structable), memory_pool=table_pool())
        except _CAST_ERRORS:
            struct = None
    if struct is not None:
        for i, (f, key) in enumerate(structable):
            out[f.column] = _from_struct(struct.field(i), f, key, rows, reader)
    for f, key in keyed:
        if f.column not in out:
            values = raw[key] if raw is not None and key in raw else [r.get(key) for r in rows]
            out[f.column] = reader.column(values, f.kind, f.source)
        if f.kind == "polygon":
            check_polygons(out[f.column], partial(_raw_value, rows, key), reader, f.source)
    return {f.column: out[f.column] for f in fields}


def _keyed(fields: Sequence[ApiField]) -> list[tuple[ApiField, str]]:
    """Each field with its key in a row (the last part of its source)."""
    return [(f, f.source.rpartition(".")[2]) for f in fields]


def _struct_type(structable: list[tuple[ApiField, str]]) -> pa.StructType:
    return pa.struct([(key, _STRUCT_RAW[f.kind]) for f, key in structable])


#: Rows per chunk of :class:`ChunkedRows`: few enough to still be in the CPU cache when
#: converted right after the Python pass that visited them.
CHUNK_ROWS = 1024


class ChunkedRows:
    """What :func:`read_columns` reads from ``rows``, converted one chunk at a time.

    Flattening visits every row in Python (unknown keys, child lists) before reading
    its columns. Converting each chunk right after that visit finds its dicts still in
    the CPU cache, where one conversion of all rows afterwards reads them from memory
    again (about a quarter less time on 23,000 objects). :meth:`add` converts the next
    chunk: the struct of the fast path and the raw values of the other fields. A
    failure is silent: :func:`read_columns` then reads ``rows`` itself, as without it.

    Example:
        >>> chunked = ChunkedRows([ApiField("s", "status", "str"), ApiField("w", "width", "int")])
        >>> chunked.add([{"status": "ok", "width": 3}]); chunked.add([{"width": "4"}])
        >>> chunked.struct(2).field(0).to_pylist(), chunked.raw
        (['ok', None], {'width': [3, '4']})
    """

    def __init__(self, fields: Sequence[ApiField]):
        keyed = _keyed(fields)
        structable = [(f, key) for f, key in keyed if f.kind in _STRUCT_RAW]
        self._type = _struct_type(structable) if structable else None
        self._parts: list[pa.Array] | None = [] if structable else None
        self.raw: dict[str, list] | None = {
            key: [] for f, key in keyed if f.kind not in _STRUCT_RAW
        }
        self.rows = 0

    def add(self, chunk: list) -> None:
        """Convert the next ``chunk`` of rows (call while they are fresh in the cache)."""
        self.rows += len(chunk)
        if self._parts is not None:
            try:
                self._parts.append(pa.array(chunk, type=self._type, memory_pool=table_pool()))
            except _CAST_ERRORS:
                self._parts = None
        if self.raw:
            try:
                for key, values in self.raw.items():
                    values.extend([row.get(key) for row in chunk])
            except AttributeError:  # a row is not a dict: the pass reports it
                self.raw = None

    def struct(self, rows: int) -> pa.Array | None:
        """The struct array of all ``rows`` chunks added, or None (failed, none, or a miscount)."""
        if not self._parts or self.rows != rows:
            return None
        if len(self._parts) > 1:
            self._parts = [pa.concat_arrays(self._parts, memory_pool=table_pool())]
        return self._parts[0]


def _raw_value(rows: list, key: str, row: int) -> object:
    return rows[row].get(key)


def _from_struct(
    arr: pa.Array, field: ApiField, key: str, rows: list, reader: GrainReader
) -> pa.Array:
    """One field of the struct fast path, finished: ids normalised, dates parsed."""
    if field.kind == "id":
        return normalize_id_array(arr)
    if field.kind != "ts":
        return arr
    try:
        dates = pc.cast(arr, _TS, memory_pool=table_pool())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return reader.column([r.get(key) for r in rows], field.kind, field.source)
    reader.check_dates(dates, field.source, lambda r: arr[r].as_py())
    return dates


def check_polygons(
    polygon: pa.Array, raw: Callable[[int], object], reader: GrainReader, key: str
) -> None:
    """What pyarrow converts silently is malformed: a null point (it would read as (0, 0)),
    a missing or null coordinate, a boolean coordinate (it would read as 0 or 1), NaN or
    infinity. Vectorised; only points at exactly 0 or 1 are looked up in Python (booleans).

    Example:
        >>> reader = GrainReader(RecordErrors([{"id": "m1"}], skip=False), lambda r: (0, ""))
        >>> check_polygons(pa.array([[None]], _POLYGON), lambda r: [None], reader, "polygon")
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.SchemaError: media 'm1': field 'polygon[0]': point is null
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
    suspects = np.flatnonzero(null_point | bad_x | bad_y | maybe_bool)
    if not len(suspects):
        return
    rows = np.searchsorted(offsets, suspects + lo, side="right") - 1
    found: dict[int, tuple[str, str]] = {}
    for row, j, null, bx, by in zip(  # last first: a row's first bad point wins
        rows[::-1].tolist(),
        (suspects[::-1] + lo - offsets[rows[::-1]]).tolist(),
        null_point[suspects[::-1]].tolist(),
        bad_x[suspects[::-1]].tolist(),
        bad_y[suspects[::-1]].tolist(),
        strict=True,
    ):
        if null:
            found[row] = (f"{key}[{j}]", "point is null")
            continue
        point = raw(row)[j]  # type: ignore[index]
        for axis, bad in (("y", by), ("x", bx)):
            given = point.get(axis)
            if type(given) is bool:
                found[row] = (f"{key}[{j}].{axis}", "expected a number, got bool")
            elif bad:
                what = "missing" if given is None else f"not a finite number ({given!r})"
                found[row] = (f"{key}[{j}].{axis}", f"coordinate is {what}")
    if found:
        reader.fail_each(found)

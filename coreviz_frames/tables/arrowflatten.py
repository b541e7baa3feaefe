"""The five grain tables from media records already read by Arrow, with Arrow compute only.

:func:`flatten_arrow` takes a table whose rows are media records of the declared nested
type (:data:`~coreviz_frames.tables.arrowrecords.RECORD_TYPE`, as pyarrow's JSON reader
builds it from a browse page), or the tables of several pages in order, and builds the
``media``, ``frames``, ``captions``, ``objects`` and ``tags`` tables that
:func:`~coreviz_frames.tables.flatten.flatten` builds from the same records as Python
dicts: the same schema, values, row order, list positions, ancestor ids, ``extra`` and
boxes. Child rows come from ``list_flatten`` and their owners from the list lengths
(numpy), every column from one vectorised cast; Python runs only for the few rows whose
``extra`` is not null (a parent id that disagrees, an empty tag group). Every buffer it
allocates comes from the package's pool (:func:`~coreviz_frames._util.arrowmemory.table_pool`).

It returns None whenever it cannot prove that equality, and the caller then runs the exact
path for that batch: a media without an id, a null frame, caption, object or polygon
point, a child without an id, a date Arrow cannot parse or outside years 1 to 9999, a
number given as text Arrow cannot parse, a missing or null coordinate, NaN or infinity in
a polygon, a null tag value, and any column of an unexpected type. What the table cannot
show (unknown fields, ``"320"`` for an integer, invalid UTF-8, tag keys in different orders)
is for the reader to refuse (:mod:`~coreviz_frames.tables.arrowrecords`).

Example:
    >>> import json
    >>> from coreviz_frames.tables.arrowrecords import read_record
    >>> from coreviz_frames.tables.flatten import flatten
    >>> record = {"id": "m1", "metadata": {"tags": {"color": ["red"]}},
    ...           "frames": [{"id": "f1", "timestamp": "0.5", "objects": [
    ...               {"id": "o1", "polygon": [{"x": 1.0, "y": 2.0}, {"x": 4.0, "y": 6.0}]}]}]}
    >>> tables = flatten_arrow(read_record(json.dumps({"media": record}).encode()))
    >>> tables["objects"].column("bbox_w").to_pylist(), tables["tags"].column("key").to_pylist()
    ([3.0], ['color'])
    >>> all(tables[g].equals(flatten([record])[0][g], check_metadata=True) for g in tables)
    True
    >>> flatten_arrow(read_record(b'{"media": {"frames": []}}')) is None  # no id
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coreviz_frames._util.arrowmemory import table_pool
from coreviz_frames.schema import API_FIELDS, KIND_TYPES, SCHEMAS
from coreviz_frames.tables.arrowrecords import RECORD_TYPE
from coreviz_frames.tables.casting import normalize_id_array, text_array
from coreviz_frames.tables.flatten import bbox_columns

__all__ = ["flatten_arrow"]

_STR, _INT, _FLOAT, _TS = (KIND_TYPES[k] for k in ("str", "int", "float", "ts"))
_POLYGON, _STR_LIST = KIND_TYPES["polygon"], KIND_TYPES["strlist"]
# The dates a pandas frame can print (Python datetimes: years 1 to 9999).
_TS_MIN = pa.scalar(datetime.min.replace(tzinfo=timezone.utc), _TS)
_TS_MAX = pa.scalar(datetime.max.replace(tzinfo=timezone.utc), _TS)
_HYPHEN = ord("-")
_UUID_BYTES = 36  # a canonical hyphenated UUID
_INHERITED = ("frame_id", "media_id", "dataset_id", "timestamp")
#: The errors of a compute step on data it cannot take (and of a table not shaped as
#: declared): the batch then goes the exact way. The equivalence tests require the fast
#: way for every page the reader reads and flatten accepts, so none of these hides there.
_ARROW_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    TypeError,
    KeyError,
    IndexError,
)


class _Unprovable(Exception):
    """This batch may flatten differently on the exact path: give it back (None)."""


def flatten_arrow(media: pa.Table | Sequence[pa.Table]) -> dict[str, pa.Table] | None:
    """The five grain tables of ``media`` (one media record a row), equal to what
    :func:`~coreviz_frames.tables.flatten.flatten` builds from the same records, or None
    when that equality cannot be proved (see the module doc). Folder rows are left out.

    ``media`` is one table, or several (the pages of a batch, in order): each page's
    ``metadata.tags`` struct keeps its own key order, which one table concatenated with
    type promotion could not (a batch of pages also costs one call's overhead, not one
    per page: about 5 ms a call on top of the rows' work).

    Example:
        >>> from coreviz_frames.tables.arrowrecords import read_page
        >>> page = read_page(b'{"media": [{"id": "f1", "type": "folder"},'
        ...                  b' {"id": "m2", "path": "c.f.m2", "frames": []}]}')
        >>> tables = flatten_arrow(page.media)
        >>> tables["media"].column("folder_path").to_pylist()
        ['c.f']
        >>> flatten_arrow([page.media, page.media])["media"].num_rows
        2
    """
    tables = [media] if isinstance(media, pa.Table) else list(media)
    try:
        return _flatten(tables)
    except (_Unprovable, *_ARROW_ERRORS):
        return None


def _flatten(tables: list[pa.Table]) -> dict[str, pa.Table]:
    """:func:`flatten_arrow`, raising :class:`_Unprovable` (or an Arrow error) to give up."""
    parts = [_media_part(table) for table in tables]
    records = _concat([records for records, _ in parts])
    frames_list = _path(records, "frames")
    media_cols = _media_columns(records, frames_list)
    frames = _children(frames_list)
    frame_cols = _frame_columns(frames, frames_list, media_cols)
    captions_list = _path(frames, "captions")
    objects_list = _path(frames, "objects")
    caption_cols = _caption_columns(_children(captions_list), captions_list, frame_cols)
    object_cols = _object_columns(_children(objects_list), objects_list, frame_cols)
    tag_cols, empty_groups = _tag_columns([tags for _, tags in parts], media_cols)
    media_cols["extra"] = _media_extra(records, empty_groups)
    return {
        "media": _table(media_cols, "media"),
        "frames": _table(frame_cols, "frames"),
        "captions": _table(caption_cols, "captions"),
        "objects": _table(object_cols, "objects"),
        "tags": _table(tag_cols, "tags"),
    }


# --- reading the input ----------------------------------------------------------------------


def _media_part(table: pa.Table) -> tuple[pa.StructArray, pa.Array]:
    """One input table as records of the declared fields but ``metadata.tags``, and its
    ``metadata.tags`` apart (its inferred fields differ from page to page); folder rows
    left out (``flatten`` never sees them)."""
    if "type" in table.column_names and table.num_rows:
        folder = pc.fill_null(pc.equal(table.column("type"), "folder"), False)
        if pc.any(folder).as_py():
            table = pc.filter(table, pc.invert(folder), memory_pool=table_pool())
    names = RECORD_TYPE.names
    if not set(names) <= set(table.column_names):
        raise _Unprovable("a declared field is missing from the table")
    arrays = [_one_chunk(table.column(name)) for name in names]
    at = names.index("metadata")
    metadata = arrays[at]
    tags = _path(metadata, "tags")
    kept = [f.name for f in metadata.type if f.name != "tags"]
    mask = metadata.is_null() if metadata.null_count else None
    arrays[at] = pa.StructArray.from_arrays(
        [metadata.field(name) for name in kept], names=kept, mask=mask
    )
    return pa.StructArray.from_arrays(arrays, names=names), tags


def _one_chunk(chunked: pa.ChunkedArray) -> pa.Array:
    if chunked.num_chunks == 1:
        return chunked.chunk(0)
    return chunked.combine_chunks(memory_pool=table_pool())


def _concat(arrays: list[pa.Array]) -> pa.Array:
    if not arrays:
        raise _Unprovable("no table")
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays, memory_pool=table_pool())


def _take(arr: pa.Array, rows: pa.Array | np.ndarray) -> pa.Array:
    """The values of ``arr`` at ``rows`` (int64), allocated from the package's pool."""
    return pc.take(arr, rows, memory_pool=table_pool())


def _path(struct: pa.StructArray, source: str) -> pa.Array:
    """The values at the dotted ``source`` of each row (null where a parent is null); a
    field the type lacks gives up (the declared type has every field flatten reads)."""
    arr: pa.Array = struct
    for name in source.split("."):
        if not pa.types.is_struct(arr.type) or arr.type.get_field_index(name) < 0:
            raise _Unprovable(f"no field {source!r} in the records' type")
        # a struct without nulls hands its child as is (struct_field would mask it)
        arr = arr.field(name) if not arr.null_count else pc.struct_field(arr, [name])
    return arr


def _children(lists: pa.Array) -> pa.StructArray:
    """The child objects of every list, in order; a null child is malformed (give up)."""
    if pa.types.is_null(lists.type):
        return pa.array([], pa.struct([]))
    if not pa.types.is_list(lists.type) or not pa.types.is_struct(lists.type.value_type):
        raise _Unprovable(f"expected a list of objects, got {lists.type}")
    children = pc.list_flatten(lists)
    if children.null_count:
        raise _Unprovable("a null list item")
    return children


def _counts(lists: pa.Array) -> pa.Array:
    """The length of each list (int64), 0 for a null one."""
    return pa.array(_count_array(lists))


def _count_array(lists: pa.Array) -> np.ndarray:
    """:func:`_counts` as numpy (from the offsets when no list is null)."""
    if pa.types.is_null(lists.type):
        return np.zeros(len(lists), np.int64)
    if not lists.null_count:
        return np.diff(lists.offsets.to_numpy()).astype(np.int64, copy=False)
    return pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64, copy=False)


def _layout(lists: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each child's owner row and position in its owner's list (int64), as flatten's."""
    c = _count_array(lists)
    owner = np.repeat(np.arange(len(c), dtype=np.int64), c)
    starts = np.cumsum(c) - c
    index = np.arange(len(owner), dtype=np.int64) - np.repeat(starts, c)
    return pa.array(owner), pa.array(index)


# --- typed columns ----------------------------------------------------------------------------


def _typed(arr: pa.Array, kind: str) -> pa.Array:
    """``arr`` (as the reader typed it) as the column of ``kind`` flatten builds."""
    if pa.types.is_null(arr.type):  # never given in this batch
        return pa.nulls(len(arr), KIND_TYPES[kind], memory_pool=table_pool())
    convert = _CONVERT.get(kind)
    if convert is None:
        raise _Unprovable(f"no reading rule for kind {kind!r}")
    return convert(arr)


def _as_text(arr: pa.Array) -> pa.Array:
    _expect(arr, _STR)
    return arr


def _as_ids(arr: pa.Array) -> pa.Array:
    return _ids(_as_text(arr))


def _as_dates(arr: pa.Array) -> pa.Array:
    """ISO text as UTC microseconds: the cast flatten runs (an unparsable date raises
    ArrowInvalid: give up); a date outside years 1 to 9999 (flatten refuses it) gives up."""
    dates = pc.cast(_as_text(arr), _TS, memory_pool=table_pool())
    if dates.null_count != len(dates):
        outside = pc.or_(pc.less(dates, _TS_MIN), pc.greater(dates, _TS_MAX))
        if pc.any(outside).as_py():
            raise _Unprovable("a date outside years 1 to 9999")
    return dates


def _as_int(arr: pa.Array) -> pa.Array:
    _expect(arr, _INT)
    return arr


def _as_float(arr: pa.Array) -> pa.Array:
    """Numbers; given as text (``"0.5"``), the cast flatten runs on all-text values."""
    if arr.type == _STR:
        return pc.cast(arr, _FLOAT, memory_pool=table_pool())
    _expect(arr, _FLOAT)
    return arr


def _as_str_list(arr: pa.Array) -> pa.Array:
    if not (pa.types.is_list(arr.type) and arr.type.value_type == _STR):
        raise _Unprovable(f"expected a list of strings, got {arr.type}")
    return pc.cast(arr, _STR_LIST, memory_pool=table_pool())


def _ids(arr: pa.Array) -> pa.Array:
    """Ids normalised as flatten does. Only a 36-byte id can be a hyphenated UUID: without
    one (the lengths are the offsets' differences), or without a ``-`` byte in the text
    buffer, nothing is rewritten and no substring search runs per id."""
    if arr.null_count == len(arr):  # (also no rows: an empty array may have no buffers)
        return arr
    _, offsets, data = arr.buffers()
    ends = np.frombuffer(offsets, np.int32)[arr.offset : arr.offset + len(arr) + 1]
    if not (np.diff(ends) == _UUID_BYTES).any():  # (a null's length may count: no harm)
        return arr
    if data is None or not (np.frombuffer(data, np.uint8) == _HYPHEN).any():
        return arr
    return normalize_id_array(arr)


def _expect(arr: pa.Array, typ: pa.DataType) -> None:
    if arr.type != typ:
        raise _Unprovable(f"expected {typ}, got {arr.type}")


def _polygon(arr: pa.Array) -> pa.Array:
    """Polygons of finite ``{x, y}`` points; a null point or coordinate, NaN or infinity
    (each an error of the exact path) gives up."""
    if not pa.types.is_list(arr.type):
        raise _Unprovable(f"expected a list of points, got {arr.type}")
    polygon = pc.cast(arr, _POLYGON, memory_pool=table_pool())
    points = pc.list_flatten(polygon)
    if points.null_count:
        raise _Unprovable("a null polygon point")
    for axis in ("x", "y"):
        values = points.field(axis)
        if values.null_count or pc.all(pc.is_finite(values)).as_py() is False:
            raise _Unprovable(f"a missing or non-finite {axis}")
    return polygon


_CONVERT: dict[str, Callable[[pa.Array], pa.Array]] = {
    "id": _as_ids,
    "str": _as_text,
    "ts": _as_dates,
    "int": _as_int,
    "float": _as_float,
    "strlist": _as_str_list,
    "polygon": _polygon,
}


def _read(struct: pa.StructArray, grain: str) -> dict[str, pa.Array]:
    """The columns of ``grain`` read from API fields, by :data:`schema.API_FIELDS`."""
    return {f.column: _typed(_path(struct, f.source), f.kind) for f in API_FIELDS[grain]}


def _required(arr: pa.Array, what: str) -> None:
    if arr.null_count:
        raise _Unprovable(f"{what} without an id")


# --- the grains -------------------------------------------------------------------------------


def _media_columns(records: pa.StructArray, frames_list: pa.Array) -> dict[str, pa.Array]:
    """The media columns but ``extra``: API fields, ``dataset.id`` fallback, derived."""
    cols = _read(records, "media")
    _required(cols["media_id"], "a media")
    given = cols["dataset_id"]
    if given.null_count:  # datasetId missing: the nested dataset's id
        nested = _typed(_path(records, "dataset.id"), "id")
        cols["dataset_id"] = pc.coalesce(given, nested, memory_pool=table_pool())
    cols["folder_path"] = _folder_paths(cols["path"])
    cols["frame_count"] = _counts(frames_list)
    return cols


def _folder_paths(paths: pa.Array) -> pa.Array:
    """The ltree path before the last ``.`` (null without one), as ``str.rsplit``."""
    if paths.null_count == len(paths):
        return pa.nulls(len(paths), _STR, memory_pool=table_pool())
    parts = pc.split_pattern(paths, ".", max_splits=1, reverse=True)
    has_dot = pc.equal(pc.list_value_length(parts), 2)
    before = pc.list_element(parts, 0)
    return pc.if_else(has_dot, before, pa.scalar(None, _STR), memory_pool=table_pool())


def _frame_columns(
    frames: pa.StructArray, frames_list: pa.Array, media_cols: dict[str, pa.Array]
) -> dict[str, pa.Array]:
    """The frame columns: API fields, the media's ids, position, child counts, extra."""
    cols = _read(frames, "frames")
    _required(cols["frame_id"], "a frame")
    owner, index = _layout(frames_list)
    media_id = _take(media_cols["media_id"], owner)
    cols.update(
        media_id=media_id,
        dataset_id=_take(media_cols["dataset_id"], owner),
        frame_index=index,
        caption_count=_counts(_path(frames, "captions")),
        object_count=_counts(_path(frames, "objects")),
        extra=_parent_extra(_path(frames, "mediaId"), media_id, "mediaId"),
    )
    return cols


def _caption_columns(
    captions: pa.StructArray, captions_list: pa.Array, frame_cols: dict[str, pa.Array]
) -> dict[str, pa.Array]:
    """The caption columns: API fields, the frame's ids and timestamp, position, extra."""
    cols = _read(captions, "captions")
    _required(cols["caption_id"], "a caption")
    owner, index = _layout(captions_list)
    inherited = {name: _take(frame_cols[name], owner) for name in _INHERITED}
    cols.update(
        inherited,
        caption_index=index,
        extra=_parent_extra(_path(captions, "frameId"), inherited["frame_id"], "frameId"),
    )
    return cols


def _object_columns(
    objects: pa.StructArray, objects_list: pa.Array, frame_cols: dict[str, pa.Array]
) -> dict[str, pa.Array]:
    """The object columns: API fields, the frame's ids, size and timestamp, box, extra."""
    cols = _read(objects, "objects")
    _required(cols["object_id"], "an object")
    blob = cols["blob"]
    if len(blob) and pc.any(pc.equal(blob, "")).as_py():
        empty = pc.equal(blob, "")
        cols["blob"] = pc.if_else(empty, pa.scalar(None, _STR), blob, memory_pool=table_pool())
    owner, index = _layout(objects_list)
    cols.update(
        {name: _take(frame_cols[name], owner) for name in _INHERITED},
        frame_width=_take(frame_cols["width"], owner),
        frame_height=_take(frame_cols["height"], owner),
        object_index=index,
        extra=pa.nulls(len(objects), _STR, memory_pool=table_pool()),
    )
    cols.update(bbox_columns(cols["polygon"]))
    return cols


def _parent_extra(raw: pa.Array, parent_ids: pa.Array, key: str) -> pa.Array:
    """``extra`` of child rows: the parent id (``mediaId``) a row gives, where it names
    another parent than its actual one (flatten keeps it so nothing is lost)."""
    if raw.null_count == len(raw):
        return pa.nulls(len(raw), _STR, memory_pool=table_pool())
    given = _typed(raw, "id")
    differs = pc.fill_null(pc.not_equal(given, parent_ids), False)
    rows = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
    if not len(rows):
        return pa.nulls(len(raw), _STR, memory_pool=table_pool())
    extra: list[str | None] = [None] * len(raw)
    for r in rows.tolist():
        extra[r] = _dumps({key: raw[r].as_py()})
    return text_array(extra, _STR)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _table(columns: dict[str, pa.Array], grain: str) -> pa.Table:
    schema = SCHEMAS[grain]
    arrays = [columns[name] for name in schema.names]
    for arr, fld in zip(arrays, schema, strict=True):
        if arr.type != fld.type:
            raise _Unprovable(f"column {fld.name!r} is {arr.type}, not {fld.type}")
    return pa.Table.from_arrays(arrays, schema=schema)


# --- tags and the media's extra ---------------------------------------------------------------


class _TagGroup(NamedTuple):
    """One ``metadata.tags`` key: its values of every media (flat, in media order), how
    many each media has, and which media give it as ``[]`` (kept in their ``extra``)."""

    key: str
    values: pa.Array
    counts: np.ndarray
    empty: np.ndarray


def _tag_groups(tags: pa.Array) -> list[_TagGroup]:
    """The tag groups of one page's media, in key order; a group given as one string counts
    as a list of it; a null value in a list gives up (flatten refuses it)."""
    if pa.types.is_null(tags.type):
        return []
    if not pa.types.is_struct(tags.type):
        raise _Unprovable(f"expected tag groups as a struct, got {tags.type}")
    groups = []
    for j in range(tags.type.num_fields):
        key = tags.type.field(j).name
        given = pc.struct_field(tags, [j])
        if pa.types.is_null(given.type):
            continue
        if given.type == _STR:
            counts = given.is_valid().to_numpy(zero_copy_only=False).astype(np.int64)
            values = pc.drop_null(given, memory_pool=table_pool())
        elif pa.types.is_list(given.type) and given.type.value_type == _STR:
            counts = _count_array(given)
            values = pc.list_flatten(given)
        else:
            raise _Unprovable(f"tag group {key!r} is {given.type}")
        if values.null_count:
            raise _Unprovable(f"a null value in tag group {key!r}")
        empty = (counts == 0) & given.is_valid().to_numpy(zero_copy_only=False)
        groups.append(_TagGroup(key, values, counts, empty))
    return groups


def _tag_columns(
    pages: list[pa.Array], media_cols: dict[str, pa.Array]
) -> tuple[dict[str, pa.Array], dict[int, list[str]]]:
    """One row per tag value (media by media, groups in key order), with its media's ids;
    and media row -> its groups given as ``[]``, in key order. ``pages`` are the
    ``metadata.tags`` of the input tables, whose media follow each other."""
    owners, keys, values = [np.zeros(0, np.int64)], [pa.array([], _STR)], [pa.array([], _STR)]
    empty: dict[int, list[str]] = {}
    first = 0
    for tags in _same_type_runs(pages):
        groups = _tag_groups(tags)
        for group in groups:
            for row in np.flatnonzero(group.empty).tolist():
                empty.setdefault(first + row, []).append(group.key)
        if groups:
            owner, key, value = _tag_rows(groups, len(tags))
            owners.append(owner + first)
            keys.append(key)
            values.append(value)
        first += len(tags)
    owner_ids = pa.array(np.concatenate(owners))
    cols = {
        "media_id": _take(media_cols["media_id"], owner_ids),
        "dataset_id": _take(media_cols["dataset_id"], owner_ids),
        "key": pa.concat_arrays(keys, memory_pool=table_pool()),
        "value": pa.concat_arrays(values, memory_pool=table_pool()),
    }
    return cols, empty


def _same_type_runs(pages: list[pa.Array]) -> list[pa.Array]:
    """Consecutive pages whose tags have the same type (the same keys in the same order),
    each run as one array: one pass per run instead of one per page."""
    runs: list[list[pa.Array]] = []
    for tags in pages:
        if runs and runs[-1][0].type == tags.type:
            runs[-1].append(tags)
        else:
            runs.append([tags])
    return [_concat(run) for run in runs]


def _tag_rows(groups: list[_TagGroup], n: int) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """The tag rows of ``n`` media: owner row, key and value, media by media."""
    counts = np.stack([g.counts for g in groups], axis=1)  # media x group
    flat = counts.ravel()
    starts = (np.cumsum(flat) - flat).reshape(counts.shape)
    dest = np.concatenate([_positions(starts[:, j], g.counts) for j, g in enumerate(groups)])
    order = np.empty(len(dest), np.int64)
    order[dest] = np.arange(len(dest), dtype=np.int64)
    group_of = np.repeat(np.arange(len(groups), dtype=np.int64), counts.sum(axis=0))
    keys = _take(text_array([g.key for g in groups], _STR), group_of[order])
    values = _take(_concat([g.values for g in groups]), order)
    owner = np.repeat(np.arange(n, dtype=np.int64), counts.sum(axis=1))
    return owner, keys, values


def _positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row numbers in the tags table of one group's values (given in media order)."""
    ends = np.cumsum(counts)
    within = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    return np.repeat(starts, counts) + within - np.repeat(ends - counts, counts)


def _media_extra(records: pa.StructArray, empty: dict[int, list[str]]) -> pa.Array:
    """``extra`` of the media: a ``dataset.id`` disagreeing with ``datasetId``, empty tag
    groups (in that order, as flatten merges them); null for every other media."""
    n = len(records)
    disagree: dict[int, str] = {}
    nested = _path(records, "dataset.id")
    if nested.null_count != n:
        given = _typed(_path(records, "datasetId"), "id")
        differs = pc.fill_null(pc.not_equal(_typed(nested, "id"), given), False)
        for r in np.flatnonzero(differs.to_numpy(zero_copy_only=False)).tolist():
            disagree[r] = nested[r].as_py()
    rows = sorted({*disagree, *empty})
    if not rows:
        return pa.nulls(n, _STR, memory_pool=table_pool())
    extra: list[str | None] = [None] * n
    for r in rows:
        value: dict = {}
        if r in disagree:
            value["dataset"] = {"id": disagree[r]}
        if r in empty:
            value["metadata"] = {"tags": {key: [] for key in empty[r]}}
        extra[r] = _dumps(value)
    return text_array(extra, _STR)

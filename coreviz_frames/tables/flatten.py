"""The flattening engine behind :func:`coreviz_frames.to_tables`, as four named passes.

Each pass returns a small value that the next one takes (as stac-geoparquet chains
its batch steps):

1. :func:`_media_pass` → :class:`_MediaPass`: one Python loop over the media dicts:
   unknown keys into ``extra``, the nested objects (``dataset``, ``metadata``,
   ``metadata.moderation``) checked and gathered, tag rows, and the frames collected;
2. :func:`_frames_pass` → :class:`_FramesPass`: every frame's shape and unknown keys,
   its captions and objects collected;
3. :func:`_children_pass` → :class:`_ChildRows`: the shape and unknown keys of every
   caption and object;
4. column assembly (:func:`_media_columns`, :func:`_frame_columns`, ...): every column
   one Arrow array of its declared type (built by :mod:`.casting`: vectorised casts,
   every bad value named), ancestor ids and list positions computed with numpy from
   the list lengths (:class:`_Layout`).

Passes 2 and 3 go by chunks of rows and hand each chunk, while its dicts are still in
the CPU cache, to a :class:`~coreviz_frames.tables.casting.ChunkedRows`: the C++ conversion
that step 4 reads (flatten 1.2x to 1.5x faster on 1,000 synthetic media: bench_flatten.py
--compare).

Which API field feeds which column, and how it is read, is declared once, in
:data:`coreviz_frames.schema.API_FIELDS`: a new API field is one ``Column`` there.

Example:
    >>> from coreviz_frames.tables.flatten import flatten
    >>> arrow_tables, report = flatten([{"id": "m1", "frames": []}])
    >>> arrow_tables["media"].num_rows, report.skipped_count
    (1, 0)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coreviz_frames._util.checks import check_on_error
from coreviz_frames._util.ids import normalize_id
from coreviz_frames.errors import SchemaError, SkippedRecordWarning
from coreviz_frames.schema import API_FIELDS, SCHEMAS, ApiField
from coreviz_frames.tables.casting import (
    CHUNK_ROWS,
    ChunkedRows,
    GrainReader,
    MalformedRecords,
    RecordErrors,
    read_columns,
    text_array,
)

__all__ = ["FLATTEN_ON_ERROR", "FlattenReport", "bbox_columns", "flatten"]

#: The ``on_error`` modes of :func:`flatten` (and of ``to_tables``).
FLATTEN_ON_ERROR = ("raise", "skip")

_STR = pa.string()
_INT = pa.int64()
_FLOAT = pa.float64()
_CHILD_GRAINS = ("frames", "captions", "objects")

# --- what each grain reads, derived from schema.API_FIELDS ------------------------------------

#: API fields flattening consumes that are not columns: child lists, the tag map, the
#: fallback of ``datasetId``, and parent ids (kept in ``extra`` only when they disagree).
_STRUCTURE: dict[str, tuple[str, ...]] = {
    "media": ("frames", "metadata.tags", "dataset.id"),
    "frames": ("captions", "objects", "mediaId"),
    "captions": ("frameId",),
    "objects": (),
}
#: The parent id a child row may repeat (consumed, compared with its actual parent).
_PARENT = {
    "frames": ApiField("_parent", "mediaId", "id"),
    "captions": ApiField("_parent", "frameId", "id"),
}
if any("." in f.source for grain in _CHILD_GRAINS for f in API_FIELDS[grain]):
    raise TypeError("schema: a nested API source (a.b) is only supported on media columns")

#: grain -> the fields read straight from its dicts.
_DIRECT = {g: tuple(f for f in API_FIELDS[g] if "." not in f.source) for g in _STRUCTURE}
#: grain -> the top-level API keys consumed into columns (never repeated in ``extra``).
_KEYS = {
    g: frozenset(s.split(".")[0] for s in (*(f.source for f in API_FIELDS[g]), *_STRUCTURE[g]))
    for g in _STRUCTURE
}


def _nested_keys() -> dict[str, frozenset[str]]:
    """Each nested object of a media (``"metadata.moderation"``) -> the keys consumed in it,
    shortest paths first, so a parent is always met before its children."""
    known: dict[str, set[str]] = {}
    for source in (*(f.source for f in API_FIELDS["media"]), *_STRUCTURE["media"]):
        parts = source.split(".")
        for depth in range(1, len(parts)):
            known.setdefault(".".join(parts[:depth]), set()).add(parts[depth])
    return {path: frozenset(known[path]) for path in sorted(known, key=lambda p: p.count("."))}


_NESTED_KEYS = _nested_keys()
#: nested object path -> the media fields read from it.
_NESTED_FIELDS = {
    path: tuple(f for f in API_FIELDS["media"] if f.source.rpartition(".")[0] == path)
    for path in _NESTED_KEYS
}
_POINT_KEYS = frozenset(("x", "y"))
#: The fields a frame row is read for (its parent id included).
_FRAME_FIELDS = (*_DIRECT["frames"], _PARENT["frames"])


# --- report and entry point -------------------------------------------------------------------


@dataclass
class FlattenReport:
    """What :func:`flatten` left out: pass one as ``to_tables(..., report=...)``.

    ``skipped`` holds one :class:`SchemaError` per malformed media record
    skipped with ``on_error="skip"``; ``folders`` counts folder rows (not media).

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
                kind = type(item).__name__
                errs.append(SchemaError(f"expected a media object, got {kind}", field="<record>"))
                out.append(None)
                continue
            if item.get("type") == "folder":
                report.folders += 1
                continue
            out.append(item)
            errs.append(None)
    return out, errs


def flatten(
    records: Iterable,
    *,
    on_error: str | None = None,
    report: FlattenReport | None = None,
    errors: str | None = None,
) -> tuple[dict[str, pa.Table], FlattenReport]:
    """Flatten media records into one Arrow table per grain, typed by :data:`schema.SCHEMAS`.

    ``on_error="raise"`` (default) raises the first :class:`SchemaError`; ``"skip"``
    leaves malformed records out and lists them in the report (``errors=`` is the
    deprecated spelling).

    Example:
        >>> tables, _ = flatten([{"id": "m1", "frames": [{"id": "f1", "timestamp": "1.5"}]}])
        >>> tables["frames"].column("timestamp").to_pylist()
        [1.5]
    """
    skip = check_on_error(on_error, allowed=FLATTEN_ON_ERROR, errors=errors) == "skip"
    report = report if report is not None else FlattenReport()
    items, unwrap_errors = _unwrap(records, report)
    for err in unwrap_errors:
        if err is not None:
            if not skip:
                raise err
            report.skipped.append(err)
    rows = [m for m in items if m is not None]
    while True:
        try:
            tables = _build(rows, skip=skip)
            break
        except MalformedRecords as retry:
            report.skipped.extend(retry.bad[pos] for pos in sorted(retry.bad))
            rows = [m for pos, m in enumerate(rows) if pos not in retry.bad]
    for err in report.skipped:
        warnings.warn(f"skipped malformed record: {err}", SkippedRecordWarning, stacklevel=3)
    return tables, report


def _build(media_rows: list[dict], *, skip: bool) -> dict[str, pa.Table]:
    """The passes, chained; in skip mode a pass that found bad records raises
    :class:`MalformedRecords` and :func:`flatten` runs them again without those."""
    errors = RecordErrors(media_rows, skip)
    media = _media_pass(media_rows, errors)
    layout = _Layout.of(media.frames.counts)
    frames = _frames_pass(media.frames.rows, layout.reader(errors, "frames"))
    layout.add_children(frames.captions.counts, frames.objects.counts)
    children = _children_pass(frames, layout, errors)

    media_cols = _media_columns(media_rows, media, GrainReader(errors, lambda i: (i, "")))
    frame_cols = _frame_columns(frames, layout, media_cols, layout.reader(errors, "frames"))
    caption_cols = _caption_columns(frames.captions.rows, children, layout, frame_cols, errors)
    object_cols = _object_columns(frames.objects.rows, children, layout, frame_cols, errors)
    tag_cols = _tag_columns(media, media_cols)
    errors.flush()
    return {
        "media": _table(media_cols, "media"),
        "frames": _table(frame_cols, "frames"),
        "captions": _table(caption_cols, "captions"),
        "objects": _table(object_cols, "objects"),
        "tags": _table(tag_cols, "tags"),
    }


# --- the values the passes hand on ------------------------------------------------------------


@dataclass
class _Gathered:
    """Child rows gathered from their owners' lists, and how many each owner had."""

    rows: list = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


@dataclass
class _MediaPass:
    """Per media: its nested objects, folder path and ``extra``; tag rows; its frames."""

    nested: dict[str, list[dict]]
    folder_paths: list[str | None]
    extra: list[str | None]
    frames: _Gathered = field(default_factory=_Gathered)
    tag_owner: list[int] = field(default_factory=list)
    tag_keys: list[str] = field(default_factory=list)
    tag_values: list[str] = field(default_factory=list)

    @classmethod
    def sized(cls, n: int) -> _MediaPass:
        """Room for ``n`` media (an absent nested object reads as ``{}``)."""
        empty: dict = {}
        nested = {path: [empty] * n for path in _NESTED_KEYS}
        return cls(nested=nested, folder_paths=[None] * n, extra=[None] * n)


@dataclass
class _FramesPass:
    """Per frame: ``extra``; the frames' captions and objects."""

    rows: list
    extra: list[str | None]
    chunked: ChunkedRows
    captions: _Gathered = field(default_factory=_Gathered)
    objects: _Gathered = field(default_factory=_Gathered)


@dataclass
class _ChildRows:
    """Per caption and per object: ``extra``."""

    caption_extra: list[str | None]
    object_extra: list[str | None]
    captions: ChunkedRows
    objects: ChunkedRows


@dataclass
class _Layout:
    """Where every child row sits: its owner's row and its position in the owner's list."""

    frame_owner: np.ndarray
    frame_index: np.ndarray
    caption_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    caption_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    object_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    object_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def of(cls, frame_counts: list[int]) -> _Layout:
        """The frames' layout, from the number of frames of each media."""
        return cls(*_expand(frame_counts))

    def add_children(self, caption_counts: list[int], object_counts: list[int]) -> None:
        """Add the captions' and objects' layout, from their counts per frame."""
        self.caption_frame, self.caption_index = _expand(caption_counts)
        self.object_frame, self.object_index = _expand(object_counts)

    def reader(self, errors: RecordErrors, grain: str) -> GrainReader:
        """A column reader whose errors name the row's path (``frames[2].objects[0].``)."""
        frame_owner, frame_index = self.frame_owner, self.frame_index
        if grain == "frames":
            return GrainReader(
                errors, lambda r: (int(frame_owner[r]), f"frames[{frame_index[r]}].")
            )
        owner, index = (
            (self.caption_frame, self.caption_index)
            if grain == "captions"
            else (self.object_frame, self.object_index)
        )

        def locate(r: int) -> tuple[int, str]:
            fr = int(owner[r])
            return int(frame_owner[fr]), f"frames[{frame_index[fr]}].{grain}[{index[r]}]."

        return GrainReader(errors, locate)


def _expand(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Owner position and index-within-owner of every child, from per-owner counts."""
    c = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(c), dtype=np.int64), c)
    starts = np.cumsum(c) - c
    index = np.arange(len(owner), dtype=np.int64) - np.repeat(starts, c)
    return owner, index


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _put(extra: dict | None, path: str, values: dict) -> dict:
    """``extra`` with ``values`` merged in at the nested ``path`` (``"metadata.tags"``)."""
    extra = extra if extra is not None else {}
    node = extra
    for part in path.split("."):
        node = node.setdefault(part, {})
    node.update(values)
    return extra


# --- pass 1: media ------------------------------------------------------------------------------


def _media_pass(rows: list[dict], errors: RecordErrors) -> _MediaPass:
    """One loop over the media: unknown keys, nested objects, tags, folder paths, frames."""
    out = _MediaPass.sized(len(rows))
    known = _KEYS["media"]
    frames = out.frames
    for i, m in enumerate(rows):
        extra = None if m.keys() <= known else {k: v for k, v in m.items() if k not in known}
        if m.get("id") is None:
            errors.bad_record(i, "id", "missing id")
        children = m.get("frames")
        if children is None:
            frames.counts.append(0)
        elif type(children) is list:
            frames.rows.extend(children)
            frames.counts.append(len(children))
        else:
            frames.counts.append(0)
            errors.bad_record(i, "frames", f"expected a list, got {type(children).__name__}")
        path = m.get("path")
        if type(path) is str and "." in path:
            out.folder_paths[i] = path.rsplit(".", 1)[0]
        extra = _nested(m, i, out, errors, extra)
        if extra:
            out.extra[i] = _dumps(extra)
    errors.flush()
    return out


def _nested(
    media: dict, pos: int, out: _MediaPass, errors: RecordErrors, extra: dict | None
) -> dict | None:
    """The nested objects and tags of media ``pos`` into ``out``; returns its ``extra``."""
    objects = _nested_objects(media, pos, errors)
    if objects is None:
        return extra
    for parent, obj in objects.items():
        out.nested[parent][pos] = obj
        consumed = _NESTED_KEYS[parent]
        if not obj.keys() <= consumed:
            extra = _put(extra, parent, {k: v for k, v in obj.items() if k not in consumed})
    extra = _keep_disagreeing_dataset(media, objects.get("dataset"), extra)
    tags = objects["metadata"].get("tags") if "metadata" in objects else None
    if tags is not None:
        extra = _tags(tags, pos, out, errors, extra)
    return extra


def _nested_objects(media: dict, pos: int, errors: RecordErrors) -> dict[str, dict] | None:
    """The nested objects a media has (path -> dict); None if one is not an object."""
    found: dict[str, dict] = {}
    for path in _NESTED_KEYS:
        head, _, name = path.rpartition(".")
        holder = found.get(head) if head else media
        value = holder.get(name) if holder is not None else None
        if value is None:
            continue
        if type(value) is not dict:
            errors.bad_record(pos, path, f"expected an object, got {type(value).__name__}")
            return None
        found[path] = value
    return found


def _keep_disagreeing_dataset(media: dict, dataset: dict | None, extra: dict | None) -> dict | None:
    """``dataset.id`` is consumed (it is ``datasetId``'s fallback) unless it disagrees."""
    if dataset is None:
        return extra
    given, nested = media.get("datasetId"), dataset.get("id")
    if nested is not None and given is not None and normalize_id(nested) != normalize_id(given):
        extra = _put(extra, "dataset", {"id": nested})
    return extra


def _tags(
    tags: object, pos: int, out: _MediaPass, errors: RecordErrors, extra: dict | None
) -> dict | None:
    """One tag row per value of ``metadata.tags``; a group without values is kept in extra."""
    if type(tags) is not dict:
        errors.bad_record(pos, "metadata.tags", f"expected an object, got {type(tags).__name__}")
        return extra
    empty_groups = None
    for key, values in tags.items():
        if type(values) is str:
            values = [values]
        elif type(values) is not list:
            kind = type(values).__name__
            errors.bad_record(
                pos, f"metadata.tags.{key}", f"expected a list of strings, got {kind}"
            )
            return extra
        if not values:
            empty_groups = empty_groups or {}
            empty_groups[key] = values
        for j, value in enumerate(values):
            if type(value) is not str:
                kind = type(value).__name__
                errors.bad_record(
                    pos, f"metadata.tags.{key}[{j}]", f"expected a string, got {kind}"
                )
                return extra
            out.tag_owner.append(pos)
            out.tag_keys.append(key)
            out.tag_values.append(value)
    if empty_groups:
        extra = _put(extra, "metadata.tags", empty_groups)
    return extra


# --- pass 2: frames -----------------------------------------------------------------------------


def _frames_pass(rows: list, reader: GrainReader) -> _FramesPass:
    """Every frame is an object; its unknown keys; its captions and objects gathered.

    The frames go by chunks of :data:`~coreviz_frames.tables.casting.CHUNK_ROWS`, each converted
    for its columns (:class:`~coreviz_frames.tables.casting.ChunkedRows`) right after its visit.
    """
    out = _FramesPass(rows=rows, extra=[None] * len(rows), chunked=ChunkedRows(_FRAME_FIELDS))
    bad: dict[int, tuple[str, str]] = {}
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        _visit_frames(chunk, start, out, bad)
        out.chunked.add(chunk)
    if bad:
        _fail_rows(reader, bad)
    return out


def _visit_frames(
    chunk: list, start: int, out: _FramesPass, bad: dict[int, tuple[str, str]]
) -> None:
    """One chunk of :func:`_frames_pass` (its first row is frame ``start``)."""
    known = _KEYS["frames"]
    captions, objects = out.captions, out.objects
    for r, f in enumerate(chunk, start):
        if type(f) is not dict:
            captions.counts.append(0)
            objects.counts.append(0)
            bad[r] = ("", f"expected an object, got {type(f).__name__}")
            continue
        if not f.keys() <= known:
            out.extra[r] = _dumps({k: v for k, v in f.items() if k not in known})
        caps = f.get("captions")
        if caps is None:
            captions.counts.append(0)
        elif type(caps) is list:
            captions.rows.extend(caps)
            captions.counts.append(len(caps))
        else:
            captions.counts.append(0)
            bad.setdefault(r, ("captions", f"expected a list, got {type(caps).__name__}"))
        objs = f.get("objects")
        if objs is None:
            objects.counts.append(0)
        elif type(objs) is list:
            objects.rows.extend(objs)
            objects.counts.append(len(objs))
        else:
            objects.counts.append(0)
            bad.setdefault(r, ("objects", f"expected a list, got {type(objs).__name__}"))


def _fail_rows(reader: GrainReader, bad: dict[int, tuple[str, str]]) -> None:
    """Report ``row -> (key, message)``; an empty key names the row itself (``frames[1]``)."""
    for row in sorted(bad):
        key, message = bad[row]
        pos, prefix = reader.locate(row)
        reader.ctx.bad_record(pos, f"{prefix}{key}" if key else prefix[:-1], message)
    reader.ctx.flush()


# --- pass 3: captions and objects ---------------------------------------------------------------


def _children_pass(frames: _FramesPass, layout: _Layout, errors: RecordErrors) -> _ChildRows:
    """Every caption and object is an object; their unknown keys (and rich polygons)."""
    captions = ChunkedRows((*_DIRECT["captions"], _PARENT["captions"]))
    caption_extra, _ = _child_extra(
        frames.captions.rows, _KEYS["captions"], layout.reader(errors, "captions"), captions
    )
    objects = ChunkedRows(_DIRECT["objects"])
    object_extra, many_keys = _child_extra(
        frames.objects.rows, _KEYS["objects"], layout.reader(errors, "objects"), objects
    )
    rows = frames.objects.rows
    _keep_rich_polygons(rows, object_extra, _rich_objects(rows, many_keys, objects))
    errors.flush()
    return _ChildRows(caption_extra, object_extra, captions, objects)


def _child_extra(
    rows: list, known: frozenset, reader: GrainReader, chunked: ChunkedRows
) -> tuple[list, bool]:
    """Check each child is a dict and collect its unknown keys as JSON text, chunk by chunk,
    each converted by ``chunked`` at once; and whether a polygon point (if the rows have
    polygons) may have more than two keys (see :func:`_rich_objects`)."""
    extra: list = [None] * len(rows)
    bad: dict[int, tuple[str, str]] = {}
    many_keys = False
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        for r, row in enumerate(chunk, start):
            if type(row) is not dict:
                bad[r] = ("", f"expected an object, got {type(row).__name__}")
            elif not row.keys() <= known:
                extra[r] = _dumps({k: v for k, v in row.items() if k not in known})
        if "polygon" in known and not many_keys:
            many_keys = _point_keys_over_two(chunk)
        chunked.add(chunk)
    if bad:
        _fail_rows(reader, bad)
    return extra, many_keys


def _point_keys_over_two(chunk: list) -> bool:
    """Whether a polygon point of ``chunk`` may have more than two keys (C-level passes).

    Example:
        >>> _point_keys_over_two([{"polygon": [{"x": 1, "y": 2}]}, {"polygon": None}])
        False
        >>> _point_keys_over_two([{"polygon": [{"x": 1, "y": 2, "v": 0}]}])
        True
    """
    try:
        polygons = filter(None, [row.get("polygon") for row in chunk])
        return max(map(len, chain.from_iterable(polygons)), default=0) > 2
    except (TypeError, AttributeError):  # a null point, a row not a dict...: look closer
        return True


def _rich_objects(rows: list, many_keys: bool, chunked: ChunkedRows) -> list[int]:
    """The objects whose polygon has a point with keys besides x and y.

    When no point has more than two keys (``many_keys`` False) and the converted
    polygons show every point with both x and y set, every point is exactly ``{x, y}``:
    the common case, with no Python loop over the points. Else :func:`_rich_rows` looks.
    """
    struct = chunked.struct(len(rows))
    if not many_keys and struct is not None:
        points = pc.list_flatten(struct.field("polygon"))
        if not (points.null_count or points.field("x").null_count or points.field("y").null_count):
            return []
    return _rich_rows(rows, 0)


def _rich_rows(chunk: list, start: int) -> list[int]:
    """The rows (numbered from ``start``) whose polygon has a point with keys besides x and y.

    Plain ``{x, y}`` points cost one length check each.

    Example:
        >>> _rich_rows([{"polygon": [{"x": 1, "y": 2}]}, {"polygon": [{"x": 1, "v": 0}]}], 10)
        [11]
    """
    found = []
    for r, row in enumerate(chunk, start):
        polygon = row.get("polygon") if type(row) is dict else None
        if type(polygon) is not list:
            continue
        for point in polygon:
            if (
                type(point) is dict
                and (len(point) != 2 or "x" not in point or "y" not in point)
                and not point.keys() <= _POINT_KEYS
            ):
                found.append(r)
                break
    return found


def _keep_rich_polygons(rows: list, extra: list, rich: list[int]) -> None:
    """A polygon whose points carry more than ``x`` and ``y`` is also kept whole in ``extra``.

    The ``polygon`` column holds only the coordinates; this keeps any other point field
    (under the API's spelling) so nothing is dropped. ``rich`` lists those rows
    (:func:`_rich_rows`).
    """
    for r in rich:
        kept = json.loads(extra[r]) if extra[r] is not None else {}
        extra[r] = _dumps({**kept, "polygon": rows[r]["polygon"]})


# --- pass 4: columns ----------------------------------------------------------------------------


def _media_columns(rows: list[dict], media: _MediaPass, reader: GrainReader) -> dict:
    """The media columns: direct and nested API fields, ``dataset.id`` fallback, derived."""
    cols = read_columns(rows, _DIRECT["media"], reader)
    for path, fields in _NESTED_FIELDS.items():
        if fields:
            cols.update(read_columns(media.nested[path], fields, reader))
    given = cols["dataset_id"]
    if given.null_count:  # datasetId missing: the nested dataset's id
        missing = given.is_null().to_numpy(zero_copy_only=False)
        nested = [
            d.get("id") if m else None
            for d, m in zip(media.nested["dataset"], missing, strict=True)
        ]
        cols["dataset_id"] = pc.coalesce(given, reader.column(nested, "id", "dataset.id"))
    cols.update(
        folder_path=text_array(media.folder_paths, _STR),
        frame_count=pa.array(media.frames.counts, type=_INT),
        extra=text_array(media.extra, _STR),
    )
    return cols


def _frame_columns(
    frames: _FramesPass, layout: _Layout, media_cols: dict, reader: GrainReader
) -> dict:
    """The frame columns: API fields, the media's ids, position, child counts, extra."""
    cols = read_columns(frames.rows, _FRAME_FIELDS, reader, frames.chunked)
    reader.required(cols["frame_id"], "id")
    owner = pa.array(layout.frame_owner)
    media_id = media_cols["media_id"].take(owner)
    _keep_disagreeing_parent(frames.rows, "mediaId", cols.pop("_parent"), media_id, frames.extra)
    cols.update(
        media_id=media_id,
        dataset_id=media_cols["dataset_id"].take(owner),
        frame_index=pa.array(layout.frame_index, type=_INT),
        caption_count=pa.array(frames.captions.counts, type=_INT),
        object_count=pa.array(frames.objects.counts, type=_INT),
        extra=text_array(frames.extra, _STR),
    )
    return cols


_INHERITED = ("frame_id", "media_id", "dataset_id", "timestamp")


def _caption_columns(
    rows: list, children: _ChildRows, layout: _Layout, frame_cols: dict, errors: RecordErrors
) -> dict:
    """The caption columns: API fields, the frame's ids and timestamp, position, extra."""
    reader = layout.reader(errors, "captions")
    extra = children.caption_extra
    fields = (*_DIRECT["captions"], _PARENT["captions"])
    cols = read_columns(rows, fields, reader, children.captions)
    reader.required(cols["caption_id"], "id")
    owner = pa.array(layout.caption_frame)
    frame_id = frame_cols["frame_id"].take(owner)
    _keep_disagreeing_parent(rows, "frameId", cols.pop("_parent"), frame_id, extra)
    cols.update(
        {name: frame_cols[name].take(owner) for name in _INHERITED},
        caption_index=pa.array(layout.caption_index, type=_INT),
        extra=text_array(extra, _STR),
    )
    return cols


def _object_columns(
    rows: list, children: _ChildRows, layout: _Layout, frame_cols: dict, errors: RecordErrors
) -> dict:
    """The object columns: API fields, the frame's ids, size and timestamp, box, extra."""
    reader = layout.reader(errors, "objects")
    extra = children.object_extra
    cols = read_columns(rows, _DIRECT["objects"], reader, children.objects)
    reader.required(cols["object_id"], "id")
    blob = cols["blob"]
    if len(blob) and pc.any(pc.equal(blob, "")).as_py():
        cols["blob"] = pc.if_else(pc.equal(blob, ""), pa.scalar(None, _STR), blob)
    owner = pa.array(layout.object_frame)
    cols.update(
        {name: frame_cols[name].take(owner) for name in _INHERITED},
        frame_width=frame_cols["width"].take(owner),
        frame_height=frame_cols["height"].take(owner),
        object_index=pa.array(layout.object_index, type=_INT),
        extra=text_array(extra, _STR),
    )
    cols.update(bbox_columns(cols["polygon"]))
    return cols


def _tag_columns(media: _MediaPass, media_cols: dict) -> dict:
    """One row per tag value, with its media's ids."""
    owner = pa.array(np.asarray(media.tag_owner, dtype=np.int64))
    return {
        "media_id": media_cols["media_id"].take(owner),
        "dataset_id": media_cols["dataset_id"].take(owner),
        "key": text_array(media.tag_keys, _STR),
        "value": text_array(media.tag_values, _STR),
    }


def _keep_disagreeing_parent(
    rows: list, key: str, given: pa.Array, parent_ids: pa.Array, extra: list
) -> None:
    """A child's parent id (``mediaId``, ``frameId``) is consumed, unless it names another parent.

    Such a disagreeing value is kept in the child's ``extra`` so nothing is lost.
    """
    if given.null_count == len(given):
        return
    differs = pc.fill_null(pc.not_equal(given, parent_ids), False)
    for found in np.flatnonzero(differs.to_numpy(zero_copy_only=False)):
        r = int(found)
        kept = json.loads(extra[r]) if extra[r] is not None else {}
        extra[r] = _dumps({key: rows[r][key], **kept})


def bbox_columns(polygon: pa.Array) -> dict[str, pa.Array]:
    """COCO box (x, y, w, h) from each polygon's extent; null when there is no point.

    Also what :mod:`~coreviz_frames.tables.arrowflatten` uses (its polygons may be slices).

    Example:
        >>> polygon = pa.array([[{"x": 1.0, "y": 2.0}, {"x": 4.0, "y": 6.0}], None, []])
        >>> bbox_columns(polygon)["bbox_w"].to_pylist()
        [3.0, None, None]
    """
    n = len(polygon)
    lengths = pc.fill_null(pc.list_value_length(polygon), 0).to_numpy()
    nonempty = lengths > 0
    out = {name: np.full(n, np.nan) for name in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")}
    if nonempty.any():
        points = pc.list_flatten(polygon)  # the points of the valid polygons, in order
        xs = points.field("x").to_numpy(zero_copy_only=False).astype(float, copy=False)
        ys = points.field("y").to_numpy(zero_copy_only=False).astype(float, copy=False)
        x0, y0, x1, y1 = _extents(xs, ys, lengths[nonempty])
        out["bbox_x"][nonempty] = x0
        out["bbox_y"][nonempty] = y0
        out["bbox_w"][nonempty] = x1 - x0
        out["bbox_h"][nonempty] = y1 - y0
    return {name: pa.array(values, type=_FLOAT, from_pandas=True) for name, values in out.items()}


#: Polygons of at most this many points each, all alike, take the folding way of :func:`_extents`.
_FOLD_MAX = 16


def _extents(xs: np.ndarray, ys: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """Min x, min y, max x, max y of consecutive runs of ``lengths`` (all > 0) points.

    When every run has the same few points (4-point boxes) the k-th points of all runs
    are folded in, one vectorised step per k (ten times faster than ``reduceat``).

    Example:
        >>> [v.tolist() for v in _extents(np.array([1.0, 3, 2]), np.array([5.0, 4, 6]), [2, 1])]
        [[1.0, 2.0], [4.0, 6.0], [3.0, 2.0], [5.0, 6.0]]
        >>> [v.tolist() for v in _extents(np.array([1.0, 3]), np.array([5.0, 4]), np.array([2]))]
        [[1.0], [4.0], [3.0], [5.0]]
    """
    lengths = np.asarray(lengths)
    size = int(lengths[0])
    if size <= _FOLD_MAX and (lengths == size).all():
        runs = [xs.reshape(-1, size), ys.reshape(-1, size)]
        lo = [r[:, 0].copy() for r in runs]
        hi = [r[:, 0].copy() for r in runs]
        for k in range(1, size):
            for axis, r in enumerate(runs):
                np.minimum(lo[axis], r[:, k], out=lo[axis])
                np.maximum(hi[axis], r[:, k], out=hi[axis])
        return lo[0], lo[1], hi[0], hi[1]
    starts = np.cumsum(lengths) - lengths
    return (
        np.minimum.reduceat(xs, starts),
        np.minimum.reduceat(ys, starts),
        np.maximum.reduceat(xs, starts),
        np.maximum.reduceat(ys, starts),
    )


def _table(columns: dict[str, pa.Array], grain: str) -> pa.Table:
    schema = SCHEMAS[grain]
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)

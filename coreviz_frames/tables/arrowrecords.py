"""Media records read by pyarrow's JSON reader, or None when that cannot be proved exact.

:data:`RECORD_TYPE` is the declared nested Arrow type of one media record under its API
spelling (``frames`` -> ``captions`` / ``objects`` -> ``polygon``, ``metadata.tags``,
``metadata.moderation``, ``dataset``), derived from :data:`coreviz_frames.schema.API_FIELDS`
plus the structure :func:`~coreviz_frames.tables.flatten.flatten` consumes. Field types:
ids, text and dates are ``string`` (dates stay ISO text: the flattening parses them);
integers ``int64``; numbers ``float64``; ``moderation.categories`` ``list<string>``;
``polygon`` ``list<struct<x: double, y: double>>``. A frame's ``timestamp`` and
``endTimestamp`` are ``string``: the API's documents send them as text (``"0"``, ``"0.5"``).
A body giving them as JSON numbers (the SDK's type) is read again with them as doubles,
which are then written as text (Arrow's shortest round-trip spelling: cast back to a double
it is the very number the exact path reads); a page mixing both spellings is refused.

``metadata.tags`` has arbitrary keys, and pyarrow's JSON reader cannot read a map: it is
declared as an empty struct and its fields are *inferred* (``unexpected_field_behavior=
"infer"``), one ``list<string>`` field per tag key met in the body, in first-seen order.
Any other inferred field is refused (an unknown field belongs in the ``extra`` column),
except a field at the top level of a page's ``type: "folder"`` items (folders
never reach the tables). The tag rows of a record follow its own key order: a row's
non-null tag fields, in the struct's field order, are proved (one small scan of the
body's ``"tags":{...}`` objects) to be exactly that record's keys in its order.

:func:`read_page` (a browse page) and :func:`read_record` (a Get Media body) return
None, meaning "decode this body with :mod:`coreviz_frames._util.jsoncodec` and flatten
it the exact way", whenever the Arrow result could differ from the exact path's:

- the reader refuses the body: a value of another JSON type than declared (``"320"``
  or ``1.0`` for an integer, a number for a text, ``true`` for a number, a string for a
  list), an integer beyond int64, a number beyond the double range, a lone surrogate
  escape (``"\\ud800"``), a repeated key, malformed JSON, more than one top-level value;
- invalid UTF-8 (the reader does not validate it; one check per body) or a leading BOM;
- an inferred field other than a tag key or a folder's top-level field, a top-level key
  of the page besides ``media`` and ``pagination``, a ``pagination`` value that is not
  an integer, boolean, string or null (a double may be a rounded huge integer);
- NaN or an infinity in a number field (pyarrow also reads ``-NaN`` and ``Inf``, which
  the exact decoder refuses), or a negative zero (pyarrow reads the integer ``-0`` as
  -0.0 where the exact path has 0.0);
- a null media item, frame, caption, object or polygon point;
- a tag group that is null, empty (the exact path keeps it in ``extra``), not a list of
  strings, holds a null, or tag keys in another order than the struct's;
- a folder field also present (maybe as ``null``) on a media item, or spelt with escapes;
- ``"captions": null`` / ``"objects": null`` in a page where :attr:`ArrowPage.needs_hydration`
  depends on whether that key is present.

Values the exact path would refuse but the table holds faithfully (a missing id, a bad
date, a disagreeing ``mediaId``) are the flattening's to find.

Example:
    >>> page = read_page(b'{"media": [{"id": "m1", "type": "image", "frames": []}],'
    ...                  b' "pagination": {"total": 1, "hasMore": false}}')
    >>> page.ids, page.types, page.needs_hydration, page.pagination
    (['m1'], ['image'], [False], {'total': 1, 'hasMore': False})
    >>> read_page(b'{"media": [{"id": "m1", "width": "320"}]}') is None
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from coreviz_frames._util.arrowmemory import table_pool
from coreviz_frames.schema import API_FIELDS

__all__ = ["RECORD_TYPE", "ArrowPage", "read_page", "read_record"]

_STR = pa.string()
_INT = pa.int64()
_FLOAT = pa.float64()
_POINT = pa.struct([pa.field("x", _FLOAT), pa.field("y", _FLOAT)])
_KIND_TYPES: dict[str, pa.DataType] = {
    "id": _STR,
    "str": _STR,
    "ts": _STR,
    "int": _INT,
    "float": _FLOAT,
    "strlist": pa.list_(_STR),
    "polygon": pa.list_(_POINT),
}
#: Number fields the API sends as JSON text (``"timestamp": "0.5"``): declared ``string``.
_TEXT_NUMBERS = {"frames": frozenset({"timestamp", "endTimestamp"})}
#: Keys flattening consumes that are no column of their grain (see flatten._STRUCTURE).
_PARENT_KEYS = {"frames": "mediaId", "captions": "frameId"}
TAGS_PATH = ("metadata", "tags")


def _direct_fields(grain: str, numbers: pa.DataType = _STR) -> list[pa.Field]:
    """The fields of ``grain`` read straight from its objects, under their API spelling
    (the number fields the API sends as text typed ``numbers``)."""
    text = _TEXT_NUMBERS.get(grain, frozenset())
    out = [
        pa.field(f.source, numbers if f.source in text else _KIND_TYPES[f.kind])
        for f in API_FIELDS[grain]
        if "." not in f.source
    ]
    if grain in _PARENT_KEYS:
        out.append(pa.field(_PARENT_KEYS[grain], _STR))
    return out


def _nested_fields() -> list[pa.Field]:
    """The media's nested objects (``dataset``, ``metadata``...) from the dotted sources."""
    tree: dict = {}
    sources = [(f.source, _KIND_TYPES[f.kind]) for f in API_FIELDS["media"] if "." in f.source]
    sources.append(("dataset.id", _STR))  # datasetId's fallback
    for source, typ in sources:
        *parents, name = source.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = typ
    tree.setdefault("metadata", {})["tags"] = pa.struct([])  # inferred: see the docstring

    def build(node: dict) -> list[pa.Field]:
        return [
            pa.field(k, pa.struct(build(v)) if isinstance(v, dict) else v) for k, v in node.items()
        ]

    return build(tree)


CAPTION_TYPE = pa.struct(_direct_fields("captions"))
OBJECT_TYPE = pa.struct(_direct_fields("objects"))


def _record_type(numbers: pa.DataType) -> pa.StructType:
    """The record type, a frame's text-valued numbers typed ``numbers``."""
    frame = pa.struct(
        [
            *_direct_fields("frames", numbers),
            pa.field("captions", pa.list_(CAPTION_TYPE)),
            pa.field("objects", pa.list_(OBJECT_TYPE)),
        ]
    )
    return pa.struct(
        [*_direct_fields("media"), *_nested_fields(), pa.field("frames", pa.list_(frame))]
    )


#: The declared type of one media record (see the module docstring).
RECORD_TYPE = _record_type(_STR)
FRAME_TYPE = RECORD_TYPE.field("frames").type.value_type
#: The same, for a body giving a frame's ``timestamp`` / ``endTimestamp`` as JSON numbers.
_NUMERIC_RECORD_TYPE = _record_type(_FLOAT)
#: body shape -> its schema with text numbers, and with numbers.
_SCHEMAS = {
    shape: tuple(schema(t) for t in (RECORD_TYPE, _NUMERIC_RECORD_TYPE))
    for shape, schema in {
        "page": lambda t: pa.schema([pa.field("media", pa.list_(t))]),
        "wrapped": lambda t: pa.schema([pa.field("media", t)]),
        "record": lambda t: pa.schema(list(t)),
    }.items()
}
_NUMBERS_GIVEN = re.compile(
    r"/frames/\[\]/(?:timestamp|endTimestamp)\) changed from string to number"
)
#: pagination field types whose Python value is exactly the decoder's.
_SCALARS = (pa.types.is_int64, pa.types.is_boolean, pa.types.is_string, pa.types.is_null)
_EXPLICIT_CHILD_NULL = re.compile(rb'"(?:captions|objects)"\s*:\s*null')
#: ``"tags":`` then null (group 1) or an object holding no object (group 2). The body is
#: valid JSON (the reader took it): a string is a quote, escapes or other bytes, a quote.
_TAGS = re.compile(rb'"tags"\s*:\s*(?:(null)|(\{(?:[^{}"\\]|"(?:[^"\\]|\\.)*")*\}))?')
_BOM = b"\xef\xbb\xbf"
_PAGE_KEYS = frozenset(("media", "pagination"))
_WRAPPED = re.compile(rb'\s*\{\s*"media"\s*:')


@dataclass(repr=False)
class ArrowPage:
    """One browse page read by pyarrow (see :func:`read_page`).

    ``media`` holds one row per listed item (folders included) with the fields of
    :data:`RECORD_TYPE` (``metadata.tags`` as inferred; a folder's extra fields as
    more top-level columns); ``pagination`` is the page's ``pagination`` object as the
    decoder gives it (``{}`` when absent or null); ``body`` the bytes it was read from.

    Example:
        >>> page = read_page(b'{"media": [{"id": "a"}, {"id": "b", "frames": []}]}')
        >>> page.take([1]).column("id").to_pylist(), page.needs_hydration
        (['b'], [True, False])
        >>> page
        ArrowPage(2 items, 51 bytes)
    """

    media: pa.Table
    pagination: dict
    body: bytes
    needs_hydration: list[bool]

    def __repr__(self) -> str:  # the body is megabytes: never in a repr
        return f"ArrowPage({self.media.num_rows} items, {len(self.body)} bytes)"

    @cached_property
    def ids(self) -> list[str | None]:
        """Each item's ``id`` (None where absent or null)."""
        return self.media.column("id").to_pylist()

    @cached_property
    def types(self) -> list[str | None]:
        """Each item's ``type`` (``"folder"`` for a folder row)."""
        return self.media.column("type").to_pylist()

    def take(self, rows: Sequence[int]) -> pa.Table:
        """The media rows at positions ``rows``, in that order."""
        return self.media.take(pa.array(rows, type=_INT))


def read_page(body: bytes) -> ArrowPage | None:
    """One browse page (``{"media": [...], "pagination": {...}}``) read by pyarrow, or None
    when its table could differ from the exact decode + flatten (see the module docstring).

    Example:
        >>> read_page(b'{"media": [{"id": "m1", "name": 5}]}') is None
        True
    """
    read = _read(body, "page")
    if read is None:
        return None
    table, numeric = read
    if table.schema.names[0] != "media" or not set(table.schema.names) <= _PAGE_KEYS:
        return None
    pagination = _pagination(table)
    items = table.column("media").chunk(0)
    if pagination is None or items.null_count:
        return None
    media = _as_text_numbers(items.flatten()) if numeric else items.flatten()
    if media is None or media.null_count or not _provable(media, body, folders=True):
        return None
    hydration = _needs_hydration(media, body)
    if hydration is None:
        return None
    return ArrowPage(pa.Table.from_struct_array(media), pagination, body, hydration)


def read_record(body: bytes) -> pa.Table | None:
    """A Get Media body (``{"media": {...}}`` or the record itself) as a one-row table of
    :data:`RECORD_TYPE`, or None when it could differ from the exact path.

    Example:
        >>> read_record(b'{"media": {"id": "m1", "frames": []}}').column("id").to_pylist()
        ['m1']
        >>> read_record(b'{"media": {"id": "m1", "frames": [], "new": 1}}') is None
        True
    """
    wrapped = _WRAPPED.match(body) is not None
    read = _read(body, "wrapped" if wrapped else "record")
    if read is None:
        return None
    table, numeric = read
    if not wrapped:  # the record itself: an unknown "media" key in it is refused as any other
        record = table.to_struct_array().combine_chunks()
    elif table.schema.names == ["media"]:
        record = table.column("media").chunk(0)
    else:
        return None
    record = _as_text_numbers(record) if numeric else record
    if record is None or record.null_count or not _provable(record, body, folders=False):
        return None
    return pa.Table.from_struct_array(record)


# --- reading ------------------------------------------------------------------------------------


def _read(body: bytes, shape: str) -> tuple[pa.Table, bool] | None:
    """``body`` (one JSON object of ``shape``: page, wrapped or record) read with its schema
    (unknown fields inferred), and whether it gave a frame's text numbers as JSON numbers;
    None if pyarrow refuses it, if it holds more than one value, or if it is not UTF-8."""
    if body.startswith(_BOM) or not _valid_utf8(body):
        return None
    text, numeric = _SCHEMAS[shape]
    table = _read_json(body, text)
    if isinstance(table, pa.ArrowInvalid):
        if not _NUMBERS_GIVEN.search(str(table)):
            return None
        table = _read_json(body, numeric)
        if isinstance(table, pa.ArrowInvalid):
            return None
        return (table, True) if table.num_rows == 1 else None
    return (table, False) if table.num_rows == 1 else None


def _read_json(body: bytes, schema: pa.Schema) -> pa.Table | pa.ArrowInvalid:
    """pyarrow's reader on ``body`` as one block on the calling thread; its error if it fails.

    One block holds one value, which pyarrow parses on one thread anyway: its thread pool
    only adds hand-offs (measured: 15% more CPU a page), and the pages of a walk are read on
    several threads at once. Line breaks count as whitespace only where the body has some
    (where it has none, the reader skips looking for them). The table is allocated from the
    package's pool (``table_pool``)."""
    options = pj.ParseOptions(
        explicit_schema=schema,
        unexpected_field_behavior="infer",
        newlines_in_values=b"\n" in body or b"\r" in body,
    )
    block = max(len(body) + 64, 1 << 20)
    try:
        table = pj.read_json(
            pa.BufferReader(pa.py_buffer(body)),  # no copy, no Python file calls
            read_options=pj.ReadOptions(use_threads=False, block_size=block),
            parse_options=options,
            memory_pool=table_pool(),
        )
    except pa.ArrowInvalid as exc:
        return exc
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        return pa.ArrowInvalid(str(exc))
    return table.combine_chunks(memory_pool=table_pool())


def _as_text_numbers(media: pa.StructArray) -> pa.StructArray | None:
    """``media`` read with a frame's ``timestamp``/``endTimestamp`` as numbers, those given
    as the text :data:`RECORD_TYPE` declares (Arrow's shortest round-trip spelling: cast
    back, it is the very double); None for NaN, an infinity or -0 (see :func:`_plain_float`)."""
    if media.offset:
        media = pa.concat_arrays([media])
    frames = media.field("frames")
    values = frames.values
    columns = []
    for child in values.type:
        column = values.field(child.name)
        if child.name in _TEXT_NUMBERS["frames"]:
            if not _plain_float(column):
                return None
            column = column.cast(_STR)
        columns.append(column)
    frame_type = pa.struct([f.with_type(c.type) for f, c in zip(values.type, columns, strict=True)])
    values = pa.StructArray.from_arrays(
        columns, fields=list(frame_type), mask=values.is_null() if values.null_count else None
    )
    frames = pa.ListArray.from_arrays(
        frames.offsets, values, mask=frames.is_null() if frames.null_count else None
    )
    fields = list(media.type)
    index = media.type.get_field_index("frames")
    fields[index] = fields[index].with_type(frames.type)
    children = [frames if i == index else media.field(i) for i in range(len(fields))]
    return pa.StructArray.from_arrays(
        children, fields=fields, mask=media.is_null() if media.null_count else None
    )


def _valid_utf8(body: bytes) -> bool:
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pagination(table: pa.Table) -> dict | None:
    """The page's pagination as the decoder gives it ({} if absent or null); None if a
    value is of a type whose Python value could differ (a double, a list, an object)."""
    if "pagination" not in table.schema.names:
        return {}
    typ = table.schema.field("pagination").type
    if pa.types.is_null(typ):
        return {}
    if not pa.types.is_struct(typ) or not all(
        any(check(f.type) for check in _SCALARS) for f in typ
    ):
        return None
    value = table.column("pagination")[0].as_py()
    return {} if value is None else value


# --- proofs -------------------------------------------------------------------------------------


def _provable(media: pa.StructArray, body: bytes, *, folders: bool) -> bool:
    """Whether the rows of ``media`` (read from ``body``) hold exactly what the exact path
    reads: no unknown field, no null item, no non-finite number, tags in record order."""
    extra = _inferred_paths(media.type, RECORD_TYPE, ())
    tag_keys = [p[-1] for p in extra if len(p) == 3 and p[:2] == TAGS_PATH]
    folder_fields = [p[0] for p in extra if len(p) == 1]
    if len(tag_keys) + len(folder_fields) != len(extra) or (folder_fields and not folders):
        return False
    parts = _parts(media)
    if any(arr.null_count for arr in parts[1:4]) or parts[4].null_count:
        return False
    floats = [parts[0].field(f.name) for f in RECORD_TYPE if f.type == _FLOAT]
    floats += [parts[4].field("x"), parts[4].field("y")]
    if not all(map(_plain_float, floats)):
        return False
    return _folder_fields_provable(media, folder_fields, body) and _tags_provable(media, body)


def _plain_float(arr: pa.Array) -> bool:
    """No NaN, infinity or negative zero in ``arr``: the reader gives -0.0 for the JSON
    integer ``-0``, which the exact decoder reads as the integer 0 (0.0 in a float column).

    Example:
        >>> _plain_float(pa.array([1.5, None])), _plain_float(pa.array([-0.0]))
        (True, False)
    """
    values = pc.fill_null(arr, 1.0).to_numpy(zero_copy_only=False)
    return bool(np.isfinite(values).all() and not (np.signbit(values) & (values == 0)).any())


def _inferred_paths(actual: pa.DataType, declared: pa.DataType, path: tuple) -> list[tuple]:
    """The paths of the fields of ``actual`` that ``declared`` does not have (inferred)."""
    if actual.equals(declared):
        return []
    if pa.types.is_list(actual) and pa.types.is_list(declared):
        return _inferred_paths(actual.value_type, declared.value_type, path)
    if not (pa.types.is_struct(actual) and pa.types.is_struct(declared)):
        return [path]  # a declared field read as another type: never expected
    found: list[tuple] = []
    for child in actual:
        index = declared.get_field_index(child.name)
        if index < 0:
            found.append((*path, child.name))
        else:
            found += _inferred_paths(child.type, declared.field(index).type, (*path, child.name))
    return found


def _parts(media: pa.StructArray) -> tuple[pa.StructArray, ...]:
    """``media``, its frames, captions, objects and polygon points (each flattened)."""
    frames = media.field("frames").flatten()
    objects = frames.field("objects").flatten()
    return (
        media,
        frames,
        frames.field("captions").flatten(),
        objects,
        objects.field("polygon").flatten(),
    )


def _folder_fields_provable(media: pa.StructArray, names: list[str], body: bytes) -> bool:
    """Folder-only fields (``folderItemCount``, a list of previews): set on folder rows
    only, and the key written in ``body`` exactly once per value (so no media carries it,
    not even as null, and no value nests it). Their values never reach a table: folders
    are left out (a ``"tags"`` object inside one makes the tag proof fail, not pass)."""
    if not names:
        return True
    folder = pc.fill_null(pc.equal(media.field("type"), "folder"), False)
    is_folder = folder.to_numpy(zero_copy_only=False)
    for name in names:
        valid = media.field(name).is_valid().to_numpy(zero_copy_only=False)
        key = json.dumps(name, ensure_ascii=False).encode()
        if (valid & ~is_folder).any() or body.count(key) != int(valid.sum()):
            return False
    return True


def _tags_provable(media: pa.StructArray, body: bytes) -> bool:
    """Every tag group a list of strings, none null or empty, and each record's keys (read
    from ``body``) exactly its non-null tag fields in the struct's order."""
    metadata = media.field("metadata")
    tags = metadata.field("tags")
    valid = pc.and_(metadata.is_valid(), tags.is_valid()).to_numpy(zero_copy_only=False)
    present = _tag_groups(tags, valid)
    if present is None:
        return False
    if len(present) <= 1 and (present == valid).all():
        return True  # no key order, no null group to tell from an absent one
    written = _written_tag_keys(body)
    rows = np.flatnonzero(valid)
    if written is None or len(written) != len(rows):
        return False
    names = np.array([f.name for f in tags.type], dtype=object)
    masks, group = np.unique(present[:, rows].T, axis=0, return_inverse=True)
    expected = [names[mask].tolist() for mask in masks]
    return all(keys == expected[g] for keys, g in zip(written, group.tolist(), strict=True))


def _tag_groups(tags: pa.StructArray, valid: np.ndarray) -> np.ndarray | None:
    """Which tag group each row has (fields x rows); None if a group is not a list of
    strings, or holds a null or no value (the exact path keeps an empty group in extra)."""
    present = np.zeros((tags.type.num_fields, len(valid)), bool)
    for i, typ in enumerate(tags.type):
        group = tags.field(i)
        if not pa.types.is_list(typ.type) or not pa.types.is_string(typ.type.value_type):
            return None
        present[i] = group.is_valid().to_numpy(zero_copy_only=False) & valid
        lengths = pc.fill_null(pc.list_value_length(group), 1).to_numpy(zero_copy_only=False)
        if group.flatten().null_count or (present[i] & (lengths == 0)).any():
            return None
    return present


def _written_tag_keys(body: bytes) -> list[list[str]] | None:
    """The keys of every ``"tags": {...}`` object of ``body``, in order (``"tags": null``
    skipped); None if one cannot be read this way (a nested object in it,
    ``"tags"`` as the key of anything but an object or null).

    Inside a JSON string a quote is escaped, so ``"tags"`` followed by a colon is a key.

    Example:
        >>> _written_tag_keys(b'{"tags": {"b": ["x"], "a": []}, "t": {"tags": null}}')
        [['b', 'a']]
    """
    found: list[bytes] = []
    resume = 0  # a "tags inside a tags object is one of its keys: skipped
    for at in _occurrences_of_tags(body).tolist():
        if at < resume:
            continue
        match = _TAGS.match(body, at)
        if match is None:  # not a key
            continue
        if match.group(2) is not None:
            found.append(match.group(2))
        elif match.group(1) is None:
            return None
        resume = match.end()
    try:
        objects = json.loads(b"[" + b",".join(found) + b"]")
    except ValueError:  # pragma: no cover - the pattern admits only well-formed objects
        return None
    return [list(obj) for obj in objects]


def _occurrences_of_tags(body: bytes) -> np.ndarray:
    """Where ``"tags`` starts in ``body``, in order. numpy finds each ``g`` (its rarest
    byte in a page's JSON) and checks the bytes around it: a pass over the body that does
    not hold the GIL, where a search for the text (``bytes.find``) does, and takes longer.

    Example:
        >>> _occurrences_of_tags(b'{"tags": {}, "x": "tag", "tags"}').tolist()
        [1, 25]
    """
    data = np.frombuffer(body, np.uint8)
    g = np.flatnonzero(data[3:-1] == ord("g")) + 3
    found = (
        (data[g - 3] == ord('"'))
        & (data[g - 2] == ord("t"))
        & (data[g - 1] == ord("a"))
        & (data[g + 1] == ord("s"))
    )
    return g[found] - 3


def _needs_hydration(media: pa.StructArray, body: bytes) -> list[bool] | None:
    """:func:`coreviz_frames.api.client.needs_hydration` of every row, from its columns;
    None when it hangs on an explicit ``"captions": null`` the table cannot show."""
    frames = media.field("frames")
    is_list = frames.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(pc.list_value_length(frames), 0).to_numpy(zero_copy_only=False)
    flat = frames.flatten()
    has = pc.or_(flat.field("captions").is_valid(), flat.field("objects").is_valid())
    parents = pc.list_parent_indices(frames).to_numpy(zero_copy_only=False)
    any_child = np.zeros(len(media), bool)
    any_child[parents[has.to_numpy(zero_copy_only=False)]] = True
    light = is_list & (lengths > 0) & ~any_child
    if light.any() and _EXPLICIT_CHILD_NULL.search(body):
        return None
    return (~is_list | light).tolist()

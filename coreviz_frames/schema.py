"""The declared schema of the five tables: the only place columns are declared.

One ordered Arrow schema per grain (``media``, ``frames``, ``captions``,
``objects``, ``tags``). The pandas dtypes, the Parquet files and the README's
column table all derive from these schemas, so a table never drifts with the
data: a zero-row table has exactly the columns and dtypes of a full one.

Type rules: ids and text are strings; integers that may be missing are
nullable (pandas ``Int64``); timestamps are tz-aware UTC with microsecond unit
(Spark rejects nanoseconds in Parquet); ``frame.timestamp`` is float seconds;
lists (polygons, moderation categories) keep their Arrow type.

Example:
    >>> from coreviz_frames.schema import SCHEMAS, pandas_dtypes
    >>> SCHEMAS["objects"].names[:3]
    ['object_id', 'frame_id', 'media_id']
    >>> str(pandas_dtypes("media")["width"])
    'Int64'
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import pyarrow as pa

from coreviz_frames._util.arrowmemory import table_pool

__all__ = [
    "API_FIELDS",
    "BOX_CONVENTION",
    "COLUMN_DOCS",
    "GRAINS",
    "KIND_TYPES",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "ApiField",
    "arrow_to_pandas",
    "empty_frame",
    "pandas_dtype",
]

#: Bumped whenever a column is added, removed, renamed or retyped.
SCHEMA_VERSION = 1

#: How the bbox_* columns are to be read (stored in every Parquet file's metadata).
BOX_CONVENTION = "coco_xywh_frame_pixels"

GRAINS: tuple[str, ...] = ("media", "frames", "captions", "objects", "tags")

_STR = pa.string()
_INT = pa.int64()
_FLOAT = pa.float64()
_TS = pa.timestamp("us", tz="UTC")
_POINT = pa.struct([pa.field("x", _FLOAT), pa.field("y", _FLOAT)])
_POLYGON = pa.list_(_POINT)
_STR_LIST = pa.list_(_STR)
#: The column type an API field of each kind (see :attr:`Column.kind`) is read into: the
#: one owner of these types for the exact and the Arrow flattening.
KIND_TYPES: dict[str, pa.DataType] = {
    "id": _STR,
    "str": _STR,
    "int": _INT,
    "float": _FLOAT,
    "ts": _TS,
    "strlist": _STR_LIST,
    "polygon": _POLYGON,
}


class Column(NamedTuple):
    """One declared column: name, Arrow type, nullability, description, API source.

    ``source`` is the API field the column is read from, under its API spelling,
    dotted for a field of a nested object (``"metadata.moderation.status"``);
    ``None`` for a column the flattening derives (ancestor ids, positions, counts,
    boxes, ``extra``). Adding an API field is one ``Column`` with a ``source``.

    Example:
        >>> Column("size_bytes", pa.int64(), True, "File size", "sizeBytes").kind
        'int'
    """

    name: str
    type: pa.DataType
    nullable: bool
    doc: str
    source: str | None = None

    @property
    def kind(self) -> str:
        """How a raw API value is read: ``id`` (string ids: UUIDs normalised), ``str``,
        ``int``, ``float``, ``ts`` (ISO-8601 text), ``strlist`` or ``polygon``."""
        t = self.type
        if pa.types.is_string(t):
            return "id" if self.name.endswith("_id") else "str"
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_floating(t):
            return "float"
        if pa.types.is_timestamp(t):
            return "ts"
        if pa.types.is_list(t):
            return "polygon" if pa.types.is_struct(t.value_type) else "strlist"
        raise TypeError(f"no reading rule for column {self.name!r} of type {t}")


class ApiField(NamedTuple):
    """A column read from an API field: ``(column, source, kind)`` (see :class:`Column`).

    Example:
        >>> API_FIELDS["objects"][-1]
        ApiField(column='polygon', source='polygon', kind='polygon')
    """

    column: str
    source: str
    kind: str


# Keys and ancestor ids come first, ``extra`` (unknown API fields as JSON text) always last.
_COLUMNS: dict[str, list[Column]] = {
    "media": [
        Column("media_id", _STR, False, "Media id (hyphen-less, lower-case if a UUID)", "id"),
        Column(
            "dataset_id", _STR, True, "Collection id (`datasetId`, else `dataset.id`)", "datasetId"
        ),
        Column("dataset_name", _STR, True, "Collection name (`dataset.name`)", "dataset.name"),
        Column(
            "organization_id",
            _STR,
            True,
            "Organization id (`dataset.organizationId`)",
            "dataset.organizationId",
        ),
        Column("name", _STR, True, "File name", "name"),
        Column("type", _STR, True, "`image`, `video` or `pdf`", "type"),
        Column("status", _STR, True, "`active`, `deleted`, ...", "status"),
        Column("blob", _STR, True, "Public URL of the original file (null if blocked)", "blob"),
        Column("path", _STR, True, "ltree path `collection.folder....media`", "path"),
        Column("folder_path", _STR, True, "ltree path of the containing folder"),
        Column("entity_id", _STR, True, "Legacy `entityId` (first API generation)", "entityId"),
        Column("width", _INT, True, "Width in pixels", "width"),
        Column("height", _INT, True, "Height in pixels", "height"),
        Column("duration", _FLOAT, True, "Video duration in seconds", "duration"),
        Column("size_bytes", _INT, True, "File size in bytes", "sizeBytes"),
        Column("created_at", _TS, True, "Creation time (UTC)", "createdAt"),
        Column("updated_at", _TS, True, "Last update time (UTC)", "updatedAt"),
        Column("created_by_id", _STR, True, "User who created the media", "createdById"),
        Column("updated_by_id", _STR, True, "User who last updated the media", "updatedById"),
        Column(
            "source_media_id", _STR, True, "Original media of a derived version", "sourceMediaId"
        ),
        Column("version_number", _INT, True, "Version number (1 for originals)", "versionNumber"),
        Column(
            "moderation_status",
            _STR,
            True,
            "`metadata.moderation.status`",
            "metadata.moderation.status",
        ),
        Column(
            "moderation_categories",
            _STR_LIST,
            True,
            "`metadata.moderation.categories`",
            "metadata.moderation.categories",
        ),
        Column(
            "moderated_at",
            _TS,
            True,
            "`metadata.moderation.moderatedAt` (UTC)",
            "metadata.moderation.moderatedAt",
        ),
        Column(
            "score",
            _FLOAT,
            True,
            "`_score` of a scored browse (`q`, `similarToObjectId`)",
            "_score",
        ),
        Column("frame_count", _INT, False, "Number of frames"),
        Column("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "frames": [
        Column("frame_id", _STR, False, "Frame id", "id"),
        Column("media_id", _STR, False, "Owning media"),
        Column("dataset_id", _STR, True, "Owning collection"),
        Column("frame_index", _INT, False, "Position of the frame in `media.frames`"),
        Column("timestamp", _FLOAT, True, "Seconds into the video (0 for images)", "timestamp"),
        Column("blob", _STR, True, "Processed frame URL", "blob"),
        Column("width", _INT, True, "Frame width in pixels", "width"),
        Column("height", _INT, True, "Frame height in pixels", "height"),
        Column("status", _STR, True, "Frame status", "status"),
        Column("created_at", _TS, True, "Creation time (UTC)", "createdAt"),
        Column("page_number", _INT, True, "PDF page number", "pageNumber"),
        Column("end_timestamp", _FLOAT, True, "End of the frame's span in seconds", "endTimestamp"),
        Column("thumbnail_blob", _STR, True, "Thumbnail URL (PDF pages)", "thumbnailBlob"),
        Column("text", _STR, True, "Extracted page text (PDF pages)", "text"),
        Column("caption_count", _INT, False, "Number of captions"),
        Column("object_count", _INT, False, "Number of detected objects"),
        Column("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "captions": [
        Column("caption_id", _STR, False, "Caption id", "id"),
        Column("frame_id", _STR, False, "Owning frame"),
        Column("media_id", _STR, False, "Owning media"),
        Column("dataset_id", _STR, True, "Owning collection"),
        Column("caption_index", _INT, False, "Position of the caption in `frame.captions`"),
        Column("timestamp", _FLOAT, True, "The frame's timestamp in seconds"),
        Column("text", _STR, True, "Caption text", "text"),
        Column("status", _STR, True, "Caption status", "status"),
        Column("created_at", _TS, True, "Creation time (UTC)", "createdAt"),
        Column("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "objects": [
        Column("object_id", _STR, False, "Detected object id (use with `similarToObjectId`)", "id"),
        Column("frame_id", _STR, False, "Owning frame"),
        Column("media_id", _STR, False, "Owning media"),
        Column("dataset_id", _STR, True, "Owning collection"),
        Column("object_index", _INT, False, "Position of the object in `frame.objects`"),
        Column("timestamp", _FLOAT, True, "The frame's timestamp in seconds"),
        Column("frame_width", _INT, True, "Width of the owning frame in pixels"),
        Column("frame_height", _INT, True, "Height of the owning frame in pixels"),
        Column("type", _STR, True, "`object`, `face`, `text`, ...", "type"),
        Column("label", _STR, True, "Detected label", "label"),
        Column("status", _STR, True, "Object status", "status"),
        Column("blob", _STR, True, 'Crop image URL (`""` becomes null)', "blob"),
        Column("polygon", _POLYGON, True, "Outline as a list of {x, y} in frame pixels", "polygon"),
        Column("bbox_x", _FLOAT, True, "COCO box left, frame pixels"),
        Column("bbox_y", _FLOAT, True, "COCO box top, frame pixels"),
        Column("bbox_w", _FLOAT, True, "COCO box width, frame pixels"),
        Column("bbox_h", _FLOAT, True, "COCO box height, frame pixels"),
        Column("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "tags": [
        Column("media_id", _STR, False, "Tagged media"),
        Column("dataset_id", _STR, True, "Owning collection"),
        Column("key", _STR, False, "Tag group (`metadata.tags` key)"),
        Column("value", _STR, False, "Tag value"),
    ],
}

#: grain -> its declared columns, in order.
COLUMNS: dict[str, tuple[Column, ...]] = {grain: tuple(cols) for grain, cols in _COLUMNS.items()}

SCHEMAS: dict[str, pa.Schema] = {
    grain: pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in cols])
    for grain, cols in COLUMNS.items()
}

#: grain -> column -> one-line description (for the README and docs).
COLUMN_DOCS: dict[str, dict[str, str]] = {
    grain: {c.name: c.doc for c in cols} for grain, cols in COLUMNS.items()
}

#: grain -> the columns read from an API field, in schema order (what flattening reads).
API_FIELDS: dict[str, tuple[ApiField, ...]] = {
    grain: tuple(ApiField(c.name, c.source, c.kind) for c in cols if c.source is not None)
    for grain, cols in COLUMNS.items()
}


def pandas_dtype(arrow_type: pa.DataType):
    """The pandas dtype a column of ``arrow_type`` has in every table.

    Example:
        >>> pandas_dtype(pa.int64())
        Int64Dtype()
    """
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow")
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_floating(arrow_type):
        return pd.api.types.pandas_dtype("float64")
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_timestamp(arrow_type):
        return pd.DatetimeTZDtype(unit=arrow_type.unit, tz=arrow_type.tz or "UTC")
    return pd.ArrowDtype(arrow_type)


def pandas_dtypes(grain: str) -> dict[str, object]:
    """Column name -> pandas dtype for ``grain``, in schema order."""
    return {field.name: pandas_dtype(field.type) for field in SCHEMAS[grain]}


def _types_mapper(arrow_type: pa.DataType):
    if pa.types.is_floating(arrow_type) or pa.types.is_timestamp(arrow_type):
        return None  # numpy float64 / datetime64[us, UTC] are pyarrow's own defaults
    return pandas_dtype(arrow_type)


def arrow_to_pandas(table: pa.Table, grain: str) -> pd.DataFrame:
    """Convert an Arrow table of ``grain`` to a DataFrame with the declared dtypes.

    Columns are cast to the declared schema and put in its order first, so
    the result never depends on the data.

    Example:
        >>> str(arrow_to_pandas(SCHEMAS["tags"].empty_table(), "tags").dtypes["key"])
        'string'
    """
    schema = SCHEMAS[grain]
    if table.schema != schema:
        table = table.select(schema.names).cast(schema)
    frame = table.to_pandas(
        memory_pool=table_pool(), types_mapper=_types_mapper, coerce_temporal_nanoseconds=False
    )
    for field in schema:
        if pa.types.is_timestamp(field.type) and frame[field.name].dtype != pandas_dtype(
            field.type
        ):
            frame[field.name] = frame[field.name].astype(pandas_dtype(field.type))
    return frame


def empty_frame(grain: str) -> pd.DataFrame:
    """A zero-row DataFrame of ``grain`` with every declared column and dtype."""
    return arrow_to_pandas(SCHEMAS[grain].empty_table(), grain)

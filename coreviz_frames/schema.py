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

import pandas as pd
import pyarrow as pa

__all__ = [
    "BOX_CONVENTION",
    "COLUMN_DOCS",
    "GRAINS",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "arrow_to_pandas",
    "empty_frame",
    "pandas_dtype",
    "pandas_dtypes",
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

# (name, arrow type, nullable, description). Keys and ancestor ids come first,
# ``extra`` (unknown API fields as JSON text) always last.
_COLUMNS: dict[str, list[tuple[str, pa.DataType, bool, str]]] = {
    "media": [
        ("media_id", _STR, False, "Media id (hyphen-less, lower-case if a UUID)"),
        ("dataset_id", _STR, True, "Collection id (`datasetId`, else `dataset.id`)"),
        ("dataset_name", _STR, True, "Collection name (`dataset.name`)"),
        ("organization_id", _STR, True, "Organization id (`dataset.organizationId`)"),
        ("name", _STR, True, "File name"),
        ("type", _STR, True, "`image`, `video` or `pdf`"),
        ("status", _STR, True, "`active`, `deleted`, ..."),
        ("blob", _STR, True, "Public URL of the original file (null if blocked)"),
        ("path", _STR, True, "ltree path `collection.folder....media`"),
        ("folder_path", _STR, True, "ltree path of the containing folder"),
        ("entity_id", _STR, True, "Legacy `entityId` (first API generation)"),
        ("width", _INT, True, "Width in pixels"),
        ("height", _INT, True, "Height in pixels"),
        ("duration", _FLOAT, True, "Video duration in seconds"),
        ("size_bytes", _INT, True, "File size in bytes"),
        ("created_at", _TS, True, "Creation time (UTC)"),
        ("updated_at", _TS, True, "Last update time (UTC)"),
        ("created_by_id", _STR, True, "User who created the media"),
        ("updated_by_id", _STR, True, "User who last updated the media"),
        ("source_media_id", _STR, True, "Original media of a derived version"),
        ("version_number", _INT, True, "Version number (1 for originals)"),
        ("moderation_status", _STR, True, "`metadata.moderation.status`"),
        ("moderation_categories", _STR_LIST, True, "`metadata.moderation.categories`"),
        ("moderated_at", _TS, True, "`metadata.moderation.moderatedAt` (UTC)"),
        ("score", _FLOAT, True, "`_score` of a scored browse (`q`, `similarToObjectId`)"),
        ("frame_count", _INT, False, "Number of frames"),
        ("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "frames": [
        ("frame_id", _STR, False, "Frame id"),
        ("media_id", _STR, False, "Owning media"),
        ("dataset_id", _STR, True, "Owning collection"),
        ("frame_index", _INT, False, "Position of the frame in `media.frames`"),
        ("timestamp", _FLOAT, True, "Seconds into the video (0 for images)"),
        ("blob", _STR, True, "Processed frame URL"),
        ("width", _INT, True, "Frame width in pixels"),
        ("height", _INT, True, "Frame height in pixels"),
        ("status", _STR, True, "Frame status"),
        ("created_at", _TS, True, "Creation time (UTC)"),
        ("page_number", _INT, True, "PDF page number"),
        ("end_timestamp", _FLOAT, True, "End of the frame's span in seconds"),
        ("thumbnail_blob", _STR, True, "Thumbnail URL (PDF pages)"),
        ("text", _STR, True, "Extracted page text (PDF pages)"),
        ("caption_count", _INT, False, "Number of captions"),
        ("object_count", _INT, False, "Number of detected objects"),
        ("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "captions": [
        ("caption_id", _STR, False, "Caption id"),
        ("frame_id", _STR, False, "Owning frame"),
        ("media_id", _STR, False, "Owning media"),
        ("dataset_id", _STR, True, "Owning collection"),
        ("caption_index", _INT, False, "Position of the caption in `frame.captions`"),
        ("timestamp", _FLOAT, True, "The frame's timestamp in seconds"),
        ("text", _STR, True, "Caption text"),
        ("status", _STR, True, "Caption status"),
        ("created_at", _TS, True, "Creation time (UTC)"),
        ("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "objects": [
        ("object_id", _STR, False, "Detected object id (use with `similarToObjectId`)"),
        ("frame_id", _STR, False, "Owning frame"),
        ("media_id", _STR, False, "Owning media"),
        ("dataset_id", _STR, True, "Owning collection"),
        ("object_index", _INT, False, "Position of the object in `frame.objects`"),
        ("timestamp", _FLOAT, True, "The frame's timestamp in seconds"),
        ("frame_width", _INT, True, "Width of the owning frame in pixels"),
        ("frame_height", _INT, True, "Height of the owning frame in pixels"),
        ("type", _STR, True, "`object`, `face`, `text`, ..."),
        ("label", _STR, True, "Detected label"),
        ("status", _STR, True, "Object status"),
        ("blob", _STR, True, 'Crop image URL (`""` becomes null)'),
        ("polygon", _POLYGON, True, "Outline as a list of {x, y} in frame pixels"),
        ("bbox_x", _FLOAT, True, "COCO box left, frame pixels"),
        ("bbox_y", _FLOAT, True, "COCO box top, frame pixels"),
        ("bbox_w", _FLOAT, True, "COCO box width, frame pixels"),
        ("bbox_h", _FLOAT, True, "COCO box height, frame pixels"),
        ("extra", _STR, True, "Unknown fields, as JSON text under their API spelling"),
    ],
    "tags": [
        ("media_id", _STR, False, "Tagged media"),
        ("dataset_id", _STR, True, "Owning collection"),
        ("key", _STR, False, "Tag group (`metadata.tags` key)"),
        ("value", _STR, False, "Tag value"),
    ],
}

SCHEMAS: dict[str, pa.Schema] = {
    grain: pa.schema([pa.field(name, typ, nullable=nullable) for name, typ, nullable, _ in cols])
    for grain, cols in _COLUMNS.items()
}

#: grain -> column -> one-line description (for the README and docs).
COLUMN_DOCS: dict[str, dict[str, str]] = {
    grain: {name: doc for name, _, _, doc in cols} for grain, cols in _COLUMNS.items()
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
    frame = table.to_pandas(types_mapper=_types_mapper, coerce_temporal_nanoseconds=False)
    for field in schema:
        if pa.types.is_timestamp(field.type) and frame[field.name].dtype != pandas_dtype(
            field.type
        ):
            frame[field.name] = frame[field.name].astype(pandas_dtype(field.type))
    return frame


def empty_frame(grain: str) -> pd.DataFrame:
    """A zero-row DataFrame of ``grain`` with every declared column and dtype."""
    return arrow_to_pandas(SCHEMAS[grain].empty_table(), grain)

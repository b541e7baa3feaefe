"""A grain's table in its declared Arrow schema: :func:`to_arrow`, :func:`as_grain_table`.

The one place a pandas grain table (or an Arrow table :mod:`.flatten` built) becomes the
Arrow table every writer stores: the columns and types :data:`coreviz_frames.schema.SCHEMAS`
declares, and the ``coreviz_frames`` schema-metadata entry (package version, schema
version, grain, box convention) every Parquet file carries (:func:`file_metadata`). A
column that is missing or does not fit is a :class:`~coreviz_frames.errors.SchemaError`
naming it. The exports and :meth:`MediaTables.to_arrow
<coreviz_frames.tables.media_tables.MediaTables.to_arrow>` use it.

Example:
    >>> from coreviz_frames.schema import empty_frame
    >>> table = to_arrow(empty_frame("media"), "media")
    >>> table.num_rows, METADATA_KEY.encode() in table.schema.metadata
    (0, True)
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from coreviz_frames._version import __version__
from coreviz_frames.errors import SchemaError
from coreviz_frames.schema import BOX_CONVENTION, SCHEMA_VERSION, SCHEMAS

__all__ = ["METADATA_KEY", "as_grain_table", "file_metadata", "to_arrow"]

#: Key of the JSON blob in every Parquet file's schema metadata.
METADATA_KEY = "coreviz_frames"


def file_metadata(grain: str) -> dict[bytes, bytes]:
    """The ``coreviz_frames`` schema-metadata entry every Parquet file of ``grain`` carries.

    Example:
        >>> json.loads(file_metadata("objects")[b"coreviz_frames"])["grain"]
        'objects'
    """
    blob = {
        "package_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "grain": grain,
        "box_convention": BOX_CONVENTION,
    }
    return {METADATA_KEY.encode(): json.dumps(blob, sort_keys=True).encode()}


def _bad_column(frame: pd.DataFrame, schema: pa.Schema) -> str | None:
    """The first column that does not fit ``schema`` (only on the error path)."""
    for f in schema:
        column = frame[f.name]
        if not f.nullable and column.isna().any():
            return f.name
        try:
            pa.Array.from_pandas(column, type=f.type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return f.name
    return None


def to_arrow(frame: pd.DataFrame, grain: str) -> pa.Table:
    """``frame`` as an Arrow table of the grain's declared schema, with the file metadata.

    A missing column or a value that does not fit is a :class:`SchemaError` naming the column.
    """
    schema = SCHEMAS[grain]
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"cannot write the {grain} table: it has no column {missing[0]!r}", field=missing[0]
        )
    try:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        bad = _bad_column(frame, schema)
        where = f"column {bad!r} of the {grain} table" if bad else f"the {grain} table"
        raise SchemaError(
            f"cannot write {where}: it does not fit the declared schema ({exc})", field=bad
        ) from exc
    return table.replace_schema_metadata(file_metadata(grain))


def as_grain_table(table: pd.DataFrame | pa.Table, grain: str) -> pa.Table:
    """``table`` ready to write: a DataFrame through :func:`to_arrow`; an Arrow table (what
    :func:`~coreviz_frames.tables.flatten.flatten` builds) checked against the grain's declared
    schema, with no pandas round trip. A mismatch is a :class:`SchemaError` naming the column.

    Example:
        >>> from coreviz_frames.schema import empty_frame
        >>> as_grain_table(to_arrow(empty_frame("tags"), "tags"), "tags").num_rows
        0
        >>> as_grain_table(pa.table({"media_id": ["m1"]}), "tags")
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.SchemaError: cannot write the tags table: ...
    """
    if not isinstance(table, pa.Table):
        return to_arrow(table, grain)
    schema = SCHEMAS[grain]
    if not table.schema.equals(schema):
        given = {f.name: f for f in table.schema}
        bad = next(
            (f.name for f in schema if f.name not in given or not given[f.name].equals(f)),
            next((name for name in given if name not in schema.names), None),
        )
        raise SchemaError(
            f"cannot write the {grain} table: its Arrow schema differs from the declared one "
            f"(first at column {bad!r})",
            field=bad,
        )
    return table.replace_schema_metadata(file_metadata(grain))

"""Small typed DataFrames for listings (hits, collections, tags, folders), as the tables are typed.

A listing is declared as ``(column, Arrow type)`` pairs and built from row dicts with the
dtypes of :func:`coreviz_frames.schema.pandas_dtype` (strings ``string[pyarrow]``, integers
``Int64``, floats ``float64``), so a zero-row listing has the same columns and dtypes as a
full one. Fields a listing does not know go, under their API spelling, into one JSON text
column ``extra`` (:func:`extra_json`), as they do for media. A listing is a
:class:`Listing`: a plain DataFrame whose notebook view is the package's compact table
(short ids with the full id in a tooltip, names first); anything derived from it (a
selection, a merge) is a plain DataFrame again.

Example:
    >>> import pyarrow as pa
    >>> df = typed_frame([("key", pa.string()), ("n", pa.int64())], [{"key": "a", "n": 1}])
    >>> [str(t) for t in df.dtypes], type(df).__name__, type(df[["key"]]).__name__
    (['string', 'Int64'], 'Listing', 'DataFrame')
    >>> extra_json({"id": "x", "icon": "🌷"}, known={"id"})
    '{"icon": "🌷"}'
    >>> fit_cell(2**70, pa.int64()), fit_cell(7, pa.string())
    ((False, None), (True, '7'))
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from coreviz_frames.schema import pandas_dtype
from coreviz_frames.tables.casting import text_array
from coreviz_frames.tables.preview import listing_html

__all__ = ["extra_json", "fit_cell", "typed_frame"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _types_mapper(arrow_type: pa.DataType) -> Any:
    if pa.types.is_floating(arrow_type) or pa.types.is_timestamp(arrow_type):
        return None  # numpy float64 / datetime64, as in the five tables
    return pandas_dtype(arrow_type)


class Listing(pd.DataFrame):
    """A DataFrame shown in notebooks in the package's compact style (see
    :mod:`coreviz_frames.tables.preview`); in every other way a plain DataFrame."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:  # a selection or a merge is plain again
        return pd.DataFrame

    def _repr_html_(self) -> str:
        return listing_html(self)


def typed_frame(
    columns: Sequence[tuple[str, pa.DataType]], rows: Sequence[Mapping[str, Any]]
) -> Listing:
    """A :class:`Listing` with exactly ``columns`` (in order, with their dtypes) from
    ``rows``; a key missing from a row is a null."""
    arrays = [text_array([row.get(name) for row in rows], typ) for name, typ in columns]
    table = pa.Table.from_arrays(arrays, names=[name for name, _ in columns])
    return Listing(table.to_pandas(types_mapper=_types_mapper))


def extra_json(item: Mapping[str, Any], *, known: Collection[str]) -> str | None:
    """The keys of ``item`` outside ``known``, as JSON text (None when there are none)."""
    extra = {key: value for key, value in item.items() if key not in known}
    return json.dumps(extra, ensure_ascii=False, default=str) if extra else None


def _finite(value: Any) -> float | None:
    """``value`` (an int or float, not a bool) as a finite float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int no float holds
        return None
    return number if math.isfinite(number) else None


def fit_cell(value: Any, arrow_type: pa.DataType) -> tuple[bool, Any]:
    """``(True, cell)`` if ``value`` fits a column of ``arrow_type``, else ``(False, None)``.

    None fits any column. A string column takes strings and finite numbers (as text); an
    integer column an int in int64's range; a float column a finite number. Anything else
    (an object, a list, ``10**400``, ``2**70`` for an integer) does not fit: the caller
    keeps it, raw, in ``extra``.
    """
    if value is None:
        return True, None
    if pa.types.is_string(arrow_type):
        if isinstance(value, str):
            return True, value
        if isinstance(value, int) or _finite(value) is not None:  # bool is an int
            return True, str(value)
        return False, None
    if pa.types.is_integer(arrow_type):
        ok = type(value) is int and _INT64_MIN <= value <= _INT64_MAX
        return (True, value) if ok else (False, None)
    if pa.types.is_floating(arrow_type):
        number = _finite(value)
        return (True, number) if number is not None else (False, None)
    return True, value

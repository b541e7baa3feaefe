"""Other forms of the typed tables: Polars (an optional extra) and CSV.

Example:
    >>> from coreviz_frames.schema import empty_frame
    >>> csv_frame(empty_frame("objects"))["polygon"].dtype
    dtype('O')
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyarrow as pa

from coreviz_frames._util.checks import is_missing
from coreviz_frames._util.fileio import atomic_writer
from coreviz_frames._util.optional import import_optional

__all__ = ["BACKENDS", "arrow_to_polars", "write_csv"]

#: What :func:`coreviz_frames.read_parquet` can return.
BACKENDS = ("pandas", "arrow", "polars")


def polars() -> ModuleType:
    """The ``polars`` module, imported on first use; MissingDependencyError with the hint.

    Example:
        >>> polars().__name__  # doctest: +SKIP
        'polars'
    """
    return import_optional("polars", extra="polars", purpose="Polars output")


def arrow_to_polars(table: pa.Table) -> Any:
    """An Arrow table as a Polars DataFrame (lists and structs kept, timestamps in UTC)."""
    return polars().from_arrow(table, rechunk=False)


def _json_cell(value: Any) -> str | None:
    if is_missing(value):
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every list or struct column as one-line JSON text (null stays empty).

    Example:
        >>> import pyarrow as pa
        >>> points = pa.array([[{"x": 1.0, "y": 2.0}]])
        >>> f = pd.DataFrame({"polygon": pd.Series(points, dtype=pd.ArrowDtype(points.type))})
        >>> csv_frame(f)["polygon"][0]
        '[{"x":1.0,"y":2.0}]'
    """
    out = frame.copy()
    for name in frame.columns:
        dtype = frame[name].dtype
        nested = isinstance(dtype, pd.ArrowDtype) and pa.types.is_nested(dtype.pyarrow_dtype)
        if nested:
            values = pa.array(frame[name]).to_pylist()
            out[name] = pd.Series([_json_cell(v) for v in values], index=frame.index, dtype=object)
    return out


def write_csv(frame: pd.DataFrame, target: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``target`` as UTF-8 CSV (atomically), lists as JSON text;
    timestamps are ISO-8601 with their UTC offset."""
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as fh:
        fh.write(csv_frame(frame).to_csv(index=False).encode("utf-8"))
    return path

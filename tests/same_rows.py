"""Shared by the export tests: do two sets of tables hold the same rows, in any order?

Each grain becomes an Arrow table sorted by the grain's key; two are the same when Arrow's
equality holds (every value, null and type). Only when they differ are the rows turned into
pandas frames, for a readable difference.

Example:
    >>> import pandas as pd
    >>> a = {"tags": pd.DataFrame({"media_id": ["m2", "m1"], "key": "k", "value": "v"})}
    >>> assert_same_rows(a, {"tags": a["tags"].iloc[::-1]}, grains=["tags"])
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa

from coreviz_frames.schema import GRAINS

__all__ = ["KEYS", "assert_same_rows", "rows_in_key_order"]

#: each grain's key (unique in a correct export): the order rows are compared in
KEYS = {
    "media": ["media_id"],
    "frames": ["frame_id"],
    "captions": ["caption_id"],
    "objects": ["object_id"],
    "tags": ["media_id", "key", "value"],
}


def rows_in_key_order(frame: pd.DataFrame, grain: str) -> pa.Table:
    """The frame's rows as an Arrow table in key order (a frame without columns: no rows)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    keys = [key for key in KEYS[grain] if key in table.column_names]
    return table.sort_by([(key, "ascending") for key in keys])


def assert_same_rows(a, b, grains: Iterable[str] = GRAINS) -> None:
    """``a[grain]`` and ``b[grain]`` hold the same rows, columns and types for every grain."""
    a, b = dict(a.items()), dict(b.items())
    for grain in grains:
        left, right = rows_in_key_order(a[grain], grain), rows_in_key_order(b[grain], grain)
        assert left.schema.equals(right.schema), f"{grain}: {left.schema} != {right.schema}"
        if not left.equals(right):
            pd.testing.assert_frame_equal(_text(left), _text(right), obj=grain)
            raise AssertionError(f"{grain}: the rows differ")


def _text(table: pa.Table) -> pd.DataFrame:
    """The rows as text, for a readable difference."""
    return table.to_pandas(ignore_metadata=True, types_mapper=pd.ArrowDtype).astype(str)

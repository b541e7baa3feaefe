"""MediaTables: the five typed DataFrames, and ``to_tables`` which builds them.

Example:
    >>> import coreviz_frames as cvf
    >>> tables = cvf.to_tables([])
    >>> tables.objects.columns[:3].tolist()
    ['object_id', 'frame_id', 'media_id']
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from .schema import GRAINS, empty_frame

__all__ = ["MediaTables", "to_tables"]


@dataclass(frozen=True)
class MediaTables:
    """The five grains of a set of media records, one DataFrame each.

    Every frame carries the ids of its ancestors, so no join is needed to group
    or filter; every DataFrame has the columns and dtypes of :mod:`.schema`.
    """

    media: pd.DataFrame
    frames: pd.DataFrame
    captions: pd.DataFrame
    objects: pd.DataFrame
    tags: pd.DataFrame

    @classmethod
    def empty(cls) -> MediaTables:
        """Zero rows in every grain, with the full schema and dtypes."""
        return cls(**{grain: empty_frame(grain) for grain in GRAINS})

    def items(self):
        """``(grain, DataFrame)`` pairs in schema order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def to_parquet(self, path, **options):
        """Write one directory per grain under ``path``; see :func:`coreviz_frames.parquet.write_tables`."""
        from .parquet import write_tables

        return write_tables(self, path, **options)


def to_tables(records, *, errors: str = "raise") -> MediaTables:
    """Flatten media records into :class:`MediaTables` (pure, no I/O)."""
    raise NotImplementedError("to_tables is being built")

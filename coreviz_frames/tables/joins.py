"""Joining two grains without ``_x``/``_y`` columns.

The grains share column names (``type``, ``status``, ``blob``, ``extra``, ``created_at``,
...), so a bare ``objects.merge(media, on="media_id")`` gives ``type_x``/``type_y`` next to
the real ``bbox_x``/``bbox_y``. :func:`join_grains` joins on the right id and gives the
right grain's clashing columns its grain as a prefix (``media_type``, ``media_status``);
the ancestor ids both sides carry (``media_id``, ``frame_id``, ``dataset_id``) are equal
by construction and kept once.

Example:
    >>> join_key("objects", "media"), join_key("objects", "frames"), join_key("tags", "objects")
    ('media_id', 'frame_id', 'media_id')
    >>> prefix_for("frames")
    'frame_'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from coreviz_frames.errors import ConfigError
from coreviz_frames.schema import GRAINS, SCHEMAS

__all__ = ["join_grains", "join_key", "prefix_for"]

#: The id column that names one row of each grain (tags have none of their own).
_OWN_ID = {
    "media": "media_id",
    "frames": "frame_id",
    "captions": "caption_id",
    "objects": "object_id",
}
_ANCESTOR_IDS = ("media_id", "frame_id", "dataset_id")
_HOW = ("left", "inner", "right", "outer")


def prefix_for(grain: str) -> str:
    """The prefix given to ``grain``'s clashing columns: ``media_``, ``frame_``, ``tag_``, ..."""
    return grain.rstrip("s") + "_"


def join_key(left: str, right: str) -> str:
    """The column ``left`` and ``right`` are joined on: the most specific shared id."""
    for grain in (right, left):
        own = _OWN_ID.get(grain)
        if own and own in SCHEMAS[left].names and own in SCHEMAS[right].names:
            return own
    shared = [c for c in ("frame_id", "media_id") if c in SCHEMAS[left].names]
    return next(c for c in shared if c in SCHEMAS[right].names)


def _check(left: str, right: str, how: str) -> None:
    for name in (left, right):
        if name not in GRAINS:
            raise ConfigError(f"unknown grain {name!r}; choose from {', '.join(GRAINS)}")
    if left == right:
        raise ConfigError(f"join {left!r} with another grain, not with itself")
    if how not in _HOW:
        raise ConfigError(f"how={how!r}: choose one of {', '.join(_HOW)}")


def _right_columns(
    left: str, right: str, key: str, columns: Sequence[str] | None
) -> dict[str, str]:
    """Right column -> its name in the result (the key and shared ancestor ids left out)."""
    names = SCHEMAS[right].names
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ConfigError(f"columns: the {right} table has no column {unknown[0]!r}")
    chosen = [c for c in (names if columns is None else columns) if c != key]
    taken = set(SCHEMAS[left].names)
    renamed: dict[str, str] = {}
    for column in chosen:
        if column in taken and column in _ANCESTOR_IDS:
            continue  # equal on both sides for joined rows: kept once, from the left
        name = column
        if name in taken:
            name = prefix_for(right) + column
            if name in taken:
                name = f"{right}_{column}"
        renamed[column] = name
        taken.add(name)
    return renamed


def join_grains(
    frames: Mapping[str, pd.DataFrame],
    left: str,
    right: str,
    *,
    how: str = "left",
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``left`` joined with ``right`` on their shared id, clashing right columns prefixed.

    ``how="left"`` (the default) keeps every ``left`` row once when ``right`` is one of its
    ancestors (``objects`` with ``frames`` or ``media``): the result has ``left``'s row
    count. ``columns`` limits the ``right`` columns brought in (the key is always used).

    Example:
        >>> from coreviz_frames.tables.media_tables import MediaTables
        >>> t = MediaTables.empty()
        >>> joined = join_grains(dict(t.items()), "objects", "media", columns=["type", "name"])
        >>> joined.columns[-2:].tolist()
        ['media_type', 'name']
    """
    _check(left, right, how)
    key = join_key(left, right)
    renamed = _right_columns(left, right, key, columns)
    other = frames[right][[key, *renamed]].rename(columns=renamed)
    validate: Any  # one of pandas' literal spellings
    if key == _OWN_ID.get(right):
        validate = "many_to_one"
    elif key == _OWN_ID.get(left):
        validate = "one_to_many"
    else:
        validate = "many_to_many"
    merge_how: Any = how  # checked against _HOW above
    return frames[left].merge(other, on=key, how=merge_how, validate=validate, sort=False)

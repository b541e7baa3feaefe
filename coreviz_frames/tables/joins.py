"""Joining two grains, with every column saying where it came from.

The grains share column names (``type``, ``status``, ``blob``, ``width``, ``extra``,
``created_at``, ...), so a bare ``objects.merge(media, on="media_id")`` gives ``type_x``/
``type_y`` next to the real ``bbox_x``/``bbox_y``. :func:`join_grains` joins on the right
id with **one rule**: the left grain's columns keep their names; every column of the right
grain is prefixed with its singular name (``media_width``, ``media_type``, ``object_label``,
``tag_value``), except the ids (``media_id``, ``frame_id``, ``object_id``, ...: the same
thing on both sides, kept once) and columns already starting with that prefix
(``object_index``). Should the prefixed name still be a left column (objects carry
``frame_width``), the plural grain name is used instead (``frames_width``).

A join whose right grain is not an ancestor of the left one repeats left rows (a media
once per object; an object once per caption of its frame). That is refused unless
``validate=`` (pandas' spelling: ``"one_to_many"``, ``"many_to_many"``, ...) says it is
expected; pandas then checks the data against it.

Example:
    >>> join_key("objects", "media"), join_key("objects", "frames"), join_key("tags", "objects")
    ('media_id', 'frame_id', 'media_id')
    >>> prefix_for("frames")
    'frame_'
    >>> relation("objects", "media"), relation("media", "objects"), relation("objects", "captions")
    ('many_to_one', 'one_to_many', 'many_to_many')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from coreviz_frames.errors import ConfigError
from coreviz_frames.schema import GRAINS, SCHEMAS

__all__ = ["join_grains"]

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
    """The prefix of ``grain``'s columns in a join: ``media_``, ``frame_``, ``tag_``, ..."""
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


#: pandas' spellings of ``validate=``, by the relation each names.
_VALIDATE = {
    "one_to_one": "one_to_one",
    "1:1": "one_to_one",
    "one_to_many": "one_to_many",
    "1:m": "one_to_many",
    "many_to_one": "many_to_one",
    "m:1": "many_to_one",
    "many_to_many": "many_to_many",
    "m:m": "many_to_many",
}


def _is_id(column: str) -> bool:
    return column == "dataset_id" or column in _OWN_ID.values()


def _right_columns(
    left: str, right: str, key: str, columns: Sequence[str] | None
) -> dict[str, str]:
    """Right column -> its name in the result (the key and shared ids left out)."""
    names = SCHEMAS[right].names
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ConfigError(f"columns: the {right} table has no column {unknown[0]!r}")
    chosen = [c for c in (names if columns is None else columns) if c != key]
    taken = set(SCHEMAS[left].names)
    prefix = prefix_for(right)
    renamed: dict[str, str] = {}
    for column in chosen:
        if _is_id(column):
            if column in taken:
                continue  # equal on both sides for joined rows: kept once, from the left
            name = column
        else:
            name = column if column.startswith(prefix) else prefix + column
            if name in taken:
                name = f"{right}_{column}"
        renamed[column] = name
        taken.add(name)
    return renamed


def relation(left: str, right: str) -> str:
    """How rows of ``left`` and ``right`` pair up on :func:`join_key`, in pandas' words:
    ``many_to_one`` (``right`` is an ancestor: each left row once), ``one_to_many`` or
    ``many_to_many`` (left rows repeated)."""
    key = join_key(left, right)
    if key == _OWN_ID.get(right):
        return "many_to_one"
    if key == _OWN_ID.get(left):
        return "one_to_many"
    return "many_to_many"


def _validate(left: str, right: str, validate: str | None) -> str:
    """The ``validate`` pandas checks; a join that repeats rows needs it said."""
    if validate is not None:
        if validate not in _VALIDATE:
            raise ConfigError(
                f"validate={validate!r}: choose one of {', '.join(sorted(set(_VALIDATE.values())))}"
            )
        return _VALIDATE[validate]
    pairing = relation(left, right)
    if pairing != "many_to_one":
        reverse = (
            f", or join({right!r}, {left!r}) for one row per {right} row"
            if pairing == "one_to_many"
            else ""
        )
        raise ConfigError(
            f"join({left!r}, {right!r}) is {pairing} on {join_key(left, right)}: a row of "
            f"{left} comes once per matching row of {right}, so {left} rows repeat. Pass "
            f"validate={pairing!r} if that is what you want{reverse}"
        )
    return pairing


def join_grains(
    frames: Mapping[str, pd.DataFrame],
    left: str,
    right: str,
    *,
    how: str = "left",
    columns: Sequence[str] | None = None,
    validate: str | None = None,
) -> pd.DataFrame:
    """``left`` joined with ``right`` on their shared id, the right grain's columns prefixed
    with its name (see the module doc).

    ``how="left"`` (the default) keeps every ``left`` row once when ``right`` is one of its
    ancestors (``objects`` with ``frames`` or ``media``): the result has ``left``'s row
    count. Any other pairing repeats rows and needs ``validate=``. ``columns`` limits the
    ``right`` columns brought in (the key is always used). Data that breaks ``validate``
    is a :class:`~coreviz_frames.errors.ConfigError` saying so.

    Example:
        >>> from coreviz_frames.tables.media_tables import MediaTables
        >>> t = MediaTables.empty()
        >>> joined = join_grains(dict(t.items()), "objects", "media", columns=["type", "name"])
        >>> joined.columns[-2:].tolist()
        ['media_type', 'media_name']
    """
    _check(left, right, how)
    key = join_key(left, right)
    checked: Any = _validate(left, right, validate)  # one of pandas' literal spellings
    renamed = _right_columns(left, right, key, columns)
    other = frames[right][[key, *renamed]].rename(columns=renamed)
    merge_how: Any = how  # checked against _HOW above
    try:
        return frames[left].merge(other, on=key, how=merge_how, validate=checked, sort=False)
    except pd.errors.MergeError as exc:
        raise ConfigError(
            f"join({left!r}, {right!r}, validate={validate!r}): the data is not "
            f"{checked} on {key} ({str(exc).splitlines()[0]})"
        ) from exc

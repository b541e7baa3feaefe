"""Subsets across the five grains: which media match, and every grain restricted to them.

A selection is made of media: :func:`matching_media` finds the media that have an object
with a label or type, a tag value, a caption holding some text, a media type, or any row of
a grain that a predicate accepts; :func:`restrict` keeps, in every grain, the rows of those
media (and only them), in their order. So ``tables.where(label="shoe")`` keeps the media
with a shoe, and *all* their frames, captions, objects (the shoe and the rest) and tags:
the five tables still agree with each other. Criteria combine with AND; a list of values
inside one criterion with OR (as the API's ``tagFilters``: AND between keys, OR within one).

Example:
    >>> import pandas as pd
    >>> frames = {"media": pd.DataFrame({"media_id": ["m1", "m2"], "type": ["image", "video"]}),
    ...           "objects": pd.DataFrame({"media_id": ["m1", "m2", "m2"],
    ...                                    "label": ["cat", "shoe", "dog"]})}
    >>> sorted(matching_media(frames, label="shoe"))
    ['m2']
    >>> restrict(frames, {"m2"})["objects"].label.tolist()
    ['shoe', 'dog']
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import pandas as pd

from coreviz_frames._util.ids import normalize_id
from coreviz_frames.errors import ConfigError, CorevizWarning
from coreviz_frames.schema import GRAINS

__all__ = ["GrainPredicate", "matching_media", "media_ids_of", "restrict"]

#: A predicate on one grain: a callable taking the grain's DataFrame and returning a boolean
#: Series (``lambda o: o.bbox_w > 100``), or a ``DataFrame.eval`` expression (``"bbox_w > 100"``).
GrainPredicate = Callable[[pd.DataFrame], Any] | str


def _values(name: str, value: str | Iterable[str]) -> list[str]:
    """One value or several, as a list (a single string is one value, not its letters)."""
    values = [value] if isinstance(value, str) else list(value)
    if not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{name}= takes a string or a list of strings, not {value!r}")
    return values


def _ids(frame: pd.DataFrame, mask: Any) -> set[str]:
    mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool)
    return set(frame.loc[mask, "media_id"].dropna().tolist())


def _predicate_mask(grain: str, frame: pd.DataFrame, predicate: GrainPredicate) -> pd.Series:
    """The rows of ``frame`` the predicate accepts, as a boolean Series on its index."""
    try:
        result: Any = frame.eval(predicate) if isinstance(predicate, str) else predicate(frame)
    except Exception as exc:  # the user's code or expression: named, not a raw traceback
        raise ConfigError(f"{grain}= predicate failed on the {grain} table: {exc!r}") from exc
    boolean = isinstance(result, pd.Series) and (
        result.dtype == bool or str(result.dtype) in ("boolean", "bool[pyarrow]")
    )
    if boolean and len(result) == len(frame):
        return pd.Series(result.to_numpy(dtype=bool, na_value=False), index=frame.index)
    raise ConfigError(
        f"{grain}= must give one True/False per row of the {grain} table (a boolean Series "
        f"of {len(frame)} rows), not {type(result).__name__}"
    )


def _tag_ids(tags: pd.DataFrame, tag_filters: Mapping[str, str | Iterable[str]]) -> set[str]:
    """Media having, for every key, one of its values (AND between keys, OR within one)."""
    if not isinstance(tag_filters, Mapping) or not tag_filters:
        raise ConfigError(
            f"tag_filters= takes a non-empty dict of key -> values, not {tag_filters!r}"
        )
    known = set(tags["key"].dropna().tolist())
    absent = [key for key in tag_filters if key not in known]
    if absent:
        warnings.warn(
            f"tag_filters: no media has a tag key {absent[0]!r}, so nothing matches; the tag "
            f"keys of these tables are: {', '.join(sorted(known)) or 'none'}",
            CorevizWarning,
            stacklevel=4,
        )
    found: set[str] | None = None
    for key, value in tag_filters.items():
        rows = (tags["key"] == key) & tags["value"].isin(_values(f"tag_filters[{key!r}]", value))
        ids = _ids(tags, rows)
        found = ids if found is None else found & ids
    return found or set()


def _criteria_masks(
    frames: Mapping[str, pd.DataFrame],
    label: Any,
    object_type: Any,
    caption: str | None,
    media_type: Any,
) -> list[tuple[str, Any]]:
    """``(grain, row mask)`` of each criterion given by name."""
    masks: list[tuple[str, Any]] = []
    if label is not None:
        masks.append(("objects", frames["objects"]["label"].isin(_values("label", label))))
    if object_type is not None:
        types = _values("object_type", object_type)
        masks.append(("objects", frames["objects"]["type"].isin(types)))
    if media_type is not None:
        masks.append(("media", frames["media"]["type"].isin(_values("media_type", media_type))))
    if caption is not None:
        if not isinstance(caption, str) or not caption:
            raise ConfigError(f"caption= takes a non-empty text, not {caption!r}")
        text = frames["captions"]["text"].astype("string")
        masks.append(("captions", text.str.contains(caption, case=False, regex=False)))
    return masks


def matching_media(
    frames: Mapping[str, pd.DataFrame],
    *,
    label: str | Iterable[str] | None = None,
    object_type: str | Iterable[str] | None = None,
    tag_filters: Mapping[str, str | Iterable[str]] | None = None,
    caption: str | None = None,
    media_type: str | Iterable[str] | None = None,
    predicates: Mapping[str, GrainPredicate] | None = None,
) -> set[str]:
    """The media ids meeting every criterion given (see the module doc).

    ``label``/``object_type``: one of the media's objects has it; ``tag_filters``: for each
    key, the media has one of its values; ``caption``: one caption holds the text (case
    ignored, not a pattern); ``media_type``: the media's ``type``; ``predicates``:
    ``{grain: predicate}``, a row of that grain accepted by it. No criterion: every media.
    A ``tag_filters`` key no media has warns with the keys there are.
    """
    found = set(frames["media"]["media_id"].dropna().tolist())
    masks = _criteria_masks(frames, label, object_type, caption, media_type)
    for grain, predicate in (predicates or {}).items():
        if grain not in GRAINS:
            raise ConfigError(f"unknown grain {grain!r}; choose from {', '.join(GRAINS)}")
        masks.append((grain, _predicate_mask(grain, frames[grain], predicate)))
    for grain, mask in masks:
        found &= _ids(frames[grain], mask)
    if tag_filters is not None:
        found &= _tag_ids(frames["tags"], tag_filters)
    return found


def media_ids_of(media_ids: Iterable[str] | pd.Series | pd.Index) -> set[str]:
    """``media_ids`` normalised as the tables store them (a hyphenated UUID as plain hex)."""
    if isinstance(media_ids, str):
        raise ConfigError("media_ids= takes a list of ids, not a single string")
    ids = set()
    for value in media_ids:
        if not isinstance(value, str):
            raise ConfigError(f"media_ids= holds {value!r}, which is not an id (a string)")
        ids.add(normalize_id(value) or value)
    return ids


def restrict(frames: Mapping[str, pd.DataFrame], media_ids: Collection[str]) -> dict[str, Any]:
    """Every grain of ``frames`` with only the rows of ``media_ids``, in their order, each
    with a fresh ``RangeIndex`` (as :func:`~coreviz_frames.tables.media_tables.to_tables`
    builds them)."""
    wanted = list(media_ids)
    out = {}
    for grain, frame in frames.items():
        keep = frame["media_id"].isin(wanted).fillna(False).astype(bool)
        out[grain] = frame.loc[keep].reset_index(drop=True)
    return out

"""Browse filters as one frozen, validated value: :class:`BrowseFilters`.

The filters and sort order of ``GET /api/dataset/{id}/media`` are validated and encoded into
query parameters here, once; :meth:`Client.browse <coreviz_frames.api.client.Client.browse>`,
``iter_pages``, ``fetch_page``, ``iter_range``, the Dask readers and ``coreviz-frames export``
all take this value (``browse(...)``'s keyword arguments build it).

Example:
    >>> f = BrowseFilters(type="image", tag_filters={"color": ["red", "blue"]},
    ...                   date_from="2024-01-31")
    >>> f.to_params()["tagFilters"], f.to_params()["dateFrom"]
    ('{"color":["red","blue"]}', '2024-01-31')
    >>> BrowseFilters(sort_direction="up")
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.ConfigError: sort_direction must be one of 'asc', 'desc', not 'up'
    >>> folder_path_problem("a b/../c", "c1")  # doctest: +ELLIPSIS
    "path 'a b/../c' is not a folder path: ..."
    >>> folder_path_problem("c2.f1", "c1")  # doctest: +ELLIPSIS
    "path 'c2.f1' is outside collection 'c1': ..."
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any, TypedDict

from coreviz_frames._util.checks import check_choice
from coreviz_frames._util.ids import normalize_id, validate_id
from coreviz_frames.errors import ConfigError

__all__ = ["BrowseFilterArgs", "BrowseFilters", "folder_path_problem", "walk_source"]

#: The embedding models ``similar_to_object_model`` may name (``similarToObjectModel``).
SIMILARITY_MODELS = ("faces", "objects", "shoeprints")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: A folder path: an ltree of labels (letters, digits, ``_``, ``-``) joined by dots.
_LTREE = re.compile(r"[A-Za-z0-9_-]{1,1000}(?:\.[A-Za-z0-9_-]{1,1000})*")


def _same_id(a: str, b: str) -> bool:
    """Whether two spellings name one id (hyphens and case of a UUID aside)."""
    return (normalize_id(a) or a).lower() == (normalize_id(b) or b).lower()


def folder_path_problem(path: str, collection_id: str | None = None) -> str | None:
    """What is wrong with ``path`` as a folder path (of ``collection_id``), or None.

    A folder path is the ltree the API gives in a folder's ``path``: ids joined by dots,
    starting with the collection's id (``COLLECTION_ID.FOLDER_ID``). A file-system path
    (``a/b``, ``..``, spaces) is not one; nor is a path under another collection.
    """
    if not _LTREE.fullmatch(path):
        return (
            f"path {path!r} is not a folder path: use the ltree the API gives in a folder's "
            "'path' (ids joined by dots, like COLLECTION_ID.FOLDER_ID), with no '/', '..' "
            "or spaces"
        )
    root = path.split(".", 1)[0]
    if collection_id is not None and not _same_id(root, collection_id):
        return (
            f"path {path!r} is outside collection {collection_id!r}: a folder path starts "
            "with its collection's id"
        )
    return None


def _date_param(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise ConfigError(f"{name} must be a datetime.date or 'YYYY-MM-DD', not {value!r}")


def _tag_filters_param(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"tag_filters must be a mapping of tag -> values, not {value!r}")
    norm = {str(k): [v] if isinstance(v, str) else [str(x) for x in v] for k, v in value.items()}
    return json.dumps(norm, separators=(",", ":"), ensure_ascii=False)


def _min_score(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"min_score must be a finite number, not {value!r}")
    return float(value)


def _optional_str(value: object, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {value!r}")
    return value


@dataclass(frozen=True)
class BrowseFilters:
    """What a collection walk selects and in which order; validated when built.

    ``path`` (ltree folder), ``recursive``, ``type`` (``image``/``video``/...),
    ``tag_filters`` (``{"color": ["red", "blue"]}``, kept as its JSON encoding),
    ``date_from``/``date_to`` (``date`` or ``"YYYY-MM-DD"``, kept as the string), ``q``
    (semantic search), ``similar_to_object_id``, ``sort_by`` and ``sort_direction``
    (``"asc"``/``"desc"``); ``similar_to_object_model`` (one of :data:`SIMILARITY_MODELS`),
    ``cluster_id`` (items whose objects belong to that cluster), ``media_id`` (only that
    media) and ``min_score`` (the least ``_score`` of a scored browse), sent only when
    given. Hashable, picklable, comparable; a bad value raises
    :class:`~coreviz_frames.errors.ConfigError` (or ``InvalidIdError``) naming the field.

    Example:
        >>> BrowseFilters(type="video").to_params()
        {'recursive': 'true', 'type': 'video', 'sortBy': 'createdAt', 'sortDirection': 'asc'}
        >>> BrowseFilters.build(None, q="red shoe").q
        'red shoe'
    """

    path: str | None = None
    recursive: bool = True
    type: str | None = None
    tag_filters: Mapping[str, str | Sequence[str]] | str | None = None
    date_from: date | str | None = None
    date_to: date | str | None = None
    q: str | None = None
    similar_to_object_id: str | None = None
    sort_by: str | None = "createdAt"
    sort_direction: str | None = "asc"
    similar_to_object_model: str | None = None
    cluster_id: str | None = None
    media_id: str | None = None
    min_score: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("path", "type", "q", "sort_by"):
            set_(self, name, _optional_str(getattr(self, name), name))
        problem = None if self.path is None else folder_path_problem(self.path)
        if problem is not None:
            raise ConfigError(problem)
        if not isinstance(self.recursive, bool):
            raise ConfigError(f"recursive must be True or False, not {self.recursive!r}")
        set_(self, "tag_filters", _tag_filters_param(self.tag_filters))
        set_(self, "date_from", _date_param(self.date_from, "date_from"))
        set_(self, "date_to", _date_param(self.date_to, "date_to"))
        if self.similar_to_object_id is not None:
            validate_id(self.similar_to_object_id, kind="object id")
        if self.cluster_id is not None:
            validate_id(self.cluster_id, kind="cluster id")
        if self.media_id is not None:
            validate_id(self.media_id, kind="media id")
        model = self.similar_to_object_model
        if model is not None:
            check_choice("similar_to_object_model", model, SIMILARITY_MODELS)
        set_(self, "min_score", _min_score(self.min_score))
        if self.sort_direction is not None:
            check_choice("sort_direction", self.sort_direction, ("asc", "desc"))

    @classmethod
    def build(cls, filters: BrowseFilters | None = None, **kwargs: Any) -> BrowseFilters:
        """``filters`` (or the defaults) with ``kwargs`` applied; unknown names are refused.

        Example:
            >>> BrowseFilters.build(BrowseFilters(type="image"), path="col.a").path
            'col.a'
        """
        if filters is not None and not isinstance(filters, BrowseFilters):
            raise ConfigError(f"filters must be a BrowseFilters, not {type(filters).__name__}")
        unknown = set(kwargs) - set(FILTER_NAMES)
        if unknown:
            raise ConfigError(
                f"unknown browse filters {sorted(unknown)}; use {sorted(FILTER_NAMES)}"
            )
        base = filters if filters is not None else cls()
        return replace(base, **kwargs) if kwargs else base

    def to_params(self) -> dict[str, str]:
        """The query parameters of ``GET /api/dataset/{id}/media`` (unset filters left out)."""
        candidates: dict[str, Any] = {
            "path": self.path,
            "recursive": "true" if self.recursive else None,
            "type": self.type,
            "tagFilters": self.tag_filters,
            "dateFrom": self.date_from,
            "dateTo": self.date_to,
            "q": self.q,
            "similarToObjectId": self.similar_to_object_id,
            "sortBy": self.sort_by,
            "sortDirection": self.sort_direction,
            "similarToObjectModel": self.similar_to_object_model,
            "clusterId": self.cluster_id,
            "mediaId": self.media_id,
            "minScore": None if self.min_score is None else repr(self.min_score),
        }
        return {k: str(v) for k, v in candidates.items() if v is not None}

    def tag_filters_problem(self, catalogue: Mapping[str, Sequence[str]]) -> str | None:
        """Why ``tag_filters`` cannot match in a collection whose tags are ``catalogue``
        (``{key: values}``, as ``client.tag_catalogue`` lists them), or None if they can.

        Example:
            >>> f = BrowseFilters(tag_filters={"label": "rocket"})
            >>> f.tag_filters_problem({"color": ["red"], "subject": ["space"]})
            "tag_filters key 'label' is not a tag key of the collection; its keys: color, subject"
        """
        if not isinstance(self.tag_filters, str):
            return None
        try:
            wanted = json.loads(self.tag_filters)
        except ValueError:
            return None  # a pre-encoded value the API judges
        if not isinstance(wanted, Mapping):
            return None
        for key, values in wanted.items():
            if key not in catalogue:
                keys = ", ".join(sorted(catalogue)) or "none"
                return (
                    f"tag_filters key {key!r} is not a tag key of the collection; its keys: {keys}"
                )
            values = [values] if isinstance(values, str) else list(values)
            if not set(values) & set(catalogue[key]):
                known = ", ".join(sorted(map(str, catalogue[key])))
                return (
                    f"tag_filters {key!r}: no media has the value {values[0]!r}; the values of "
                    f"{key!r}: {known}"
                )
        return None

    def to_dict(self) -> dict[str, Any]:
        """The filters that differ from the defaults (for a manifest's ``source``).

        Example:
            >>> BrowseFilters(type="image", recursive=False).to_dict()
            {'recursive': False, 'type': 'image'}
        """
        default = BrowseFilters()
        return {
            name: getattr(self, name)
            for name in FILTER_NAMES
            if getattr(self, name) != getattr(default, name)
        }


class BrowseFilterArgs(TypedDict, total=False):
    """The keyword arguments that build a :class:`BrowseFilters` (for ``**filter_kwargs``)."""

    path: str | None
    recursive: bool
    type: str | None
    tag_filters: Mapping[str, str | Sequence[str]] | str | None
    date_from: date | str | None
    date_to: date | str | None
    q: str | None
    similar_to_object_id: str | None
    sort_by: str | None
    sort_direction: str | None
    similar_to_object_model: str | None
    cluster_id: str | None
    media_id: str | None
    min_score: float | None


#: The field names of :class:`BrowseFilters`, in declaration order.
FILTER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(BrowseFilters))


def walk_source(
    base_url: str | None, collection_id: str | None, filters: BrowseFilters | None = None
) -> dict[str, Any]:
    """What a walk reads, as an export's manifest records it (its ``source``; never a
    credential): the one spelling for ``browse``, ``sync``, Dask and the CLI.

    Example:
        >>> walk_source("https://h/api", "c1", BrowseFilters(type="image"))
        {'base_url': 'https://h/api', 'collection_id': 'c1', 'filters': {'type': 'image'}}
    """
    return {
        "base_url": base_url,
        "collection_id": collection_id,
        "filters": filters.to_dict() if filters is not None else {},
    }

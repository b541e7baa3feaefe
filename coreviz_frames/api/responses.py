"""The shape of an API answer: the one check that a response holds what a read needs.

Every read names what it asked for (``what``, e.g. ``"collection 'c1'"``) and where
(``url``); a body without the expected object, or list of objects, is an
:class:`~coreviz_frames.errors.InvalidResponseError` saying both and the keys it had.

Example:
    >>> objects_at({"datasets": [{"id": "c1"}]}, "datasets", what="collections", url="u")
    [{'id': 'c1'}]
    >>> try:
    ...     object_at({"id": "c1"}, "dataset", what="collection 'c1'", url="https://h/api/c1")
    ... except InvalidResponseError as exc:
    ...     print(exc)
    GET collection 'c1' (https://h/api/c1): the response has no 'dataset' object (keys: ['id'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coreviz_frames.errors import InvalidResponseError
from coreviz_frames.http.urls import safe_url

__all__ = ["object_at", "objects_at", "shape_error"]


def shape_error(
    what: str, url: str, problem: str, *, media_id: str | None = None
) -> InvalidResponseError:
    """The error for a response of the wrong shape: ``GET what (url): problem``."""
    return InvalidResponseError(
        f"GET {what} ({safe_url(url)}): {problem}", url=url, media_id=media_id
    )


def _keys(body: Mapping[str, Any]) -> str:
    return f"(keys: {sorted(body)[:8]})"


def object_at(
    body: Mapping[str, Any], key: str, *, what: str, url: str, media_id: str | None = None
) -> dict[str, Any]:
    """``body[key]``, checked to be a JSON object."""
    value = body.get(key)
    if not isinstance(value, dict):
        problem = f"the response has no {key!r} object {_keys(body)}"
        raise shape_error(what, url, problem, media_id=media_id)
    return value


def objects_at(
    body: Mapping[str, Any], key: str, *, what: str, url: str, media_id: str | None = None
) -> list[dict[str, Any]]:
    """``body[key]``, checked to be a list of JSON objects."""
    items = body.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        problem = f"the response has no {key!r} list of objects {_keys(body)}"
        raise shape_error(what, url, problem, media_id=media_id)
    return items

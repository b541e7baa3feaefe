"""Finding things before exporting them: user, organisations, collections, tag catalogue,
versions, folders, similar objects and organisation-wide search.

Each client makes one :class:`Catalogue` on its first catalogue read and keeps it; it sends
these reads through the
client's :class:`~coreviz_frames.http.transport.Transport` (same retries, timeouts, credentials and
error translation as Get Media) and caches ``GET /api/me``: the default organisation of
:meth:`Catalogue.search` and :meth:`Catalogue.collections` costs one request per client,
not one per call. Listings are typed DataFrames (:mod:`coreviz_frames.tables.listings`)
whose unknown fields land, under their API spelling, in an ``extra`` JSON column.
:func:`folder_frame` types the folder rows of a walk the client made. Nothing here
knows the client: the client imports this module, never the other way round.

Example:
    >>> cat = Catalogue(transport)                      # what Client.collections() uses
    >>> cat.collections()[["collection_id", "name"]]
    >>> cat.tag_catalogue("COLLECTION_ID").groupby("key").value.apply(list)
    >>> cat.search("purple flowers", limit=5).hits
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from coreviz_frames._util.checks import check_int
from coreviz_frames._util.ids import normalize_id, validate_id
from coreviz_frames.api.responses import object_at, objects_at, shape_error
from coreviz_frames.api.search import SearchResults
from coreviz_frames.errors import ConfigError, NotFoundError
from coreviz_frames.http.transport import Transport
from coreviz_frames.tables.listings import extra_json, fit_cell, typed_frame

__all__ = ["Catalogue", "folder_frame"]

_S, _I = pa.string(), pa.int64()
#: Columns of :meth:`Catalogue.organizations`.
ORGANIZATION_COLUMNS = (("organization_id", _S), ("name", _S), ("slug", _S), ("extra", _S))
#: Columns of :meth:`Catalogue.collections`.
COLLECTION_COLUMNS = (
    ("collection_id", _S),
    ("name", _S),
    ("icon", _S),
    ("type", _S),
    ("organization_id", _S),
    ("extra", _S),
)
#: Columns of :meth:`Catalogue.tag_catalogue`.
TAG_COLUMNS = (("key", _S), ("value", _S), ("extra", _S))
#: Columns of :func:`folders`.
FOLDER_COLUMNS = (
    ("folder_id", _S),
    ("name", _S),
    ("path", _S),
    ("parent_path", _S),
    ("folder_item_count", _I),
    ("extra", _S),
)


def _listing_row(
    item: Mapping[str, Any],
    spec: Sequence[tuple[str, str]],
    columns: Sequence[tuple[str, pa.DataType]],
    also_known: Sequence[str] = (),
) -> dict[str, Any]:
    """One listing row: each ``(column, API key)`` of ``spec`` that fits its column's type
    (:func:`~coreviz_frames.tables.listings.fit_cell`); a value that does not (an object for a
    name, ``2**70`` for a count) is null there and kept, raw, in ``extra`` with the unknown
    keys. Id columns are normalised."""
    types = dict(columns)
    row: dict[str, Any] = {}
    unfit: set[str] = set()
    for column, key in spec:
        ok, value = fit_cell(item.get(key), types[column])
        if not ok:
            unfit.add(key)
        row[column] = normalize_id(value) if column.endswith("_id") else value
    known = {key for _, key in spec if key not in unfit} | set(also_known)
    row["extra"] = extra_json(item, known=known)
    return row


def _with_attrs(frame: pd.DataFrame, body: Mapping[str, Any], key: str) -> pd.DataFrame:
    """Keep the response's keys other than ``key`` in ``frame.attrs["extra"]``."""
    frame.attrs["extra"] = {k: v for k, v in body.items() if k != key}
    return frame


_COLLECTION_FIELDS = (
    ("collection_id", "id"),
    ("name", "name"),
    ("icon", "icon"),
    ("type", "type"),
    ("organization_id", "organizationId"),
)
_ORGANIZATION_FIELDS = (("organization_id", "id"), ("name", "name"), ("slug", "slug"))


def _collection_row(item: Mapping[str, Any]) -> dict[str, Any]:
    return _listing_row(item, _COLLECTION_FIELDS, COLLECTION_COLUMNS)


def _tag_row(key: str, value: Any) -> dict[str, Any]:
    """One tag row; a value given as an object keeps its other fields in ``extra`` (its
    ``value`` or ``name`` is the value); a value of no tag type (a list, an object for
    ``value``) is null and kept in ``extra``."""
    if not isinstance(value, Mapping):
        value = {"value": value}
    field_name = "value" if "value" in value else "name"
    row = _listing_row(value, (("value", field_name),), TAG_COLUMNS)
    return {"key": key, **row}


def _tag_rows(tags: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (key, value) (see :func:`_tag_row`)."""
    return [
        _tag_row(str(key), value)
        for key, values in tags.items()
        for value in (values if isinstance(values, list) else [values])
    ]


class Catalogue:
    """The catalogue reads of one client (see the module docstring); thread-safe.

    Example:
        >>> cat = Catalogue(transport)
        >>> cat.me()["organizationId"]
        '0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b'
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._me_lock = threading.Lock()
        self._me: dict | None = None

    def __repr__(self) -> str:
        return f"<Catalogue {self._transport.base_url}>"

    def _get(self, path: str, what: str, subject: str | None = None, **kwargs: Any) -> dict:
        return self._transport.get_json(path, what=what, media_id=subject, **kwargs)

    # -- user and organisations ---------------------------------------------------------

    def me(self) -> dict:
        """The current user and their default organisation (``GET /api/me``), fetched once
        per client (a failed attempt is not cached); a copy is returned."""
        with self._me_lock:
            if self._me is None:
                self._me = self._get("me", "the current user (/api/me)")
            return dict(self._me)

    def default_organization_id(self) -> str:
        """``organizationId`` of :meth:`me`."""
        org = self.me().get("organizationId")
        if not isinstance(org, str) or not org:
            problem = "no 'organizationId'; pass organization_id="
            raise shape_error("the current user", self._transport.url("me"), problem)
        return org

    def _organization(self, organization_id: str | None) -> str:
        if organization_id is None:
            return validate_id(self.default_organization_id(), kind="organization id")
        return validate_id(organization_id, kind="organization id")

    def organizations(self) -> pd.DataFrame:
        """The user's organisations (``GET /api/auth/organization/list``; where that
        endpoint does not exist, the default organisation of :meth:`me`)."""
        path = "auth/organization/list"
        try:
            body = self._get(path, "organizations", array_key="organizations")
        except NotFoundError:  # not on every deployment: the SDK falls back to /api/me
            me = self.me()
            item = {"id": me.get("organizationId"), "name": me.get("organizationName")}
            body = {"organizations": [item]}
        items = objects_at(
            body, "organizations", what="organizations", url=self._transport.url(path)
        )
        rows = [_listing_row(i, _ORGANIZATION_FIELDS, ORGANIZATION_COLUMNS) for i in items]
        return _with_attrs(typed_frame(ORGANIZATION_COLUMNS, rows), body, "organizations")

    # -- collections, tags, versions ----------------------------------------------------

    def collections(self, organization_id: str | None = None) -> pd.DataFrame:
        """The collections of an organisation (default: the user's, from :meth:`me`)."""
        org = self._organization(organization_id)
        path, what = f"organization/{org}/datasets", f"collections of organization {org!r}"
        body = self._get(path, what, org, array_key="datasets")
        items = objects_at(body, "datasets", what=what, url=self._transport.url(path))
        frame = typed_frame(COLLECTION_COLUMNS, [_collection_row(i) for i in items])
        return _with_attrs(frame, body, "datasets")

    def get_collection(self, collection_id: str) -> dict:
        """One collection (``GET /api/dataset/{id}``), every field as sent."""
        cid = validate_id(collection_id, kind="collection id")
        path, what = f"dataset/{cid}", f"collection {cid!r}"
        body = self._get(path, what, cid)
        if "dataset" not in body and "id" in body:  # the collection itself, not wrapped
            return body
        return object_at(body, "dataset", what=what, url=self._transport.url(path), media_id=cid)

    def tag_catalogue(self, collection_id: str) -> pd.DataFrame:
        """Every tag ``key`` and ``value`` in use in a collection (``GET .../tags``)."""
        cid = validate_id(collection_id, kind="collection id")
        path, what = f"dataset/{cid}/tags", f"tags of collection {cid!r}"
        body = self._get(path, what, cid)
        tags = object_at(body, "tags", what=what, url=self._transport.url(path), media_id=cid)
        return _with_attrs(typed_frame(TAG_COLUMNS, _tag_rows(tags)), body, "tags")

    def versions(self, media_id: str) -> list[dict]:
        """Every version of a media (``GET /api/media/{id}/versions``): media records."""
        mid = validate_id(media_id)
        path, what = f"media/{mid}/versions", f"versions of media {mid!r}"
        body = self._get(path, what, mid, array_key="versions")
        items = objects_at(body, "versions", what=what, url=self._transport.url(path), media_id=mid)
        return [dict(v) for v in items]

    # -- search --------------------------------------------------------------------------

    def search(
        self, q: str, *, organization_id: str | None = None, limit: int = 20
    ) -> SearchResults:
        """Organisation-wide, frame-level search (``GET /api/search``, not paginated)."""
        if not isinstance(q, str) or not q.strip():
            raise ConfigError(f"q must be a non-empty string, not {q!r}")
        check_int("limit", limit, minimum=1)
        org = self._organization(organization_id)
        params = {"q": q, "organizationId": org, "limit": str(limit)}
        body = self._get("search", f"search {q!r}", org, params=params)
        url = self._transport.url("search")
        return SearchResults.from_response(body, query=q, organization_id=org, url=url, limit=limit)


_FOLDER_FIELDS = (
    ("folder_id", "id"),
    ("name", "name"),
    ("path", "path"),
    ("folder_item_count", "folderItemCount"),
)


def _folder_row(item: Mapping[str, Any]) -> dict[str, Any]:
    also_known = ["type"]
    if item.get("blob") == "folder":  # the documented placeholder, not a URL
        also_known.append("blob")
    row = _listing_row(item, _FOLDER_FIELDS, FOLDER_COLUMNS, also_known)
    ltree = row["path"]
    row["parent_path"] = (ltree.rpartition(".")[0] or None) if ltree else None
    return row


def folder_frame(pages: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The folder rows of ``pages`` (raw pages of a collection walk), typed; items that are
    not folders are left out (a server may ignore ``type=folder``).

    Example:
        >>> page = {"media": [{"id": "f1", "type": "folder", "name": "cats", "path": "a.b"}]}
        >>> folder_frame([page])[["name", "parent_path"]].values.tolist()
        [['cats', 'a']]
    """
    rows = [
        _folder_row(item)
        for page in pages
        for item in page["media"]
        if item.get("type") == "folder"  # also on a server that ignores type=folder
    ]
    return typed_frame(FOLDER_COLUMNS, rows)

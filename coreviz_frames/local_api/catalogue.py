"""The local API's catalogue endpoints: user, organisations, collections, versions, search.

:class:`CatalogueRoutes` answers, for the one served collection and its organisation:

- ``GET /api/me``: the user and their default organisation (unwrapped, as the SDK reads it);
- ``GET /api/auth/organization/list``: a bare JSON array of ``{id, name, slug}``;
- ``GET /api/organization/{orgId}/datasets``: ``{"datasets": [...]}`` (items carry
  ``organizationName``, a field the client keeps in ``extra``);
- ``GET /api/dataset/{id}``: ``{"dataset": {...}}``;
- ``GET /api/media/{id}/versions``: ``{"versions": [...]}``: every third media (row order,
  folders not counted) has an edited version 2 (new ids, ``sourceMediaId`` the original,
  ``name`` prefixed ``edited-``); the others only themselves;
- ``GET /api/search?q=&organizationId=&limit=``: see :mod:`.search`.

An id in the forbidden set answers 403, an unknown organisation, collection or media 404,
a missing ``q`` or ``organizationId`` (or a bad ``limit``) 400.

Example:
    >>> from coreviz_frames.local_api.store import SyntheticCollection
    >>> routes = CatalogueRoutes(SyntheticCollection(3))
    >>> routes.answer("/api/me", "")[1]["organizationId"]
    'synthetic-org'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from coreviz_frames._util.ids import normalize_id
from coreviz_frames.local_api.search import search_frames
from coreviz_frames.local_api.store import Collection

__all__ = ["CatalogueRoutes"]

ORGANIZATION_NAME = "Local organization"
LOCAL_USER = {"userId": "local-user", "email": "analyst@example.com", "name": "Local Analyst"}
_FORBIDDEN = {"error": "Forbidden", "message": "You do not have access to this resource"}
_NOT_FOUND = {"error": "Not found"}
_VERSIONS = re.compile(r"/api/media/([^/]+)/versions")
_DATASET = re.compile(r"/api/dataset/([^/]+)")
_ORG_DATASETS = re.compile(r"/api/organization/([^/]+)/datasets")


def _derived_id(value: object, version: int) -> str:
    return hashlib.md5(f"{value}:v{version}".encode()).hexdigest()


def _derived_frame(frame: dict, media_id: str, version: int) -> dict:
    frame_id = _derived_id(frame.get("id"), version)
    out = {**frame, "id": frame_id}
    if "mediaId" in frame:
        out["mediaId"] = media_id
    if isinstance(frame.get("captions"), list):
        out["captions"] = [
            {
                **c,
                "id": _derived_id(c.get("id"), version),
                **({"frameId": frame_id} if "frameId" in c else {}),
            }
            for c in frame["captions"]
        ]
    if isinstance(frame.get("objects"), list):
        out["objects"] = [{**o, "id": _derived_id(o.get("id"), version)} for o in frame["objects"]]
    return out


def edited_version(record: dict, version: int = 2) -> dict:
    """Version ``version`` of ``record``: new ids throughout, ``sourceMediaId`` the original.

    Example:
        >>> v2 = edited_version({"id": "m1", "name": "a.jpg", "frames": []})
        >>> v2["sourceMediaId"], v2["versionNumber"], v2["name"]
        ('m1', 2, 'edited-a.jpg')
    """
    media_id = _derived_id(record["id"], version)
    out = {
        **record,
        "id": media_id,
        "name": f"edited-{record.get('name') or ''}",
        "sourceMediaId": record["id"],
        "versionNumber": version,
        "createdAt": record.get("updatedAt") or record.get("createdAt"),
    }
    if isinstance(record.get("path"), str) and "." in record["path"]:
        out["path"] = record["path"].rsplit(".", 1)[0] + "." + media_id
    if isinstance(record.get("frames"), list):
        out["frames"] = [_derived_frame(f, media_id, version) for f in record["frames"]]
    return out


def versions_of(collection: Collection, index: int) -> list[dict]:
    """The versions of row ``index`` (itself first), or an empty list for a folder row."""
    record = collection.record(index)
    if record.get("type") == "folder":
        return []
    media_position = sum(
        1 for i in range(index) if collection.entry(i).type != "folder"
    )  # rows before it that are media
    if media_position % 3:
        return [record]
    return [record, edited_version(record)]


class CatalogueRoutes:
    """The catalogue endpoints of one collection (see the module docstring).

    ``forbidden`` says whether an id (media, collection or organisation) answers 403.
    """

    def __init__(
        self, collection: Collection, *, forbidden: Callable[[str], bool] = lambda _: False
    ) -> None:
        self.collection = collection
        self._forbidden = forbidden
        dataset = dict(getattr(collection, "dataset", None) or {"id": collection.collection_id})
        self.organization_id: str = str(dataset.get("organizationId") or "local-org")
        self.dataset = {"icon": None, "type": "default", **dataset}
        self.dataset["organizationId"] = self.organization_id

    def answer(self, path: str, query: str) -> tuple[int, Any] | None:
        """``(status, payload)`` for a catalogue path, or None if ``path`` is not one."""
        if path == "/api/me":
            return 200, {
                **LOCAL_USER,
                "organizationId": self.organization_id,
                "organizationName": ORGANIZATION_NAME,
            }
        if path == "/api/auth/organization/list":
            return 200, [
                {
                    "id": self.organization_id,
                    "name": ORGANIZATION_NAME,
                    "slug": "local-organization",
                }
            ]
        if path == "/api/search":
            return self._search({k: v[-1] for k, v in parse_qs(query).items()})
        for pattern, handler in (
            (_ORG_DATASETS, self._datasets),
            (_DATASET, self._dataset),
            (_VERSIONS, self._versions),
        ):
            match = pattern.fullmatch(path)
            if match:
                return handler(unquote(match[1]))
        return None

    def _organization(self, organization_id: str) -> tuple[int, Any] | None:
        """The error answer for an organisation the user may not read, else None."""
        if self._forbidden(organization_id):
            return 403, _FORBIDDEN
        if organization_id != self.organization_id:
            return 404, {"error": "Not found", "message": "Organization not found"}
        return None

    def _datasets(self, organization_id: str) -> tuple[int, Any]:
        refused = self._organization(organization_id)
        if refused is not None:
            return refused
        return 200, {"datasets": [{**self.dataset, "organizationName": ORGANIZATION_NAME}]}

    def _dataset(self, collection_id: str) -> tuple[int, Any]:
        if self._forbidden(collection_id):
            return 403, _FORBIDDEN
        if normalize_id(collection_id) != normalize_id(self.collection.collection_id):
            return 404, _NOT_FOUND
        return 200, {"dataset": self.dataset}

    def _versions(self, media_id: str) -> tuple[int, Any]:
        if self._forbidden(media_id):
            return 403, _FORBIDDEN
        index = self.collection.lookup(media_id)
        versions = versions_of(self.collection, index) if index is not None else []
        if not versions:
            return 404, _NOT_FOUND
        return 200, {"versions": versions}

    def _search(self, params: dict[str, str]) -> tuple[int, Any]:
        q, organization_id = params.get("q") or "", params.get("organizationId") or ""
        if not q.strip() or not organization_id:
            message = "q and organizationId are required"
            return 400, {"error": "Bad request", "message": message}
        refused = self._organization(organization_id)
        if refused is not None:
            return refused
        try:
            limit = int(params.get("limit") or 20)
        except ValueError:
            limit = 0
        if limit < 1:
            return 400, {"error": "Bad request", "message": "limit must be an integer >= 1"}
        return 200, {"results": search_frames(self.collection, q, limit=limit)}

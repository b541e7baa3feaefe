"""Routing of the local API's read endpoints over one collection, and its record cache.

:class:`ApiRoutes` answers ``GET /api/media/{id}``, ``GET /api/dataset/{id}/media``
(pagination, filters, the :data:`BROWSE_QUIRKS`, an optional cap on ``limit``) and
``GET /api/dataset/{id}/tags`` (and, through :class:`~.catalogue.CatalogueRoutes`,
``/api/me``, the organisation and collection lists, ``/api/dataset/{id}``,
``/api/media/{id}/versions`` and ``/api/search``), checks
the API key and the forbidden ids, and serialises each record once (blob URLs rewritten to
the blob origin) into a :class:`RecordCache` bounded in bytes.

Example:
    >>> from coreviz_frames.local_api.store import SyntheticCollection
    >>> routes = ApiRoutes(SyntheticCollection(3), api_key="k")
    >>> routes.set_blob_url("http://127.0.0.1:9")
    >>> routes.route("GET", "/api/dataset/synthetic/tags", "", {"x-api-key": "k"}).status
    200
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote

from coreviz_frames._util.ids import normalize_id
from coreviz_frames.local_api.catalogue import CatalogueRoutes
from coreviz_frames.local_api.guard import carries_key
from coreviz_frames.local_api.options import RECORD_CACHE_BYTES
from coreviz_frames.local_api.store import (
    BrowseQuery,
    Collection,
    QueryError,
    browse_indices,
    light_item,
)
from coreviz_frames.local_api.wire import Reply

__all__ = ["ApiRoutes", "RecordCache", "json_reply"]

_BLOB_REF = re.compile(rb'(?<!\\)"blob://')
_MEDIA = re.compile(r"/api/media/([^/]+)")
_DATASET = re.compile(r"/api/dataset/([^/]+)/(media|tags)")
_UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key"}
_FORBIDDEN = {"error": "Forbidden", "message": "You do not have access to this resource"}
_NOT_FOUND = {"error": "Not found"}


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_bytes(payload: Any) -> bytes:
    """``payload`` as compact UTF-8 JSON; a lone surrogate in a string (a record read from
    ``"\\ud800"``) is sent as that escape, as ``JSON.stringify`` sends it.

    Example:
        >>> json_bytes({"name": chr(0xD800) + "é"})
        b'{"name":"\\\\ud800\\xc3\\xa9"}'
    """
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # only inside strings: dumps writes no other raw character
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text).encode()


def rewrite_blobs(body: bytes, blob_url: bytes) -> bytes:
    """Point the ``"blob://...`` string values of a JSON body at ``blob_url``."""
    if b'"blob://' not in body:
        return body
    replacement = b'"' + blob_url + b"/"
    if b"\\" not in body:  # no escaped quote can precede a match: plain replace is the same
        return body.replace(b'"blob://', replacement)
    return _BLOB_REF.sub(lambda _: replacement, body)


class Raw(NamedTuple):
    """A response body already serialised (blob URLs rewritten), as parts to concatenate.

    Parts are joined once, with the status line and headers, into the single buffer that
    is sent: joining 1 MB pages more than once costs more than building them.
    """

    parts: list[bytes]


class RecordCache:
    """A thread-safe LRU of serialised records, bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Any, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: bytes) -> bool:
        """Store ``value`` (evicting the least recently used); False if it cannot fit."""
        if len(value) > self.max_bytes:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = value
            self.size += len(value)
            while self.size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)
        return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON :class:`Reply` of ``payload`` (no blob URL rewriting)."""
    return Reply(status, [json_bytes(payload)], headers=headers or {})


class ApiRoutes:
    """The ``/api/...`` endpoints of one collection (see the module docstring).

    ``set_blob_url`` must be called (by :meth:`LocalAPI.start`) before routing: records
    point at that origin.
    """

    def __init__(
        self,
        collection: Collection,
        *,
        api_key: str | None = None,
        forbidden_ids: Iterable[str] = (),
        light: bool = False,
        browse_quirk: str | None = None,
        record_cache_bytes: int = RECORD_CACHE_BYTES,
        max_page_size: int | None = None,
    ) -> None:
        self.collection = collection
        self.max_page_size = max_page_size  # browse serves at most this many rows a page
        self._api_key = api_key
        self._forbidden = {normalize_id(i) for i in forbidden_ids}
        self.light = light
        self.browse_quirk = browse_quirk
        self._browse_served = itertools.count()  # for the "grows" quirk
        # Serialised records (blob URLs rewritten), so a page body is a join of cached
        # bytes instead of building and re-serialising every record on every request.
        self.records = RecordCache(record_cache_bytes)
        self._blob_url = b""
        self.catalogue = CatalogueRoutes(collection, forbidden=self._forbidden_id)

    def __repr__(self) -> str:
        return f"<ApiRoutes {self.collection.collection_id}>"  # never shows the API key

    def set_blob_url(self, blob_url: str) -> None:
        """Point records at ``blob_url`` (the record cache is emptied)."""
        self._blob_url = blob_url.encode()
        self.records.clear()

    def warm(self) -> int:
        """Serialise every record into the record cache now (after :meth:`set_blob_url`), so
        requests, even the first, only join cached bytes; return how many are cached.

        Stops early when the cache is full (``record_cache_bytes``).
        """
        if not self._blob_url:
            raise RuntimeError("the blob URL is not set (LocalAPI is not started)")
        if len(self.collection):
            self.collection.lookup("")  # builds the id -> row map of Get Media
        cache = self.records
        # what browse serves (light items if so configured), then what Get Media serves
        for light in dict.fromkeys((self.light, False)):
            for index in range(len(self.collection)):
                if cache.get((index, light)) is None:
                    body = self._serialise(index, light)
                    if cache.size + len(body) > cache.max_bytes:
                        return len(cache)
                    cache.put((index, light), body)
        return len(cache)

    def _serialise(self, index: int, light: bool) -> bytes:
        """Row ``index`` as served (a light browse item if ``light``), blob URLs rewritten."""
        record = self.collection.record(index)
        body = json_bytes(light_item(record) if light else record)
        return rewrite_blobs(body, self._blob_url)

    def record_bytes(self, index: int, light: bool = False) -> bytes:
        """:meth:`_serialise` through the record cache."""
        key = (index, light)
        body = self.records.get(key)
        if body is None:
            body = self._serialise(index, light)
            self.records.put(key, body)
        return body

    def _authorized(self, headers: Any) -> bool:
        return carries_key(headers, self._api_key)

    def _forbidden_id(self, value: str) -> bool:
        return normalize_id(value) in self._forbidden

    def route(self, method: str, path: str, query: str, headers: Any) -> Reply:
        """The reply to an ``/api/...`` request (``headers``: any mapping with ``get``)."""
        status, payload = self._answer(method, path, query, headers)
        if isinstance(payload, Raw):  # already serialised, blob URLs rewritten
            return Reply(status, payload.parts)
        return Reply(status, [rewrite_blobs(json_bytes(payload), self._blob_url)])

    def _answer(self, method: str, path: str, query: str, headers: Any) -> tuple[int, Any]:
        """``(status, payload)``: a JSON-able payload, or the final body as :class:`Raw`."""
        if not path.startswith("/api/"):
            return 404, _NOT_FOUND
        if not self._authorized(headers):
            return 401, _UNAUTHORIZED
        if method not in ("GET", "HEAD"):
            return 405, {"error": "Method not allowed"}
        match = _MEDIA.fullmatch(path)
        if match:
            return self._media(unquote(match[1]))
        match = _DATASET.fullmatch(path)
        if not match:
            answer = self.catalogue.answer(path, query)
            return answer if answer is not None else (404, _NOT_FOUND)
        return self._dataset(unquote(match[1]), match[2], query)

    def _media(self, media_id: str) -> tuple[int, Any]:
        """Get Media."""
        if self._forbidden_id(media_id):
            return 403, _FORBIDDEN
        index = self.collection.lookup(media_id)
        if index is None:
            return 404, _NOT_FOUND
        return 200, Raw([b'{"media":', self.record_bytes(index), b"}"])

    def _dataset(self, collection_id: str, endpoint: str, query: str) -> tuple[int, Any]:
        """The tags or a browse page of the collection."""
        if self._forbidden_id(collection_id):
            return 403, _FORBIDDEN
        if normalize_id(collection_id) != normalize_id(self.collection.collection_id):
            return 404, _NOT_FOUND
        if endpoint == "tags":
            return 200, {"tags": self.collection.tags()}
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            browse_query = BrowseQuery.parse(params)
        except QueryError as exc:
            return 400, {"error": "Bad request", "message": str(exc)}
        return 200, self._browse(browse_query)

    def _browse(self, query: BrowseQuery) -> dict | Raw:
        requested_offset = query.offset
        if self.max_page_size is not None and query.limit > self.max_page_size:
            query = BrowseQuery(**{**vars(query), "limit": self.max_page_size})  # clamped
        if self.browse_quirk == "repeat_page":
            query = BrowseQuery(**{**vars(query), "offset": 0})
        indices, total, scores = browse_indices(self.collection, query)
        if self.browse_quirk == "grows" and next(self._browse_served) < 2:
            total = max(0, total - 5)  # 5 media are added after the first two requests
            indices = indices[: max(0, total - query.offset)]
            scores = scores[: len(indices)]
        has_more = query.offset + len(indices) < total
        total, has_more = self._quirk_pagination(total, has_more)
        pagination = {
            "total": total,
            "limit": query.limit,
            "offset": requested_offset,
            "hasMore": has_more,
        }
        if not scores:  # the common case: the cached bytes of each record, comma-separated
            return self._cached_page(indices, pagination)
        items = []
        for index, score in zip(indices, scores, strict=True):
            record = self.collection.record(index)
            item = light_item(record) if self.light else record
            if score is not None:
                item = {**item, "_score": score}
            items.append(item)
        return {"media": items, "pagination": pagination}

    def _quirk_pagination(self, total: int, has_more: bool) -> tuple[int, bool]:
        """``(total, hasMore)`` as the configured browse quirk lies about them."""
        if self.browse_quirk == "low_total":
            total //= 4
        if self.browse_quirk in ("repeat_page", "has_more_forever"):
            has_more = True
        if self.browse_quirk == "wrong_total":
            total += 5
        return total, has_more

    def _cached_page(self, indices: Sequence[int], pagination: dict) -> Raw:
        """A page body joined from the cached bytes of its records."""
        parts = [b'{"media":[']
        for index in indices:
            parts += (self.record_bytes(index, self.light), b",")
        tail = b'],"pagination":' + json_bytes(pagination) + b"}"
        if len(parts) > 1:
            parts[-1] = tail  # replaces the last comma
        else:
            parts.append(tail)
        return Raw(parts)

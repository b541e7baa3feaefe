"""The local CoreViz-compatible read API: two ``ThreadingHTTPServer`` s on 127.0.0.1.

The API server answers ``/api/media/{id}``, ``/api/dataset/{id}/media`` and
``/api/dataset/{id}/tags`` (plus control endpoints ``/_local/stats``, ``/_local/reset``
and ``/_local/fault``, outside ``/api`` and never subject to the API key); the blob
server, on another port (another origin), serves the images behind the records'
``blob://`` URLs. Both speak HTTP/1.1 keep-alive with TCP_NODELAY, count requests and the
most simultaneous requests seen, and can inject latency and faults.

Example:
    >>> import requests
    >>> with LocalAPI() as api:
    ...     page = requests.get(f"{api.base_url}/dataset/{api.collection_id}/media").json()
    >>> page["pagination"]["limit"]
    10
"""

from __future__ import annotations

import contextlib
import email.parser
import json
import re
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import ConfigError
from ..ids import normalize_id
from .images import FileBlobs, SyntheticBlobs
from .store import (
    BrowseQuery,
    Collection,
    FileCollection,
    QueryError,
    SyntheticCollection,
    browse_indices,
    light_item,
)

__all__ = [
    "BROWSE_QUIRKS",
    "SAMPLE_COLLECTION_ID",
    "SAMPLE_DATA_DIR",
    "LocalAPI",
    "ServerStats",
    "StatsSnapshot",
    "serve_forever",
    "serve_local_api",
]


#: The sample collection committed under ``data/`` at the repository root.
def _sample_data_dir() -> Path:
    """``data/`` of a source checkout, else the copy installed as ``coreviz_frames.sample_data``."""
    checkout = Path(__file__).resolve().parents[2] / "data"
    if (checkout / "collection.json").is_file():
        return checkout
    return Path(__file__).resolve().parents[1] / "sample_data"


SAMPLE_DATA_DIR = _sample_data_dir()
SAMPLE_COLLECTION_ID = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"
BROWSE_QUIRKS = ("repeat_page", "has_more_forever", "wrong_total")
HEADER_HISTORY = 10_000
_BLOB_REF = re.compile(rb'(?<!\\)"blob://')
#: Default bound of the serialised-record cache (a 10,000-media synthetic collection,
#: about 100 MB of JSON, fits).
RECORD_CACHE_BYTES = 256 * 2**20
_MEDIA = re.compile(r"/api/media/([^/]+)")
_DATASET = re.compile(r"/api/dataset/([^/]+)/(media|tags)")


@dataclass(frozen=True)
class StatsSnapshot:
    """Counters at one moment (also what ``GET /_local/stats`` returns, as JSON)."""

    requests: int = 0
    max_in_flight: int = 0
    paths: Counter = field(default_factory=Counter)
    headers: list = field(default_factory=list)  # [(path, {lower-case name: value}), ...]

    def to_json(self) -> dict:
        return {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "paths": dict(self.paths),
            "headers": [[path, headers] for path, headers in self.headers],
        }

    @classmethod
    def from_json(cls, doc: dict) -> StatsSnapshot:
        return cls(
            requests=doc["requests"],
            max_in_flight=doc["max_in_flight"],
            paths=Counter(doc["paths"]),
            headers=[(path, headers) for path, headers in doc["headers"]],
        )


class ServerStats:
    """Thread-safe request counters of one :class:`LocalAPI` (API and blob servers).

    ``requests`` counts every answered or dropped request, ``max_in_flight`` the most
    requests being handled at once, ``paths`` the request paths (without query string),
    ``headers`` the ``(path, headers)`` of the last 10,000 requests (names lower-cased).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._in_flight = 0
            self._max_in_flight = 0
            self._paths: Counter = Counter()
            self._headers: deque = deque(maxlen=HEADER_HISTORY)

    def enter(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._paths[path] += 1
            self._headers.append((path, headers))

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def paths(self) -> Counter:
        with self._lock:
            return Counter(self._paths)

    @property
    def headers(self) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return list(self._headers)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                self._requests, self._max_in_flight, Counter(self._paths), list(self._headers)
            )


@dataclass
class _Fault:
    prefix: str
    status: int
    remaining: int
    retry_after: float | None
    drop: bool


class _Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.prefix):
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address, handler, api: LocalAPI, role: str) -> None:
        self.api = api
        self.role = role
        super().__init__(address, handler)

    def get_request(self):
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _rewrite_blobs(body: bytes, blob_url: bytes) -> bytes:
    """Point the ``"blob://...`` string values of a JSON body at ``blob_url``."""
    if b'"blob://' not in body:
        return body
    replacement = b'"' + blob_url + b"/"
    if b"\\" not in body:  # no escaped quote can precede a match: plain replace is the same
        return body.replace(b'"blob://', replacement)
    return _BLOB_REF.sub(lambda _: replacement, body)


class _Raw(NamedTuple):
    """A response body already serialised (blob URLs rewritten), as parts to concatenate.

    Parts are joined once, with the status line and headers, into the single buffer that
    is sent: joining 1 MB pages more than once costs more than building them.
    """

    parts: list[bytes]


class _RecordCache:
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


_MAX_LINE = 65536  # http.client's limits on request header lines
_MAX_HEADERS = 100
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # what the email parser takes as one


class _Headers:
    """Request headers as ``http.client.parse_headers`` would give them (first value per
    case-insensitive name), parsed without the email package's generality."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._first: dict[str, str] = {}
        for name, value in items:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, _ in self._items])

    def keys(self) -> list[str]:
        return [name for name, _ in self._items]

    def values(self) -> list[str]:
        return [value for _, value in self._items]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        lowered = name.lower()
        found = [value for key, value in self._items if key.lower() == lowered]
        return found or failobj


def _fast_headers(lines: list[bytes]) -> _Headers | None:
    """``lines`` (ending with the blank line) parsed, or None if any is unusual (then the
    email parser decides, as in the standard library)."""
    items = []
    for raw in lines[:-1]:
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            return None
        items.append((name, value.lstrip(" \t").rstrip("\r\n")))
    return _Headers(items)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # idle keep-alive connections are closed after this
    _date: tuple[int, str] = (0, "")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # quiet, and cheaper
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())  # the Date header has a one-second resolution: format once
        cached = _Handler._date
        if cached[0] != now:
            cached = _Handler._date = (now, super().date_time_string(now))
        return cached[1]

    def parse_request(self) -> bool:
        """``BaseHTTPRequestHandler.parse_request`` with a faster path for the usual
        ``METHOD target HTTP/1.x`` request with plain ``Name: value`` headers (the same
        results; anything else goes through the standard parser)."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] == "HTTP/1.0"
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # as the standard library (gh-87389)
        lines = []
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
        headers = _fast_headers(lines)
        if headers is None:
            text = b"".join(lines).decode("iso-8859-1")
            self.headers = email.parser.Parser(_class=self.MessageClass).parsestr(text)
        else:
            self.headers = headers  # type: ignore[assignment]
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = self.headers.get("Expect", "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _send(self, status: int, body: bytes | list[bytes], content_type: str, extra=None) -> None:
        parts = body if isinstance(body, list) else [body]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(map(len, parts))))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        # headers and body joined once and sent in one write (with TCP_NODELAY, no 40 ms
        # delayed-ACK stall)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.extend(parts)
        self.flush_headers()

    def _send_json(self, status: int, payload: Any, extra=None) -> None:
        self._send(status, _json_bytes(payload), "application/json", extra)

    def _handle(self, method: str) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.server.role == "api" and path.startswith("/_local/"):
            self._control(method, path, body)
            return
        api.stats.enter(path, {k.lower(): v for k, v in self.headers.items()})
        try:
            if api.latency > 0:
                time.sleep(api.latency)
            fault = api._faults.take(self.path)
            if fault is not None:
                if fault.drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                extra = {}
                if fault.retry_after is not None:
                    extra["Retry-After"] = f"{fault.retry_after:g}"
                phrase = (
                    HTTPStatus(fault.status).phrase
                    if fault.status in HTTPStatus._value2member_map_
                    else "Error"
                )
                self._send_json(fault.status, {"error": phrase, "message": "Injected fault"}, extra)
                return
            if self.server.role == "blob":
                self._blob(method, path)
            else:
                status, payload = api._route(method, path, split.query, self.headers)
                if isinstance(payload, _Raw):  # already serialised, blob URLs rewritten
                    body: bytes | list[bytes] = payload.parts
                else:
                    body = _rewrite_blobs(_json_bytes(payload), api._blob_url_bytes)
                self._send(status, body, "application/json")
        finally:
            api.stats.leave()

    def _blob(self, method: str, path: str) -> None:
        if method not in ("GET", "HEAD"):
            self._send_json(405, {"error": "Method not allowed"})
            return
        found = self.server.api._blobs.get(unquote(path))
        if found is None:
            self._send_json(404, {"error": "Not found"})
            return
        data, content_type = found
        self._send(200, data, content_type, {"Cache-Control": "public, max-age=31536000"})

    def _control(self, method: str, path: str, body: bytes) -> None:
        api = self.server.api
        if path == "/_local/stats" and method in ("GET", "HEAD"):
            self._send_json(200, api.stats.snapshot().to_json())
        elif path == "/_local/info" and method in ("GET", "HEAD"):
            self._send_json(200, api.info())
        elif path == "/_local/reset" and method == "POST":
            api.reset_stats()
            self._send_json(200, {"ok": True})
        elif path == "/_local/fault" and method == "POST":
            try:
                doc = json.loads(body or b"{}")
                api.add_fault(
                    doc["path_prefix"],
                    status=int(doc.get("status", 503)),
                    count=int(doc.get("count", 1)),
                    retry_after=doc.get("retry_after"),
                    drop=bool(doc.get("drop", False)),
                )
            except (ValueError, KeyError, TypeError) as exc:
                self._send_json(400, {"error": "Bad request", "message": str(exc)})
                return
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": "Not found"})


_UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key"}
_FORBIDDEN = {"error": "Forbidden", "message": "You do not have access to this resource"}
_NOT_FOUND = {"error": "Not found"}


class LocalAPI:
    """A CoreViz-compatible read API on 127.0.0.1, serving ``data_dir`` or a synthetic collection.

    Each record is serialised once (blob URLs rewritten) into an LRU bounded by
    ``record_cache_bytes`` (256 MB by default: 10,000 synthetic media take about 100 MB),
    and a page body joins the cached bytes. ``warm=True`` fills that cache in
    :meth:`start` (see :meth:`warm`), so no request pays for building records.

    Example:
        >>> with LocalAPI(synthetic=1000, latency=0.02) as api:
        ...     api.add_fault("/api/media/", status=429, retry_after=1)
        ...     api.base_url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        data_dir: str | Path = SAMPLE_DATA_DIR,
        *,
        synthetic: int | None = None,
        api_key: str | None = None,
        forbidden_ids: Iterable[str] = (),
        latency: float = 0.0,
        light: bool = False,
        browse_quirk: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        blob_port: int = 0,
        warm: bool = False,
        record_cache_bytes: int = RECORD_CACHE_BYTES,
    ) -> None:
        if browse_quirk is not None and browse_quirk not in BROWSE_QUIRKS:
            raise ConfigError(f"browse_quirk must be None or one of {', '.join(BROWSE_QUIRKS)}")
        if latency < 0:
            raise ConfigError("latency must be >= 0")
        self.collection: Collection
        if synthetic is not None:
            self.collection = SyntheticCollection(synthetic)
            self._blobs: FileBlobs | SyntheticBlobs = SyntheticBlobs(self.collection)
        else:
            self.collection = FileCollection(data_dir)
            self._blobs = FileBlobs(Path(data_dir) / "blobs")
        self.collection_id: str = self.collection.collection_id
        self._api_key = api_key
        self._forbidden = {normalize_id(i) for i in forbidden_ids}
        self.latency = float(latency)
        self.light = light
        self.browse_quirk = browse_quirk
        self.host = host
        self._ports = (port, blob_port)
        self.stats = ServerStats()
        self._faults = _Faults()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._base_url: str | None = None
        self._blob_url: str | None = None
        self._blob_url_bytes = b""
        # Serialised records (blob URLs rewritten), so a page body is a join of cached
        # bytes instead of building and re-serialising every record on every request.
        self._records = _RecordCache(record_cache_bytes)
        self._warm = warm

    def __repr__(self) -> str:
        state = self._base_url or "stopped"
        return f"<LocalAPI {self.collection_id} {state}>"  # never shows the API key

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api`` (set by :meth:`start`)."""
        if self._base_url is None:
            raise RuntimeError("LocalAPI is not started")
        return self._base_url

    @property
    def blob_url(self) -> str:
        """``http://127.0.0.1:<blob_port>``, a different origin from the API."""
        if self._blob_url is None:
            raise RuntimeError("LocalAPI is not started")
        return self._blob_url

    def info(self) -> dict[str, str]:
        return {
            "base_url": self.base_url,
            "blob_url": self.blob_url,
            "collection_id": self.collection_id,
        }

    def reset_stats(self) -> None:
        """Zero every counter (and forget recorded headers)."""
        self.stats.reset()

    def add_fault(
        self,
        path_prefix: str,
        *,
        status: int = 503,
        count: int = 1,
        retry_after: float | None = None,
        drop: bool = False,
    ) -> None:
        """The next ``count`` requests whose path starts with ``path_prefix`` answer ``status``
        (with ``Retry-After`` if given) or, with ``drop=True``, lose their connection."""
        self._faults.add(_Fault(path_prefix, int(status), int(count), retry_after, bool(drop)))

    def start(self) -> LocalAPI:
        """Bind both servers and serve them from daemon threads; return ``self``."""
        if self._servers:
            return self
        api_server = _Server((self.host, self._ports[0]), _Handler, self, "api")
        blob_server = _Server((self.host, self._ports[1]), _Handler, self, "blob")
        self._servers = [api_server, blob_server]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self._base_url = f"http://{host}:{api_server.server_address[1]}/api"
        self._blob_url = f"http://{host}:{blob_server.server_address[1]}"
        self._blob_url_bytes = self._blob_url.encode()
        self._records.clear()  # the blob origin may have changed
        if self._warm:
            self.warm()
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"local-api-{server.role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def warm(self) -> int:
        """Serialise every record into the record cache now (after :meth:`start`), so
        requests, even the first, only join cached bytes; return how many are cached.

        Stops early when the cache is full (``record_cache_bytes``).
        """
        if self._blob_url is None:
            raise RuntimeError("LocalAPI is not started")
        if len(self.collection):
            self.collection.lookup("")  # builds the id -> row map of Get Media
        cache = self._records
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
        body = _json_bytes(light_item(record) if light else record)
        return _rewrite_blobs(body, self._blob_url_bytes)

    def _record_bytes(self, index: int, light: bool = False) -> bytes:
        """:meth:`_serialise` through the record cache."""
        key = (index, light)
        body = self._records.get(key)
        if body is None:
            body = self._serialise(index, light)
            self._records.put(key, body)
        return body

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        self._base_url = self._blob_url = None

    def __enter__(self) -> LocalAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- API routing ---------------------------------------------------------------

    def _authorized(self, headers) -> bool:
        if self._api_key is None:
            return True
        if headers.get("x-api-key") == self._api_key:
            return True
        return headers.get("Authorization") == f"Bearer {self._api_key}"

    def _forbidden_id(self, value: str) -> bool:
        return normalize_id(value) in self._forbidden

    def _route(self, method: str, path: str, query: str, headers) -> tuple[int, Any]:
        """``(status, payload)``: a JSON-able payload, or the final body as :class:`_Raw`."""
        if not path.startswith("/api/"):
            return 404, _NOT_FOUND
        if not self._authorized(headers):
            return 401, _UNAUTHORIZED
        if method not in ("GET", "HEAD"):
            return 405, {"error": "Method not allowed"}
        match = _MEDIA.fullmatch(path)
        if match:
            media_id = unquote(match[1])
            if self._forbidden_id(media_id):
                return 403, _FORBIDDEN
            index = self.collection.lookup(media_id)
            if index is None:
                return 404, _NOT_FOUND
            return 200, _Raw([b'{"media":', self._record_bytes(index), b"}"])
        match = _DATASET.fullmatch(path)
        if not match:
            return 404, _NOT_FOUND
        collection_id = unquote(match[1])
        if self._forbidden_id(collection_id):
            return 403, _FORBIDDEN
        if normalize_id(collection_id) != normalize_id(self.collection_id):
            return 404, _NOT_FOUND
        if match[2] == "tags":
            return 200, {"tags": self.collection.tags()}
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            browse_query = BrowseQuery.parse(params)
        except QueryError as exc:
            return 400, {"error": "Bad request", "message": str(exc)}
        return 200, self._browse(browse_query)

    def _browse(self, query: BrowseQuery) -> dict | _Raw:
        requested_offset = query.offset
        if self.browse_quirk == "repeat_page":
            query = BrowseQuery(**{**vars(query), "offset": 0})
        indices, total, scores = browse_indices(self.collection, query)
        has_more = query.offset + len(indices) < total
        if self.browse_quirk in ("repeat_page", "has_more_forever"):
            has_more = True
        if self.browse_quirk == "wrong_total":
            total += 5
        pagination = {
            "total": total,
            "limit": query.limit,
            "offset": requested_offset,
            "hasMore": has_more,
        }
        if not scores:  # the common case: the cached bytes of each record, comma-separated
            parts = [b'{"media":[']
            for index in indices:
                parts += (self._record_bytes(index, self.light), b",")
            tail = b'],"pagination":' + _json_bytes(pagination) + b"}"
            if len(parts) > 1:
                parts[-1] = tail  # replaces the last comma
            else:
                parts.append(tail)
            return _Raw(parts)
        items = []
        for index, score in zip(indices, scores, strict=True):
            record = self.collection.record(index)
            item = light_item(record) if self.light else record
            if score is not None:
                item = {**item, "_score": score}
            items.append(item)
        return {"media": items, "pagination": pagination}


@contextlib.contextmanager
def serve_local_api(**kwargs: Any) -> Iterator[str]:
    """Run a :class:`LocalAPI` for the ``with`` block and yield its base URL.

    Example:
        >>> with serve_local_api(synthetic=100) as base_url:
        ...     base_url.endswith("/api")
        True
    """
    with LocalAPI(**kwargs) as api:
        yield api.base_url


def serve_forever(*, stream: TextIO | None = None, **kwargs: Any) -> None:
    """Start a :class:`LocalAPI`, print its URLs as one JSON line, serve until interrupted.

    Example:
        >>> serve_forever(synthetic=10_000, latency=0.02)   # doctest: +SKIP
        {"base_url": "http://127.0.0.1:40123/api", "blob_url": ..., "collection_id": "synthetic"}
    """
    stream = stream or sys.stdout
    api = LocalAPI(**kwargs).start()
    try:
        stream.write(json.dumps(api.info()) + "\n")
        stream.flush()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()

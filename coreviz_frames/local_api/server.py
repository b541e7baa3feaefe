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
import json
import re
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from ..ids import normalize_id
from .images import FileBlobs, SyntheticBlobs
from .store import (
    BrowseQuery,
    Collection,
    FileCollection,
    QueryError,
    SyntheticCollection,
    browse,
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
SAMPLE_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SAMPLE_COLLECTION_ID = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"
BROWSE_QUIRKS = ("repeat_page", "has_more_forever", "wrong_total")
HEADER_HISTORY = 10_000
_BLOB_REF = re.compile(r'(?<!\\)"blob://')
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # idle keep-alive connections are closed after this

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _send(self, status: int, body: bytes, content_type: str, extra=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        # headers and body in one write (with TCP_NODELAY, no 40 ms delayed-ACK stall)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
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
                body_bytes = _json_bytes(payload)
                if b'"blob://' in body_bytes:
                    text = _BLOB_REF.sub(f'"{api.blob_url}/', body_bytes.decode())
                    body_bytes = text.encode()
                self._send(status, body_bytes, "application/json")
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
    ) -> None:
        if browse_quirk is not None and browse_quirk not in BROWSE_QUIRKS:
            raise ValueError(f"browse_quirk must be None or one of {', '.join(BROWSE_QUIRKS)}")
        if latency < 0:
            raise ValueError("latency must be >= 0")
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
            return 200, {"media": self.collection.record(index)}
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

    def _browse(self, query: BrowseQuery) -> dict:
        requested_offset = query.offset
        if self.browse_quirk == "repeat_page":
            query = BrowseQuery(**{**vars(query), "offset": 0})
        page = browse(self.collection, query)
        items = []
        scores = page.scores or [None] * len(page.records)
        for record, score in zip(page.records, scores, strict=True):
            item = light_item(record) if self.light else record
            if score is not None:
                item = {**item, "_score": score}
            items.append(item)
        total = page.total
        has_more = query.offset + len(items) < total
        if self.browse_quirk in ("repeat_page", "has_more_forever"):
            has_more = True
        if self.browse_quirk == "wrong_total":
            total += 5
        return {
            "media": items,
            "pagination": {
                "total": total,
                "limit": query.limit,
                "offset": requested_offset,
                "hasMore": has_more,
            },
        }


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

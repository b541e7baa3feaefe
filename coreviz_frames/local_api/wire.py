"""HTTP plumbing of the local API: a threaded HTTP/1.1 server and its request handler.

The handler parses a request into a :class:`Request`, asks the server's application (any
object with the :class:`Application` methods: :class:`~.server.LocalAPI`) for a
:class:`Reply`, and writes it: in one buffer (with TCP_NODELAY, no delayed-ACK stall), or
byte by byte when the reply trickles, or not at all when it drops the connection.

Example:
    >>> reply = Reply(200, [b'{"ok":true}'])
    >>> reply.content_type, reply.drop
    ('application/json', False)
"""

from __future__ import annotations

import contextlib
import email.parser
import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from coreviz_frames.local_api.stats import ServerStats

__all__ = ["HTTPServer", "Reply", "Request", "error_reply"]


class Request(NamedTuple):
    """One parsed request: ``role`` is the server's ("api" or "blob"); ``target`` is the
    path with its query string."""

    role: str
    method: str
    target: str
    path: str
    query: str
    headers: Any  # Headers, or the email parser's Message for unusual requests
    body: bytes


class Reply(NamedTuple):
    """What to send: ``parts`` of the body are joined once with the head. ``drop`` closes
    the connection without an answer; ``trickle_headers``/``trickle_body`` are seconds
    between single bytes of the head/body."""

    status: int
    parts: list[bytes]
    content_type: str = "application/json"
    headers: Mapping[str, str] = {}
    drop: bool = False
    trickle_headers: float = 0.0
    trickle_body: float = 0.0


class Application(Protocol):
    """What :class:`RequestHandler` needs from the object it serves."""

    stats: ServerStats
    stopping: threading.Event

    def counted(self, request: Request) -> bool:
        """Whether ``request`` counts in ``stats`` (control requests do not)."""
        ...

    def respond(self, request: Request) -> Reply:
        """The reply to ``request``."""
        ...


class HTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with TCP_NODELAY whose handler serves ``app`` as ``role``."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Application, role: str) -> None:
        self.app = app
        self.role = role
        super().__init__(address, RequestHandler)

    def get_request(self):
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


#: The largest request body read (the control routes take small JSON objects).
MAX_BODY_BYTES = 2**20
_MAX_LINE = 65536  # http.client's limits on request header lines
_MAX_HEADERS = 100
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # what the email parser takes as one


class Headers:
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


def parse_headers(lines: list[bytes]) -> Headers | None:
    """``lines`` (ending with the blank line) parsed, or None if any is unusual (then the
    email parser decides, as in the standard library)."""
    items = []
    for raw in lines[:-1]:
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            return None
        items.append((name, value.lstrip(" \t").rstrip("\r\n")))
    return Headers(items)


def error_reply(status: int, message: str) -> Reply:
    """A JSON error :class:`Reply` (``{"error": <reason phrase>, "message": ...}``)."""
    body = json.dumps({"error": HTTPStatus(status).phrase, "message": message})
    return Reply(status, [body.encode()], headers={"Connection": "close"} if status >= 400 else {})


def body_length(headers: Any) -> int | Reply:
    """The request body's length from ``Content-Length`` (0 if absent), or the refusal:
    400 for a value that is not a non-negative integer (or several that differ), 413 above
    :data:`MAX_BODY_BYTES`, 501 for a ``Transfer-Encoding`` (chunked bodies are not read).

    Example:
        >>> body_length({"Content-Length": "12"}), body_length({"Content-Length": "-1"}).status
        (12, 400)
    """
    if headers.get("Transfer-Encoding") is not None:
        return error_reply(501, "request bodies with a Transfer-Encoding are not supported")
    get_all = getattr(headers, "get_all", None)
    values = get_all("Content-Length", []) if get_all else [headers.get("Content-Length")]
    values = {v.strip() for v in values if v is not None}
    if not values:
        return 0
    value = values.pop()
    if values or not value.isdigit() or not value.isascii():
        return error_reply(400, "Content-Length must be one non-negative integer")
    if len(value) > 12 or int(value) > MAX_BODY_BYTES:
        return error_reply(413, f"request bodies are limited to {MAX_BODY_BYTES:,} bytes")
    return int(value)


class RequestHandler(BaseHTTPRequestHandler):
    """Parses requests (a fast path for plain headers) and writes :class:`Reply` values."""

    protocol_version = "HTTP/1.1"
    server: HTTPServer
    raw_requestline: bytes
    _headers_buffer: list[bytes]
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
        cached = RequestHandler._date
        if cached[0] != now:
            cached = RequestHandler._date = (now, super().date_time_string(now))
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
        lines = self._header_lines()
        if lines is None:
            return False
        headers = parse_headers(lines)
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

    def _header_lines(self) -> list[bytes] | None:
        """The header lines up to the blank one, or None (after a 431) if too large."""
        lines = []
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return None
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return None
            if line in (b"\r\n", b"\n", b""):
                return lines

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = body_length(self.headers)
        if isinstance(length, Reply):  # refused before reading: the connection closes
            self.close_connection = True
            self._write(length)
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = Request(
            self.server.role, method, self.path, split.path, split.query, self.headers, body
        )
        app = self.server.app
        counted = app.counted(request)
        if counted:
            app.stats.enter(request.path, {k.lower(): v for k, v in self.headers.items()})
        try:
            self._write(self._respond(request))
        except (BrokenPipeError, ConnectionResetError):  # the client went away: not an error
            self.close_connection = True
        finally:
            if counted:
                app.stats.leave()

    def _respond(self, request: Request) -> Reply:
        """The application's reply; a 500 naming the error (the connection then closes)
        if it raised, instead of a traceback and a dropped connection."""
        try:
            return self.server.app.respond(request)
        except Exception as exc:  # any bug of the application
            self.close_connection = True
            return error_reply(500, f"{type(exc).__name__}: {exc}")

    def _write(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(sum(map(len, reply.parts))))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n")
        if not (reply.trickle_headers or reply.trickle_body):
            # head and body joined once and sent in one write
            if self.command != "HEAD":
                self._headers_buffer.extend(reply.parts)
            self.flush_headers()
            return
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        body = b"".join(reply.parts) if self.command != "HEAD" else b""
        self._trickle(head, reply.trickle_headers)
        self._trickle(body, reply.trickle_body)

    def _trickle(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte every ``interval`` seconds (at once if 0), until the
        client hangs up or the server stops."""
        if not interval:
            self.wfile.write(data)
            self.wfile.flush()
            return
        stopping = self.server.app.stopping
        try:
            for i in range(len(data)):
                if stopping.wait(interval):
                    break
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

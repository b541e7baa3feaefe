"""Test helpers shared by the HTTP and client tests: a scripted HTTP server on 127.0.0.1.

``ScriptedServer`` gives exact fault sequences per path; ``fast_client`` is a client with a
tiny backoff so retry tests stay quick.

Example:
    >>> srv = ScriptedServer(media_route)
    >>> srv.script("/api/media/m1", (503, {}, {"error": "busy"}))
    >>> with fast_client(srv.base_url) as client:
    ...     client.get_media("m1")["id"]
    'm1'
    >>> srv.close()
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import coreviz_frames as cvf
from coreviz_frames.http import transport as cvhttp

__all__ = [
    "KEY",
    "TOKEN",
    "Reply",
    "ScriptedServer",
    "fast_client",
    "media_body",
    "media_route",
]

KEY = "sk-test-SECRET-0123456789"
TOKEN = "tok-SECRET-abcdef"

Reply = (
    tuple  # (status, headers dict, body) | ("drop",) | ("truncate", b"...") | ("sleep", s, reply)
)


def media_body(media_id: str) -> dict:
    return {"media": {"id": media_id, "type": "image", "frames": []}}


class ScriptedServer:
    """A threaded HTTP server on 127.0.0.1 whose answers can be scripted per path.

    ``script(path, *replies)`` queues replies for the next requests to ``path``; otherwise
    ``route(path, query)`` answers. Counts requests, in-flight maximum, headers and queries.
    """

    def __init__(self, route: Callable[[str, dict], Reply] | None = None, latency: float = 0.0):
        self.route = route or (lambda path, query: (404, {}, {"error": "Not found"}))
        self.latency = latency
        self.scripts: dict[str, deque] = {}
        self.paths: Counter[str] = Counter()
        self.headers: list[tuple[str, dict]] = []
        self.queries: list[tuple[str, dict]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/api"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def requests(self) -> int:
        return sum(self.paths.values())

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts.setdefault(path, deque()).extend(replies)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.paths[parts.path] += 1
            self.headers.append((parts.path, {k.lower(): v for k, v in handler.headers.items()}))
            self.queries.append((parts.path, query))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            queue = self.scripts.get(parts.path)
            reply = queue.popleft() if queue else None
        try:
            if self.latency:
                time.sleep(self.latency)
            if reply is None:
                reply = self.route(parts.path, query)
            while reply[0] == "sleep":
                time.sleep(reply[1])
                reply = reply[2]
            if reply[0] == "drop":
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply[0] == "truncate":  # headers promise more body than is sent
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(reply[1]) + 100))
                handler.end_headers()
                handler.wfile.write(reply[1])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            status, headers, body = reply
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            handler.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def media_route(path: str, query: dict) -> Reply:
    if path.startswith("/api/media/"):
        return (200, {}, media_body(path.rsplit("/", 1)[1]))
    return (404, {}, {"error": "Not found"})


def fast_client(base_url: str, *, retries: int = 2, **kwargs) -> cvf.Client:
    """A client with a tiny backoff so retry tests stay quick."""
    session = cvhttp.build_session(retries=retries, backoff_factor=0.01, backoff_max=0.05)
    kwargs.setdefault("api_key", KEY)
    return cvf.Client(base_url=base_url, session=session, retries=retries, **kwargs)

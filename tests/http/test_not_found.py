"""A 404 says whether the id is unknown or the base URL is not the API (by asking it)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import NotFoundError
from coreviz_frames.local_api import LocalAPI


@pytest.fixture(scope="module")
def api():
    with LocalAPI(api_key="k") as served:
        yield served


def test_a_base_url_without_api_is_named_as_the_likely_cause(api):
    root = api.base_url.removesuffix("/api")
    with cvf.Client(api_key="k", base_url=root) as client:
        with pytest.raises(
            NotFoundError,
            match=r"does not answer as the CoreViz API .*gave 404.*"
            r"usually ends in /api",
        ):
            client.get_media("a1b2c3")
        with pytest.raises(NotFoundError, match="does not answer as the CoreViz API"):
            list(client.browse(api.collection_id, progress=False))


def test_an_unknown_id_on_the_right_base_url_is_named_as_such(api):
    with cvf.Client(api_key="k", base_url=api.base_url) as client:
        with pytest.raises(
            NotFoundError,
            match=r"media 'nope'.*answers as the CoreViz API, so "
            r"this id is unknown there",
        ) as caught:
            client.get_media("nope")
        assert caught.value.status == 404 and caught.value.media_id == "nope"
        with pytest.raises(NotFoundError, match=r"collection 'nope'.*this id is unknown"):
            list(client.browse("nope", progress=False))


class _Website(BaseHTTPRequestHandler):
    """A web site at the base URL: HTML 404 pages everywhere (no API behind it)."""

    asked: ClassVar[list[str]] = []

    def do_GET(self):
        self.asked.append(self.path)
        body = b"<html><body>This page could not be found.</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_base_url_is_asked_once_per_client():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Website)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with cvf.Client(api_key="k", base_url=base, retries=0) as client:
            for media_id in ("a1", "a2"):
                with pytest.raises(NotFoundError, match="does not answer as the CoreViz API"):
                    client.get_media(media_id)
        assert _Website.asked == ["/media/a1", "/me", "/media/a2"]
    finally:
        server.shutdown()
        server.server_close()


class _EndlessMe(BaseHTTPRequestHandler):
    """A base URL whose /me answers with an endless body: the probe must not read it."""

    sent: ClassVar[list[int]] = []

    def do_GET(self):
        if self.path != "/me":
            body = b"<html>not found</html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        chunk, sent = b"x" * (1 << 20), 0
        try:
            for _ in range(2048):  # up to 2 GiB, for as long as the client reads
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the client closed the connection
        finally:
            self.sent.append(sent)

    def log_message(self, *args):
        pass


def test_the_probe_reads_no_body():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessMe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with (
            cvf.Client(api_key="k", base_url=base, retries=0) as client,
            pytest.raises(NotFoundError, match=r"does not answer as the CoreViz API.*200"),
        ):
            client.get_media("a1")
        for _ in range(100):  # the handler notes what it sent once the client hung up
            if _EndlessMe.sent:
                break
            threading.Event().wait(0.05)
        # read in full, the body would be up to 2 GiB (or whatever 5 s carries); unread, only
        # what the socket buffers held went out
        assert _EndlessMe.sent and _EndlessMe.sent[0] < 64 << 20
    finally:
        server.shutdown()
        server.server_close()

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

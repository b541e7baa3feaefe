"""Response bodies are read whole: in one read when their length is declared (up to
WHOLE_READ_MAX), else 1 MiB per read of the socket; never requests' 10 KiB.

Counted on a real answer from a server on 127.0.0.1 (urllib3's reads are counted, not
replaced); the limits the transport keeps (total deadlines, cancellation, retried broken
bodies) are proven in ``test_http.py``.
"""

from __future__ import annotations

import threading

import pytest
import requests
import urllib3.response
from helpers import ScriptedServer, fast_client

from coreviz_frames.http import transport as cvhttp

BODY_CHARS = 3 * 1024 * 1024  # a 3 MiB page


@pytest.fixture
def big_server():
    record = {"media": {"id": "m1", "name": "x" * BODY_CHARS}}
    srv = ScriptedServer(lambda path, query: (200, {}, record))
    yield srv
    srv.close()


@pytest.fixture
def reads(monkeypatch):
    """The reads of response bodies this thread makes (calls of urllib3's read)."""
    counted: list[int | None] = []
    original = urllib3.response.HTTPResponse.read
    me = threading.get_ident()

    def read(self, amt=None, *args, **kwargs):
        if threading.get_ident() == me:
            counted.append(amt)
        return original(self, amt, *args, **kwargs)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "read", read)
    return counted


def test_a_3_mib_body_of_declared_length_takes_one_read(big_server, reads):
    with fast_client(big_server.base_url) as client:
        record = client.get_media("m1")
    assert len(record["name"]) == BODY_CHARS
    assert reads == [None]  # the whole declared length; requests' own .content makes ~300


def test_a_length_declared_beyond_the_whole_read_limit_is_read_as_it_comes(
    big_server, reads, monkeypatch
):
    """A Content-Length above WHOLE_READ_MAX is not read (allocated) in one call."""
    monkeypatch.setattr(cvhttp, "WHOLE_READ_MAX", 1 << 20)
    with fast_client(big_server.base_url) as client:
        record = client.get_media("m1")
    assert len(record["name"]) == BODY_CHARS
    # 3 full reads and the one that finds the end
    assert 1 <= len(reads) <= 5, reads
    assert all(amt == cvhttp.BODY_CHUNK for amt in reads)


def test_the_body_is_read_within_the_attempt(big_server, reads):
    """get_body returns with the body in memory (read inside the attempt's deadline)."""
    with fast_client(big_server.base_url) as client:
        body = client._transport.get_body("media/m1")
        n = len(reads)
        assert n >= 1
        assert body.json()["media"]["id"] == "m1"
        assert len(reads) == n  # decoding read nothing more from the socket


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Length": "1024"}, 1024),
        ({"Content-Length": " 7 "}, 7),
        ({}, None),
        ({"Content-Length": "-1"}, None),
        ({"Content-Length": "12, 12"}, None),
        ({"Content-Length": "5", "Transfer-Encoding": "chunked"}, None),
    ],
)
def test_declared_length(headers, expected):
    """Only a plain Content-Length, not overridden by a Transfer-Encoding, is a length."""
    response = requests.Response()
    response.headers.update(headers)
    assert cvhttp._declared_length(response) == expected

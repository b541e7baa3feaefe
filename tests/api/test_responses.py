"""One check of an answer's shape, one message style: every read that gets a body without
what it needs raises ``InvalidResponseError("GET <what> (<url>): the response has no ...")``
naming the request, its URL (no credentials in it) and the keys the body had."""

from __future__ import annotations

import re

import pytest

from coreviz_frames.api.responses import object_at, objects_at
from coreviz_frames.errors import InvalidResponseError
from tests.helpers import ScriptedServer, fast_client

READS = {
    "get_media": (lambda c: c.get_media("m1"), "/api/media/m1", "'media' object"),
    "a page": (lambda c: list(c.iter_pages("c1")), "/api/dataset/c1/media", "'media' list"),
    "get_collection": (lambda c: c.get_collection("c1"), "/api/dataset/c1", "'dataset' object"),
    "tag_catalogue": (lambda c: c.tag_catalogue("c1"), "/api/dataset/c1/tags", "'tags' object"),
    "versions": (lambda c: c.versions("m1"), "/api/media/m1/versions", "'versions' list"),
    "collections": (
        lambda c: c.collections("o1"),
        "/api/organization/o1/datasets",
        "'datasets' list",
    ),
    "search": (lambda c: c.search("x", organization_id="o1"), "/api/search", "'results' list"),
}


@pytest.fixture(scope="module")
def server():
    srv = ScriptedServer(lambda path, query: (200, {}, {"unexpected": 1}))
    yield srv
    srv.close()


@pytest.mark.parametrize("name", sorted(READS))
def test_every_read_says_what_was_missing_in_one_style(server, name):
    call, path, missing = READS[name]
    with fast_client(server.base_url) as client, pytest.raises(InvalidResponseError) as info:
        call(client)
    message = str(info.value)
    url = f"{server.base_url.removesuffix('/api')}{path}"
    assert re.match(r"GET .+ \(" + re.escape(url) + r"\): the response has no ", message), message
    assert missing in message and "(keys: ['unexpected'])" in message
    assert info.value.url == url


def test_a_url_with_credentials_is_not_repeated_in_the_message():
    with pytest.raises(InvalidResponseError) as info:
        object_at({}, "media", what="media 'm1'", url="https://user:secret@h/api/media/m1")
    assert "secret" not in str(info.value) and "h/api/media/m1" in str(info.value)


def test_a_list_must_hold_objects():
    assert objects_at({"x": [{"a": 1}]}, "x", what="w", url="u") == [{"a": 1}]
    with pytest.raises(InvalidResponseError, match="'x' list of objects"):
        objects_at({"x": [{"a": 1}, 2]}, "x", what="w", url="u")

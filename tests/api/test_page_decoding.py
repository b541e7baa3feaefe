"""Browse pages are fetched by the client's workers and decoded by the walking thread:
a page that waits in the prefetch window is bytes, not Python objects."""

from __future__ import annotations

import threading

import pytest
from helpers import ScriptedServer, fast_client

import coreviz_frames as cvf
from coreviz_frames.errors import InvalidResponseError
from coreviz_frames.http.transport import JsonBody

KEY = "test-key"


def test_pages_are_decoded_in_the_walking_thread(local_api_factory, monkeypatch) -> None:
    api = local_api_factory(synthetic=250, api_key=KEY)
    decoded_in: list[str] = []
    original = JsonBody.json

    def spy(self, **kwargs):
        if "/dataset/" in self.url:
            decoded_in.append(threading.current_thread().name)
        return original(self, **kwargs)

    monkeypatch.setattr(JsonBody, "json", spy)
    with cvf.Client(api_key=KEY, base_url=api.base_url, max_workers=4) as client:
        records = list(client.browse(api.collection_id, page_size=20, progress=False))
    assert len(records) == 250
    assert len(decoded_in) == 13
    assert set(decoded_in) == {threading.current_thread().name}


def test_a_page_that_is_not_json_fails_when_the_walk_reaches_it() -> None:
    """The bad body is named (collection, offset, URL) as before, raised to the caller."""

    def route(path: str, query: dict):
        offset = int(query.get("offset", "0"))
        if offset == 10:
            return (200, {"Content-Type": "application/json"}, "{not json")
        media = [{"id": f"m{offset + i}", "type": "image", "frames": []} for i in range(10)]
        return (200, {}, {"media": media, "pagination": {"total": 30, "hasMore": True}})

    srv = ScriptedServer(route)
    try:
        with fast_client(srv.base_url, max_workers=4) as client:
            walk = client.browse("c1", page_size=10, progress=False)
            seen = []
            with pytest.raises(InvalidResponseError, match="offset 10"):
                for record in walk:
                    seen.append(record["id"])
            assert seen == [f"m{i}" for i in range(len(seen))]  # in order, none after it
    finally:
        srv.close()

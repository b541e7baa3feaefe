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


def test_no_more_pages_are_read_by_pyarrow_at_once_than_the_machine_has_cores(
    local_api_factory, monkeypatch
) -> None:
    """Eight requests in flight, but pages parsed only as many at a time as the parsing
    semaphore allows (one per core by default): more threads parsing than cores only trade
    the cores and the GIL back and forth."""
    import os
    import time

    from coreviz_frames.api import client as client_module

    assert client_module._PARSING._value == max(1, os.cpu_count() or 1)  # type: ignore[attr-defined]
    monkeypatch.setattr(client_module, "_PARSING", threading.BoundedSemaphore(2))
    api = local_api_factory(synthetic=240, api_key=KEY)
    original = client_module.read_page
    lock, now, most = threading.Lock(), [0], [0]

    def slow_read(body):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.02)  # long enough for every worker to arrive here
        with lock:
            now[0] -= 1
        return original(body)

    monkeypatch.setattr(client_module, "read_page", slow_read)
    with cvf.Client(api_key=KEY, base_url=api.base_url, max_workers=8) as client:
        walk = client.browse(api.collection_id, page_size=10, progress=False)
        media = sum(len(chunk) if hasattr(chunk, "rows") else 1 for chunk in walk.chunks())
    assert media == 240
    assert most[0] == 2

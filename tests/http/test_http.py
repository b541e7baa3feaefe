"""The HTTP layer against real servers on 127.0.0.1: retries, timeouts, statuses, secrets.

The scripted ``ThreadingHTTPServer`` (``ScriptedServer``, in ``tests/helpers.py``, shared
with ``tests/api/test_client.py``) gives exact fault sequences; the local API gives trickled
answers and unusual ``Retry-After`` headers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable

import pytest
import requests
from helpers import KEY, TOKEN, Reply, ScriptedServer, fast_client, media_body, media_route

import coreviz_frames as cvf
from coreviz_frames import errors as cverrors
from coreviz_frames.errors import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    CorevizError,
    InvalidIdError,
    InvalidResponseError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from coreviz_frames.http import (
    credentials as cvcredentials,
    deadline as cvdeadline,
    retry as cvretry,
    translate as cvtranslate,
    transport as cvhttp,
    urls as cvurls,
)


@pytest.fixture
def server():
    srv = ScriptedServer(media_route)
    yield srv
    srv.close()


@pytest.fixture
def other_server():
    # answers every path with a record whose id is the path's last segment
    srv = ScriptedServer(lambda path, query: (200, {}, {"media": {"id": path.rsplit("/", 1)[1]}}))
    yield srv
    srv.close()


# ----------------------------------------------------------------------------- retries


def test_429_with_retry_after_is_retried_after_the_delay(server):
    server.script("/api/media/m1", (429, {"Retry-After": "1"}, {"error": "Rate limit exceeded"}))
    with fast_client(server.base_url) as client:
        start = time.monotonic()
        rec = client.get_media("m1")
        elapsed = time.monotonic() - start
    assert rec["id"] == "m1"
    assert server.paths["/api/media/m1"] == 2
    assert elapsed >= 1.0


def test_503_twice_then_success(server):
    server.script("/api/media/m1", (503, {}, {"error": "busy"}), (503, {}, {"error": "busy"}))
    with fast_client(server.base_url, retries=2) as client:
        assert client.get_media("m1")["id"] == "m1"
    assert server.paths["/api/media/m1"] == 3


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError)],
)
def test_client_errors_are_not_retried_and_typed(server, status, exc_type):
    server.script("/api/media/abc123", (status, {}, {"error": "Nope", "message": "no access"}))
    with fast_client(server.base_url, retries=3) as client, pytest.raises(exc_type) as info:
        client.get_media("abc123")
    assert server.paths["/api/media/abc123"] == 1
    err = info.value
    assert err.status == status and err.media_id == "abc123"
    assert "abc123" in str(err) and str(status) in str(err)
    assert "Nope: no access" in str(err) and err.detail == "Nope: no access"


def test_other_4xx_is_api_status_error(server):
    server.script("/api/media/m1", (400, {}, {"message": "bad request"}))
    with fast_client(server.base_url) as client, pytest.raises(APIStatusError) as info:
        client.get_media("m1")
    assert type(info.value) is APIStatusError and info.value.status == 400
    assert server.paths["/api/media/m1"] == 1


def test_exhausted_5xx_retries_raise_server_error(server):
    server.script("/api/media/m1", *[(502, {}, {"error": "bad gateway"})] * 5)
    with fast_client(server.base_url, retries=2) as client, pytest.raises(ServerError) as info:
        client.get_media("m1")
    assert server.paths["/api/media/m1"] == 3
    assert info.value.status == 502 and "m1" in str(info.value)


def test_exhausted_429_raises_rate_limit_error_with_retry_after(server):
    server.script("/api/media/m1", *[(429, {"Retry-After": "0"}, {"error": "slow down"})] * 3)
    with fast_client(server.base_url, retries=1) as client, pytest.raises(RateLimitError) as info:
        client.get_media("m1")
    assert server.paths["/api/media/m1"] == 2
    assert info.value.retry_after == 0.0 and info.value.status == 429


def test_dropped_connection_is_retried(server):
    server.script("/api/media/m1", ("drop",), ("drop",))
    with fast_client(server.base_url, retries=2) as client:
        assert client.get_media("m1")["id"] == "m1"
    assert server.paths["/api/media/m1"] == 3


def test_dropped_connection_every_time_is_network_error(server):
    server.script("/api/media/m1", *[("drop",)] * 4)
    with fast_client(server.base_url, retries=1) as client, pytest.raises(NetworkError) as info:
        client.get_media("m1")
    assert "m1" in str(info.value)


def test_connection_broken_while_reading_the_body_is_retried(server):
    server.script("/api/media/m1", ("truncate", b'{"media": {"id"'))
    with fast_client(server.base_url, retries=2) as client:
        assert client.get_media("m1")["id"] == "m1"
    assert server.paths["/api/media/m1"] == 2


def test_body_broken_every_time_is_network_error_after_the_retries(server):
    server.script("/api/media/m1", *[("truncate", b'{"media": {"id"')] * 4)
    with fast_client(server.base_url, retries=2) as client, pytest.raises(NetworkError) as info:
        client.get_media("m1")
    assert "m1" in str(info.value)
    assert server.paths["/api/media/m1"] == 3


def test_unparsable_redirect_location_is_invalid_response_error(server):
    server.script("/api/media/m1", (302, {"Location": "http://[::1"}, b""))
    with fast_client(server.base_url) as client, pytest.raises(InvalidResponseError, match="m1"):
        client.get_media("m1")


def test_absurdly_nested_json_is_invalid_response_error(server):
    server.script("/api/media/m1", (200, {}, b'{"a":' * 100_000 + b"1" + b"}" * 100_000))
    with fast_client(server.base_url) as client, pytest.raises(InvalidResponseError, match="m1"):
        client.get_media("m1")


def test_connection_refused_is_network_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = fast_client(f"http://127.0.0.1:{port}/api", retries=1)
    with client, pytest.raises(NetworkError):
        client.get_media("m1")


def test_timeout_is_request_timeout_error(server):
    server.script("/api/media/m1", ("sleep", 1.5, (200, {}, media_body("m1"))))
    client = fast_client(server.base_url, retries=0, timeout=0.3)
    with client, pytest.raises(RequestTimeoutError) as info:
        client.get_media("m1")
    assert "m1" in str(info.value) and "timed out" in str(info.value)


def test_timeout_after_retries_is_still_a_timeout(server):
    slow = ("sleep", 1.0, (200, {}, media_body("m1")))
    server.script("/api/media/m1", slow, slow)
    client = fast_client(server.base_url, retries=1, timeout=0.2)
    with client, pytest.raises(RequestTimeoutError):
        client.get_media("m1")
    assert server.paths["/api/media/m1"] == 2


def test_retry_after_is_capped():
    retry = cvretry.build_retry(3)
    assert retry.parse_retry_after("3600") == cvretry.RETRY_AFTER_CAP
    assert retry.parse_retry_after("2") == 2
    assert retry.new().parse_retry_after("99999") == cvretry.RETRY_AFTER_CAP
    assert 429 in retry.status_forcelist and 503 in retry.status_forcelist
    assert retry.raise_on_status is False


# ----------------------------------------------------------------------------- bodies


def test_invalid_json_is_invalid_response_error(server):
    server.script("/api/media/m1", (200, {"Content-Type": "text/html"}, b"<html>oops</html>"))
    with fast_client(server.base_url) as client, pytest.raises(InvalidResponseError) as info:
        client.get_media("m1")
    assert "m1" in str(info.value) and "not JSON" in str(info.value)


def test_wrong_shape_is_invalid_response_error(server):
    server.script("/api/media/m1", (200, {}, {"media": ["not", "an", "object"]}))
    server.script("/api/media/m2", (200, {}, [1, 2, 3]))
    with fast_client(server.base_url) as client:
        with pytest.raises(InvalidResponseError, match="m1"):
            client.get_media("m1")
        with pytest.raises(InvalidResponseError, match="m2"):
            client.get_media("m2")


def test_2xx_body_with_error_key_is_a_failure(server):
    server.script("/api/media/m1", (200, {}, {"error": "Insufficient credits"}))
    with fast_client(server.base_url) as client, pytest.raises(APIStatusError) as info:
        client.get_media("m1")
    assert "Insufficient credits" in str(info.value) and info.value.status == 200


def test_non_json_error_body_still_typed(server):
    server.script("/api/media/m1", (404, {"Content-Type": "text/plain"}, b"gone"))
    with fast_client(server.base_url) as client, pytest.raises(NotFoundError):
        client.get_media("m1")


# ----------------------------------------------------------------------------- ids

BAD_IDS = ["../x", "a/b", "%2e%2e", "abc?x=1", "a#b", "", " ", None, "a b", "é"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused_before_any_request(server, bad):
    with fast_client(server.base_url) as client:
        with pytest.raises(InvalidIdError):
            client.get_media(bad)
        with pytest.raises(InvalidIdError):
            client.iter_media(["good1", bad, "good2"])
        with pytest.raises(InvalidIdError):
            client.browse(bad)
        with pytest.raises(InvalidIdError):
            client.iter_pages(bad)
    assert server.requests == 0


# ----------------------------------------------------------------------------- secrets


def redirect_route(target: str) -> Callable[[str, dict], Reply]:
    def route(path: str, query: dict) -> Reply:
        if path.startswith("/api/media/"):
            return (302, {"Location": f"{target}/cdn{path}"}, {})
        return (404, {}, {})

    return route


@pytest.mark.parametrize("auth", [{"api_key": KEY}, {"token": TOKEN}])
def test_redirect_to_another_origin_carries_no_credentials(other_server, auth):
    api = ScriptedServer(redirect_route(other_server.origin))
    try:
        with fast_client(api.base_url, **auth) as client:
            assert client.get_media("m1") == {"id": "m1"}
    finally:
        api.close()
    ((path, api_headers),) = api.headers
    assert path == "/api/media/m1"
    assert ("x-api-key" in api_headers) == ("api_key" in auth)
    assert api_headers.get("authorization", "Bearer " + TOKEN).startswith("Bearer ")
    ((path, blob_headers),) = other_server.headers
    assert path == "/cdn/api/media/m1"
    assert "x-api-key" not in blob_headers and "authorization" not in blob_headers


def test_same_origin_redirect_keeps_credentials(server):
    plain, spelled = "7938b58dd60a43d8953f4f56b3cd8410", "7938B58D-D60A-43D8-953F-4F56B3CD8410"
    server.script(f"/api/media/{plain}", (301, {"Location": f"/api/media/{spelled}"}, {}))
    with fast_client(server.base_url) as client:
        assert client.get_media(plain)["id"] == spelled  # the same media, another spelling
    assert [h.get("x-api-key") for _, h in server.headers] == [KEY, KEY]


def test_direct_request_to_another_origin_carries_no_credentials(server, other_server):
    with fast_client(server.base_url) as client:
        transport = client._transport
        assert transport.headers_for(f"{other_server.origin}/a.jpg") == {}
        assert transport.headers_for(f"{server.base_url}/media/x") == {"x-api-key": KEY}
        transport.get_json(f"{other_server.origin}/blob.json")
        client.get_media("m1")
    assert "x-api-key" not in other_server.headers[0][1]
    assert server.headers[0][1]["x-api-key"] == KEY
    assert "x-api-key" not in client.session.headers
    assert "authorization" not in {k.lower() for k in client.session.headers}


def test_bearer_token_header(server):
    with fast_client(server.base_url, token=TOKEN, api_key=None) as client:
        client.get_media("m1")
    headers = server.headers[0][1]
    assert headers["authorization"] == f"Bearer {TOKEN}" and "x-api-key" not in headers


def test_key_never_in_repr_exceptions_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "coreviz_frames"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    server.script("/api/media/m1", (503, {}, {"error": "busy"}), (200, {}, media_body("m1")))
    server.script("/api/media/m1", (503, {}, {"error": "busy"}), (200, {}, media_body("m1")))
    # a server that echoes the key back in its error message
    for secret in (KEY, TOKEN):
        server.script("/api/media/m2", (401, {}, {"error": f"bad key {secret}"}))
        server.script(
            "/api/media/m3", *[(500, {"Content-Type": "text/plain"}, secret.encode())] * 2
        )
        server.script("/api/media/m4", (200, {}, {"media": None, "error": f"{secret} rejected"}))
    errors: list[BaseException] = []
    for auth in ({"api_key": KEY}, {"token": TOKEN}):
        with fast_client(server.base_url, retries=1, **auth) as client:
            client.get_media("m1")
            for mid in ("m2", "m3", "m4"):
                try:
                    client.get_media(mid)
                except CorevizError as exc:
                    errors.append(exc)
            texts = [
                repr(client),
                str(client),
                repr(vars(client)),
                repr(vars(client._transport)),
                repr(client._transport._credentials),
            ]
            with pytest.raises(TypeError):
                vars(client._transport._credentials)
            for text in texts:
                assert KEY not in text and TOKEN not in text
    assert len(errors) == 6
    for exc in errors:
        text = f"{exc!s} {exc!r} {vars(exc)!r}"
        assert KEY not in text and TOKEN not in text
    assert "***" in str(errors[0])
    assert caplog.records and any(r.name.startswith("urllib3") for r in caplog.records)
    assert KEY not in caplog.text and TOKEN not in caplog.text


# ----------------------------------------------------------------------------- config


def test_missing_credentials_raise_config_error(monkeypatch):
    monkeypatch.delenv("COREVIZ_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="COREVIZ_API_KEY"):
        cvf.Client()


def test_environment_fallbacks(monkeypatch, server):
    monkeypatch.setenv("COREVIZ_API_KEY", KEY)
    monkeypatch.setenv("COREVIZ_BASE_URL", server.base_url + "/")
    with cvf.Client(retries=0) as client:
        assert client.base_url == server.base_url and client.auth_kind == "api_key"
        assert repr(client) == (
            f"Client(base_url={server.base_url!r}, auth='api_key', max_workers=8)"
        )
        client.get_media("m1")
    assert server.headers[0][1]["x-api-key"] == KEY


def test_default_base_url(monkeypatch):
    monkeypatch.delenv("COREVIZ_BASE_URL", raising=False)
    client = cvf.Client(api_key=KEY)
    assert client.base_url == "https://lab.coreviz.io/api"
    assert client.api_origin == "https://lab.coreviz.io:443"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://x/api"},
        {"base_url": "nothing"},
        {"retries": -1},
        {"max_workers": 0},
        {"timeout": 0},
        {"timeout": "5"},
        {"timeout": (5,)},
        {"timeout": (1, 2, 3)},
    ],
)
def test_bad_options_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        cvf.Client(api_key=KEY, **kwargs)


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        cvf.Client(KEY)  # type: ignore[misc]


def test_session_pool_is_sized_for_the_workers():
    client = cvf.Client(api_key=KEY, max_workers=32, retries=4)
    adapter = client.session.get_adapter("https://lab.coreviz.io/api")
    assert adapter._pool_maxsize >= 32
    assert adapter.max_retries.total == 4 and adapter.max_retries.read == 4
    client.close()


def test_is_same_origin():
    base = "https://lab.coreviz.io/api"
    assert cvurls.is_same_origin("https://lab.coreviz.io/api/media/x", base)
    assert cvurls.is_same_origin("https://LAB.coreviz.io:443/other", base)
    assert not cvurls.is_same_origin("http://lab.coreviz.io/api", base)
    assert not cvurls.is_same_origin("https://lab.coreviz.io:8443/api", base)
    assert not cvurls.is_same_origin("https://lab.coreviz.io.evil.com/api", base)
    assert not cvurls.is_same_origin("https://x.public.blob.vercel-storage.com/a.jpg", base)


def test_translate_error_never_leaks_raw_requests_exceptions():
    err = cvtranslate.translate_error("http://u:p@h/x", exc=requests.ConnectionError("boom"))
    assert isinstance(err, NetworkError) and "u:p" not in str(err)
    err = cvtranslate.translate_error("http://h/x", exc=requests.ReadTimeout("slow"))
    assert isinstance(err, RequestTimeoutError)


# ----------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize("retry_after", ["0.5", "soon", "1.5e-1", "nan", ""])
@pytest.mark.parametrize("status", [429, 503])
def test_fractional_or_text_retry_after_is_retried(local_api_factory, status, retry_after):
    api = local_api_factory(synthetic=5)
    media_id = api.collection.media_id(0)
    api.add_fault("/api/media/", status=status, retry_after=retry_after, count=2)
    with fast_client(api.base_url, retries=2) as client:
        assert client.get_media(media_id)["id"] == media_id
    assert api.stats.paths[f"/api/media/{media_id}"] == 3


def test_fractional_retry_after_is_honoured(local_api_factory):
    api = local_api_factory(synthetic=5)
    media_id = api.collection.media_id(0)
    api.add_fault("/api/media/", status=429, retry_after="0.6")
    with fast_client(api.base_url, retries=1) as client:
        start = time.monotonic()
        client.get_media(media_id)
    assert time.monotonic() - start >= 0.6


def test_browse_survives_text_retry_after(local_api_factory):
    api = local_api_factory(synthetic=30)
    api.add_fault("/api/dataset/", status=429, retry_after="soon", count=2)
    api.add_fault("/api/dataset/", status=503, retry_after="0.1", count=1)
    with fast_client(api.base_url, retries=3) as client:
        records = list(client.browse(api.collection_id, page_size=10, progress=False))
    assert len({r["id"] for r in records}) == 30


def test_parse_retry_after():
    assert cvretry.parse_retry_after("0.5") == 0.5
    assert cvretry.parse_retry_after(" 2 ") == 2.0
    assert cvretry.parse_retry_after("3600") == cvretry.RETRY_AFTER_CAP
    assert cvretry.parse_retry_after("-3") == 0.0
    for bad in ("soon", "", None, "nan", "inf"):
        assert cvretry.parse_retry_after(bad) is None
    assert cvretry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    retry = cvretry.build_retry(2)
    assert retry.parse_retry_after("0.25") == 0.25


# ----------------------------------------------------------------------------- deadlines

TRICKLE = 0.5  # seconds between bytes: each read returns in time, the whole never does


@pytest.mark.parametrize("part", ["trickle_headers", "trickle_body"])
def test_trickling_server_is_cut_by_the_total_deadline(local_api_factory, part):
    api = local_api_factory(synthetic=5)
    media_id = api.collection.media_id(0)
    api.add_fault("/api/media/", **{part: TRICKLE}, count=5)
    client = cvf.Client(api_key=KEY, base_url=api.base_url, timeout=1, retries=0)
    start = time.monotonic()
    with client, pytest.raises(RequestTimeoutError) as info:
        client.get_media(media_id)
    assert time.monotonic() - start < 10  # used to take as long as the server liked
    assert f"/api/media/{media_id}" in str(info.value) and "deadline" in str(info.value)
    assert info.value.url == f"{api.base_url}/media/{media_id}"
    assert info.value.media_id == media_id


def test_attempt_cut_by_the_deadline_is_retried(local_api_factory):
    api = local_api_factory(synthetic=5)
    media_id = api.collection.media_id(0)
    api.add_fault("/api/media/", trickle_headers=TRICKLE)
    with fast_client(api.base_url, retries=1, timeout=1) as client:
        assert client.get_media(media_id)["id"] == media_id
    assert api.stats.paths[f"/api/media/{media_id}"] == 2


@pytest.mark.parametrize("part", ["trickle_headers", "trickle_body"])
def test_deadline_bounds_a_plain_session_streaming_a_blob(local_api_factory, part):
    """The mechanism the image loader reuses: any requests.Session, stream=True."""
    api = local_api_factory(synthetic=3)
    record = api.collection.record(0)
    blob = record["frames"][0]["blob"].replace("blob://", api.blob_url + "/")
    api.add_fault("/synthetic/", **{part: TRICKLE})
    session = requests.Session()
    start = time.monotonic()
    with (
        cvdeadline.Deadline(1.0, session=session) as deadline,
        pytest.raises(requests.RequestException),
        session.get(blob, stream=True, timeout=1) as resp,
    ):
        b"".join(resp.iter_content(1024))
    assert time.monotonic() - start < 10
    assert deadline.expired
    err = deadline.timeout_error(blob)
    assert isinstance(err, RequestTimeoutError) and err.url == blob
    with cvdeadline.Deadline(1.0, session=session) as deadline:  # the next download is fine
        assert session.get(blob, timeout=5).content.startswith(b"\xff\xd8")
    assert not deadline.expired
    session.close()


def test_deadline_needs_finite_positive_seconds():
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ConfigError):
            cvdeadline.Deadline(bad)
        with pytest.raises(ConfigError):
            cvhttp.Transport("http://h/api", session=requests.Session(), deadline=bad)
    assert cvdeadline.deadline_for((3, 27)) == 30.0


def test_fast_requests_are_not_disturbed_by_deadlines(local_api_factory):
    api = local_api_factory(synthetic=40)
    ids = [api.collection.media_id(i) for i in range(40)]
    with fast_client(api.base_url, retries=0, timeout=5, max_workers=8) as client:
        for _ in range(3):
            assert [r["id"] for r in client.iter_media(ids, progress=False)] == ids


# ----------------------------------------------------------------------------- cancellation


def _transport(base_url: str, retries: int = 5, timeout: float = 30.0) -> cvhttp.Transport:
    session = cvhttp.build_session(retries=retries, backoff_factor=0.01, backoff_max=0.05)
    return cvhttp.Transport(
        base_url,
        session=session,
        credentials=cvcredentials.Credentials.api_key(KEY),
        timeout=timeout,
    )


def _run_in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list]:
    box: list = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _wait_for(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_cancelled_batch_sends_no_request(local_api_factory):
    api = local_api_factory(synthetic=5)
    batch = cvdeadline.Cancellation()
    batch.cancel("media 'x' failed: 401")
    transport = _transport(api.base_url)
    with pytest.raises(cverrors.RequestCancelledError, match="media 'x' failed") as info:
        transport.get_json("media/abc", cancel=batch, media_id="abc")
    assert isinstance(info.value, CorevizError) and info.value.media_id == "abc"
    assert api.stats.requests == 0
    # other requests of the transport are not affected
    assert transport.get_json(f"dataset/{api.collection_id}/tags")["tags"]
    transport.close()


def test_cancel_ends_a_retry_after_sleep_at_once(local_api_factory):
    api = local_api_factory(synthetic=5)
    media_id = api.collection.media_id(0)
    api.add_fault("/api/media/", status=503, retry_after=30, count=10)
    transport = _transport(api.base_url)
    batch = cvdeadline.Cancellation()
    thread, box = _run_in_thread(lambda: transport.get_json(f"media/{media_id}", cancel=batch))
    _wait_for(lambda: api.stats.requests == 1)
    start = time.monotonic()
    batch.cancel("stop")
    thread.join(10)
    assert time.monotonic() - start < 10  # used to sleep 30 s, then retry 4 more times
    assert isinstance(box[0], cverrors.RequestCancelledError) and media_id in str(box[0])
    assert api.stats.requests == 1
    transport.close()


def test_cancel_cuts_a_request_in_flight(local_api_factory):
    api = local_api_factory(synthetic=5)
    media_id = api.collection.media_id(0)
    api.add_fault("/api/media/", trickle_headers=TRICKLE, count=10)
    transport = _transport(api.base_url, timeout=30)
    thread, box = _run_in_thread(lambda: transport.get_json(f"media/{media_id}"))
    _wait_for(lambda: api.stats.requests == 1)
    start = time.monotonic()
    transport.cancel("closing")
    thread.join(10)
    assert time.monotonic() - start < 10  # used to wait for the 30 s deadline, and retry
    assert isinstance(box[0], cverrors.RequestCancelledError)
    assert api.stats.requests == 1
    assert transport.cancelled
    with pytest.raises(cverrors.RequestCancelledError):
        transport.get_json(f"media/{media_id}")
    transport.close()


def test_cancellation_reaches_children():
    parent = cvdeadline.Cancellation()
    child = cvdeadline.Cancellation(parent)
    parent.cancel("why")
    assert child.cancelled and child.reason == "why"
    late = cvdeadline.Cancellation(parent)
    assert late.cancelled
    start = time.monotonic()
    with pytest.raises(cverrors.RequestCancelledError):
        late.sleep(30)
    assert time.monotonic() - start < 10


# ----------------------------------------------------------------------------- masking


def test_key_cut_by_the_snippet_limit_is_masked(server):
    for prefix in range(60, 81, 2):  # the key straddles the 80-character cut
        body = ("x" * prefix + KEY + " tail").encode()
        server.script("/api/media/m1", (200, {"Content-Type": "text/plain"}, body))
        client = fast_client(server.base_url, retries=0)
        with client, pytest.raises(InvalidResponseError) as info:
            client.get_media("m1")
        text = str(info.value)
        assert "not JSON" in text and KEY[:4] not in text, (prefix, text)


def test_partial_key_at_the_end_of_a_text_is_masked():
    assert cvcredentials.mask_secrets("echo " + KEY[:10], [KEY]) == "echo ***"
    assert cvcredentials.mask_secrets("x" * 75 + KEY, [KEY], limit=80) == "x" * 75 + "***"
    assert cvcredentials.mask_secrets("abc", [KEY]) == "abc"
    assert cvcredentials.mask_secrets("plain s", ["sk-1"]) == "plain s"


def test_url_userinfo_never_shown(server, caplog):
    caplog.set_level(logging.DEBUG)
    base = server.base_url.replace("http://", "http://user:hunter2@")
    server.script("/api/media/m1", (404, {}, {"error": "Not found"}))
    client = fast_client(base, retries=0)
    assert "hunter2" not in repr(client) and "user:" not in repr(client)
    with client, pytest.raises(NotFoundError) as info:
        client.get_media("m1")
    assert "hunter2" not in str(info.value) and "hunter2" not in (info.value.url or "")
    assert "hunter2" not in caplog.text
    assert cvurls.safe_url("http://u:p@[::1") == "http://[::1"
    with pytest.raises(ConfigError) as bad:
        cvf.Client(api_key=KEY, base_url="ftp://u:hunter2@x/api")
    assert "hunter2" not in str(bad.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "http://[::1"},
        {"base_url": "http://[::1/api"},
        {"timeout": float("inf")},
        {"timeout": float("nan")},
        {"timeout": -1.0},
        {"timeout": (1.0, float("inf"))},
    ],
)
def test_unusable_base_url_or_timeout_is_config_error(kwargs):
    with pytest.raises(ConfigError) as info:
        cvf.Client(api_key=KEY, **kwargs)
    assert next(iter(kwargs)) in str(info.value)


def _trickled_get_in_child(url: str, queue) -> None:
    session = cvhttp.build_session(retries=0)
    try:
        with cvdeadline.Deadline(1.0, session=session) as deadline:
            session.get(url, timeout=1)
        queue.put("answered")
    except requests.RequestException:
        queue.put(f"cut: expired={deadline.expired}")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")  # Python >= 3.12
def test_deadline_works_in_a_forked_child(local_api_factory):
    api = local_api_factory(synthetic=3)
    api.add_fault("/api/dataset/", trickle_headers=TRICKLE, count=2)
    url = f"{api.base_url}/dataset/synthetic/tags"
    session = cvhttp.build_session(retries=0)
    with cvdeadline.Deadline(1.0, session=session), pytest.raises(requests.RequestException):
        session.get(url, timeout=1)  # the parent's watchdog thread is running
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_trickled_get_in_child, args=(url, queue))
    child.start()
    try:
        assert queue.get(timeout=20) == "cut: expired=True"
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def test_fault_soak_every_media_fetched_once(local_api_factory):
    """30% random faults (429 with a fractional Retry-After, 500, 503, dropped connections)."""
    api = local_api_factory(synthetic=300, fault_rate=0.3, fault_seed=3)
    ids = [api.collection.media_id(i) for i in range(300)]
    session = cvhttp.build_session(retries=8, backoff_factor=0.01, backoff_max=0.05)
    client = cvf.Client(api_key=KEY, base_url=api.base_url, session=session, retries=8)
    with client:
        records = list(client.iter_media(ids, progress=False))
        browsed = list(client.browse(api.collection_id, page_size=50, progress=False))
    assert [r["id"] for r in records] == ids
    assert sorted(r["id"] for r in browsed) == sorted(ids)


# ----------------------------------------------------------------------------- environment


def _clear_proxy_environment(monkeypatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_client_resolves_the_proxy_environment_once(server, monkeypatch):
    """The proxy variables are read when the client is made, not on every request."""
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", server.origin)  # the scripted server plays the proxy
    client = cvf.Client(api_key=KEY, base_url="http://coreviz.invalid/api", retries=0)
    monkeypatch.delenv("HTTP_PROXY")  # too late to matter
    with client:
        record = client.get_media("abc123")
        assert client.session.trust_env is False
    assert record["id"] == "abc123"
    assert server.paths["/api/media/abc123"] == 1  # it went through the proxy


def test_no_proxy_is_honoured_when_the_environment_is_pinned(server, monkeypatch):
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with cvf.Client(api_key=KEY, base_url=server.base_url, retries=0) as client:
        assert client.get_media("abc123")["id"] == "abc123"  # straight to the server


def test_a_session_given_by_the_caller_is_left_as_it_is(server, monkeypatch):
    session = requests.Session()
    with cvf.Client(api_key=KEY, base_url=server.base_url, session=session) as client:
        assert client.session is session and session.trust_env is True

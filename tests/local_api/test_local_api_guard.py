"""The local API refuses what a web page or a broken client sends (hostile trial, scenarios
2 and 3): foreign Host and Origin, control requests that are not a keyed JSON POST, bad
``Content-Length`` values, and records a naive encoder could not send.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import requests

import coreviz_frames as cvf
from coreviz_frames.errors import CorevizWarning
from coreviz_frames.local_api import SAMPLE_DATA_DIR, LocalAPI, LocalAPIProcess, ServerStats
from coreviz_frames.local_api.guard import Guard, exposure_warning
from coreviz_frames.local_api.wire import HTTPServer, Reply, Request

KEY = "sk-local-guard-0123"
EVIL = "https://evil.example"
TIMEOUT = 10


def root(api: LocalAPI) -> str:
    return api.base_url.rsplit("/api", 1)[0]


def port_of(url: str) -> int:
    return int(url.split("//")[1].split("/")[0].rsplit(":", 1)[1])


def post(api: LocalAPI, path: str, body: str = "{}", **headers: str) -> requests.Response:
    return requests.post(f"{root(api)}/_local/{path}", data=body, headers=headers, timeout=TIMEOUT)


def keyed(api: LocalAPI) -> dict[str, str]:
    return {"x-api-key": KEY} if api.options.api_key else {}


def total_served(api: LocalAPI) -> int:
    url = f"{api.base_url}/dataset/{api.collection_id}/media"
    page = requests.get(
        url, params={"limit": 1, "recursive": "true"}, headers=keyed(api), timeout=TIMEOUT
    )
    assert page.status_code == 200, page.text
    return page.json()["pagination"]["total"]


# -- scenario 2: nobody but the user's own programs ------------------------------------------


@pytest.mark.parametrize("api_key", [KEY, None], ids=["key", "no-key"])
def test_browser_style_requests_cannot_change_or_read_the_local_api(local_api_factory, api_key):
    api = local_api_factory(synthetic=50, api_key=api_key)
    mutate = json.dumps({"deletes": 40})
    port = port_of(api.base_url)
    attempts = [
        # a form or fetch() from any page: text/plain, no preflight, its own Origin
        post(api, "mutate", mutate, **{"Content-Type": "text/plain", "Origin": EVIL}),
        post(api, "mutate", mutate, **{"Content-Type": "text/plain", **keyed(api)}),
        post(api, "mutate", mutate, **{"Content-Type": "application/json", "Origin": EVIL}),
        post(api, "mutate", mutate, **{"Content-Type": "application/json", "Origin": "null"}),
        post(api, "fault", json.dumps({"path_prefix": "/api/", "status": 500, "count": 99})),
        # DNS rebinding: the page's own name resolves to 127.0.0.1; the key does not help
        post(
            api,
            "mutate",
            mutate,
            **{"Content-Type": "application/json", "Host": f"attacker.example:{port}"},
            **keyed(api),
        ),
    ]
    statuses = [r.status_code for r in attempts]
    assert statuses == [403, 415, 403, 403, 415 if api_key is None else 401, 403]
    rebound = {"Host": f"attacker.example:{port}", **keyed(api)}
    for url in (
        f"{root(api)}/_local/info",
        f"{api.base_url}/dataset/{api.collection_id}/media",
        f"{api.base_url}/media/{api.collection.media_id(0)}",
    ):
        response = requests.get(url, headers=rebound, timeout=TIMEOUT)
        assert response.status_code == 403 and b"synthetic" not in response.content, url
    preflight = requests.options(
        f"{root(api)}/_local/mutate",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        timeout=TIMEOUT,
    )  # a JSON POST from a page needs this preflight: never granted
    assert preflight.status_code >= 400 and not any(
        name.lower().startswith("access-control-") for name in preflight.headers
    )
    read = post(api, "info", **{"Content-Type": "text/plain", "Origin": EVIL})
    assert read.status_code == 403 and "base_url" not in read.text
    assert total_served(api) == 50  # nothing was deleted


def test_a_fault_needs_the_key_and_a_json_post(local_api_factory):
    api = local_api_factory(synthetic=5, api_key=KEY)
    fault = json.dumps({"path_prefix": "/api/", "status": 500})
    json_type = {"Content-Type": "application/json"}
    assert post(api, "fault", fault, **json_type).status_code == 401
    assert post(api, "fault", fault, **json_type, **{"x-api-key": "wrong-key"}).status_code == 401
    assert total_served(api) == 5  # no fault was added
    assert post(api, "fault", fault, **json_type, **keyed(api)).status_code == 200
    url = f"{api.base_url}/dataset/{api.collection_id}/tags"
    assert requests.get(url, headers=keyed(api), timeout=TIMEOUT).status_code == 500


def test_control_routes_are_json_posts_with_the_key(local_api_factory):
    api = local_api_factory(synthetic=5, api_key=KEY)
    ok = {"Content-Type": "application/json; charset=utf-8", **keyed(api)}
    info = post(api, "info", **ok)
    assert info.status_code == 200 and info.json()["base_url"] == api.base_url
    assert post(api, "stats", **ok).json()["requests"] >= 0
    assert post(api, "reset", **ok).json() == {"ok": True}
    assert len(post(api, "mutate", json.dumps({"adds": 2}), **ok).json()["added"]) == 2
    assert requests.get(f"{root(api)}/_local/stats", headers=ok, timeout=TIMEOUT).status_code == 405
    assert post(api, "stats", "[1]", **ok).status_code == 400
    assert post(api, "stats", "{not json", **ok).status_code == 400
    assert post(api, "nothing", **ok).status_code == 404
    assert post(api, "mutate", json.dumps({"colour": 1}), **ok).status_code == 400
    assert post(api, "info", **{"Content-Type": "application/json"}).status_code == 401
    with_bearer = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    assert post(api, "info", **with_bearer).status_code == 200


def test_the_host_must_name_this_server(local_api_factory):
    api = local_api_factory(synthetic=3, api_key=KEY)
    api_port, blob_port = port_of(api.base_url), port_of(api.blob_url)
    tags = f"{api.base_url}/dataset/{api.collection_id}/tags"
    for host, status in [
        (f"127.0.0.1:{api_port}", 200),
        (f"localhost:{api_port}", 200),
        (f"LOCALHOST:{api_port}", 200),
        (f"127.0.0.1:{blob_port}", 403),  # the other server's port
        ("127.0.0.1", 403),  # port 80
        (f"attacker.example:{api_port}", 403),
        (f"127.0.0.1.nip.io:{api_port}", 403),
        (f"u@127.0.0.1:{api_port}", 403),
        (f"[::1]:{api_port}", 403),  # not the bound address
    ]:
        response = requests.get(tags, headers={"Host": host, **keyed(api)}, timeout=TIMEOUT)
        assert response.status_code == status, host
    image = client_record(api)["frames"][0]["blob"]
    assert image.startswith(api.blob_url)
    assert requests.get(image, timeout=TIMEOUT).status_code == 200  # no key: blobs are public
    rebound = {"Host": f"attacker.example:{blob_port}"}
    assert requests.get(image, headers=rebound, timeout=TIMEOUT).status_code == 403
    # a client with no Host at all (HTTP/1.0 tools; no browser) is served
    head = f"GET /api/dataset/{api.collection_id}/tags HTTP/1.0\r\nx-api-key: {KEY}\r\n\r\n"
    assert raw(api, head.encode()).startswith(b"HTTP/1.1 200")


def test_the_package_and_its_process_helper_still_get_in():
    with LocalAPIProcess(synthetic=4, api_key=KEY) as server:
        with cvf.Client(api_key=KEY, base_url=server.base_url) as client:
            assert len(list(client.browse(server.collection_id, progress=False))) == 4
        server.add_fault("/api/media/", status=503)
        assert server.mutate(seed=1, adds=1)["added"]
        stats = server.stats  # over the wire: the credential headers are masked
        assert stats.requests >= 1 and {h.get("x-api-key") for _, h in stats.headers} == {"***"}
        server.reset_stats()
        assert server.stats.requests == 0


def client_record(api: LocalAPI) -> dict:
    with cvf.Client(api_key=KEY, base_url=api.base_url) as client:
        return client.get_media(api.collection.media_id(0))


def test_an_exposed_bind_warns_naming_what_becomes_reachable():
    guard = Guard("0.0.0.0", api_key=None)
    guard.bind({"api": 8000, "blob": 8001})
    text = exposure_warning(guard, media=1234, keyed=False)
    assert text and "every interface" in text and "8000 and 8001" in text
    assert "1,234 media" in text and "/_local/mutate" in text and "no API key" in text
    keyed_text = exposure_warning(guard, media=1, keyed=True) or ""
    assert "needs the key" in keyed_text and "images" in keyed_text
    assert guard.host_allowed("192.168.1.20:8000", "api")  # an address literal cannot rebind
    assert not guard.host_allowed("evil.example:8000", "api")
    assert exposure_warning(Guard("::1", api_key=None), media=1, keyed=False) is None
    with pytest.warns(CorevizWarning, match="every interface"):
        api = LocalAPI(synthetic=2, host="0.0.0.0").start()
    api.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LocalAPI(synthetic=2).start().stop()  # loopback: quiet


def test_serve_on_every_interface_prints_the_warning():
    proc = subprocess.Popen(
        [sys.executable, "-m", "coreviz_frames", "serve", "--host", "0.0.0.0", "--synthetic", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["collection_id"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "warning: the local API listens on every interface" in err
    assert "anyone who can reach this machine" in err and "Traceback" not in err


# -- scenario 3: bad requests and records ----------------------------------------------------


def raw(api: LocalAPI, head: bytes, url: str | None = None) -> bytes:
    """Send ``head`` on a new connection; everything the server sends until it closes."""
    port = port_of(url or api.base_url)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):  # a socket.timeout here: the server kept it open
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("length", "status"),
    [
        (b"abc", b"400"),
        (b"-1", b"400"),
        (b"", b"400"),
        (b"1e3", b"400"),
        (b"\xb2", b"400"),  # a superscript two: a digit to str.isdigit, not to HTTP
        (b"99999999999", b"413"),
        (b"99999999999999999999999", b"413"),
        (b"1048577", b"413"),
    ],
)
def test_a_bad_content_length_is_refused_and_the_connection_closed(
    local_api_factory, capfd, length, status
):
    api = local_api_factory(synthetic=3, api_key=KEY)
    head = (
        b"POST /_local/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"x-api-key: " + KEY.encode() + b"\r\nContent-Length: " + length + b"\r\n\r\n"
    )
    answer = raw(api, head)  # returns: the server closed the connection
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
    assert b"Connection: close" in answer and b'"message"' in answer
    assert total_served(api) == 3  # the server still serves
    assert "Traceback" not in capfd.readouterr().err


def test_two_different_lengths_or_a_chunked_body_are_refused(local_api_factory):
    api = local_api_factory(synthetic=3)
    two = b"POST /_local/reset HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    assert raw(api, two).startswith(b"HTTP/1.1 400")
    chunked = (
        b"POST /_local/reset HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    assert raw(api, chunked).startswith(b"HTTP/1.1 501")


def test_a_record_with_a_lone_surrogate_is_sent_as_its_json_escape(local_api_factory, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA_DIR, data)
    path = Path(data / "collection.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["media"][0]["name"] = "bad \ud800 name"
    path.write_text(json.dumps(doc), encoding="utf-8")  # the file holds the escape "\ud800"
    api = local_api_factory(data_dir=data)
    media_id = doc["media"][0]["id"]
    response = requests.get(f"{api.base_url}/media/{media_id}", timeout=TIMEOUT)
    assert response.status_code == 200
    assert b'"name":"bad \\ud800 name"' in response.content
    assert response.json()["media"]["name"] == "bad \ud800 name"
    page = requests.get(
        f"{api.base_url}/dataset/{api.collection_id}/media",
        params={"limit": 100, "recursive": "true"},
        timeout=TIMEOUT,
    )
    assert page.status_code == 200 and b"\\ud800" in page.content
    with cvf.Client(api_key="local-key", base_url=api.base_url) as client:
        tables = cvf.to_tables([client.get_media(media_id)])
    assert tables.media["name"].iloc[0] == "bad \ufffd name"


def test_an_application_error_is_a_500_not_a_dropped_connection():
    class Broken:
        stats = ServerStats()
        stopping = threading.Event()

        def counted(self, request: Request) -> bool:
            return True

        def respond(self, request: Request) -> Reply:
            raise RuntimeError("a bug")

    server = HTTPServer(("127.0.0.1", 0), Broken(), "test")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        response = requests.get(f"http://127.0.0.1:{server.server_address[1]}/x", timeout=10)
        assert response.status_code == 500 and "RuntimeError: a bug" in response.json()["message"]
    finally:
        server.shutdown()
        server.server_close()

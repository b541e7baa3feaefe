"""Credentials are checked when a client is built, and masked in every form they take.

Scenario 1 of the hostile-environment trial: a key with a trailing ``\\r`` (a ``.env`` file
with Windows line endings) was printed whole, inside requests' ``InvalidHeader`` message,
reported as a connection problem; a one-character key garbled every message it masked.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

import pytest
import requests
from helpers import ScriptedServer

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, NetworkError, ServerError
from coreviz_frames.http import credentials as cvcredentials, transport as cvhttp
from coreviz_frames.http.credentials import (
    MIN_SECRET_LENGTH,
    check_secret,
    is_loopback_url,
    mask_secrets,
    secret_forms,
)

REMOTE = "https://lab.coreviz.io/api"
LOCAL = "http://127.0.0.1:9/api"
BODY = "sk-live-SECRET123456789"


def leaks(text: str, secret: str) -> list[str]:
    """The forms of ``secret`` (and its printable body) found in ``text``."""
    found = [form for form in secret_forms(secret) if form in text]
    stripped = secret.strip()
    return found + ([stripped] if len(stripped) >= 4 and stripped in text else [])


@pytest.mark.parametrize(
    ("key", "named", "shape"),
    [
        (BODY + "\r", "ends with a carriage return", "'***\\r'"),
        (" " + BODY, "starts with a space", "' ***'"),
        (BODY + "\n", "ends with a line feed", "'***\\n'"),
        ("sk-live\tSECRET123456789", "holds a tab", "'***\\t***'"),
        ("sk-live-SECRET\x00123456789", "holds a NUL character", "'***\\x00***'"),
        ("sk-live-SECRET\u03a9123456789", "holds a non-ASCII character", "'***?***'"),
        ("sk-live-SECRET\u00a0123456789", "holds a non-ASCII character", "'***?***'"),
    ],
)
@pytest.mark.parametrize("base_url", [REMOTE, LOCAL])
def test_a_key_with_a_stray_character_is_a_config_error_naming_it(key, named, shape, base_url):
    for kwargs in ({"api_key": key}, {"token": key}):
        with pytest.raises(ConfigError) as info:
            cvf.Client(base_url=base_url, **kwargs)
        text = str(info.value)
        assert named in text and shape in text, text
        assert not leaks(text + repr(info.value), key), text


def test_the_key_from_the_environment_is_named_and_checked(monkeypatch):
    monkeypatch.setenv("COREVIZ_API_KEY", BODY + "\r")
    with pytest.raises(ConfigError, match=r"COREVIZ_API_KEY.*Windows line endings") as info:
        cvf.Client(base_url=REMOTE)
    assert not leaks(str(info.value), BODY + "\r")


def test_a_short_key_is_refused_for_a_remote_api_and_accepted_on_this_machine():
    for key in ("k", "Q", "sk-1234"):
        with pytest.raises(ConfigError, match=f"only {len(key)} character") as info:
            cvf.Client(api_key=key, base_url=REMOTE)
        assert f"'{key}'" not in str(info.value)
    for url in (LOCAL, "http://localhost:8000/api", "http://[::1]:8000/api"):
        with cvf.Client(api_key="k", base_url=url) as client:
            assert client.auth_kind == "api_key"
    assert check_secret("x" * MIN_SECRET_LENGTH, what="API key", base_url=REMOTE)
    assert is_loopback_url("http://127.5.0.1/x") and not is_loopback_url("http://10.0.0.1/x")
    assert not is_loopback_url("http://[::1/x")  # unparsable


def test_the_dask_client_spec_checks_the_key_too():
    dask = pytest.importorskip("coreviz_frames.dask")
    with pytest.raises(ConfigError, match="carriage return") as info:
        dask.ClientSpec({"api_key": BODY + "\r", "base_url": REMOTE})
    assert not leaks(str(info.value), BODY + "\r")
    with pytest.raises(ConfigError, match="only 1 character"):
        dask.ClientSpec({"api_key": "k", "base_url": REMOTE})


KEY = "sk-live+SECRET/1234=56'\"\\"  # every character that has an escaped or encoded form


@pytest.mark.parametrize(
    "form",
    [
        KEY,
        repr(KEY)[1:-1],
        ascii(KEY)[1:-1],
        json.dumps(KEY)[1:-1],
        json.dumps(KEY)[1:-1].replace("/", "\\/"),
        quote(KEY, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(KEY, safe="")),
        quote(KEY),
        quote_plus(KEY),
    ],
)
def test_every_form_of_the_key_is_masked(form):
    text = f"invalid key <{form}> rejected"
    assert mask_secrets(text, [KEY]) == "invalid key <***> rejected"


def test_a_short_key_is_never_a_mask_pattern():
    assert mask_secrets("not known", ["k"]) == "not known"
    assert mask_secrets("key sk-1234 not known", ["sk-1234"]) == "key sk-1234 not known"
    assert mask_secrets("key sk-12345 not known", ["sk-12345"]) == "key *** not known"


def test_an_invalid_header_is_a_config_error_not_a_connection_problem():
    """A Transport built without the Client's check: requests refuses the header."""
    server = ScriptedServer(lambda path, query: (200, {}, {"media": {"id": "m1"}}))
    try:
        transport = cvhttp.Transport(
            server.base_url,
            session=requests.Session(),
            credentials=cvcredentials.Credentials.api_key(BODY + "\r"),
        )
        with pytest.raises(ConfigError) as info:
            transport.get_json("media/m1", what="media 'm1'")
    finally:
        server.close()
    text = str(info.value)
    assert not isinstance(info.value, NetworkError) and "connection" not in text
    assert "was not sent: a request header is invalid" in text
    assert not leaks(text, BODY + "\r"), text


def test_a_key_echoed_by_the_server_in_any_form_is_masked():
    key = "sk-live+SECRET/0123456789="
    echo = f"bad key {key} / {quote(key, safe='')} / {json.dumps(key)} / {key!r}"
    server = ScriptedServer(lambda path, query: (500, {}, {"error": "boom", "message": echo}))
    try:
        with cvf.Client(api_key=key, base_url=server.base_url, retries=0) as client:
            with pytest.raises(ServerError) as info:
                client.get_media("m1")
            assert not leaks(repr(client), key)
    finally:
        server.close()
    assert not leaks(str(info.value), key) and "bad key ***" in str(info.value)


class _EchoingHandler(BaseHTTPRequestHandler):
    """Redirects to a URL carrying the key it received, then refuses it with the key in the
    HTTP reason phrase: text a server controls outside the error body."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        key = self.headers.get("x-api-key", "")
        if "/redirected" not in self.path:
            self.send_response(302)
            self.send_header("Location", f"/api/redirected?api_key={key}&k={quote(key, safe='')}")
        else:
            self.send_response(401, f"Unknown key {key}")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_key_the_server_puts_in_a_redirect_or_a_reason_phrase_is_masked(caplog):
    key = "sk-live+SECRET/0123456789="
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with (
            caplog.at_level(logging.DEBUG, logger="coreviz_frames"),
            cvf.Client(api_key=key, base_url=base_url, retries=0) as client,
            pytest.raises(cvf.errors.AuthenticationError) as info,
        ):
            client.get_media("m1")
    finally:
        server.shutdown()
        server.server_close()
    text = f"{info.value} {info.value!r} {info.value.url}"
    assert "/api/redirected?api_key=***" in text and "Unknown key ***" in text, text
    assert not leaks(text, key), text
    assert not leaks(caplog.text, key), caplog.text

"""The API key in no file, message, log line or repr: every CLI command, an export, a sync and
failed runs (401, injected 500s, a server echoing the key in every form), and keys with a
trailing CR, a leading space or one character (hostile trial, scenario 1).

Every file under the test's folder, every stdout/stderr, the log records and the reprs are
searched for each form of the key (:func:`coreviz_frames.http.credentials.secret_forms`: raw,
``repr``-, JSON-escaped, percent-encoded) and for its printable body.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from helpers import ScriptedServer

import coreviz_frames as cvf
from coreviz_frames.cli.main import main
from coreviz_frames.errors import ConfigError
from coreviz_frames.http.credentials import secret_forms
from coreviz_frames.local_api import SAMPLE_DATA_DIR, LocalAPI, LocalAPIOptions

KEY = "sk-live+SECRET/0123456789="  # '+', '/' and '=' have encoded and escaped forms
WRONG = "sk-wrong+SECRET/987654321="
BODY = "SECRET/0123456789"


class Trail:
    """Everything the package printed or wrote in one test, searched for secrets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.texts: list[tuple[str, str]] = []

    def add(self, label: str, text: str) -> None:
        self.texts.append((label, text))

    def cli(self, args: list[str], env: dict[str, str], code: int | None = 0) -> str:
        result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
        self.add(" ".join(args), result.output + result.stderr)
        if code is not None:
            assert result.exit_code == code, (args, result.output)
        return result.output

    def leaks(self, *secrets: str) -> list[str]:
        patterns = {form for s in secrets for form in secret_forms(s)} | {BODY, quote(BODY)}
        found = [f"{label}: {p!r}" for label, text in self.texts for p in patterns if p in text]
        for path in self.root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path}: {p!r}" for p in patterns if p.encode() in data]
        return found


def ids_file(path: Path, ids: list[str]) -> str:
    path.write_text("\n".join(ids) + "\n")
    return str(path)


def sample_ids(n: int) -> list[str]:
    records = json.loads((SAMPLE_DATA_DIR / "collection.json").read_text())["media"]
    return [r["id"] for r in records if r.get("type") != "folder"][:n]


def serve(trail: Trail, *args: str, env: dict[str, str] | None = None) -> int:
    """``coreviz-frames serve ...`` in a child: its output until it started (or failed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "coreviz_frames", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.terminate()
    out, err = proc.communicate(timeout=20)
    trail.add("serve " + " ".join(args), first + out + err)
    return proc.returncode if not first else 0


@pytest.fixture
def trail(tmp_path, caplog) -> Trail:
    caplog.set_level(logging.DEBUG)
    return Trail(tmp_path)


def test_no_file_message_log_or_repr_holds_the_key(local_api_factory, tmp_path, trail, caplog):
    api = local_api_factory(api_key=KEY)
    env = {
        "COREVIZ_API_KEY": KEY,
        "COREVIZ_BASE_URL": api.base_url,
        "COREVIZ_FRAMES_CACHE": str(tmp_path / "cache"),
    }
    out, collection = str(tmp_path / "export"), api.collection_id
    trail.cli(["export", "--collection", collection, "--out", out, "--no-progress"], env)
    api.mutate(seed=1, adds=2, edits=2, deletes=1)
    trail.cli(["sync", "--collection", collection, "--out", out, "--no-progress"], env)
    trail.cli(["info", out], env)
    trail.cli(["repair", out], env, code=None)
    trail.cli(["crops", out, "--out", str(tmp_path / "crops"), "--no-progress"], env)
    for kind in ("coco", "yolo", "hf"):  # hf writes a dataset card
        trail.cli(["dataset", kind, out, "--out", str(tmp_path / kind), "--no-progress"], env)
    trail.cli(["collections"], env)
    trail.cli(["search", "rocket", "--out", str(tmp_path / "hits.parquet")], env)
    trail.cli(["demo", "--out", str(tmp_path / "demo")], env)
    assert serve(trail, "--synthetic", "3", "--api-key", KEY) == 0
    assert serve(trail, "--synthetic", "3", env={"COREVIZ_LOCAL_API_KEY": KEY}) == 0
    # failed runs: a wrong key (401), then injected server faults, recorded in the manifest
    ids = ids_file(tmp_path / "ids.txt", sample_ids(3))
    wrong = {**env, "COREVIZ_API_KEY": WRONG}
    denied = trail.cli(["export", "--ids", ids, "--out", str(tmp_path / "e401")], wrong, code=1)
    assert "401" in denied and "check the API key" in denied
    trail.cli(["sync", "--collection", collection, "--out", out], wrong, code=1)
    api.add_fault("/api/media/", status=500, count=100)
    failed = ["export", "--ids", ids, "--out", str(tmp_path / "e500"), "--retries", "0"]
    assert "500" in trail.cli(failed, env, code=1)
    api.faults.clear()
    # the Python API: reprs and the report of a streaming export
    with cvf.Client(api_key=KEY, base_url=api.base_url) as client:
        report = cvf.export_parquet(client.browse(collection), tmp_path / "py", progress=False)
        snapshot = api.stats.snapshot()
        assert any(h.get("x-api-key") == KEY for _, h in snapshot.headers)  # recorded ...
        for value in (client, report, api, api.options, api.routes, api.guard, snapshot):
            trail.add(f"repr {type(value).__name__}", repr(value) + str(value))
        trail.add("stats", json.dumps(snapshot.to_json()))  # ... but never shown or sent
    trail.add("log", caplog.text)
    assert "GET" in caplog.text  # requests were logged (DEBUG), and are searched too
    assert not trail.leaks(KEY, WRONG)


def echo_route(path: str, query: dict) -> tuple:
    """A server that repeats the key back in every form a message can carry."""
    media_id = path.rsplit("/", 1)[-1]
    if media_id == "e1":
        lower_hex = re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote_plus(KEY))
        message = f"key {KEY} is not {quote(KEY, safe='')} or {lower_hex}"
        return 400, {}, {"error": "Bad request", "message": message}
    if media_id == "e2":
        return 403, {}, {"error": "Forbidden", "message": f"key={KEY!r}"}
    escaped = json.dumps({"x-api-key": KEY}).replace("/", "\\/")
    return 200, {"Content-Type": "text/plain"}, f"upstream said {escaped}".encode()


def test_a_server_echoing_the_key_in_any_form_leaks_nothing(tmp_path, trail):
    server = ScriptedServer(echo_route)
    try:
        env = {"COREVIZ_API_KEY": KEY, "COREVIZ_BASE_URL": server.base_url}
        ids = ids_file(tmp_path / "ids.txt", ["e1", "e2", "e3"])
        args = ["export", "--ids", ids, "--out", str(tmp_path / "echo"), "--retries", "0"]
        output = trail.cli([*args, "--allow-failures"], env)
    finally:
        server.close()
    manifest = (tmp_path / "echo" / "_coreviz_manifest.json").read_text()
    reasons = [f["reason"] for f in json.loads(manifest)["failed"]]
    assert len(reasons) == 3 and all("***" in r for r in reasons), reasons
    assert "***" in output
    assert not trail.leaks(KEY)


def keyed_commands(tmp_path: Path, collection: str) -> list[list[str]]:
    ids = ids_file(tmp_path / "ids.txt", sample_ids(2))
    return [
        ["export", "--collection", collection, "--out", str(tmp_path / "a")],
        ["export", "--ids", ids, "--out", str(tmp_path / "b")],
        ["sync", "--collection", collection, "--out", str(tmp_path / "c")],
        ["collections"],
        ["search", "rocket"],
    ]


@pytest.mark.parametrize("bad", [KEY + "\r", " " + KEY], ids=["trailing-cr", "leading-space"])
def test_a_key_with_a_stray_character_is_refused_by_every_command(
    local_api_factory, tmp_path, trail, bad
):
    api = local_api_factory(api_key=KEY)
    env = {"COREVIZ_API_KEY": bad, "COREVIZ_BASE_URL": api.base_url}
    named = "carriage return" if bad.endswith("\r") else "a space"
    for args in keyed_commands(tmp_path, api.collection_id):
        output = trail.cli(args, env, code=1)
        assert named in output and ("'***" in output or "***'" in output), output
        assert not list((tmp_path / "b").glob("*.json")), "nothing is written before the check"
        trail.cli([*args, "--api-key", bad], {"COREVIZ_BASE_URL": api.base_url}, code=1)
    assert serve(trail, "--synthetic", "3", "--api-key", bad) != 0
    assert serve(trail, "--synthetic", "3", env={"COREVIZ_LOCAL_API_KEY": bad}) != 0
    # commands that take no key run as usual with it in the environment
    trail.cli(["demo", "--out", str(tmp_path / "demo")], env)
    trail.cli(["info", str(tmp_path / "demo" / "export")], env)
    for build in (
        lambda: cvf.Client(api_key=bad, base_url=api.base_url),
        lambda: cvf.Client(token=bad),
        lambda: LocalAPI(api_key=bad),
        lambda: LocalAPIOptions(api_key=bad),
    ):
        with pytest.raises(ConfigError) as info:
            build()
        trail.add("exception", str(info.value) + repr(info.value))
    assert not trail.leaks(bad)


def test_a_one_character_key_is_refused_remotely_and_garbles_nothing_locally(
    local_api_factory, tmp_path, trail
):
    """ "o": a letter of almost every message, which masking it would garble."""
    remote = {"COREVIZ_API_KEY": "o", "COREVIZ_BASE_URL": "https://lab.coreviz.io/api"}
    for args in keyed_commands(tmp_path, "c1"):
        output = trail.cli(args, remote, code=1)
        assert "only 1 character" in output and "'o'" not in output, output
    assert serve(trail, "--host", "0.0.0.0", "--api-key", "o") != 0  # reachable: refused
    api = local_api_factory(api_key="o")  # this machine only: a placeholder key is fine
    local = {"COREVIZ_API_KEY": "o", "COREVIZ_BASE_URL": api.base_url}
    ids = ids_file(tmp_path / "ids.txt", [*sample_ids(2), "no-such-media"])
    output = trail.cli(["export", "--ids", ids, "--out", str(tmp_path / "z")], local, code=1)
    assert "GET media 'no-such-media'" in output and "404 Not Found" in output, output
    manifest = (tmp_path / "z" / "_coreviz_manifest.json").read_text()
    assert "***" not in output and "***" not in manifest and "no-such-media" in manifest

"""Terminal escapes from a server never reach the terminal: names, labels and failure reasons
in what ``search``, ``collections``, ``export``, ``sync`` and ``info`` print are shown with
their control characters escaped, through the one helper every command prints with."""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import coreviz_frames.cli as cli_package
from coreviz_frames._util.terminal import printable
from coreviz_frames.cli.main import main
from tests.helpers import KEY, ScriptedServer

OSC0 = "\x1b]0;pwned\x07"  # sets the window title
OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # writes the clipboard
CSI_C1 = "\x9b2J"  # clears the screen (C1 CSI)
HOSTILE = OSC0 + OSC52 + CSI_C1 + "\x7f"
RAW = ("\x1b", "\x07", "\x9b", "\x7f")


def _page(media: list[dict]) -> dict:
    total = len(media)
    return {
        "media": media,
        "pagination": {"total": total, "limit": 100, "offset": 0, "hasMore": False},
    }


def _route(path: str, query: dict) -> tuple:
    if path == "/api/search":
        result = {"id": "f1", "timestamp": "0", "media": {"id": "m1", "name": "n" + HOSTILE}}
        return (200, {}, {"results": [{**result, "rank": 1.0}]})
    if path == "/api/organization/o1/datasets":
        return (200, {}, [{"id": "c1", "name": "c" + HOSTILE}])
    if path == "/api/dataset/c1/media":
        return (200, {}, _page([{"id": "m1", "type": "image", "name": "a" + HOSTILE}]))
    if path == "/api/media/m1":
        return (404, {}, {"error": "gone" + HOSTILE})
    return (404, {}, {"error": "Not found"})


@pytest.fixture
def server():
    srv = ScriptedServer(_route)
    yield srv
    srv.close()


def _show_on_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    """What Python does with a warning outside pytest: format it, write it to stderr."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _run(server, *args: str):
    env = {"COREVIZ_API_KEY": KEY, "COREVIZ_BASE_URL": server.base_url}
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as outside pytest: the CLI prints them
        warnings.showwarning = _show_on_stderr
        return CliRunner().invoke(main, list(args), env=env)


def _assert_shown_not_run(output: str) -> None:
    assert not [c for c in RAW if c in output], repr(output)
    assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in output and "\\x9b2J" in output


def test_search_and_collections_escape_names(server):
    result = _run(server, "search", "x", "--organization", "o1")
    assert result.exit_code == 0, result.output
    _assert_shown_not_run(result.output)
    result = _run(server, "collections", "--organization", "o1")
    assert result.exit_code == 0, result.output
    _assert_shown_not_run(result.output)
    assert "\\x1b]0;pwned\\x07" in result.output


def test_export_sync_and_info_escape_failure_reasons(server, tmp_path):
    out = tmp_path / "export"
    result = _run(server, "export", "--collection", "c1", "--out", str(out), "--retries", "0")
    assert result.exit_code == 1 and "404" in result.output, result.output
    _assert_shown_not_run(result.output)
    assert "warning: collection 'c1': skipped media 'm1'" in result.output  # escaped too
    result = _run(server, "info", str(out))
    _assert_shown_not_run(result.output)
    result = _run(
        server, "sync", "--collection", "c1", "--out", str(tmp_path / "synced"), "--retries", "0"
    )
    assert result.exit_code == 1 and "404" in result.output, result.output
    _assert_shown_not_run(result.output)


def test_an_error_message_stays_one_line(server):
    server.script("/api/search", (400, {}, {"error": "bad\nerror: forged" + OSC52}))
    result = _run(server, "search", "x", "--organization", "o1")
    assert result.exit_code == 1
    assert not [line for line in result.output.splitlines() if line.startswith("error: forged")]
    assert "bad\\x0aerror: forged" in result.output
    assert not [c for c in RAW if c in result.output] and "\\x1b]52;c;" in result.output


def test_a_reason_cannot_forge_a_line():
    assert printable("gone\nerror: fake\r") == "gone\\x0aerror: fake\\x0d"
    assert printable("a\u202eb\tc") == "a\\u202eb\\x09c"
    assert printable("one\ntwo\x1b", newlines=True) == "one\ntwo\\x1b"


def test_every_cli_line_goes_through_one_helper():
    """``click.echo``/``click.secho`` appear only inside ``cli.console.echo``, in every
    module of the CLI package."""
    direct = []
    for path in sorted(Path(cli_package.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        direct += [
            f"{path.name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr in ("echo", "secho")
            and isinstance(node.value, ast.Name)
            and node.value.id == "click"
        ]
    assert len(direct) == 1, f"click.echo/secho outside cli.console.echo at {direct}"
    assert direct[0].startswith("console.py:")


def test_a_lone_surrogate_from_a_server_is_shown_not_a_crash(server, tmp_path):
    """JSON may carry ``"\\ud800"``: no terminal encoding can print it (UnicodeEncodeError)."""
    assert printable("bad \ud800 \udfff") == "bad \\ud800 \\udfff"
    assert printable("bidi \u061c mark") == "bidi \\u061c mark"  # ALM, a bidi control too
    server.script("/api/media/m1", (404, {}, {"error": "gone \ud800"}))
    out = tmp_path / "export"
    result = _run(server, "export", "--collection", "c1", "--out", str(out), "--retries", "0")
    assert result.exit_code == 1 and "gone \\ud800" in result.output, result.output
    result = _run(server, "info", str(out))
    assert result.exit_code == 0 and "gone \\ud800" in result.output, result.output

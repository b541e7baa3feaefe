"""Messages of the command line that a person can act on.

The library names its own arguments (``overwrite=True``); on the command line the same
advice names the flags (``--overwrite``). An error gets one hint saying what to check:
the API key for a 401, ``--base-url`` when the API cannot be reached. Crop failures are
listed once per id, a few of them, then ``... and N more (see manifest.parquet)``.

Example:
    >>> cli_text("pass overwrite=True to replace it, or resume=True to continue it")
    'pass --overwrite to replace it, or --resume to continue it'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from coreviz_frames._util.terminal import printable
from coreviz_frames.errors import AuthenticationError, CorevizError, NetworkError

__all__ = ["cli_text", "error_lines", "failure_lines"]

_FLAGS = [
    ("a re-run with resume=True, or --resume,", "a re-run with --resume"),
    ("resume=True, or --resume", "--resume"),
    ("overwrite=True", "--overwrite"),
    ("resume=True", "--resume"),
    ("allow_failures=True", "--allow-failures"),
    ("api_key=", "--api-key "),
    ("base_url=", "--base-url "),
]
_HOST = re.compile(r"https?://([^/\s?#]+)")
_CONNECT = re.compile(r"NewConnectionError|NameResolutionError|Connection refused|resolve", re.I)


def cli_text(text: str) -> str:
    """``text`` with the library's argument spellings replaced by the CLI's flags."""
    for python, flag in _FLAGS:
        text = text.replace(python, flag)
    return text


def connection_failure(reason: str | None) -> bool:
    """True when ``reason`` says no connection could be made (refused, unknown host).

    Example:
        >>> connection_failure("connection error (NewConnectionError: ... refused)")
        True
    """
    return bool(reason) and bool(_CONNECT.search(str(reason)))


def hint_for(exc: BaseException) -> str | None:
    """What to check after ``exc``: the API key (401) or the base URL (no connection)."""
    if isinstance(exc, AuthenticationError):
        return "check the API key (COREVIZ_API_KEY or --api-key)"
    if isinstance(exc, NetworkError) and connection_failure(str(exc)):
        return "check --base-url / COREVIZ_BASE_URL (is the API up and reachable?)"
    return None


def error_lines(exc: CorevizError | OSError) -> list[str]:
    """``error: ...`` in CLI words, then the hint if there is one.

    Example:
        >>> error_lines(CorevizError("pass overwrite=True"))
        ['error: pass --overwrite']
    """
    lines = [f"error: {cli_text(str(exc))}"]
    hint = hint_for(exc)
    if hint:
        lines.append(hint)
    return lines


def failure_lines(
    failures: Iterable[tuple[str, str]], *, shown: int = 10, listed_in: str = "manifest.parquet"
) -> list[str]:
    """``failed ID: reason`` once per id (the first ``shown``), then ``... and N more``; a
    hint when every failure is a connection error (the image host is down).

    Example:
        >>> failure_lines([("o1", "HTTP 404"), ("o1", "HTTP 404"), ("o2", "x")], shown=1)
        ['  failed o1: HTTP 404', '  ... and 1 more (see manifest.parquet)']
    """
    first: dict[str, str] = {}
    for item_id, reason in failures:
        text = str(reason)
        for prefix in (f"object {item_id}: ", f"frame {item_id}: ", f"media {item_id}: "):
            text = text.removeprefix(prefix)  # the id is already at the start of the line
        first.setdefault(str(item_id), text)
    lines = [printable(f"  failed {i}: {r}") for i, r in list(first.items())[:shown]]
    if len(first) > shown:
        lines.append(f"  ... and {len(first) - shown:,} more (see {listed_in})")
    refused = [r for r in first.values() if connection_failure(r)]
    if len(refused) > 1 and len(refused) * 2 > len(first):
        hosts = sorted({m.group(1) for r in refused if (m := _HOST.search(r))})
        where = f"the image host ({', '.join(hosts)})" if hosts else "the image host"
        lines.append(
            f"  {len(refused):,} of them could not connect: {where} is down or unreachable "
            "from here; run the same command again later"
        )
    return lines

"""The retry policy of every HTTP request: :func:`build_retry` and ``Retry-After``.

urllib3 ``Retry`` retries connection and read errors, 429 and 5xx, on GET only, with
exponential backoff plus jitter, honouring ``Retry-After`` (fractional seconds or an HTTP
date, capped at :data:`RETRY_AFTER_CAP`; an unreadable one such as ``soon`` means the
normal backoff). Inside a :class:`~coreviz_frames.http.deadline.Deadline` with a
cancellation, its back-off sleeps end as soon as it is cancelled. A connection that cannot
be made is retried :data:`CONNECT_RETRIES` times, each logged (logger
``coreviz_frames.http``), so a wrong host is said within seconds.

Example:
    >>> build_retry(3).total, parse_retry_after("0.5"), parse_retry_after("soon")
    (3, 0.5, None)
"""

from __future__ import annotations

import contextlib
import email.utils
import inspect
import logging
import math
import threading
import time
from typing import Any

from urllib3.exceptions import InvalidHeader, NewConnectionError
from urllib3.util.retry import Retry

from coreviz_frames.http.deadline import current_deadline

__all__ = ["build_retry", "retry_after_seconds"]

logger = logging.getLogger("coreviz_frames.http")

#: Statuses retried by urllib3 (then translated by
#: :func:`~coreviz_frames.http.translate.translate_error` if they persist).
RETRY_STATUSES = frozenset([429, *range(500, 600)])
#: A ``Retry-After`` longer than this many seconds is shortened to it.
RETRY_AFTER_CAP = 60.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value (delay seconds, fractional allowed, or an
    HTTP date), at least 0 and at most :data:`RETRY_AFTER_CAP`; None if it is missing or
    unreadable (``"soon"``, ``"nan"``): then the package's own backoff applies.

    Example:
        >>> parse_retry_after("0.5"), parse_retry_after("soon"), parse_retry_after("3600")
        (0.5, None, 60.0)
    """
    seconds = retry_after_seconds(value)
    return None if seconds is None else min(seconds, RETRY_AFTER_CAP)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (>= 0, not capped), or None if missing or unreadable.

    Example:
        >>> retry_after_seconds("3600"), retry_after_seconds("soon")
        (3600.0, None)
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class _CappedRetry(Retry):
    """urllib3 ``Retry`` with the package's ``Retry-After`` reading and cancellable sleeps.

    - ``Retry-After`` may be fractional (``0.5``) and is capped at :data:`RETRY_AFTER_CAP`
      (urllib3 >= 2.5 has ``retry_after_max``; older versions do not cap at all); an
      unreadable one (``soon``) means the normal backoff (urllib3 raises on both).
    - Inside a :class:`Deadline` with a :class:`Cancellation`, back-off sleeps end as soon
      as it is cancelled, and the next retry decision raises :class:`RequestCancelledError`.
    """

    def parse_retry_after(self, retry_after: str) -> float:
        seconds = parse_retry_after(retry_after)
        if seconds is None:
            raise InvalidHeader(f"Invalid Retry-After header: {retry_after}")
        return seconds

    def get_retry_after(self, response: Any) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"))

    def increment(self, method: str | None = None, url: str | None = None, *args, **kwargs):
        scope = current_deadline()
        if scope is not None and scope.cancel is not None and scope.cancel.cancelled:
            response = kwargs.get("response")
            if response is not None:
                with contextlib.suppress(Exception):
                    response.drain_conn()
            scope.cancel.check()
        new = super().increment(method, url, *args, **kwargs)  # raises once exhausted
        error = kwargs.get("error")
        if isinstance(error, NewConnectionError):
            _log_connect_retry(error, kwargs.get("_pool"), new)
        return new

    def sleep(self, response: Any = None) -> None:
        wait = None
        if self.respect_retry_after_header and response is not None:
            wait = self.get_retry_after(response)
        if not wait:
            wait = self.get_backoff_time()
        scope = current_deadline()
        if scope is not None and scope.cancel is not None:
            scope.cancel.sleep(wait)
        elif wait > 0:
            time.sleep(wait)


_CONNECT_LOGGED: dict[str, float] = {}
_CONNECT_LOG_LOCK = threading.Lock()


def _log_connect_retry(error: NewConnectionError, pool: Any, retry: Retry) -> None:
    """One log line per retried connection failure, so a wrong host is not a silent wait."""
    text = str(error).lower()
    if "resolve" in text or "name or service" in text or "nodename" in text:
        why = "host not found"
    elif "refused" in text:
        why = "connection refused"
    else:
        why = "no connection"
    where = f"{pool.host}:{pool.port}" if pool is not None else "the server"
    done = sum(isinstance(h.error, NewConnectionError) for h in retry.history)
    now = time.monotonic()
    with _CONNECT_LOG_LOCK:  # many downloads failing at once: one line per host and second
        if now - _CONNECT_LOGGED.get(where, -1e9) < 1.0:
            return
        _CONNECT_LOGGED[where] = now
    left = retry.connect or 0
    logger.warning("cannot connect to %s (%s): retry %d of %d", where, why, done, done + left)


_RETRY_PARAMS = set(inspect.signature(Retry.__init__).parameters)


#: Retries of a connection that cannot be made (refused, unknown host): few, so a wrong
#: base URL or a host that is down is said within seconds; each one is logged as it happens.
CONNECT_RETRIES = 2


def build_retry(
    retries: int = 5,
    *,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    backoff_jitter: float | None = None,
) -> Retry:
    """The urllib3 ``Retry`` policy: ``retries`` attempts on connect/read errors, 429 and 5xx.

    Backoff is ``backoff_factor * 2 ** (n - 1)`` seconds (at most ``backoff_max``) plus a
    uniform jitter of up to ``backoff_jitter`` (default: ``backoff_factor``). Only GET and
    HEAD are retried. ``raise_on_status=False``: the last response is returned and translated
    by :func:`translate_error`.
    """
    kwargs: dict[str, Any] = {
        "total": retries,
        "connect": min(retries, CONNECT_RETRIES),
        "read": retries,
        "status": retries,
        "redirect": 0,
        "raise_on_redirect": False,
        "allowed_methods": frozenset(["GET", "HEAD"]),
        "status_forcelist": RETRY_STATUSES,
        "backoff_factor": backoff_factor,
        "respect_retry_after_header": True,
        "raise_on_status": False,
    }
    optional = {
        "backoff_max": backoff_max,
        "backoff_jitter": backoff_factor if backoff_jitter is None else backoff_jitter,
        "retry_after_max": int(RETRY_AFTER_CAP),
    }
    kwargs.update({k: v for k, v in optional.items() if k in _RETRY_PARAMS})
    return _CappedRetry(**kwargs)

"""The one HTTP layer of coreviz_frames: a pooled session, retries, timeouts, error translation.

- :func:`build_session` makes a ``requests.Session`` whose adapter pools connections and
  retries through urllib3 ``Retry``: connection and read errors, 429 and 5xx, on GET only,
  with exponential backoff plus jitter, honouring ``Retry-After`` (fractional seconds or an
  HTTP date, capped at 60 s; an unreadable one such as ``soon`` means the normal backoff).
- **Timeouts.** ``timeout`` bounds connecting and each read; on top of it every attempt
  has a *total deadline* — connect, headers and body together — so a server trickling
  bytes cannot hold a caller: :class:`Deadline` (a context manager over any
  ``requests.Session``; a watchdog thread shuts the socket of the attempt in flight down
  when its time is up). :class:`Transport` gives every API attempt the deadline
  :func:`deadline_for` ``timeout`` (the seconds, or connect + read); an attempt cut by it
  is retried like a read timeout and, if none is left, raises ``RequestTimeoutError``
  naming the URL. The image loader reuses :class:`Deadline` for blob downloads.
- **Cancelling.** A :class:`Cancellation` shared by a batch of requests (or
  :meth:`Transport.cancel` for all of them) stops them: no new attempt starts, back-off
  sleeps end at once, attempts in flight are cut and give up at their retry decision, and
  :class:`RequestCancelledError` is raised.
- :class:`Transport` sends GETs, adds the credentials *per request* and only for URLs on
  the API's own origin (never as session defaults), follows redirects itself so a hop to
  another origin never carries them, and decodes JSON.
- :func:`translate_error` is the single place where requests/urllib3 exceptions and HTTP
  statuses become the exception tree of :mod:`coreviz_frames.errors`; text from the
  server goes through :func:`mask_secrets` and URLs through :func:`safe_url` (no
  ``user:password@``) before they reach a message or a log.
- :func:`is_same_origin` tells whether a URL may receive the credentials (the image loader
  reuses it).

Example:
    >>> session = build_session(retries=2, backoff_factor=0.1, pool_size=8)
    >>> is_same_origin("https://lab.coreviz.io/api/media/x", "https://lab.coreviz.io/api")
    True
    >>> is_same_origin("https://x.public.blob.vercel-storage.com/a.jpg", "https://lab.coreviz.io/api")
    False
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import inspect
import itertools
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.poolmanager import PoolManager
from urllib3.util.retry import Retry

from coreviz_frames._util.jsoncodec import response_json
from coreviz_frames.errors import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    CorevizError,
    InvalidResponseError,
    NetworkError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
)
from coreviz_frames.http.credentials import Credentials, mask_secrets
from coreviz_frames.http.notfound import (
    PROBE_PATH,
    PROBE_SECONDS,
    explain_not_found,
    verdict_of,
)

__all__ = [
    "Cancellation",
    "Deadline",
    "Transport",
    "build_session",
    "deadline_for",
    "origin_of",
    "pin_environment",
    "safe_url",
    "translate_error",
]

logger = logging.getLogger("coreviz_frames.http")

#: Statuses retried by urllib3 (then translated by :func:`translate_error` if they persist).
RETRY_STATUSES = frozenset([429, *range(500, 600)])
#: A ``Retry-After`` longer than this many seconds is shortened to it.
RETRY_AFTER_CAP = 60.0
#: Redirect hops followed by :class:`Transport` before giving up.
MAX_REDIRECTS = 5
DEFAULT_USER_AGENT = "coreviz-frames"
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --------------------------------------------------------------------------- origins


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url``, lower case, with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, -1)


def is_same_origin(url: str, base_url: str) -> bool:
    """True if ``url`` has the scheme, host and port of ``base_url`` (may receive credentials).

    Example:
        >>> is_same_origin("http://127.0.0.1:8000/x", "http://127.0.0.1:8001/api")
        False
    """
    return origin_of(url) == origin_of(base_url)


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part: the only form put in messages and logs.

    Example:
        >>> safe_url("https://me:hunter2@lab.coreviz.io/api"), safe_url("http://u:p@[::1")
        ('https://lab.coreviz.io/api', 'http://[::1')
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: strip by hand
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        return f"{scheme}{sep}{netloc.rsplit('@', 1)[-1]}{slash}{path}" if sep else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


#: Query parameters left out of the URLs in messages: paging and sorting say nothing about
#: what failed (``?recursive=true&sortBy=createdAt&...&offset=0``).
PAGING_PARAMS = frozenset(
    {"limit", "offset", "page", "pageSize", "cursor", "sortBy", "sortDirection", "recursive"}
)


def message_url(url: str) -> str:
    """:func:`safe_url` without its paging and sorting parameters: the form errors show.

    Example:
        >>> message_url("https://h/api/dataset/c1/media?recursive=true&limit=100&offset=0")
        'https://h/api/dataset/c1/media'
        >>> message_url("https://h/api/search?q=rocket&organizationId=o1&limit=20")
        'https://h/api/search?q=rocket&organizationId=o1'
    """
    safe = safe_url(url)
    base, sep, query = safe.partition("?")
    if not sep:
        return safe
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in PAGING_PARAMS]
    return f"{base}?{'&'.join(kept)}" if kept else base


# --------------------------------------------------------------------------- cancellation


class Cancellation:
    """A cancel switch shared by the requests of one batch (thread-safe).

    Once :meth:`cancel` is called, requests checked against it start no new attempt,
    retry back-off sleeps end at once, and in-flight requests give up at their next retry
    decision; all raise :class:`RequestCancelledError`. ``Cancellation(parent, ...)``
    is also cancelled when any parent is.

    Example:
        >>> batch = Cancellation()
        >>> batch.cancelled
        False
        >>> batch.cancel("media 'x' failed")
        >>> batch.cancelled, batch.reason, Cancellation(batch).cancelled
        (True, "media 'x' failed", True)
    """

    def __init__(self, *parents: Cancellation) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._children: weakref.WeakSet[Cancellation] = weakref.WeakSet()
        self._deadlines: weakref.WeakSet[Deadline] = weakref.WeakSet()
        self.reason: str | None = None
        for parent in parents:
            parent._adopt(self)

    def _adopt(self, child: Cancellation) -> None:
        with self._lock:
            self._children.add(child)
            reason = self.reason if self._event.is_set() else None
        if reason is not None:
            child.cancel(reason)

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel (idempotent: the first reason is kept)."""
        with self._lock:
            if not self._event.is_set():
                self.reason = reason
                self._event.set()
            children = list(self._children)
            deadlines = list(self._deadlines)
        for deadline in deadlines:
            deadline._abort()  # in-flight attempts fail now, then give up at their retry
        for child in children:
            child.cancel(self.reason or reason)

    def _watch(self, deadline: Deadline, active: bool) -> None:
        with self._lock:
            if active:
                self._deadlines.add(deadline)
            else:
                self._deadlines.discard(deadline)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if cancelled meanwhile (then raise)."""
        if seconds > 0:
            self._event.wait(seconds)
        self.check()

    def check(
        self, url: str | None = None, *, what: str | None = None, media_id: str | None = None
    ) -> None:
        """Raise :meth:`error` if cancelled."""
        if self._event.is_set():
            raise self.error(url, what=what, media_id=media_id)

    def error(
        self, url: str | None = None, *, what: str | None = None, media_id: str | None = None
    ) -> RequestCancelledError:
        """The :class:`RequestCancelledError` naming ``url`` and the reason."""
        safe = safe_url(url) if url else None
        subject = f"GET{_subject(what)} ({safe}) " if safe else ""
        return RequestCancelledError(
            f"{subject}cancelled: {self.reason}", url=safe, media_id=media_id
        )

    def __repr__(self) -> str:
        return f"<Cancellation {'cancelled' if self.cancelled else 'active'}>"


# --------------------------------------------------------------------------- deadlines

_scopes = threading.local()


def _current() -> Deadline | None:
    stack = getattr(_scopes, "stack", None)
    return stack[-1] if stack else None


class _Attempt:
    """One connection in use by one request attempt, with its expiry time."""

    __slots__ = ("conn", "deadline", "done", "expires", "fired")

    def __init__(self, deadline: Deadline, conn: Any, expires: float) -> None:
        self.deadline = deadline
        self.conn = conn
        self.expires = expires
        self.done = False
        self.fired = False

    def fire(self) -> float | None:
        """Called by the watchdog at expiry: shut the socket down; return when to look again
        (the connection may still be connecting and have no socket yet), or None."""
        if self.done:
            return None
        self.fired = True
        self.deadline.expired = True
        return self.shutdown()

    def shutdown(self) -> float | None:
        """Shut the attempt's socket down; if it has none yet, when to try again."""
        sock = getattr(self.conn, "sock", None)
        if sock is None:
            return time.monotonic() + 0.02
        with contextlib.suppress(OSError):
            # socket.socket's own shutdown, also for an SSLSocket (whose override would
            # drop its SSL object under the reading thread): the blocked read sees EOF.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return None


class _Watchdog:
    """One daemon thread firing expired attempts (a heap ordered by expiry time)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Attempt]] = []
        self._count = itertools.count()
        self._pid: int | None = None

    def reset(self) -> None:
        """In a forked child: forget the parent's attempts and lock (its thread is gone)."""
        self._cond = threading.Condition()
        self._heap = []
        self._pid = None

    def schedule(self, attempt: _Attempt, when: float) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use (or a forked child): start the thread
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(target=self._run, name="coreviz-deadlines", daemon=True).start()
            heapq.heappush(self._heap, (when, next(self._count), attempt))
            if self._heap[0][2] is attempt:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    if self._heap:
                        self._cond.wait(self._heap[0][0] - time.monotonic())
                    else:
                        self._cond.wait()
                _, _, attempt = heapq.heappop(self._heap)
            again = attempt.fire()
            if again is not None:
                self.schedule(attempt, again)


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG.reset)


class Deadline:
    """A total time limit on each HTTP attempt, plus a :class:`Cancellation` check.

    While the ``with`` block runs, every request attempt this thread makes through a
    *watched* session (:func:`build_session` sessions are; :func:`watch_session` watches
    any other, as ``Deadline(..., session=s)`` does) must be complete — connect, headers
    and body together — within ``seconds`` of taking its connection from the pool. When
    the time is up a watchdog thread shuts the attempt's socket down, so a server that
    trickles its headers or body one byte at a time cannot hold the caller: the blocked
    read fails at once, urllib3 may retry it like any read error (within its ``Retry``
    budget), and ``expired`` becomes True; turn the final exception into a typed one with
    :meth:`timeout_error`. Read the body *inside* the block (``stream=True`` responses
    too). ``seconds=None`` sets no limit (only the ``cancel`` checks). A Deadline belongs to
    the thread that enters it (make one per call; they are cheap).

    With ``cancel``, no new attempt starts once it is cancelled, and the package's retry
    policy (:func:`build_retry`) ends its back-off sleeps at once and gives up at its next
    retry decision: all raise :class:`RequestCancelledError`.

    Example (a blob download):
        >>> session = build_session(retries=2)
        >>> with Deadline(10.0, session=session) as deadline:      # doctest: +SKIP
        ...     try:
        ...         with session.get(url, stream=True, timeout=5) as resp:
        ...             data = b"".join(resp.iter_content(65536))
        ...     except requests.RequestException as exc:
        ...         if deadline.expired:
        ...             raise deadline.timeout_error(url) from None
        ...         raise translate_error(url, exc=exc) from None
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        session: requests.Session | None = None,
        cancel: Cancellation | None = None,
    ) -> None:
        if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
            raise ConfigError(f"a deadline must be finite seconds > 0, not {seconds!r}")
        self.seconds = seconds
        self.cancel = cancel
        self.session = session
        #: True when the latest attempt was cut by the deadline.
        self.expired = False
        self._attempt: _Attempt | None = None

    def __enter__(self) -> Deadline:
        if self.session is not None:
            watch_session(self.session)
        if self.cancel is not None:
            self.cancel._watch(self, True)
        stack = getattr(_scopes, "stack", None)
        if stack is None:
            stack = _scopes.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._end_attempt()
        if self.cancel is not None:
            self.cancel._watch(self, False)
        stack = _scopes.stack
        if stack and stack[-1] is self:
            stack.pop()
        elif self in stack:
            stack.remove(self)

    def timeout_error(
        self, url: str, *, what: str | None = None, media_id: str | None = None
    ) -> RequestTimeoutError:
        """The :class:`RequestTimeoutError` naming ``url`` for an expired deadline."""
        safe = safe_url(url)
        return RequestTimeoutError(
            f"GET{_subject(what)} ({safe}) timed out: not complete within its total "
            f"deadline of {self.seconds:g} s",
            url=safe,
            media_id=media_id,
        )

    # -- called by the watched connection pools and the retry policy, in this thread

    def _start_attempt(self, conn: Any) -> None:
        self._end_attempt()
        if self.cancel is not None:
            self.cancel.check()
        self.expired = False
        if self.seconds is not None:
            attempt = _Attempt(self, conn, time.monotonic() + self.seconds)
            self._attempt = attempt
            _WATCHDOG.schedule(attempt, attempt.expires)

    def _abort(self) -> None:
        """Cancelled: cut the attempt in flight (from another thread)."""
        attempt = self._attempt
        if attempt is not None and not attempt.done:
            attempt.shutdown()

    def _end_attempt(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.done = True


class _WatchedPool(HTTPConnectionPool):
    """A connection pool that tells the thread's active :class:`Deadline` (if any) which
    connection each attempt uses."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        scope = _current()
        if scope is not None and scope.cancel is not None:
            scope.cancel.check()  # before waiting for a pooled connection
        conn = super()._get_conn(timeout)
        if scope is not None:
            try:
                scope._start_attempt(conn)
            except BaseException:
                super()._put_conn(conn)
                raise
        return conn

    def _put_conn(self, conn: Any) -> None:
        scope = _current()
        attempt = scope._attempt if scope is not None else None
        if attempt is not None and (conn is None or attempt.conn is conn):
            attempt.done = True
        super()._put_conn(conn)


class _WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


_WATCHED_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


def _watch_manager(manager: PoolManager) -> None:
    if manager.pool_classes_by_scheme.get("http") is _WatchedPool:
        return
    manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, **_WATCHED_POOLS}
    manager.clear()  # pools made before were of the unwatched classes (idle ones only)


def watch_session(session: requests.Session) -> requests.Session:
    """Let :class:`Deadline` see the connections of ``session`` (idempotent; returns it).

    Every mounted ``HTTPAdapter`` (and the proxy managers it creates) gets connection
    pools that report each attempt's connection to the thread's active :class:`Deadline`;
    nothing else changes. Adapters of other kinds are left as they are (no deadline).

    Example:
        >>> s = watch_session(requests.Session())
        >>> watch_session(s) is s
        True
    """
    for adapter in session.adapters.values():
        if not isinstance(adapter, HTTPAdapter):
            continue
        _watch_manager(adapter.poolmanager)
        for manager in adapter.proxy_manager.values():
            _watch_manager(manager)
        if not getattr(adapter, "_coreviz_watched", False):
            original = adapter.proxy_manager_for

            def proxy_manager_for(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                manager = _original(*args, **kwargs)
                _watch_manager(manager)
                return manager

            adapter.proxy_manager_for = proxy_manager_for  # type: ignore[method-assign]
            adapter._coreviz_watched = True  # type: ignore[attr-defined]
    return session


def deadline_for(timeout: float | tuple[float, float]) -> float:
    """The total deadline of one attempt for a requests-style ``timeout``: the seconds
    themselves, or ``connect + read`` for a pair.

    Example:
        >>> deadline_for(30), deadline_for((3.05, 27))
        (30.0, 30.05)
    """
    if isinstance(timeout, tuple):
        return float(sum(timeout))
    return float(timeout)


# --------------------------------------------------------------------------- session


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value (delay seconds, fractional allowed, or an
    HTTP date), at least 0 and at most :data:`RETRY_AFTER_CAP`; None if it is missing or
    unreadable (``"soon"``, ``"nan"``): then the package's own backoff applies.

    Example:
        >>> parse_retry_after("0.5"), parse_retry_after("soon"), parse_retry_after("3600")
        (0.5, None, 60.0)
    """
    seconds = _retry_after_seconds(value)
    return None if seconds is None else min(seconds, RETRY_AFTER_CAP)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (>= 0, not capped), or None if missing or unreadable."""
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
        scope = _current()
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
        scope = _current()
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


def build_session(
    *,
    retries: int = 5,
    pool_size: int = 10,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    backoff_jitter: float | None = None,
) -> requests.Session:
    """A ``requests.Session`` with a pooled, retrying adapter on http:// and https://.

    ``pool_size`` should be at least the number of threads that share the session. No
    credentials are set on the session: :class:`Transport` adds them per request.

    Example:
        >>> s = build_session(retries=3, pool_size=32)
        >>> s.get_adapter("https://lab.coreviz.io").max_retries.total
        3
    """
    session = requests.Session()
    retry = build_retry(
        retries,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
    )
    size = max(1, pool_size)
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=size, max_retries=retry))
    session.headers["User-Agent"] = DEFAULT_USER_AGENT
    session.headers["Accept"] = "application/json"
    return watch_session(session)


def pin_environment(session: requests.Session, url: str) -> requests.Session:
    """Resolve the environment's proxy and CA-bundle settings for ``url`` once, then stop
    ``session`` from reading the environment again (``trust_env = False``).

    requests otherwise re-reads every proxy variable (``HTTPS_PROXY``, ``NO_PROXY``, ...)
    on every request, a large share of a small request's CPU. Use it only for a session
    that talks to one origin (the API's): the settings resolved for ``url`` then hold for
    every request. ``.netrc`` is no longer consulted, which the API (key or token in a
    header) never needed. Returns ``session``.

    Example:
        >>> s = pin_environment(build_session(), "https://lab.coreviz.io/api")
        >>> s.trust_env
        False
    """
    if not session.trust_env:
        return session
    no_proxy = session.proxies.get("no_proxy")
    for scheme, proxy in requests.utils.get_environ_proxies(url, no_proxy=no_proxy).items():
        session.proxies.setdefault(scheme, proxy)
    if session.verify is True:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    session.trust_env = False
    return session


# --------------------------------------------------------------------------- errors


def _subject(what: str | None) -> str:
    return f" {what}" if what else ""


def _detail(body: Any) -> str | None:
    """The API's own error message from a JSON body (``error`` and/or ``message``)."""
    if not isinstance(body, Mapping):
        return None
    parts = [str(body[k]) for k in ("error", "message") if body.get(k) not in (None, "")]
    parts = list(dict.fromkeys(parts))
    return ": ".join(parts) if parts else None


def _root_cause(exc: BaseException) -> BaseException:
    """The urllib3 reason inside a requests exception (unwrapping ``MaxRetryError``)."""
    seen = 0
    while seen < 5:
        seen += 1
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        if isinstance(exc, MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        elif inner is not None:
            exc = inner
        else:
            break
    return exc


_STATUS_TYPES: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def translate_error(
    url: str,
    *,
    what: str | None = None,
    media_id: str | None = None,
    response: requests.Response | None = None,
    exc: BaseException | None = None,
    body: Any = None,
    secrets: tuple[str, ...] = (),
) -> CorevizError:
    """Turn a failed request into a :class:`~coreviz_frames.errors.CorevizError`.

    The one translation point of the package. Give ``exc`` (a requests/urllib3 exception,
    or a JSON decoding error together with ``response``) and/or ``response`` with its decoded
    ``body``. ``what`` names the subject in the message (e.g. ``"media 'abc'"``). Any of
    ``secrets`` that the server echoed back is masked, in the URL too (a redirect may carry
    it in a query string) and in the status line's reason phrase.

    Example:
        >>> err = translate_error("https://h/api/media/x", what="media 'x'", media_id="x",
        ...                       response=None, exc=requests.ConnectionError("refused"))
        >>> type(err).__name__
        'NetworkError'
    """
    safe = mask_secrets(message_url(url), secrets)
    if response is not None:
        return _status_error(safe, what, media_id, response, exc, body, secrets)
    return _exception_error(safe, what, media_id, exc, secrets)


def _status_error(
    safe: str,
    what: str | None,
    media_id: str | None,
    response: requests.Response,
    exc: BaseException | None,
    body: Any,
    secrets: tuple[str, ...],
) -> CorevizError:
    """:func:`translate_error` for a response: an error status, or a body that is not JSON."""
    status = response.status_code
    if exc is not None:  # the body could not be decoded as JSON
        ctype = response.headers.get("Content-Type", "?")
        snippet = mask_secrets(response.text, secrets, 80)
        return InvalidResponseError(
            f"GET{_subject(what)} ({safe}) returned {status} with a body that is not JSON "
            f"(Content-Type {ctype}): {snippet!r}",
            url=safe,
            media_id=media_id,
        )
    detail = _detail(body)
    detail = mask_secrets(detail, secrets) if detail else None
    reason = mask_secrets(response.reason or "", secrets)
    if detail and reason and detail.lower().startswith(reason.lower()):
        detail = detail[len(reason) :].lstrip(" :-") or None  # "401 Unauthorized" said once
    text = f"GET{_subject(what)} ({safe}) failed: {status} {reason}".rstrip()
    if detail:
        text += f": {detail}"
    kwargs: dict[str, Any] = {"status": status, "url": safe, "media_id": media_id}
    kwargs["detail"] = detail
    if 200 <= status < 300:
        return APIStatusError(text + " (error in a successful response)", **kwargs)
    if status == 429:
        after = _retry_after_seconds(response.headers.get("Retry-After"))
        if after is not None:
            text += f" (Retry-After {after:g} s)"
        return RateLimitError(text, retry_after=after, **kwargs)
    if status >= 500:
        return ServerError(text, **kwargs)
    if status == 402 and "credit" not in text.lower():
        text += " (insufficient credits)"
    return _STATUS_TYPES.get(status, APIStatusError)(text, **kwargs)


def _exception_error(
    safe: str,
    what: str | None,
    media_id: str | None,
    exc: BaseException | None,
    secrets: tuple[str, ...],
) -> CorevizError:
    """:func:`translate_error` for a request that got no usable answer."""
    root = _root_cause(exc) if exc is not None else None
    name = type(root).__name__ if root is not None else "unknown error"
    subject = _subject(what)
    if isinstance(exc, requests.exceptions.InvalidHeader):  # ours, refused before sending
        return ConfigError(
            f"GET{subject} ({safe}) was not sent: a request header is invalid "
            f"({mask_secrets(str(exc), secrets, 200)}); check the API key or token"
        )
    timed_out = isinstance(exc, (requests.Timeout, ConnectTimeoutError, ReadTimeoutError))
    timed_out |= isinstance(root, (ConnectTimeoutError, ReadTimeoutError, TimeoutError))
    if timed_out and not isinstance(root, NewConnectionError):
        return RequestTimeoutError(
            f"GET{subject} ({safe}) timed out ({name})", url=safe, media_id=media_id
        )
    cause = mask_secrets(str(root), secrets, 200)
    if isinstance(exc, (requests.ConnectionError, MaxRetryError, ProtocolError, OSError)):
        cause = f"connection error ({name}: {cause})"
    else:
        cause = f"{name}: {cause}"
    return NetworkError(f"GET{subject} ({safe}) failed: {cause}", url=safe, media_id=media_id)


# --------------------------------------------------------------------------- transport


class JsonBody:
    """A 2xx answer of :meth:`Transport.get_body`, decoded on demand by :meth:`json`.

    Example:
        >>> # body = transport.get_body("media/abc"); record = body.json()
    """

    def __init__(
        self,
        response: requests.Response,
        url: str,
        *,
        what: str | None,
        media_id: str | None,
        secrets: tuple[str, ...],
    ) -> None:
        self._response = response
        self.url = mask_secrets(response.url or url, secrets)  # for messages only
        self._what = what
        self._media_id = media_id
        self._secrets = secrets

    def error(self, *, exc: BaseException | None = None, body: Any = None) -> CorevizError:
        """The error for this answer, naming ``what``: from ``exc`` (a decoding error), or
        from the status and ``body`` (the answer's own JSON when not given)."""
        response = self._response
        if exc is None and body is None:
            try:
                body = response.json()
            except ValueError:
                body = None
        return translate_error(
            self.url,
            what=self._what,
            media_id=self._media_id,
            response=response,
            secrets=self._secrets,
            exc=exc,
            body=body,
        )

    def json(self, *, array_key: str | None = None) -> dict:
        """The decoded JSON object (see :meth:`Transport.get_json` for ``array_key``)."""
        try:
            body = response_json(self._response)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise self.error(exc=exc) from None
        if array_key is not None and isinstance(body, list):
            body = {array_key: body}
        if not isinstance(body, dict):
            raise InvalidResponseError(
                f"GET{_subject(self._what)} ({safe_url(self.url)}) returned JSON "
                f"{type(body).__name__}, expected an object",
                url=safe_url(self.url),
                media_id=self._media_id,
            )
        if "error" in body and body["error"] not in (None, False, ""):
            raise self.error(body=body)
        return body


class Transport:
    """Sends JSON GETs to one API: timeouts, per-request credentials, redirects, decoding.

    ``credentials`` (a :class:`Credentials`, or None) are attached only to URLs on
    ``base_url``'s origin. ``timeout`` is seconds, or a ``(connect, read)`` pair, for
    connecting and for each read; ``deadline`` (default :func:`deadline_for` ``timeout``:
    the seconds, or connect + read) bounds each attempt as a whole — connect, headers and
    body together — through a :class:`Deadline` (retries may follow, within the session's
    ``Retry`` budget). An attempt cut by it ends as :class:`RequestTimeoutError`.

    Cancelling: :meth:`cancel` stops every request of this transport for good (as for a
    closed client); a :class:`Cancellation` passed to :meth:`get_json` as ``cancel=``
    stops just the requests given it (one batch). Either way no new request starts,
    back-off sleeps end at once, requests in flight are cut and give up at their retry
    decision, and :class:`RequestCancelledError` is raised.

    Example:
        >>> t = Transport("http://127.0.0.1:8000/api", session=build_session(),
        ...               credentials=Credentials.api_key("k"))
        >>> t.url("media/abc")
        'http://127.0.0.1:8000/api/media/abc'
        >>> batch = Cancellation()
        >>> # worker threads: t.get_json("media/a", cancel=batch); on a fatal error:
        >>> batch.cancel("media 'a' failed: 401")
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session,
        credentials: Credentials | None = None,
        timeout: float | tuple[float, float] = 30.0,
        deadline: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = watch_session(session)
        self._credentials = credentials
        self.timeout = timeout
        self.deadline = deadline_for(timeout) if deadline is None else float(deadline)
        Deadline(self.deadline)  # validates it (ConfigError)
        self._cancellation = Cancellation()
        self._probe_lock = threading.Lock()
        self._probe: tuple[str | None, int | None] | None = None

    def cancel(self, reason: str = "the transport was cancelled") -> None:
        """Stop every request of this transport, now and later (see the class docstring)."""
        self._cancellation.cancel(reason)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancellation.cancelled

    def url(self, path: str) -> str:
        """``base_url`` joined with a relative ``path`` (which must already be safe)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers_for(self, url: str) -> dict[str, str]:
        """The credentials header for ``url``: empty unless it is on the API's origin."""
        if self._credentials is None or not is_same_origin(url, self.base_url):
            return {}
        return self._credentials.header()

    def _secrets(self) -> tuple[str, ...]:
        return self._credentials.secrets() if self._credentials else ()

    def _shown(self, url: str) -> str:
        """``url`` as messages and logs show it: no password, and no secret a redirect put
        in its query string."""
        return mask_secrets(safe_url(url), self._secrets())

    def get_json(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        what: str | None = None,
        media_id: str | None = None,
        cancel: Cancellation | None = None,
        array_key: str | None = None,
    ) -> dict:
        """GET a JSON object; any failure raises a :class:`CorevizError` naming ``what``.

        ``cancel``: a :class:`Cancellation` shared by a batch of requests (see the class
        docstring); when it is cancelled this raises :class:`RequestCancelledError`.
        ``array_key``: for endpoints that answer either an object or a bare JSON array
        (e.g. the collections list), a top-level array is returned as ``{array_key: [...]}``.
        """
        body = self.get_body(
            path_or_url, params=params, what=what, media_id=media_id, cancel=cancel
        )
        return body.json(array_key=array_key)

    def get_body(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        what: str | None = None,
        media_id: str | None = None,
        cancel: Cancellation | None = None,
    ) -> JsonBody:
        """GET a 2xx answer, its JSON not decoded yet (:meth:`JsonBody.json` decodes it).

        A worker thread can fetch while the thread that needs the value decodes it: bytes
        waiting in a queue cost the garbage collector nothing, decoded pages would. An
        HTTP error is raised here, as by :meth:`get_json`.
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        token = self._cancellation if cancel is None else Cancellation(self._cancellation, cancel)
        response = self._send(url, params=params, what=what, media_id=media_id, cancel=token)
        body = JsonBody(response, url, what=what, media_id=media_id, secrets=self._secrets())
        if not 200 <= response.status_code < 300:
            error = body.error()
            if isinstance(error, NotFoundError) and url.startswith(self.base_url + "/"):
                error = self._explained_404(error)
            raise error
        return body

    def _explained_404(self, error: NotFoundError) -> NotFoundError:
        """``error`` saying whether the base URL is the API (asked once per transport)."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = self._ask_base_url()
        verdict, status = self._probe
        return explain_not_found(error, verdict, self._shown(self.base_url), status)

    def _ask_base_url(self) -> tuple[str | None, int | None]:
        """``(verdict, status)`` of ``GET {base_url}/me`` (see :mod:`.notfound`): one
        attempt, no retry (a busy server must not hold the 404 back), at most 5 s, through
        the session's proxies and certificates; no answer at all gives ``(None, None)``."""
        url = self.url(PROBE_PATH)
        probe = requests.Session()
        probe.trust_env = self.session.trust_env
        probe.proxies, probe.verify, probe.cert = (
            self.session.proxies,
            self.session.verify,
            self.session.cert,
        )
        try:
            with probe, Deadline(min(self.deadline, PROBE_SECONDS), cancel=self._cancellation):
                response = probe.get(
                    url,
                    headers=self.headers_for(url),
                    timeout=PROBE_SECONDS,
                    allow_redirects=False,
                )
                response.close()
        except (requests.RequestException, CorevizError, ValueError):
            return None, None
        return verdict_of(response.status_code, response.headers.get("Content-Type")), (
            response.status_code
        )

    def _send(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        what: str | None,
        media_id: str | None,
        cancel: Cancellation,
    ) -> requests.Response:
        """One GET plus at most :data:`MAX_REDIRECTS` redirect hops, each re-authorised."""
        for _ in range(MAX_REDIRECTS + 1):
            deadline = Deadline(self.deadline, cancel=cancel)
            try:
                cancel.check()
                with deadline:
                    response = self._get(url, params)
            except RequestCancelledError:
                raise cancel.error(self._shown(url), what=what, media_id=media_id) from None
            except requests.RequestException as exc:
                shown = self._shown(url)
                if cancel.cancelled:  # cut by the cancellation
                    raise cancel.error(shown, what=what, media_id=media_id) from None
                if deadline.expired:
                    raise deadline.timeout_error(shown, what=what, media_id=media_id) from None
                raise translate_error(
                    url, what=what, media_id=media_id, exc=exc, secrets=self._secrets()
                ) from None
            except ValueError as exc:  # e.g. a redirect to an unparsable Location
                raise InvalidResponseError(
                    f"GET{_subject(what)} ({self._shown(url)}) failed: invalid URL in the "
                    f"response ({mask_secrets(str(exc), self._secrets())})",
                    url=self._shown(url),
                    media_id=media_id,
                ) from None
            logger.debug("GET %s -> %s", self._shown(response.url or url), response.status_code)
            if not response.is_redirect:
                return response
            location = response.headers["Location"]
            url = urljoin(response.url or url, location)
            params = None  # the Location already carries the query
            response.close()
        raise InvalidResponseError(
            f"GET{_subject(what)} ({self._shown(url)}): more than {MAX_REDIRECTS} redirects",
            url=self._shown(url),
            media_id=media_id,
        )

    def _get(self, url: str, params: Mapping[str, str] | None) -> requests.Response:
        """One GET, retried like a read error when the connection breaks *while the body is
        read* (requests reads it after urllib3's ``Retry`` has returned, so ``Retry`` alone
        never retries a truncated body); the adapter's own ``Retry`` budget and backoff apply.
        """
        retry = None
        while True:
            try:
                return self.session.get(
                    url,
                    params=params,
                    headers=self.headers_for(url),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                cause = exc.args[0] if exc.args else None
                if not isinstance(cause, (ProtocolError, ReadTimeoutError)):
                    raise  # not a body-read failure: urllib3 already retried it
                if retry is None:
                    retry = getattr(self.session.get_adapter(url), "max_retries", None)
                    if not isinstance(retry, Retry):
                        raise
                try:
                    retry = retry.increment(method="GET", url=url, error=cause)
                except (MaxRetryError, ProtocolError, ReadTimeoutError):
                    raise exc from None
                logger.debug("GET %s: body read failed (%s), retrying", self._shown(url), cause)
                retry.sleep()

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

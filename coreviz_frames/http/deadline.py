"""Cancellation and total deadlines of HTTP attempts: :class:`Cancellation`, :class:`Deadline`.

- **Deadlines.** ``timeout`` bounds connecting and each read; on top of it every attempt
  has a *total deadline* (connect, headers and body together), so a server trickling
  bytes cannot hold a caller: :class:`Deadline` is a context manager over any
  ``requests.Session`` (:func:`watch_session`); a watchdog thread shuts the socket of the
  attempt in flight down when its time is up. :func:`deadline_for` turns a requests-style
  ``timeout`` into the seconds of that deadline.
- **Cancelling.** A :class:`Cancellation` shared by a batch of requests stops them: no new
  attempt starts, back-off sleeps of the retry policy end at once
  (:mod:`coreviz_frames.http.retry` asks :func:`current_deadline`), attempts in flight are
  cut and give up at their retry decision, and
  :class:`~coreviz_frames.errors.RequestCancelledError` is raised.

Example:
    >>> batch = Cancellation()
    >>> with Deadline(5.0, cancel=batch) as deadline:
    ...     current_deadline() is deadline
    True
    >>> deadline_for((3.05, 27))
    30.05
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import socket
import threading
import time
import weakref
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from coreviz_frames.errors import ConfigError, RequestCancelledError, RequestTimeoutError
from coreviz_frames.http.urls import request_label, safe_url

__all__ = ["Cancellation", "Deadline", "current_deadline", "deadline_for", "watch_session"]


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
        subject = f"{request_label(what, safe)} " if safe else ""
        return RequestCancelledError(
            f"{subject}cancelled: {self.reason}", url=safe, media_id=media_id
        )

    def __repr__(self) -> str:
        return f"<Cancellation {'cancelled' if self.cancelled else 'active'}>"


_scopes = threading.local()


def current_deadline() -> Deadline | None:
    """The innermost :class:`Deadline` this thread is in, or None (for the retry policy).

    Example:
        >>> current_deadline() is None
        True
    """
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
    *watched* session (``build_session`` sessions are; :func:`watch_session` watches
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
        >>> session = requests.Session()
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
            f"{request_label(what, safe)} timed out: not complete within its total "
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
        scope = current_deadline()
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
        scope = current_deadline()
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

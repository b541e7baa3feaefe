"""Work on other threads, bounded: the package's one owner of thread pools.

- :class:`Handoff`: hand items to one background thread through a bounded queue (the
  export writes part N while part N+1 is fetched).
- :func:`submit_in_order`: futures in input order, at most ``window`` submitted ahead.
- :func:`run_as_completed`: results in completion order, at most ``window`` in flight.
- :func:`run_fail_fast`: every key once; the first error cancels the rest and is raised.

In all of them an error raised by a task reaches the caller's thread, and work not yet
started when the caller stops (or fails) is cancelled.

The queue of a :class:`Handoff` is bounded, so a producer faster than the consumer waits
and memory stays flat. The first error of the consumer stops it; the producer gets that
error at its next :meth:`Handoff.submit` or at :meth:`Handoff.close`. Leaving the ``with``
block always waits for the thread, so no thread outlives the call that started it.

Example:
    >>> written = []
    >>> with Handoff(written.append, depth=1) as handoff:
    ...     for n in range(3):
    ...         handoff.submit(n)
    >>> written
    [0, 1, 2]
    >>> sorted(run_as_completed(range(4), lambda n: n * n, workers=2))
    [0, 1, 4, 9]
    >>> sorted(run_fail_fast(["a", "b"], str.upper, workers=2).values())
    ['A', 'B']
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from typing import Any, Generic, TypeVar

from coreviz_frames._util.checks import check_int

__all__ = [
    "Handoff",
    "run_as_completed",
    "run_fail_fast",
    "submit_in_order",
]

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)
_STOP = object()
_POLL = 0.05  # seconds between checks of the consumer while the queue is full


class Handoff(Generic[T]):
    """Run ``consume(item)`` for each submitted item, in order, on one background thread.

    ``depth`` items at most wait in the queue (one more is being consumed). After the
    consumer raised, the items still queued are dropped unconsumed, and :meth:`submit` and
    :meth:`close` raise that error in the producer's thread. Leaving the ``with`` block
    closes the handoff: it waits for the items already queued (they were complete work),
    then joins the thread; if the block itself raised, that error wins.

    Example:
        >>> def fail(item):
        ...     raise OSError("disk full")
        >>> with Handoff(fail) as handoff:
        ...     handoff.submit("part 0")
        ...     handoff.submit("part 1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        OSError: disk full
    """

    def __init__(
        self, consume: Callable[[T], Any], *, depth: int = 1, name: str = "coreviz-handoff"
    ) -> None:
        check_int("depth", depth, minimum=1)
        self._consume = consume
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drained, not consumed: the producer learns of the error
            try:
                self._consume(item)
            except BaseException as exc:  # handed to the producer's thread
                self._error = exc

    @property
    def failed(self) -> bool:
        """True once the consumer raised."""
        return self._error is not None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _put(self, item: Any) -> None:
        while True:
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                if not self._thread.is_alive():  # cannot happen while open; never hang
                    return

    def submit(self, item: T) -> None:
        """Queue ``item`` (waiting while the queue is full); raises the consumer's error."""
        if self._closed:
            raise RuntimeError("submit() on a closed Handoff")
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for the queued items and the thread; raises the consumer's error, if any."""
        if not self._closed:
            self._closed = True
            self._put(_STOP)
            self._thread.join()
        self._raise_if_failed()

    def __enter__(self) -> Handoff[T]:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(BaseException):  # the producer's own error is the one raised
            self.close()


def submit_in_order(
    executor: Executor,
    jobs: Iterable[Callable[[], R] | Future[R]],
    window: int,
    *,
    weight: Callable[[Future[R]], int] | None = None,
) -> Generator[Future[R], None, None]:
    """Submit ``jobs`` (callables, or futures already made) keeping at most ``window``
    ahead of the consumer; yield their futures in input order. Closing the generator
    cancels the futures not yet yielded. ``weight(future)`` (default 1 each) says how much
    of the window a job takes (a finished job holding many items, say).

    Example:
        >>> with ThreadPoolExecutor(2) as pool:
        ...     [f.result() for f in submit_in_order(pool, [lambda: 1, lambda: 2], 2)]
        [1, 2]
    """
    pending: deque[tuple[Future[R], int]] = deque()
    ahead = 0
    try:
        for job in jobs:
            fut = job if isinstance(job, Future) else executor.submit(job)
            pending.append((fut, 1 if weight is None else weight(fut)))
            ahead += pending[-1][1]
            while pending and ahead >= window:
                fut, taken = pending.popleft()
                ahead -= taken
                yield fut
        while pending:
            yield pending.popleft()[0]
    finally:
        for fut, _ in pending:
            fut.cancel()


def run_as_completed(
    items: Iterable[T], task: Callable[[T], R], *, workers: int, window: int | None = None
) -> Iterator[R]:
    """``task(item)`` for each item on ``workers`` threads, at most ``window`` (default
    ``2 * workers``) in flight; results in completion order. A task's error is raised
    when its result is due; closing the iterator cancels what has not started.

    Example:
        >>> sorted(run_as_completed("abc", str.upper, workers=2, window=2))
        ['A', 'B', 'C']
    """
    window = 2 * workers if window is None else window
    with ThreadPoolExecutor(max_workers=workers) as pool:
        queue_ = iter(items)
        pending: set[Future[R]] = set()
        try:
            for item in queue_:
                pending.add(pool.submit(task, item))
                if len(pending) >= window:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                    for nxt in itertools.islice(queue_, 1):  # the next item, if any
                        pending.add(pool.submit(task, nxt))
        finally:
            for fut in pending:
                fut.cancel()


def run_fail_fast(
    keys: Sequence[K],
    task: Callable[[K], R],
    *,
    workers: int,
    on_done: Callable[[K, R], object] | None = None,
) -> dict[K, R]:
    """``{key: task(key)}`` (in completion order) on at most ``workers`` threads, all
    submitted at once; the first error cancels what has not started and is raised.
    ``on_done(key, result)`` runs in the caller's thread as each finishes (a progress bar).

    Example:
        >>> sorted(run_fail_fast([1, 2, 3], lambda n: -n, workers=2).items())
        [(1, -1), (2, -2), (3, -3)]
    """
    out: dict[K, R] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys)))) as pool:
        futures = {pool.submit(task, key): key for key in keys}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    for other in pending:
                        other.cancel()
                    raise exc
                out[futures[fut]] = fut.result()
                if on_done is not None:
                    on_done(futures[fut], out[futures[fut]])
    return out

"""Hand work to one background thread through a bounded queue: :class:`Handoff`.

The export uses it to write part N (Parquet encoding and compression run in Arrow's C++
code, without the GIL) while the records of part N+1 are fetched, parsed and flattened.
The queue is bounded, so a producer faster than the consumer waits and memory stays flat.
The first error of the consumer stops it; the producer gets that error at its next
:meth:`Handoff.submit` or at :meth:`Handoff.close`. Leaving the ``with`` block always waits
for the thread, so no thread outlives the call that started it.

Example:
    >>> written = []
    >>> with Handoff(written.append, depth=1) as handoff:
    ...     for n in range(3):
    ...         handoff.submit(n)
    >>> written
    [0, 1, 2]
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")
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
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
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

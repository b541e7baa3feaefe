"""Walking the pages of an offset range: prefetch, stop rules, and why a walk stopped.

:class:`PageWalk` yields the raw pages of ``[start, stop)`` (``stop=None``: until the API
says ``hasMore: false``) in offset order, fetching the planned offsets ahead concurrently.
It stops *complete* on ``hasMore: false`` (from an API that leaves ``hasMore`` out: on an
empty page) or at ``stop``, and *incomplete* (with a
:class:`~coreviz_frames.errors.PaginationWarning` and the reason in ``incomplete_reason``)
on an empty page while ``hasMore`` is true, on a page that only repeats items already
seen, or once the walk passes the announced ``total`` by more than ``max_overrun`` rows.

A complete walk of a whole listing (``start=0``, no ``stop``) also says whether it *proves*
it saw every item (:attr:`PageWalk.unproven`, None when it does): its last page said
``hasMore: false`` (a page without ``hasMore`` proves nothing, so the walk reads on past a
short one to an empty page), the distinct ids it saw (as spelled: the rows the server
counts) reach the largest ``pagination.total`` any page announced, and every media item had
a valid id. A sync deletes only after such a listing.

Example:
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> rows = [{"id": f"m{i}"} for i in range(25)]
    >>> def fetch(offset, limit):
    ...     more = offset + limit < len(rows)
    ...     return {"media": rows[offset : offset + limit],
    ...             "pagination": {"total": len(rows), "hasMore": more}}
    >>> with ThreadPoolExecutor(4) as pool:
    ...     walk = PageWalk(fetch, page_size=10, executor=pool, window=4, where="collection c")
    ...     [len(page["media"]) for page in walk]
    [10, 10, 5]
    >>> walk.complete, walk.incomplete_reason, walk.unproven
    (True, None, None)
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Executor, Future

from coreviz_frames._util.checks import check_int, is_int
from coreviz_frames._util.ids import all_safe_ids, is_safe_id
from coreviz_frames.errors import PaginationWarning
from coreviz_frames.tables.arrowrecords import ArrowPage
from coreviz_frames.tables.pagechunks import PageRows

__all__ = ["PageWalk", "check_max_overrun"]

#: The smallest default overrun allowance, in rows (see :func:`overrun_allowance`).
MIN_OVERRUN = 1000


def check_max_overrun(value: object) -> int | None:
    """``value`` if it is None or an integer >= 0, else :class:`ConfigError`."""
    return check_int("max_overrun", value, minimum=0, allow_none=True)


def overrun_allowance(total: int, max_overrun: int | None) -> int:
    """Rows a walk may read past the announced ``total`` before it stops as incomplete.

    ``max_overrun`` when given; by default as many rows again as the total, at least
    :data:`MIN_OVERRUN` (a collection may grow while it is walked; one that more than
    doubles is taken for a server that never stops).

    Example:
        >>> overrun_allowance(100, None), overrun_allowance(50_000, None), overrun_allowance(10, 0)
        (1000, 50000, 0)
    """
    return max(total, MIN_OVERRUN) if max_overrun is None else max_overrun


def _valid_total(pagination: dict) -> int | None:
    total = pagination.get("total")
    return total if is_int(total) and total >= 0 else None


#: A page as ``fetch`` gives it: decoded, or read by pyarrow (see :class:`PageWalk`).
Page = dict | ArrowPage


def _decoded(page: Page | Callable[[], Page]) -> Page:
    """A fetched page: ``fetch`` may return the page, or a callable that decodes it (so
    that pages are decoded in the walking thread, when needed, not while they wait)."""
    return page() if callable(page) else page


def _pagination(page: Page) -> dict:
    if isinstance(page, ArrowPage):
        return page.pagination
    return page.get("pagination") or {}


def _listing(page: Page) -> tuple[list, list]:
    """The ids and types of the page's items, as ``item.get`` gives them."""
    if isinstance(page, ArrowPage):
        return page.ids, page.types
    media = page["media"]
    return [item.get("id") for item in media], [item.get("type") for item in media]


class PageWalk:
    """The pages of one offset range, in order; :attr:`complete` says whether it finished.

    ``fetch(offset, limit)`` returns one validated page, or a callable returning it (called
    in the walking thread: a page then waits in the queue as bytes, not as Python objects).
    A page may also be an :class:`~coreviz_frames.tables.arrowrecords.ArrowPage` (read by
    pyarrow, never decoded into dicts): the walk checks it from its ids and types exactly as
    a decoded one, and yields it as :class:`~coreviz_frames.tables.pagechunks.PageRows`
    (the page and its rows within the range).
    ``start``/``stop`` bound the range (``stop`` exclusive, None for "until hasMore is
    false"); ``plan_limit`` caps the rows fetched ahead; ``on_total`` is called with the
    first page's ``total``.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], Page | Callable[[], Page]],
        *,
        page_size: int,
        executor: Executor,
        window: int,
        where: str,
        start: int = 0,
        stop: int | None = None,
        max_overrun: int | None = None,
        plan_limit: int | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._executor = executor
        self._window = window
        self._where = where
        self._start = start
        self._stop = stop
        self._max_overrun = max_overrun
        self._plan_limit = plan_limit
        self._on_total = on_total
        self._planned: deque[tuple[int, Future]] = deque()
        self._plan: Iterator[int] = iter(())
        #: True once the range was walked to its end (``hasMore: false`` or ``stop``).
        self.complete = False
        #: Why the walk stopped early (None while running or when complete).
        self.incomplete_reason: str | None = None
        #: The first page's ``pagination.total`` (None if the API gave none).
        self.total: int | None = None
        #: Rows (folder rows included) yielded so far.
        self.rows = 0
        #: Once complete: why the walk does not prove it saw the whole listing (None if it
        #: does; see the module doc).
        self.unproven: str | None = None
        self._seen: set[str] = set()  # the string ids of the rows seen
        self._unnamed = 0  # rows without a string id
        self._bad_ids = 0  # media items whose id is missing or unsafe
        self._max_total: int | None = None
        self._said_end = False  # the last page said hasMore: false

    def _limit(self, offset: int) -> int:
        return self._page_size if self._stop is None else min(self._page_size, self._stop - offset)

    def _plan_from(self, first: int, step: int, end: int | None) -> None:
        if end is None:
            return
        if self._plan_limit is not None:
            end = min(end, self._start + self._plan_limit)
        self._plan = iter(range(first, end, step))

    def _top_up(self) -> None:
        while len(self._planned) < self._window:
            nxt = next(self._plan, None)
            if nxt is None:
                return
            self._planned.append((nxt, self._executor.submit(self._fetch, nxt, self._limit(nxt))))

    def _page_at(self, offset: int) -> Page:
        self._top_up()
        if self._planned and self._planned[0][0] == offset:
            return _decoded(self._planned.popleft()[1].result())
        self._cancel()  # nothing planned, or a short page shifted the offsets
        return _decoded(self._fetch(offset, self._limit(offset)))

    def _cancel(self) -> None:
        for _, fut in self._planned:
            fut.cancel()
        self._planned.clear()
        self._plan = iter(())

    def _stop_early(self, reason: str) -> None:
        self.incomplete_reason = reason
        warnings.warn(f"{self._where}: {reason}", PaginationWarning, stacklevel=4)

    def _page_ids(self, media: tuple[list, list]) -> set[str]:
        """The page's string ids; counts the rows without one and the media items (not
        folders) whose id is missing or unsafe."""
        named = [ident for ident in media[0] if isinstance(ident, str)]
        if len(named) == len(media[0]) and all_safe_ids(named):  # the usual page: at once
            return set(named)
        ids: set[str] = set()
        for ident, kind in zip(*media, strict=True):
            if isinstance(ident, str):
                ids.add(ident)
            else:
                self._unnamed += 1
            if not is_safe_id(ident) and kind != "folder":
                self._bad_ids += 1
        return ids

    def _check(self, offset: int, media: tuple[list, list], has_more: bool, seen: set[str]) -> bool:
        """False (with the reason recorded) if the walk must stop before this page
        (``media``: the ids and the types of its items)."""
        if not media[0]:
            if has_more:
                self._stop_early(
                    f"empty page at offset {offset} although hasMore is true;"
                    f" stopping after {self.rows} items"
                )
                return False
            return True
        ids = self._page_ids(media)
        if ids and ids <= seen:
            self._stop_early(
                f"the page at offset {offset} repeats items already seen;"
                f" stopping after {self.rows} items"
            )
            return False
        seen |= ids
        if self.total is not None and has_more:
            allowance = overrun_allowance(self.total, self._max_overrun)
            if offset + len(media[0]) > self.total + allowance:
                self._stop_early(
                    f"the walk passed the announced total of {self.total} by more than "
                    f"{allowance} rows (hasMore is still true); stopping after {self.rows} "
                    "items (raise max_overrun to read further)"
                )
                return False
        return True

    def __iter__(self) -> Generator[dict | PageRows, None, None]:
        return self.pages()

    def pages(self) -> Generator[dict | PageRows, None, None]:
        """The pages, in offset order (a new walk each call): decoded pages as dicts,
        pages read by pyarrow as :class:`PageRows`."""
        if self._stop is not None and self._stop <= self._start:  # an empty range
            self.complete, self.unproven = True, self._judge()
            return
        if self._stop is not None:  # the whole range is known: fetch it ahead at once
            self._plan_from(self._start, self._page_size, self._stop)
        offset = self._start
        seen = self._seen
        try:
            page = self._page_at(offset)
            self.total = _valid_total(_pagination(page))
            if self.total is not None and self._on_total is not None:
                self._on_total(self.total)
            while True:
                kept, media, has_more = self._within_range(page, offset)
                if not self._check(offset, media, has_more, seen):
                    return
                n = len(media[0])
                if not n:
                    break
                self.rows += n
                if offset == self._start and self._stop is None and has_more:
                    # plan the later pages now, so they are queued before the caller's
                    # work on this one (hydration shares the executor)
                    self._plan_from(offset + n, n, self.total)
                    self._top_up()
                yield kept
                offset += n
                if not has_more or (self._stop is not None and offset >= self._stop):
                    break
                page = self._page_at(offset)
        finally:
            self._cancel()
        self.complete, self.unproven = True, self._judge()
        self._check_total()

    def _within_range(
        self, page: Page, offset: int
    ) -> tuple[dict | PageRows, tuple[list, list], bool]:
        """``page`` cut at the range's end (a dict, or the :class:`PageRows` of an
        ArrowPage), the ids and types of its items, and whether more follow."""
        ids, types = _listing(page)
        if self._stop is not None and offset + len(ids) > self._stop:
            ids, types = ids[: self._stop - offset], types[: self._stop - offset]
            if isinstance(page, dict):
                page = {**page, "media": page["media"][: len(ids)]}
        kept = PageRows(page, range(len(ids)), ids) if isinstance(page, ArrowPage) else page
        pagination = _pagination(page)
        total = _valid_total(pagination)
        if total is not None:
            self._max_total = max(total, self._max_total or 0)
        has_more = pagination.get("hasMore")
        self._said_end = has_more is False
        if not isinstance(has_more, bool):
            # without hasMore a short page proves nothing (a server may cap the page
            # size): read on, to an empty page
            has_more = bool(ids)
        return kept, (ids, types), has_more

    def _judge(self) -> str | None:
        """Why this complete walk does not prove it saw the whole listing; None if it does."""
        if self._start != 0 or self._stop is not None:
            return "an offset range, not the whole listing"
        reasons = []
        if not self._said_end:
            reasons.append("its last page did not say hasMore: false")
        distinct = len(self._seen) + self._unnamed
        if self._max_total is not None and distinct < self._max_total:
            reasons.append(
                f"it listed {distinct:,} distinct items of the {self._max_total:,} its "
                "pagination.total announced"
            )
        if self._bad_ids:
            reasons.append(f"{self._bad_ids:,} listed items had a missing or invalid id")
        return "; ".join(reasons) or None

    def _check_total(self) -> None:
        whole = self._start == 0 and self._stop is None
        if whole and self.total is not None and self.rows != self.total:
            warnings.warn(
                f"{self._where}: pagination reported total={self.total} but "
                f"{self.rows} items were returned",
                PaginationWarning,
                stacklevel=4,
            )

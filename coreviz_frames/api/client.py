"""The CoreViz Studio API client: one media, many media, and every media of a collection.

Layers, all lazy: ``iter_pages`` (raw pages of ``GET /api/dataset/{id}/media``) →
``browse`` (media records, folders skipped, de-duplicated, hydrated) → ``to_tables``.
``iter_range`` is ``browse`` over one offset range (what each Dask partition reads).
``iter_media`` fetches a list of ids concurrently, in input order, and records what failed.
Every iterator carries a :class:`FetchReport`: what succeeded, what failed and why, and
whether the walk reached its end (``complete``) or stopped early (``incomplete_reason``).

Example:
    >>> import coreviz_frames as cvf
    >>> with cvf.Client(api_key="...") as client:
    ...     rec = client.get_media("abc123def456")
    ...     it = client.iter_media(["a1", "b2", "c3"], on_error="skip")
    ...     records = list(it)
    ...     it.report.failed          # [FailedFetch(media_id='b2', status=404, ...)]
    ...     everything = list(client.browse("COLLECTION_ID"))
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Set
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import requests

from coreviz_frames._util.checks import check_choice, check_int, check_on_error
from coreviz_frames._util.concurrency import submit_in_order
from coreviz_frames._util.ids import normalize_id, validate_id
from coreviz_frames._util.progress import progress_bar
from coreviz_frames.api.filters import BrowseFilters, walk_source
from coreviz_frames.api.pagination import PageWalk, check_max_overrun
from coreviz_frames.api.responses import object_at, objects_at, shape_error
from coreviz_frames.errors import (
    AuthenticationError,
    ConfigError,
    CorevizError,
    CorevizWarning,
    MediaIdMismatchError,
    RequestCancelledError,
    SkippedRecordWarning,
)
from coreviz_frames.failures import FailedFetch
from coreviz_frames.http.credentials import Secret, resolve_credentials
from coreviz_frames.http.deadline import Cancellation
from coreviz_frames.http.transport import Transport, build_session, pin_environment
from coreviz_frames.http.urls import origin_of, safe_url
from coreviz_frames.tables.arrowrecords import ArrowPage, read_page
from coreviz_frames.tables.pagechunks import PageRows

if TYPE_CHECKING:
    from typing import Unpack

    import pandas as pd

    from coreviz_frames.api.catalogue import Catalogue
    from coreviz_frames.api.filters import BrowseFilterArgs
    from coreviz_frames.api.search import SearchResults

__all__ = ["DEFAULT_BASE_URL", "HYDRATE", "Client", "FetchReport", "needs_hydration"]

DEFAULT_BASE_URL = "https://lab.coreviz.io/api"
#: The values of ``hydrate=`` (see :meth:`Client.browse`).
HYDRATE = ("auto", True, False)
_CLOSED_EARLY = "the iteration was closed before its end"
#: Pages read by pyarrow at once, whatever the number of requests in flight: one per core
#: (more threads parsing than cores only trade the cores and the GIL back and forth).
_PARSING = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
_CAPPED = "max_items ended the walk before the listing did"


@dataclass
class FetchReport:
    """What a fetch did: how many records it yielded, every id that failed (with why), the
    ids left out by :meth:`BrowseIterator.exclude`, and whether it reached its end.

    ``complete`` is True only once the iteration finished normally (``hasMore: false``,
    ``max_items`` or, for ``iter_media``, the last id); otherwise ``incomplete_reason``
    says why it stopped (an inconsistent page, a fatal error, an early ``close()``).
    ``unproven`` says why a complete walk does not prove it listed the whole collection
    (None when it does, and for ``iter_media``): ``whole`` is True only when it does (see
    :mod:`~coreviz_frames.api.pagination`); a sync deletes media only after a whole listing.

    Example:
        >>> it = client.iter_media(ids, on_error="skip")
        >>> records = list(it)
        >>> it.report.succeeded, it.report.failed_ids, it.report.complete
        (198, ['missing1', 'missing2'], True)
    """

    succeeded: int = 0
    failed: list[FailedFetch] = field(default_factory=list)
    complete: bool = field(default=False, compare=False)
    incomplete_reason: str | None = field(default=None, compare=False)
    excluded: int = field(default=0, compare=False)
    unproven: str | None = field(default=None, compare=False)

    @property
    def failed_ids(self) -> list[str | None]:
        """The ids in ``failed``, in input order."""
        return [f.media_id for f in self.failed]

    @property
    def ok(self) -> bool:
        """True when the iteration finished and nothing failed."""
        return self.complete and not self.failed

    @property
    def whole(self) -> bool:
        """True when the iteration finished and proved it saw everything it walked."""
        return self.complete and self.unproven is None

    def finish(self, unproven: str | None = None) -> None:
        """Mark the iteration as finished normally (``unproven``: see the class doc)."""
        self.complete, self.incomplete_reason, self.unproven = True, None, unproven

    def stop(self, reason: str) -> None:
        """Mark the iteration as stopped early (the first reason is kept)."""
        if not self.complete and self.incomplete_reason is None:
            self.incomplete_reason = reason


def _done(value: Any) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


def _rows_of(job: Future) -> int:
    """How much of the prefetch window a browse job takes: a finished :class:`PageRows`
    its rows (the walk runs no further ahead with pages read by pyarrow than with
    records), any other job 1."""
    if job.done() and not job.cancelled() and job.exception() is None:
        result = job.result()
        if isinstance(result, PageRows):
            return len(result)
    return 1


class _ReportingIterator(Iterator[dict]):
    """An iterator over ``_run()`` that keeps :attr:`report` true to how it ended."""

    def __init__(self, client: Client, progress: bool | None) -> None:
        self.report = FetchReport()
        self._client = client
        self._progress = progress
        #: Cancelled when the iteration ends early (a fatal error, ``close()``): none of its
        #: requests starts after that, and retries in flight give up at once.
        self._cancel = Cancellation()
        self._started = False
        self._finished = False
        self._excluded: frozenset[str | None] = frozenset()
        self._gen = self._tracked()

    def _run(self) -> Iterator[dict]:
        raise NotImplementedError

    def _tracked(self) -> Generator[dict, None, None]:
        self._started = True
        try:
            yield from self._run()
            self._finished = True
        except GeneratorExit:
            self.report.stop(_CLOSED_EARLY)
            self._cancel.cancel(_CLOSED_EARLY)
            raise
        except BaseException as exc:
            self.report.stop(f"{type(exc).__name__}: {exc}")
            self._cancel.cancel(f"the iteration failed: {type(exc).__name__}")
            raise

    def exclude(self, ids: Set[str]) -> None:
        """Leave out these ids (compared normalised): neither fetched nor yielded, only
        counted in ``report.excluded``. Call it before iteration starts.

        Example:
            >>> it = client.browse("COLLECTION_ID")
            >>> it.exclude({"already1", "already2"})
        """
        if self._started:
            raise ConfigError("exclude() must be called before iteration starts")
        if isinstance(ids, (str, bytes)):
            raise ConfigError("exclude() takes a set of ids, not a single string")
        self._excluded = frozenset(normalize_id(str(i)) for i in ids)

    def _is_excluded(self, media_id: object) -> bool:
        return (
            bool(self._excluded)
            and isinstance(media_id, str)
            and (normalize_id(media_id) in self._excluded)
        )

    def _again(self) -> str:
        """How to get a new iterator (for the error of a used one)."""
        return "call the same method again for a new iterator"

    def __iter__(self) -> _ReportingIterator:
        if self._finished:
            raise ConfigError(
                f"this {type(self).__name__} was already used up or closed (it yielded "
                f"{self.report.succeeded:,} records) and yields nothing more: {self._again()}, "
                "or keep what it yields (records = list(...)) to use it twice"
            )
        return self

    def __next__(self) -> dict:
        return next(self._gen)

    def close(self) -> None:
        """Stop; pending requests are cancelled."""
        self._gen.close()
        self._finished = True

    def __enter__(self) -> _ReportingIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MediaIterator(_ReportingIterator):
    """The lazy iterator returned by :meth:`Client.iter_media`, with its :class:`FetchReport`.

    ``media_ids`` holds the de-duplicated ids, in input order; ``report`` fills in as
    records are consumed. ``close()`` (or leaving a ``with`` block) stops early and cancels
    pending requests; so does a failure with ``on_error="raise"``.

    Example:
        >>> with client.iter_media(ids, on_error="skip") as it:
        ...     first = next(it)
    """

    def __init__(
        self, client: Client, media_ids: list[str], on_error: str, progress: bool | None
    ) -> None:
        self.media_ids = media_ids
        self._on_error = on_error
        super().__init__(client, progress)

    def __enter__(self) -> MediaIterator:
        return self

    def __repr__(self) -> str:
        return (
            f"<MediaIterator {len(self.media_ids)} ids, succeeded={self.report.succeeded}, "
            f"failed={len(self.report.failed)}>"
        )

    def _run(self) -> Iterator[dict]:
        ids = [m for m in self.media_ids if not self._is_excluded(m)]
        self.report.excluded = len(self.media_ids) - len(ids)
        if not ids:
            self.report.finish()
            return
        client, cancel = self._client, self._cancel
        workers = max(1, min(client.max_workers, len(ids)))
        bar = progress_bar(total=len(ids), desc="media", unit="media", progress=self._progress)
        executor = ThreadPoolExecutor(workers, thread_name_prefix="coreviz-media")
        try:
            jobs = (partial(client._fetch_media, m, cancel=cancel) for m in ids)
            futures = submit_in_order(executor, jobs, 2 * workers)
            for media_id, fut in zip(ids, futures, strict=False):
                try:
                    record = fut.result()
                except CorevizError as exc:
                    bar.update(1)
                    if self._on_error == "raise":
                        raise
                    self.report.failed.append(FailedFetch.from_error(media_id, exc))
                    continue
                bar.update(1)
                self.report.succeeded += 1
                yield record
            self.report.finish()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()


@dataclass(frozen=True)
class _Walk:
    """One collection walk: which collection, which rows, how."""

    collection_id: str
    filters: BrowseFilters
    page_size: int
    max_items: int | None = None
    start: int = 0
    stop: int | None = None
    max_overrun: int | None = None


class PageIterator(_ReportingIterator):
    """The lazy iterator returned by :meth:`Client.iter_pages`: raw pages, and a
    :class:`FetchReport` whose ``succeeded`` counts the rows yielded (folder rows included)
    and whose ``complete``/``incomplete_reason`` say whether the walk reached its end.

    Example:
        >>> pages = client.iter_pages("COLLECTION_ID")
        >>> rows = sum(len(p["media"]) for p in pages)
        >>> pages.report.complete
        True
    """

    def __init__(self, client: Client, walk: _Walk, progress: bool | None) -> None:
        self._walk = walk
        super().__init__(client, progress)

    def __enter__(self) -> PageIterator:
        return self

    def exclude(self, ids: Set[str]) -> None:
        """Not supported on raw pages (use :meth:`Client.browse`)."""
        raise ConfigError("iter_pages yields raw pages; exclude() works on browse/iter_media")

    def _run(self) -> Iterator[dict]:
        walk, report, max_items = self._walk, self.report, self._walk.max_items
        if max_items == 0:
            report.finish(_CAPPED)
            return
        bar = progress_bar(desc="pages", unit="media", progress=self._progress)
        executor = ThreadPoolExecutor(self._client.max_workers, thread_name_prefix="coreviz-pages")
        walker = self._client._page_walk(walk, executor, self._cancel, bar)
        pages = walker.pages()
        try:
            for page in pages:
                assert isinstance(page, dict)  # no accept: every page decoded
                media = page["media"]
                if max_items is not None and report.succeeded + len(media) > max_items:
                    page = {**page, "media": media[: max_items - report.succeeded]}
                report.succeeded += len(page["media"])
                bar.update(len(page["media"]))
                yield page
                if max_items is not None and report.succeeded >= max_items:
                    report.finish(_CAPPED)
                    return
            if walker.complete:
                report.finish(walker.unproven)
            else:
                report.stop(walker.incomplete_reason or "the walk stopped early")
        finally:
            pages.close()
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()


def needs_hydration(item: Mapping[str, Any]) -> bool:
    """A browse item is light when it has no frames list, or none of its frames carries
    ``captions`` or ``objects`` (a full record may omit them on some frames, as the sample's
    video does on every other frame; that alone is no reason to fetch it again)."""
    frames = item.get("frames")
    if not isinstance(frames, list):
        return True
    return bool(frames) and not any(
        isinstance(f, dict) and ("captions" in f or "objects" in f) for f in frames
    )


class _Keeper:
    """Which listed items a browse keeps: not folders, each id once (compared normalised),
    not the ids left out by ``exclude``, at most ``max_items``."""

    def __init__(self, browse: BrowseIterator, bar: Any) -> None:
        self.browse, self.bar = browse, bar
        self.seen: set[str] = set()
        self.queued = 0
        self.max_items = browse._walk.max_items

    @property
    def full(self) -> bool:
        return self.max_items is not None and self.queued >= self.max_items

    def keeps(self, media_id: object, kind: object) -> bool:
        """True if the item is kept (and counted)."""
        if kind == "folder":
            self.bar.update(1)
            return False
        if isinstance(media_id, str):
            ident = normalize_id(media_id) or media_id  # one media, two spellings
            if ident in self.seen:
                return False
            self.seen.add(ident)
        if self.browse._is_excluded(media_id):
            self.browse.report.excluded += 1
            self.bar.update(1)
            return False
        self.queued += 1
        return True

    def kept_rows(self, part: PageRows) -> PageRows:
        """The rows of ``part`` kept, in order (stops at ``max_items``)."""
        at_once = self._all_kept(part)
        if at_once is not None:
            return at_once
        types = part.page.types
        rows: list[int] = []
        ids: list[str | None] = []
        for row, media_id in zip(part.rows, part.ids, strict=True):
            if self.keeps(media_id, types[row]):
                rows.append(row)
                ids.append(media_id)
                if self.full:
                    break
        return PageRows(part.page, rows, ids)

    def _all_kept(self, part: PageRows) -> PageRows | None:
        """:meth:`kept_rows` for the usual chunk, with set operations instead of a step a
        row: every row kept (a page without folders, ids all texts, none seen before or
        twice in the chunk, none excluded, ``max_items`` not reached); else None."""
        keys = part.distinct_keys()
        if keys is None or "folder" in part.page.types:
            return None
        if self.max_items is not None and self.queued + len(keys) > self.max_items:
            return None
        if not self.seen.isdisjoint(keys) or not self.browse._excluded.isdisjoint(keys):
            return None
        self.seen.update(keys)
        self.queued += len(keys)
        return PageRows(part.page, list(part.rows), list(part.ids))


class BrowseIterator(_ReportingIterator):
    """The lazy iterator returned by :meth:`Client.browse` and :meth:`Client.iter_range`,
    with its :class:`FetchReport`.

    A listed item whose Get Media (hydration) fails for that media alone (404, 403, a 5xx
    or 429 that outlasted the retries, a timeout, a network error, a bad body, an id that
    cannot be sent) is skipped with a :class:`SkippedRecordWarning` and recorded in
    ``report.failed``, so one bad media does not end the walk. A failing *page* (or a 401)
    ends it: the error is raised and outstanding requests are cancelled.
    ``report.complete`` is True only once the walk reached ``hasMore: false`` (or
    ``max_items``); after an inconsistent page it is False, with ``incomplete_reason``.

    :meth:`chunks` walks the same listing without decoding pages pyarrow can read.

    Example:
        >>> it = client.browse("COLLECTION_ID")
        >>> it.exclude(already_exported_ids)    # optional, before iterating
        >>> records = list(it)
        >>> it.report.failed_ids, it.report.complete
        ([], True)
    """

    def __init__(
        self, client: Client, walk: _Walk, hydrate: Literal["auto"] | bool, progress: bool | None
    ) -> None:
        self._walk = walk
        self._hydrate = hydrate
        self._chunked = False
        super().__init__(client, progress)

    def chunks(self) -> Iterator[Any]:
        """The walk as page chunks, in listing order: a
        :class:`~coreviz_frames.tables.pagechunks.PageRows` (rows of a page read by pyarrow,
        never decoded) or a media record (a dict: hydrated items, pages pyarrow could not
        prove exact). The same media, order, report and warnings as iterating the records;
        ``flatten_parts`` flattens them. Call it instead of iterating (once started, this
        returns the iterator itself: records).

        Example:
            >>> from coreviz_frames.tables.pagechunks import flatten_parts
            >>> tables = flatten_parts(list(client.browse("COLLECTION_ID").chunks()))
        """
        if self._started:
            return self
        self._chunked = True
        return self._gen

    def _accepts(self, page: ArrowPage) -> bool:
        """Whether a page read by pyarrow stays undecoded: not when an item would be
        hydrated (``hydrate="auto"``); ``hydrate=True`` never reads pages by pyarrow."""
        if self._hydrate is False:
            return True
        types = page.types
        return not any(
            light and types[i] != "folder" for i, light in enumerate(page.needs_hydration)
        )

    def __enter__(self) -> BrowseIterator:
        return self

    def _again(self) -> str:
        return f"call client.browse({self._walk.collection_id!r}, ...) again for a new walk"

    @property
    def source(self) -> dict[str, Any]:
        """What this walk reads, as an export's manifest records it (never a credential):
        ``{"base_url", "collection_id", "filters"}``."""
        return walk_source(self._client.base_url, self._walk.collection_id, self._walk.filters)

    def range_plan(self) -> dict[str, Any]:
        """What reading this walk again as offset ranges in other processes needs:
        ``client``, ``collection_id``, ``filters``, ``page_size`` and ``max_overrun``.
        ``ConfigError`` for a walk that is itself a range, capped by ``max_items``, or
        hydrating other than ``"auto"`` (the ranges read as ``browse`` does by default)."""
        walk = self._walk
        if walk.start or walk.stop is not None or walk.max_items is not None:
            raise ConfigError(
                "processes= splits a whole collection: browse it without max_items= "
                "(and not through iter_range)"
            )
        if self._hydrate != "auto":
            raise ConfigError("processes= reads with hydrate='auto'; drop hydrate=")
        return {
            "client": self._client,
            "collection_id": walk.collection_id,
            "filters": walk.filters,
            "page_size": walk.page_size,
            "max_overrun": walk.max_overrun,
        }

    def _jobs(
        self, pages: Iterator[dict | PageRows], bar: Any
    ) -> Iterator[Callable[[], Any] | Future]:
        """One job per new media item (a finished future, or a Get Media to run), one
        finished future per page read by pyarrow (its kept rows)."""
        keeper = _Keeper(self, bar)
        hydrate, client, cancel = self._hydrate, self._client, self._cancel
        for page in pages:
            if isinstance(page, PageRows):
                part = keeper.kept_rows(page)
                if part.rows:
                    yield _done(part)
                if keeper.full:
                    return
                continue
            for item in page["media"]:
                media_id = item.get("id")
                if not keeper.keeps(media_id, item.get("type")):
                    continue
                if isinstance(media_id, str) and (
                    hydrate is True or (hydrate == "auto" and needs_hydration(item))
                ):
                    yield partial(client._hydrated, item, cancel)
                else:
                    yield _done(item)
                if keeper.full:
                    return

    def _run(self) -> Iterator[Any]:
        walk, report = self._walk, self.report
        if walk.max_items == 0:
            report.finish(_CAPPED)
            return
        client = self._client
        bar = progress_bar(desc="browse", unit="media", progress=self._progress)
        executor = ThreadPoolExecutor(client.max_workers, thread_name_prefix="coreviz-browse")
        accept = self._accepts if self._chunked and self._hydrate is not True else None
        walker = client._page_walk(walk, executor, self._cancel, bar, accept=accept)
        pages = walker.pages()
        futures = submit_in_order(
            executor, self._jobs(pages, bar), 2 * client.max_workers, weight=_rows_of
        )
        try:
            for fut in futures:
                record = fut.result()
                if isinstance(record, PageRows):
                    bar.update(len(record))
                    report.succeeded += len(record)
                    yield record
                    continue
                bar.update(1)
                if isinstance(record, FailedFetch):
                    report.failed.append(record)
                    warnings.warn(
                        f"collection {walk.collection_id!r}: skipped media {record.media_id!r} "
                        f"(Get Media failed: {record.reason})",
                        SkippedRecordWarning,
                        stacklevel=3,
                    )
                    continue
                report.succeeded += 1
                yield record
            if walker.complete:
                report.finish(walker.unproven)
                if report.succeeded == 0 and not report.failed and not report.excluded:
                    client._explain_empty_walk(walk)
            elif (
                walk.max_items is not None
                and report.succeeded + len(report.failed) >= walk.max_items
            ):
                report.finish(_CAPPED)
            else:
                report.stop(walker.incomplete_reason or "the walk stopped early")
        finally:
            futures.close()
            pages.close()
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()


class Client:
    """A CoreViz Studio API client.

    ``api_key`` is sent as ``x-api-key``, ``token`` as ``Authorization: Bearer`` (the token
    wins when both are given); without either, ``COREVIZ_API_KEY`` is read, and without that
    :class:`ConfigError` is raised. ``base_url`` falls back to ``COREVIZ_BASE_URL``, then to
    ``https://lab.coreviz.io/api``. Credentials go only to that origin.

    ``timeout`` is seconds (or a ``(connect, read)`` pair) for every request; ``retries``
    applies to connection/read errors, 429 and 5xx; ``max_workers`` bounds the concurrent
    requests of ``iter_media`` and ``browse``; a fatal error ends an iteration at once
    (its outstanding requests are cancelled). A ``session`` you pass is used as is (its
    adapters decide retries and pooling; see :func:`~coreviz_frames.http.transport.build_session`)
    and is not closed by :meth:`close`.

    Example:
        >>> with Client(api_key="sk-...", max_workers=16) as client:
        ...     rec = client.get_media("abc123def456")
        >>> Client(token="t", base_url="http://127.0.0.1:8000/api")
        Client(base_url='http://127.0.0.1:8000/api', auth='token', max_workers=8)
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        token: str | None = None,
        base_url: str | None = None,
        timeout: float | tuple[float, float] = 30.0,
        retries: int = 5,
        max_workers: int = 8,
        session: requests.Session | None = None,
    ) -> None:
        base = (base_url or os.environ.get("COREVIZ_BASE_URL") or DEFAULT_BASE_URL).strip()
        credentials = resolve_credentials(
            api_key=api_key,
            token=token,
            base_url=base,
            missing="no CoreViz credentials: pass api_key= or token=, or set COREVIZ_API_KEY",
        )
        try:
            scheme, host, _ = origin_of(base)
        except ValueError:  # unparsable, e.g. an unclosed IPv6 bracket
            scheme, host = "", ""
        if scheme not in ("http", "https") or not host:
            raise ConfigError(f"base_url must be an http(s) URL, not {safe_url(base)!r}")
        check_int("retries", retries, minimum=0)
        check_int("max_workers", max_workers, minimum=1)
        timeouts = timeout if isinstance(timeout, tuple) else (timeout,)
        if isinstance(timeout, tuple) and len(timeout) != 2:
            timeouts = ()
        if not timeouts or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < float("inf")
            for t in timeouts
        ):
            raise ConfigError(
                f"timeout must be finite seconds > 0 or a (connect, read) pair, not {timeout!r}"
            )
        self.base_url = base.rstrip("/")
        self.auth_kind = credentials.kind
        self._secret = Secret(credentials.secrets()[0])
        self.timeout = timeout
        self.retries = retries
        self.max_workers = max_workers
        self._owns_session = session is None
        if session is None:  # ours: it talks to the API's origin only
            session = build_session(retries=retries, pool_size=max(max_workers, 10))
            pin_environment(session, self.base_url)
        self._transport = Transport(
            self.base_url, session=session, credentials=credentials, timeout=timeout
        )
        #: The report of the latest :meth:`iter_media` call (also ``iterator.report``).
        self.last_report: FetchReport | None = None
        # the client's one catalogue (its cached /api/me), made on the first catalogue read
        self._catalogue_reads: Catalogue | None = None
        self._catalogue_lock = threading.Lock()

    # ------------------------------------------------------------------ basics

    @property
    def api_origin(self) -> str:
        """``scheme://host:port`` of the API: the only origin that receives credentials."""
        scheme, host, port = origin_of(self.base_url)
        return f"{scheme}://{host}:{port}"

    @property
    def session(self) -> requests.Session:
        """The pooled ``requests.Session`` (it carries no credentials)."""
        return self._transport.session

    def __repr__(self) -> str:
        return (
            f"Client(base_url={safe_url(self.base_url)!r}, auth={self.auth_kind!r}, "
            f"max_workers={self.max_workers})"
        )

    def worker_options(self) -> tuple[str, Secret, dict[str, Any]]:
        """What another process needs to build this client again: the credentials' kind
        (``api_key`` or ``token``), the secret (a :class:`Secret`: it never prints) and the
        ``base_url``, ``timeout``, ``retries`` and ``max_workers`` options. ``ConfigError``
        for a client given its own ``session`` (a session cannot travel)."""
        if not self._owns_session:
            raise ConfigError(
                "this client was built with its own session=, which cannot be sent to other "
                "processes: build it without session= to export with processes="
            )
        options = {
            "base_url": self.base_url,
            "timeout": self.timeout,
            "retries": self.retries,
            "max_workers": self.max_workers,
        }
        return self.auth_kind, self._secret, options

    def close(self) -> None:
        """Stop every request of this client (retries in flight give up at once) and release
        pooled connections (a session passed in by the caller is left open)."""
        self._transport.cancel("the client was closed")
        if self._owns_session:
            self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ media

    def get_media(self, media_id: str) -> dict:
        """The full record of one media (the inner ``media`` object of Get Media).

        An answer carrying another media's id (compared normalised: hyphenated or upper-case
        UUIDs equal their plain form) raises :class:`~coreviz_frames.errors.MediaIdMismatchError`.

        Example:
            >>> client.get_media("abc123def456")["frames"][0]["objects"][0]["label"]
            'shoe'
        """
        return self._fetch_media(validate_id(media_id))

    def _fetch_media(self, media_id: str, *, cancel: Cancellation | None = None) -> dict:
        what = f"media {media_id!r}"
        body = self._transport.get_json(
            f"media/{media_id}", what=what, media_id=media_id, cancel=cancel
        )
        url = self._transport.url(f"media/{media_id}")
        media = object_at(body, "media", what=what, url=url, media_id=media_id)
        answered = media.get("id")
        if not isinstance(answered, str) or normalize_id(answered) != normalize_id(media_id):
            raise MediaIdMismatchError(
                f"GET {what}: the answer is the record of media {str(answered)[:80]!r}, not "
                f"{media_id!r}; it is not used (retry later, or report it to CoreViz)",
                url=url,
                media_id=media_id,
                answered_id=answered,
            )
        return media

    def iter_media(
        self,
        media_ids: Iterable[str],
        *,
        on_error: Literal["raise", "skip"] | None = None,
        progress: bool | None = None,
        errors: Literal["raise", "skip"] | None = None,
    ) -> MediaIterator:
        """Fetch many media concurrently (``max_workers`` at a time), lazily, in input order.

        Every id is validated before any request; a repeated id (also under another spelling
        of the same UUID: hyphenated, upper case) is fetched and yielded once. An answer
        carrying another media's id is a :class:`~coreviz_frames.errors.MediaIdMismatchError`
        for the id asked for, never a record.
        ``on_error="raise"`` (the default) raises the first failure (in input order) and
        cancels the outstanding requests; ``on_error="skip"`` skips failed ids and records
        them in the returned iterator's ``report`` (also ``client.last_report``): a
        :class:`FetchReport`, complete once iteration ends. ``errors=`` is the deprecated
        spelling of ``on_error=``. ``iterator.exclude(ids)`` leaves ids out unfetched.

        Example:
            >>> it = client.iter_media(["a1", "gone", "c3"], on_error="skip")
            >>> [r["id"] for r in it], it.report.failed_ids
            (['a1', 'c3'], ['gone'])
        """
        mode = check_on_error(on_error, allowed=("raise", "skip"), errors=errors)
        if isinstance(media_ids, (str, bytes)):
            raise ConfigError("media_ids must be an iterable of ids, not a single string")
        by_id: dict[str | None, str] = {}
        for media_id in media_ids:
            by_id.setdefault(normalize_id(validate_id(media_id)), media_id)
        ids = list(by_id.values())
        iterator = MediaIterator(self, ids, mode, progress)
        self.last_report = iterator.report
        return iterator

    # ------------------------------------------------------------------ pages

    def _walk_of(
        self,
        collection_id: str,
        filters: BrowseFilters | None,
        filter_kwargs: Mapping[str, Any],
        *,
        page_size: int,
        max_items: int | None = None,
        start: int = 0,
        stop: int | None = None,
        max_overrun: int | None = None,
    ) -> _Walk:
        """Validate a walk's arguments (before any request)."""
        collection_id = validate_id(collection_id, kind="collection id")
        check_int("page_size", page_size, minimum=1)
        check_int("max_items", max_items, minimum=0, allow_none=True)
        check_int("stop", stop, minimum=0, allow_none=True)
        check_int("start", start, minimum=0)
        if stop is not None and stop < start:
            raise ConfigError(f"stop ({stop}) must not be below start ({start})")
        return _Walk(
            collection_id,
            BrowseFilters.build(filters, **filter_kwargs),
            page_size,
            max_items,
            start,
            stop,
            check_max_overrun(max_overrun),
        )

    def fetch_page(
        self,
        collection_id: str,
        *,
        offset: int = 0,
        limit: int = 100,
        filters: BrowseFilters | None = None,
        **filter_kwargs: Unpack[BrowseFilterArgs],
    ) -> dict:
        """One raw page of a collection: ``limit`` rows from ``offset`` (folder rows included).

        ``filters`` (a :class:`~coreviz_frames.api.filters.BrowseFilters`) or the filter keywords
        of :meth:`browse` select and sort; the request is retried like every other. Returns
        ``{"media": [...], "pagination": {...}}`` as the API sent it.

        Example:
            >>> page = client.fetch_page("COLLECTION_ID", offset=0, limit=1)
            >>> page["pagination"]["total"]
            20412
        """
        check_int("offset", offset, minimum=0)
        check_int("limit", limit, minimum=1)
        walk = self._walk_of(collection_id, filters, filter_kwargs, page_size=limit)
        return self._fetch_page(walk.collection_id, walk.filters.to_params(), offset, limit)

    def _fetch_page(
        self,
        collection_id: str,
        params: Mapping[str, str],
        offset: int,
        limit: int,
        *,
        cancel: Cancellation | None = None,
    ) -> dict:
        page = self._page_body(collection_id, params, offset, limit, cancel=cancel)()
        assert isinstance(page, dict)  # no accept: always decoded
        return page

    def _page_body(
        self,
        collection_id: str,
        params: Mapping[str, str],
        offset: int,
        limit: int,
        *,
        cancel: Cancellation | None = None,
        accept: Callable[[ArrowPage], bool] | None = None,
    ) -> Callable[[], dict | ArrowPage]:
        """GET one page (in the calling worker thread); the returned callable decodes and
        checks it (in the thread that walks the pages: parsed pages never wait in a queue).
        With ``accept``, the page is first read by pyarrow (``read_page``), here in the worker
        thread (pyarrow parses without the GIL, beside the walking thread's work; an Arrow
        page costs the garbage collector nothing while it waits), and the callable returns
        it as an ArrowPage when that is provably exact and ``accept`` takes it."""
        what = f"collection {collection_id!r} (offset {offset})"
        query = {**params, "limit": str(limit), "offset": str(offset)}
        path = f"dataset/{collection_id}/media"
        body = self._transport.get_body(
            path, params=query, what=what, media_id=collection_id, cancel=cancel
        )
        arrow = None
        if accept is not None:
            with _PARSING:
                arrow = read_page(body.content)
        if arrow is not None and accept is not None and accept(arrow):
            read: ArrowPage = arrow
            return lambda: read

        def decode() -> dict | ArrowPage:
            page = body.json()
            url = self._transport.url(path)
            objects_at(page, "media", what=what, url=url, media_id=collection_id)
            pagination = page.get("pagination")
            if pagination is not None and not isinstance(pagination, dict):
                problem = f"'pagination' is {type(pagination).__name__}, not an object"
                raise shape_error(what, url, problem, media_id=collection_id)
            return page

        return decode

    def _page_walk(
        self,
        walk: _Walk,
        executor: Executor,
        cancel: Cancellation,
        bar: Any,
        accept: Callable[[ArrowPage], bool] | None = None,
    ) -> PageWalk:
        params = walk.filters.to_params()

        def fetch(offset: int, limit: int) -> Callable[[], dict | ArrowPage]:
            return self._page_body(
                walk.collection_id, params, offset, limit, cancel=cancel, accept=accept
            )

        def on_total(total: int) -> None:
            rows = max(0, total - walk.start)
            if walk.stop is not None:
                rows = min(rows, walk.stop - walk.start)
            bar.total = rows if walk.max_items is None else min(rows, walk.max_items)
            bar.refresh()

        return PageWalk(
            fetch,
            page_size=walk.page_size,
            executor=executor,
            window=2 * self.max_workers,
            where=f"collection {walk.collection_id!r}",
            start=walk.start,
            stop=walk.stop,
            max_overrun=walk.max_overrun,
            plan_limit=walk.max_items,
            on_total=on_total,
        )

    def iter_pages(
        self,
        collection_id: str,
        *,
        filters: BrowseFilters | None = None,
        page_size: int = 100,
        max_items: int | None = None,
        max_overrun: int | None = None,
        progress: bool | None = None,
        **filter_kwargs: Unpack[BrowseFilterArgs],
    ) -> PageIterator:
        """Raw pages (``{"media": [...], "pagination": {...}}``) of a collection, lazily.

        Folder rows are included; filters as in :meth:`browse`. ``max_items`` caps the rows
        (the last page is truncated). Stops on ``hasMore: false``. An empty page while
        ``hasMore`` is true, a fully repeated page, or a walk that passes the announced
        ``total`` by more than ``max_overrun`` rows (default: as many again as the total,
        at least 1,000) stops it early with a :class:`PaginationWarning`, and the returned
        iterator's ``report.complete`` stays False with ``report.incomplete_reason``.

        Example:
            >>> pages = client.iter_pages("COLLECTION_ID", page_size=50, type="image")
            >>> for page in pages:
            ...     print(page["pagination"]["offset"], len(page["media"]))
            >>> pages.report.complete
            True
        """
        walk = self._walk_of(
            collection_id,
            filters,
            filter_kwargs,
            page_size=page_size,
            max_items=max_items,
            max_overrun=max_overrun,
        )
        return PageIterator(self, walk, progress)

    def browse(
        self,
        collection_id: str,
        *,
        filters: BrowseFilters | None = None,
        page_size: int = 100,
        max_items: int | None = None,
        hydrate: Literal["auto"] | bool = "auto",
        max_overrun: int | None = None,
        progress: bool | None = None,
        **filter_kwargs: Unpack[BrowseFilterArgs],
    ) -> BrowseIterator:
        """Every media record of a collection, lazily: folders skipped, each id once.

        Filters are those of ``GET /api/dataset/{id}/media``, given as ``filters=``
        (a :class:`~coreviz_frames.api.filters.BrowseFilters`) or as keywords that build one
        (keywords override ``filters``): ``path`` (ltree folder), ``recursive``, ``type``
        (``image``/``video``/...), ``tag_filters`` (``{"color": ["red", "blue"]}``),
        ``date_from``/``date_to`` (``date`` or ``"YYYY-MM-DD"``), ``q`` (semantic search),
        ``similar_to_object_id``, ``sort_by``, ``sort_direction``.
        ``hydrate="auto"`` replaces items that lack ``frames``, or whose frames lack
        ``captions``/``objects``, with their Get Media record (fetched concurrently, order
        kept); ``True`` hydrates every item, ``False`` none. ``max_items`` caps the records;
        ``max_overrun`` bounds the rows read past the announced total (see
        :meth:`iter_pages`). An item whose Get Media fails is skipped with a warning and
        listed in the returned :class:`BrowseIterator`'s ``report.failed``; a failing page
        raises. ``report.complete`` says whether the walk reached its end.

        Example:
            >>> recs = list(client.browse("COLLECTION_ID", type="image", max_items=500))
            >>> tables = cvf.to_tables(client.browse("COLLECTION_ID", tag_filters={"color": "red"}))
        """
        check_choice("hydrate", hydrate, HYDRATE)
        walk = self._walk_of(
            collection_id,
            filters,
            filter_kwargs,
            page_size=page_size,
            max_items=max_items,
            max_overrun=max_overrun,
        )
        return BrowseIterator(self, walk, hydrate, progress)

    def iter_range(
        self,
        collection_id: str,
        start: int = 0,
        stop: int | None = None,
        *,
        filters: BrowseFilters | None = None,
        page_size: int = 100,
        hydrate: Literal["auto"] | bool = "auto",
        max_overrun: int | None = None,
        progress: bool | None = False,
    ) -> BrowseIterator:
        """The media records of the offset range ``[start, stop)``, exactly as :meth:`browse`
        yields them (folders skipped, de-duplicated within the range, hydrated, failures in
        ``report.failed``). ``stop=None`` reads on until ``hasMore: false`` (bounded by
        ``max_overrun`` past the total). Offsets count folder rows, as ``pagination.total``
        does; the pages of a bounded range are fetched concurrently.

        Example:
            >>> it = client.iter_range("COLLECTION_ID", 1000, 2000)
            >>> records = list(it)
            >>> it.report.complete, it.report.failed_ids
            (True, [])
        """
        check_choice("hydrate", hydrate, HYDRATE)
        walk = self._walk_of(
            collection_id,
            filters,
            {},
            page_size=page_size,
            start=start,
            stop=stop,
            max_overrun=max_overrun,
        )
        return BrowseIterator(self, walk, hydrate, progress)

    def _explain_empty_walk(self, walk: _Walk) -> None:
        """A whole walk found nothing: if its ``tag_filters`` cannot match (a key, or
        values, the collection's tag catalogue does not hold), warn with what there is."""
        if walk.filters.tag_filters is None or walk.start or walk.stop is not None:
            return
        try:
            tags = self.tag_catalogue(walk.collection_id)
        except CorevizError:
            return  # no catalogue to compare with: the empty walk stands as it is
        catalogue: dict[str, list[str]] = {}
        for key, value in zip(tags["key"].tolist(), tags["value"].tolist(), strict=True):
            catalogue.setdefault(str(key), []).append(str(value))
        problem = walk.filters.tag_filters_problem(catalogue)
        if problem is not None:
            warnings.warn(
                f"collection {walk.collection_id!r}: 0 media, because {problem} "
                "(client.tag_catalogue(...) lists them)",
                CorevizWarning,
                stacklevel=4,
            )

    def _hydrated(self, item: dict, cancel: Cancellation | None = None) -> dict | FailedFetch:
        """``item``'s Get Media record, or the failure of that one media (not fatal)."""
        try:
            full = self._fetch_media(validate_id(item["id"]), cancel=cancel)
        except (AuthenticationError, RequestCancelledError):
            raise
        except CorevizError as exc:
            # deleted since it was listed, unreadable, or failing after the retries
            return FailedFetch.from_error(str(item["id"]), exc)
        for key, value in item.items():  # keep browse-only fields such as _score
            full.setdefault(key, value)
        return full

    # ------------------------------------------------------------------ catalogue and search
    # (the reads live in coreviz_frames.api.catalogue, the results in coreviz_frames.api.search)

    def _catalogue(self) -> Catalogue:
        """This client's :class:`~coreviz_frames.api.catalogue.Catalogue`, made on first use
        (the catalogue module, and pandas with it, is imported only then)."""
        with self._catalogue_lock:
            if self._catalogue_reads is None:
                from coreviz_frames.api.catalogue import Catalogue

                self._catalogue_reads = Catalogue(self._transport)
            return self._catalogue_reads

    def me(self) -> dict:
        """The current user and default organisation (``GET /api/me``), fetched once per client.

        Example:
            >>> client.me()["organizationId"]
            '0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b'
        """
        return self._catalogue().me()

    def organizations(self) -> pd.DataFrame:
        """The user's organisations: ``organization_id``, ``name``, ``slug``, ``extra``.

        Example:
            >>> client.organizations().organization_id.tolist()
            ['0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b']
        """
        return self._catalogue().organizations()

    def collections(self, organization_id: str | None = None) -> pd.DataFrame:
        """The collections of an organisation (default: the user's): ``collection_id``,
        ``name``, ``icon``, ``type``, ``organization_id``, ``extra``.

        Example:
            >>> client.collections()[["collection_id", "name"]].values.tolist()
            [['5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c', 'Sample collection']]
        """
        return self._catalogue().collections(organization_id)

    def get_collection(self, collection_id: str) -> dict:
        """One collection (``GET /api/dataset/{id}``), as sent.

        Example:
            >>> client.get_collection("COLLECTION_ID")["name"]
            'Sample collection'
        """
        return self._catalogue().get_collection(collection_id)

    def tag_catalogue(self, collection_id: str) -> pd.DataFrame:
        """Every tag ``key``/``value`` in use in a collection (plus ``extra``).

        Example:
            >>> client.tag_catalogue("COLLECTION_ID").query("key == 'color'").value.tolist()[:2]
            ['black', 'blue']
        """
        return self._catalogue().tag_catalogue(collection_id)

    def versions(self, media_id: str) -> list[dict]:
        """Every version of a media (media records: ``cvf.to_tables`` flattens them).

        Example:
            >>> [v["versionNumber"] for v in client.versions("fbcc40d59151582cb8d387d431d6e91c")]
            [1, 2]
        """
        return self._catalogue().versions(media_id)

    def search(
        self,
        q: str,
        *,
        organization_id: str | None = None,
        collection_id: str | None = None,
        limit: int = 20,
    ) -> SearchResults:
        """Search with ranks: organisation-wide and frame-level (``GET /api/search``), or in
        one collection.

        Without ``organization_id`` the default organisation of :meth:`me` is used. The
        API's ``/api/search`` takes no collection, so ``collection_id=`` runs the collection's
        scored browse instead (``browse(collection_id, q=q, max_items=limit)``: full media
        records, best first): one hit per *media*, ``frame_id`` null, ``rank`` the record's
        ``_score``; ``tables`` hold the whole records. ``browse(collection_id, q=...)``
        itself takes every browse filter and pages on past ``limit``.

        Example:
            >>> res = client.search("rocket", limit=5)
            >>> res.hits[["hit_rank", "media_id", "rank", "text_rank"]]
            >>> res.tables.objects.polygon
            >>> client.search("rocket", collection_id="COLLECTION_ID").hits[["media_id", "rank"]]
        """
        if collection_id is None:
            return self._catalogue().search(q, organization_id=organization_id, limit=limit)
        if organization_id is not None:
            raise ConfigError(
                "search: give organization_id= (organisation-wide) or collection_id= "
                "(one collection), not both"
            )
        return self._search_collection(q, collection_id, limit)

    def _search_collection(self, q: str, collection_id: str, limit: int) -> SearchResults:
        """Search one collection: its scored browse (``GET /api/dataset/{id}/media?q=``), the
        first ``limit`` media records in relevance order, as :class:`SearchResults`."""
        from coreviz_frames.api.search import SearchResults

        if not isinstance(q, str) or not q.strip():
            raise ConfigError(f"q must be a non-empty string, not {q!r}")
        cid = validate_id(collection_id, kind="collection id")
        records = self._scored_browse(cid, limit, q=q)
        return SearchResults.from_records(records, query=q, collection_id=cid)

    def similar_objects(
        self,
        object_id: str,
        *,
        collection_id: str,
        model: str | None = None,
        limit: int = 20,
        min_score: float | None = None,
    ) -> list[dict]:
        """The media records most similar to one object (``_score`` → ``media.score``).

        Example:
            >>> recs = client.similar_objects("OBJECT_ID", collection_id="COLLECTION_ID",
            ...                               model="faces", limit=5)
            >>> cvf.to_tables(recs).media[["media_id", "score"]]
        """
        return self._scored_browse(
            collection_id,
            limit,
            similar_to_object_id=validate_id(object_id, kind="object id"),
            similar_to_object_model=model,
            min_score=min_score,
        )

    def _scored_browse(self, collection_id: str, limit: int, **filters: Any) -> list[dict]:
        """The first ``limit`` media records of a scored browse (``q`` or a similar object),
        in the API's relevance order (no sort), each with its ``_score``."""
        check_int("limit", limit, minimum=1)
        records = self.browse(
            collection_id,
            sort_by=None,
            sort_direction=None,
            page_size=min(limit, 100),
            max_items=limit,
            progress=False,
            **filters,
        )
        return list(records)

    def folders(
        self, collection_id: str, *, path: str | None = None, recursive: bool = True
    ) -> pd.DataFrame:
        """The folders of a collection: ``folder_id``, ``name``, ``path``, ``parent_path``,
        ``folder_item_count``, ``extra``.

        Example:
            >>> client.folders("COLLECTION_ID")[["name", "folder_item_count"]]
        """
        from coreviz_frames.api.catalogue import folder_frame

        pages = self.iter_pages(
            collection_id, type="folder", path=path, recursive=recursive, progress=False
        )
        frame = folder_frame(pages)
        frame.attrs["complete"] = pages.report.complete
        return frame

"""The CoreViz Studio API client: one media, many media, and every media of a collection.

Layers, all lazy: ``iter_pages`` (raw pages of ``GET /api/dataset/{id}/media``) →
``browse`` (media records, folders skipped, de-duplicated, hydrated) → ``to_tables``.
``iter_media`` fetches a list of ids concurrently, in input order, and records what failed.

Example:
    >>> import coreviz_frames as cvf
    >>> with cvf.Client(api_key="...") as client:
    ...     rec = client.get_media("abc123def456")
    ...     it = client.iter_media(["a1", "b2", "c3"], errors="skip")
    ...     records = list(it)
    ...     it.report.failed          # [FailedFetch(media_id='b2', status=404, ...)]
    ...     everything = list(client.browse("COLLECTION_ID"))
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import requests

from .errors import (
    ConfigError,
    CorevizError,
    InvalidIdError,
    InvalidResponseError,
    NotFoundError,
    PaginationWarning,
    PermissionDeniedError,
    SkippedRecordWarning,
)
from .failures import FailedFetch
from .http import Credentials, Transport, build_session, origin_of
from .ids import validate_id
from .progress import progress_bar

__all__ = [
    "DEFAULT_BASE_URL",
    "BrowseIterator",
    "Client",
    "FailedFetch",
    "FetchReport",
    "MediaIterator",
    "PaginationWarning",
]

DEFAULT_BASE_URL = "https://lab.coreviz.io/api"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class FetchReport:
    """What a bulk fetch did: how many ids succeeded and every id that failed, with why.

    Complete once the iteration has finished.

    Example:
        >>> it = client.iter_media(ids, errors="skip")
        >>> records = list(it)
        >>> it.report.succeeded, [f.media_id for f in it.report.failed]
        (198, ['missing1', 'missing2'])
    """

    succeeded: int = 0
    failed: list[FailedFetch] = field(default_factory=list)

    @property
    def failed_ids(self) -> list[str]:
        """The ids in ``failed``, in input order."""
        return [f.media_id for f in self.failed]

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed


def _ordered_futures(
    executor: Executor, jobs: Iterable[Callable[[], Any] | Future], window: int
) -> Iterator[Future]:
    """Submit ``jobs`` (callables, or already-made futures) keeping at most ``window`` ahead;
    yield their futures in input order."""
    pending: deque[Future] = deque()
    try:
        for job in jobs:
            pending.append(job if isinstance(job, Future) else executor.submit(job))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        for fut in pending:
            fut.cancel()


def _done(value: Any) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


class MediaIterator(Iterator[dict]):
    """The lazy iterator returned by :meth:`Client.iter_media`, with its :class:`FetchReport`.

    ``media_ids`` holds the de-duplicated ids, in input order; ``report`` fills in as
    records are consumed. ``close()`` (or leaving a ``with`` block) stops early and cancels
    pending requests.

    Example:
        >>> with client.iter_media(ids, errors="skip") as it:
        ...     first = next(it)
    """

    def __init__(
        self, client: Client, media_ids: list[str], errors: str, progress: bool | None
    ) -> None:
        self.media_ids = media_ids
        self.report = FetchReport()
        self._client = client
        self._errors = errors
        self._progress = progress
        self._gen = self._run()

    def __iter__(self) -> MediaIterator:
        return self

    def __next__(self) -> dict:
        return next(self._gen)

    def close(self) -> None:
        """Stop fetching; pending requests are cancelled."""
        self._gen.close()

    def __enter__(self) -> MediaIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<MediaIterator {len(self.media_ids)} ids, succeeded={self.report.succeeded}, "
            f"failed={len(self.report.failed)}>"
        )

    def _run(self) -> Iterator[dict]:
        ids = self.media_ids
        if not ids:
            return
        client = self._client
        workers = max(1, min(client.max_workers, len(ids)))
        bar = progress_bar(total=len(ids), desc="media", unit="media", progress=self._progress)
        executor = ThreadPoolExecutor(workers, thread_name_prefix="coreviz-media")
        try:
            jobs = (lambda media_id=media_id: client._fetch_media(media_id) for media_id in ids)
            futures = _ordered_futures(executor, jobs, 2 * workers)
            for media_id, fut in zip(ids, futures, strict=False):
                try:
                    record = fut.result()
                except CorevizError as exc:
                    bar.update(1)
                    if self._errors == "raise":
                        raise
                    self.report.failed.append(FailedFetch.from_error(media_id, exc))
                    continue
                bar.update(1)
                self.report.succeeded += 1
                yield record
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()


class BrowseIterator(Iterator[dict]):
    """The lazy iterator returned by :meth:`Client.browse`, with its :class:`FetchReport`.

    A listed item whose Get Media (hydration) answers 404 or 403, or whose id cannot be
    sent, is skipped with a warning and recorded in ``report.failed``, so one deleted or
    forbidden media does not end the walk (and an export lists it instead of failing).

    Example:
        >>> it = client.browse("COLLECTION_ID")
        >>> records = list(it)
        >>> it.report.failed_ids
        []
    """

    def __init__(self, run: Callable[[FetchReport], Iterator[dict]]) -> None:
        self.report = FetchReport()
        self._gen = run(self.report)

    def __iter__(self) -> BrowseIterator:
        return self

    def __next__(self) -> dict:
        return next(self._gen)

    def close(self) -> None:
        """Stop browsing; pending requests are cancelled."""
        self._gen.close()

    def __enter__(self) -> BrowseIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _date_param(value: date | str | None, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise ConfigError(f"{name} must be a datetime.date or 'YYYY-MM-DD', not {value!r}")


def _tag_filters_param(value: Mapping[str, str | Sequence[str]] | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"tag_filters must be a mapping of tag -> values, not {value!r}")
    norm = {str(k): [v] if isinstance(v, str) else [str(x) for x in v] for k, v in value.items()}
    return json.dumps(norm, separators=(",", ":"), ensure_ascii=False)


def _needs_hydration(item: Mapping[str, Any]) -> bool:
    """A browse item is light when it has no frames list, or none of its frames carries
    ``captions`` or ``objects`` (a full record may omit them on some frames, as the sample's
    video does on every other frame; that alone is no reason to fetch it again)."""
    frames = item.get("frames")
    if not isinstance(frames, list):
        return True
    return bool(frames) and not any(
        isinstance(f, dict) and ("captions" in f or "objects" in f) for f in frames
    )


class Client:
    """A CoreViz Studio API client.

    ``api_key`` is sent as ``x-api-key``, ``token`` as ``Authorization: Bearer`` (the token
    wins when both are given); without either, ``COREVIZ_API_KEY`` is read, and without that
    :class:`ConfigError` is raised. ``base_url`` falls back to ``COREVIZ_BASE_URL``, then to
    ``https://lab.coreviz.io/api``. Credentials go only to that origin.

    ``timeout`` is seconds (or a ``(connect, read)`` pair) for every request; ``retries``
    applies to connection/read errors, 429 and 5xx; ``max_workers`` bounds the concurrent
    requests of ``iter_media`` and ``browse``. A ``session`` you pass is used as is (its
    adapters decide retries and pooling; see :func:`coreviz_frames.http.build_session`) and
    is not closed by :meth:`close`.

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
        if token:
            credentials = Credentials.token(str(token))
        elif api_key or os.environ.get("COREVIZ_API_KEY"):
            credentials = Credentials.api_key(str(api_key or os.environ["COREVIZ_API_KEY"]))
        else:
            raise ConfigError(
                "no CoreViz credentials: pass api_key= or token=, or set COREVIZ_API_KEY"
            )
        base = (base_url or os.environ.get("COREVIZ_BASE_URL") or DEFAULT_BASE_URL).strip()
        scheme, host, _ = origin_of(base)
        if scheme not in ("http", "https") or not host:
            raise ConfigError(f"base_url must be an http(s) URL, not {base!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be an integer >= 0, not {retries!r}")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigError(f"max_workers must be an integer >= 1, not {max_workers!r}")
        timeouts = timeout if isinstance(timeout, tuple) else (timeout,)
        if isinstance(timeout, tuple) and len(timeout) != 2:
            timeouts = ()
        if not timeouts or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in timeouts
        ):
            raise ConfigError(
                f"timeout must be seconds > 0 or a (connect, read) pair, not {timeout!r}"
            )
        self.base_url = base.rstrip("/")
        self.auth_kind = credentials.kind
        self.timeout = timeout
        self.retries = retries
        self.max_workers = max_workers
        self._owns_session = session is None
        if session is None:
            session = build_session(retries=retries, pool_size=max(max_workers, 10))
        self._transport = Transport(
            self.base_url, session=session, credentials=credentials, timeout=timeout
        )
        #: The report of the latest :meth:`iter_media` call (also ``iterator.report``).
        self.last_report: FetchReport | None = None

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
            f"Client(base_url={self.base_url!r}, auth={self.auth_kind!r}, "
            f"max_workers={self.max_workers})"
        )

    def close(self) -> None:
        """Release pooled connections (a session passed in by the caller is left open)."""
        if self._owns_session:
            self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ media

    def get_media(self, media_id: str) -> dict:
        """The full record of one media (the inner ``media`` object of Get Media).

        Example:
            >>> client.get_media("abc123def456")["frames"][0]["objects"][0]["label"]
            'shoe'
        """
        return self._fetch_media(validate_id(media_id))

    def _fetch_media(self, media_id: str) -> dict:
        what = f"media {media_id!r}"
        body = self._transport.get_json(f"media/{media_id}", what=what, media_id=media_id)
        media = body.get("media")
        if not isinstance(media, dict):
            raise InvalidResponseError(
                f"GET {what}: the response has no 'media' object (keys: {sorted(body)[:8]})",
                url=self._transport.url(f"media/{media_id}"),
                media_id=media_id,
            )
        return media

    def iter_media(
        self,
        media_ids: Iterable[str],
        *,
        errors: Literal["raise", "skip"] = "raise",
        progress: bool | None = None,
    ) -> MediaIterator:
        """Fetch many media concurrently (``max_workers`` at a time), lazily, in input order.

        Every id is validated before any request; a repeated id is fetched and yielded once.
        ``errors="raise"`` raises the first failure (in input order); ``errors="skip"`` skips
        failed ids and records them in the returned iterator's ``report`` (also
        ``client.last_report``): a :class:`FetchReport`, complete once iteration ends.

        Example:
            >>> it = client.iter_media(["a1", "gone", "c3"], errors="skip")
            >>> [r["id"] for r in it], it.report.failed_ids
            (['a1', 'c3'], ['gone'])
        """
        if errors not in ("raise", "skip"):
            raise ConfigError(f"errors must be 'raise' or 'skip', not {errors!r}")
        if isinstance(media_ids, (str, bytes)):
            raise ConfigError("media_ids must be an iterable of ids, not a single string")
        ids = list(dict.fromkeys(validate_id(m) for m in media_ids))
        iterator = MediaIterator(self, ids, errors, progress)
        self.last_report = iterator.report
        return iterator

    # ------------------------------------------------------------------ pages

    def _browse_params(
        self,
        *,
        path: str | None,
        recursive: bool,
        type: str | None,
        tag_filters: Mapping[str, str | Sequence[str]] | str | None,
        date_from: date | str | None,
        date_to: date | str | None,
        q: str | None,
        similar_to_object_id: str | None,
        sort_by: str | None,
        sort_direction: str | None,
        page_size: int,
        max_items: int | None,
    ) -> dict[str, str]:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigError(f"page_size must be an integer >= 1, not {page_size!r}")
        if max_items is not None and (
            isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0
        ):
            raise ConfigError(f"max_items must be None or an integer >= 0, not {max_items!r}")
        if sort_direction not in (None, "asc", "desc"):
            raise ConfigError(f"sort_direction must be 'asc' or 'desc', not {sort_direction!r}")
        candidates: dict[str, str | None] = {
            "path": path or None,
            "recursive": "true" if recursive else None,
            "type": type or None,
            "tagFilters": _tag_filters_param(tag_filters),
            "dateFrom": _date_param(date_from, "date_from"),
            "dateTo": _date_param(date_to, "date_to"),
            "q": q or None,
            "similarToObjectId": (
                validate_id(similar_to_object_id, kind="object id")
                if similar_to_object_id is not None
                else None
            ),
            "sortBy": sort_by or None,
            "sortDirection": sort_direction or None,
        }
        return {k: v for k, v in candidates.items() if v is not None}

    def fetch_page(
        self,
        collection_id: str,
        *,
        offset: int = 0,
        limit: int = 100,
        path: str | None = None,
        recursive: bool = True,
        type: str | None = None,
        tag_filters: Mapping[str, str | Sequence[str]] | str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        q: str | None = None,
        similar_to_object_id: str | None = None,
        sort_by: str | None = "createdAt",
        sort_direction: str | None = "asc",
    ) -> dict:
        """One raw page of a collection: ``limit`` rows from ``offset`` (folder rows included).

        The filters and sort are those of :meth:`browse`; the request is retried like every
        other. Returns ``{"media": [...], "pagination": {...}}`` as the API sent it. Used to
        split a collection into independent offset ranges (see :mod:`coreviz_frames.dask`).

        Example:
            >>> page = client.fetch_page("COLLECTION_ID", offset=0, limit=1)
            >>> page["pagination"]["total"]
            20412
        """
        collection_id = validate_id(collection_id, kind="collection id")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ConfigError(f"offset must be an integer >= 0, not {offset!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit must be an integer >= 1, not {limit!r}")
        params = self._browse_params(
            path=path,
            recursive=recursive,
            type=type,
            tag_filters=tag_filters,
            date_from=date_from,
            date_to=date_to,
            q=q,
            similar_to_object_id=similar_to_object_id,
            sort_by=sort_by,
            sort_direction=sort_direction,
            page_size=limit,
            max_items=None,
        )
        return self._fetch_page(collection_id, params, offset, limit)

    def _fetch_page(
        self, collection_id: str, params: Mapping[str, str], offset: int, limit: int
    ) -> dict:
        what = f"collection {collection_id!r} (offset {offset})"
        query = {**params, "limit": str(limit), "offset": str(offset)}
        page = self._transport.get_json(
            f"dataset/{collection_id}/media", params=query, what=what, media_id=collection_id
        )
        media = page.get("media")
        if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
            raise InvalidResponseError(
                f"GET {what}: the response has no 'media' list of objects",
                url=self._transport.url(f"dataset/{collection_id}/media"),
                media_id=collection_id,
            )
        pagination = page.get("pagination")
        if pagination is not None and not isinstance(pagination, dict):
            raise InvalidResponseError(
                f"GET {what}: 'pagination' is {type(pagination).__name__}, not an object",
                url=self._transport.url(f"dataset/{collection_id}/media"),
                media_id=collection_id,
            )
        return page

    def _walk_pages(
        self,
        collection_id: str,
        params: Mapping[str, str],
        page_size: int,
        executor: Executor,
        *,
        plan_limit: int | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[dict]:
        """Pages in offset order. Once the first page gives ``total``, the later offsets (up
        to ``plan_limit`` rows) are fetched ahead concurrently; after them, or if the server
        returns short pages, it continues one page at a time while ``hasMore`` is true."""
        where = f"collection {collection_id!r}"
        window = 2 * self.max_workers

        def fetch(offset: int) -> dict:
            return self._fetch_page(collection_id, params, offset, page_size)

        page = fetch(0)
        first_pagination = page.get("pagination") or {}
        total = first_pagination.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            total = None
        if total is not None and on_total is not None:
            on_total(total)
        planned: deque[tuple[int, Future]] = deque()
        plan: Iterator[int] = iter(())
        seen: set[str] = set()
        offset = rows = 0
        complete = True
        try:
            while True:
                media = page["media"]
                pagination = page.get("pagination") or {}
                has_more = pagination.get("hasMore")
                if not isinstance(has_more, bool):
                    has_more = len(media) >= page_size
                if not media:
                    if has_more:
                        warnings.warn(
                            f"{where}: empty page at offset {offset} although hasMore is true;"
                            f" stopping after {rows} items",
                            PaginationWarning,
                            stacklevel=2,
                        )
                        complete = False
                    break
                ids = {m["id"] for m in media if isinstance(m.get("id"), str)}
                if ids and ids <= seen:
                    warnings.warn(
                        f"{where}: the page at offset {offset} repeats items already seen;"
                        f" stopping after {rows} items",
                        PaginationWarning,
                        stacklevel=2,
                    )
                    complete = False
                    break
                seen |= ids
                rows += len(media)
                yield page
                if not has_more:
                    break
                if offset == 0 and total is not None:
                    end = total if plan_limit is None else min(total, plan_limit)
                    plan = iter(range(len(media), end, len(media)))
                offset += len(media)
                while len(planned) < window:
                    nxt = next(plan, None)
                    if nxt is None:
                        break
                    planned.append((nxt, executor.submit(fetch, nxt)))
                if planned and planned[0][0] == offset:
                    page = planned.popleft()[1].result()
                else:  # nothing planned, or a short page shifted the offsets
                    for _, fut in planned:
                        fut.cancel()
                    planned.clear()
                    plan = iter(())
                    page = fetch(offset)
        finally:
            for _, fut in planned:
                fut.cancel()
        if complete and total is not None and rows != total:
            warnings.warn(
                f"{where}: pagination reported total={total} but {rows} items were returned",
                PaginationWarning,
                stacklevel=2,
            )

    def iter_pages(
        self,
        collection_id: str,
        *,
        path: str | None = None,
        recursive: bool = True,
        type: str | None = None,
        tag_filters: Mapping[str, str | Sequence[str]] | str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        q: str | None = None,
        similar_to_object_id: str | None = None,
        sort_by: str | None = "createdAt",
        sort_direction: str | None = "asc",
        page_size: int = 100,
        max_items: int | None = None,
        progress: bool | None = None,
    ) -> Iterator[dict]:
        """Raw pages (``{"media": [...], "pagination": {...}}``) of a collection, lazily.

        Folder rows are included. ``max_items`` caps the rows (the last page is truncated).
        Stops on ``hasMore: false``; an empty or fully repeated page stops the walk with a
        :class:`PaginationWarning`, as does a ``total`` that disagrees with the rows seen.

        Example:
            >>> for page in client.iter_pages("COLLECTION_ID", page_size=50, type="image"):
            ...     print(page["pagination"]["offset"], len(page["media"]))
        """
        collection_id = validate_id(collection_id, kind="collection id")
        params = self._browse_params(
            path=path,
            recursive=recursive,
            type=type,
            tag_filters=tag_filters,
            date_from=date_from,
            date_to=date_to,
            q=q,
            similar_to_object_id=similar_to_object_id,
            sort_by=sort_by,
            sort_direction=sort_direction,
            page_size=page_size,
            max_items=max_items,
        )
        return self._iter_pages(collection_id, params, page_size, max_items, progress)

    def _iter_pages(self, collection_id, params, page_size, max_items, progress):
        if max_items == 0:
            return
        bar = progress_bar(desc="pages", unit="media", progress=progress)
        executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="coreviz-pages")

        def on_total(total: int) -> None:
            bar.total = total if max_items is None else min(total, max_items)
            bar.refresh()

        rows = 0
        try:
            for page in self._walk_pages(
                collection_id, params, page_size, executor, plan_limit=max_items, on_total=on_total
            ):
                media = page["media"]
                if max_items is not None and rows + len(media) > max_items:
                    page = {**page, "media": media[: max_items - rows]}
                rows += len(page["media"])
                bar.update(len(page["media"]))
                yield page
                if max_items is not None and rows >= max_items:
                    return
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()

    def browse(
        self,
        collection_id: str,
        *,
        path: str | None = None,
        recursive: bool = True,
        type: str | None = None,
        tag_filters: Mapping[str, str | Sequence[str]] | str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        q: str | None = None,
        similar_to_object_id: str | None = None,
        sort_by: str | None = "createdAt",
        sort_direction: str | None = "asc",
        page_size: int = 100,
        max_items: int | None = None,
        hydrate: Literal["auto"] | bool = "auto",
        progress: bool | None = None,
    ) -> Iterator[dict]:
        """Every media record of a collection, lazily: folders skipped, each id once.

        Filters are those of ``GET /api/dataset/{id}/media``: ``path`` (ltree folder),
        ``recursive``, ``type`` (``image``/``video``/...), ``tag_filters``
        (``{"color": ["red", "blue"]}``), ``date_from``/``date_to`` (``date`` or
        ``"YYYY-MM-DD"``), ``q`` (semantic search), ``similar_to_object_id``.
        ``hydrate="auto"`` replaces items that lack ``frames``, or whose frames lack
        ``captions``/``objects``, with their Get Media record (fetched concurrently, order
        kept); ``True`` hydrates every item, ``False`` none. ``max_items`` caps the records.
        An item whose Get Media answers 404/403 is skipped with a warning and listed in the
        returned :class:`BrowseIterator`'s ``report.failed``.

        Example:
            >>> recs = list(client.browse("COLLECTION_ID", type="image", max_items=500))
            >>> tables = cvf.to_tables(client.browse("COLLECTION_ID", tag_filters={"color": "red"}))
        """
        if hydrate not in ("auto", True, False):
            raise ConfigError(f"hydrate must be 'auto', True or False, not {hydrate!r}")
        collection_id = validate_id(collection_id, kind="collection id")
        params = self._browse_params(
            path=path,
            recursive=recursive,
            type=type,
            tag_filters=tag_filters,
            date_from=date_from,
            date_to=date_to,
            q=q,
            similar_to_object_id=similar_to_object_id,
            sort_by=sort_by,
            sort_direction=sort_direction,
            page_size=page_size,
            max_items=max_items,
        )
        return BrowseIterator(
            lambda report: self._browse(
                collection_id, params, page_size, max_items, hydrate, progress, report
            )
        )

    def _hydrated(self, item: dict) -> dict | FailedFetch:
        try:
            full = self.get_media(item["id"])
        except (NotFoundError, PermissionDeniedError, InvalidIdError) as exc:
            # deleted since it was listed, or not readable: reported, not fatal
            return FailedFetch.from_error(str(item["id"]), exc)
        for key, value in item.items():  # keep browse-only fields such as _score
            full.setdefault(key, value)
        return full

    def _browse(self, collection_id, params, page_size, max_items, hydrate, progress, report):
        if max_items == 0:
            return
        bar = progress_bar(desc="browse", unit="media", progress=progress)
        executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="coreviz-browse")

        def on_total(total: int) -> None:
            bar.total = total if max_items is None else min(total, max_items)
            bar.refresh()

        pages = self._walk_pages(
            collection_id, params, page_size, executor, plan_limit=max_items, on_total=on_total
        )

        def jobs() -> Iterator[Callable[[], dict] | Future]:
            seen: set[str] = set()
            queued = 0
            for page in pages:
                for item in page["media"]:
                    if item.get("type") == "folder":
                        bar.update(1)
                        continue
                    media_id = item.get("id")
                    if isinstance(media_id, str):
                        if media_id in seen:
                            continue
                        seen.add(media_id)
                    if isinstance(media_id, str) and (
                        hydrate is True or (hydrate == "auto" and _needs_hydration(item))
                    ):
                        yield lambda item=item: self._hydrated(item)
                    else:
                        yield _done(item)
                    queued += 1
                    if max_items is not None and queued >= max_items:
                        return

        futures = _ordered_futures(executor, jobs(), 2 * self.max_workers)
        try:
            for fut in futures:
                record = fut.result()
                bar.update(1)
                if isinstance(record, FailedFetch):
                    report.failed.append(record)
                    warnings.warn(
                        f"collection {collection_id!r}: skipped media {record.media_id!r} "
                        f"(Get Media failed: {record.reason})",
                        SkippedRecordWarning,
                        stacklevel=3,
                    )
                    continue
                report.succeeded += 1
                yield record
        finally:
            futures.close()
            pages.close()
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()

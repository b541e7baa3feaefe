"""Scale out on Dask: fetch, flatten and export a collection across a cluster.

Optional (``pip install "coreviz-frames[dask]"``); importing :mod:`coreviz_frames` never
imports Dask. The collection's offset range (``pagination.total``, read once) is cut into
page-aligned partitions; one task per partition reads its range with
:meth:`Client.iter_range <coreviz_frames.api.client.Client.iter_range>` (pages fetched
concurrently with the client's retries, folder rows skipped, incomplete items hydrated,
exactly as ``browse``) and flattens them with :func:`~coreviz_frames.tables.media_tables.to_tables`.
The total is checked: above ``max_total`` it is refused before any task is built, and the
last partition reads on until ``hasMore: false`` (see :class:`PaginationError`). Each
grain is a Dask DataFrame over those tasks, its meta taken from :mod:`coreviz_frames.schema`
(divisions unknown), so nothing is fetched until you compute. Compute the grains
*together* (``dask.compute(*frames.values())``) and each page is fetched once; computing
them one by one fetches the collection once per call.

Credentials travel inside a :class:`ClientSpec`: it pickles with the key (the workers need
it) but its ``repr``, its Dask token and every task key show ``***`` or a hash instead.

A partition that still fails after the client's retries raises :class:`PartitionError`
naming its offset (or id) range and the cause. Folder rows count in ``pagination.total``,
so a partition holds at most, not exactly, ``stop - start`` media. A media that moves
between partitions while the collection changes under the read may be read twice or not
at all: ids are de-duplicated within a partition only.

:func:`export_collection` writes every grain with the package's writer, on the workers,
into the layout of :func:`~coreviz_frames.exports.writer.export_parquet`
(``<out>/<grain>/part-NNNNNN.parquet``, the ``coreviz_frames`` file metadata key, and a
``_coreviz_manifest.json`` listing every file once all are written), so
:func:`~coreviz_frames.exports.reader.read_parquet`, DuckDB and Spark read it. ``resume`` is
not supported on Dask (Dask writes files, not committed parts); a crashed Dask export
can be finished by ``export_parquet(..., resume=True)``, which drops the unlisted files
and exports again.

Example:
    >>> import dask
    >>> from distributed import Client as DaskClient
    >>> from coreviz_frames.dask import read_collection, export_collection
    >>> dc = DaskClient("tcp://scheduler:8786")
    >>> frames = read_collection("COLLECTION_ID", client_kwargs={"api_key": "sk-..."})
    >>> media, objects = dask.compute(frames["media"], frames["objects"])
    >>> report = export_collection("COLLECTION_ID", "export/", client_kwargs={"api_key": "sk-..."})
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coreviz_frames._util.optional import import_optional
from coreviz_frames.errors import ConfigError, CorevizError

import_optional("dask.dataframe", extra="dask", purpose="coreviz_frames.dask")

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from dask.base import tokenize  # noqa: E402
from dask.delayed import Delayed, delayed  # noqa: E402

from coreviz_frames._util.checks import check_int, is_int  # noqa: E402
from coreviz_frames._util.ids import validate_id  # noqa: E402
from coreviz_frames.api.client import DEFAULT_BASE_URL, Client  # noqa: E402
from coreviz_frames.api.filters import BrowseFilters, walk_source  # noqa: E402
from coreviz_frames.api.pagination import check_max_overrun  # noqa: E402
from coreviz_frames.errors import SkippedRecordWarning  # noqa: E402
from coreviz_frames.exports.deltastore import open_store  # noqa: E402
from coreviz_frames.exports.grainfiles import (  # noqa: E402
    DEFAULT_ROW_GROUP_SIZE,
    split_partitions,
    write_file,
)
from coreviz_frames.exports.manifest import failure_from_manifest, failure_to_manifest  # noqa: E402
from coreviz_frames.exports.store import ExportStore, part_name  # noqa: E402
from coreviz_frames.exports.writer import ExportReport  # noqa: E402
from coreviz_frames.failures import FailedFetch  # noqa: E402
from coreviz_frames.http.credentials import Secret, resolve_credentials  # noqa: E402
from coreviz_frames.http.transport import build_session  # noqa: E402
from coreviz_frames.schema import GRAINS, empty_frame  # noqa: E402
from coreviz_frames.tables.arrow import to_arrow  # noqa: E402
from coreviz_frames.tables.flatten import FlattenReport  # noqa: E402
from coreviz_frames.tables.media_tables import MediaTables, to_tables  # noqa: E402

__all__ = [
    "ClientSpec",
    "PaginationError",
    "PartitionError",
    "export_collection",
    "export_media",
    "read_collection",
    "read_media",
    "refuse_resume",
]

#: Pages per partition when ``npartitions`` is not given (1,000 media at page_size 100).
PAGES_PER_PARTITION = 10
#: Ids per partition of :func:`read_media` when ``npartitions`` is not given.
IDS_PER_PARTITION = 1000

_CLIENT_OPTIONS = frozenset(
    {"api_key", "token", "base_url", "timeout", "retries", "max_workers", "backoff_factor"}
)
#: The largest ``pagination.total`` planned unless ``max_total=`` raises it (a total of
#: 10**12 would build a billion tasks; a real collection is 10**5 to 10**6 media).
DEFAULT_MAX_TOTAL = 10_000_000
#: Partitions computed at a time by a Delta export (their tables wait for the commits).
DELTA_WINDOW = 4


# --------------------------------------------------------------------------- errors


def _restore_partition_error(cls: type, message: str, attrs: dict[str, Any]) -> PartitionError:
    err = cls(message)
    err.__dict__.update(attrs)
    return err


class PartitionError(CorevizError):
    """A partition failed after the client's retries.

    ``message`` names the partition, its range and the cause. Attributes: ``index``,
    ``start``/``stop`` (offsets, or positions in the id list; ``stop`` exclusive),
    ``collection_id`` (None for id lists), ``cause_type`` (e.g. ``"ServerError"``),
    ``cause`` (its message) and ``status`` (HTTP status or None). Pickles across processes.

    Example:
        >>> try:
        ...     dask.compute(*read_collection("COL", client_kwargs=kw).values())
        ... except PartitionError as exc:
        ...     print(exc.start, exc.stop, exc.status)
        200 400 503
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        collection_id: str | None = None,
        cause_type: str | None = None,
        cause: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.start = start
        self.stop = stop
        self.collection_id = collection_id
        self.cause_type = cause_type
        self.cause = cause
        self.status = status

    def __reduce__(self):  # keyword-only attributes survive the trip back from a worker
        return (_restore_partition_error, (type(self), str(self), dict(self.__dict__)))


class PaginationError(PartitionError):
    """The collection's pagination cannot be planned or was not walked to its end.

    Raised before any task is built for a ``pagination.total`` above ``max_total``, and
    by the last partition when its walk stops before ``hasMore: false`` (a total that
    under-reports by more than ``max_overrun`` rows, an empty or repeated page). Same
    attributes as :class:`PartitionError`.

    Example:
        >>> read_collection("COL", client_kwargs=kw)        # total says 10**12
        Traceback (most recent call last):
        ...
        coreviz_frames.dask.PaginationError: collection 'COL': pagination.total is ...
    """


# --------------------------------------------------------------------------- credentials


class _Sealed(Secret):
    """A :class:`~coreviz_frames.http.credentials.Secret` that pickles (so it reaches the workers).

    Its repr, str and Dask token stay ``***``: the key is in no task key or graph repr.
    """

    __slots__ = ()

    def __reduce__(self):
        return (_Sealed, (self.reveal(),))

    def __dask_tokenize__(self) -> str:
        return "***"


_CLIENTS: dict[str, Client] = {}
_CLIENTS_LOCK = threading.Lock()


class ClientSpec:
    """How to build a :class:`~coreviz_frames.api.client.Client` on a worker, key included.

    Takes the keyword arguments of ``Client`` (``api_key``, ``token``, ``base_url``,
    ``timeout``, ``retries``, ``max_workers``) plus ``backoff_factor`` (seconds, for the
    retry policy); ``session`` is refused (a session cannot travel). ``COREVIZ_API_KEY`` and
    ``COREVIZ_BASE_URL`` are read here, on the machine that builds the graph. The repr and
    the Dask token never contain the key; the pickled form does (workers need it), so use
    TLS between client, scheduler and workers on an untrusted network. Each worker
    process builds one client per spec and reuses its connection pool.

    Example:
        >>> ClientSpec({"api_key": "sk-1", "base_url": "http://127.0.0.1:8000/api"})
        ClientSpec(api_key=***, base_url='http://127.0.0.1:8000/api')
    """

    __slots__ = ("_kind", "_nonce", "_options", "_secret")

    def __init__(self, client_kwargs: Mapping[str, Any] | None = None) -> None:
        options = dict(client_kwargs or {})
        unknown = set(options) - _CLIENT_OPTIONS
        if unknown:
            raise ConfigError(
                f"client_kwargs: unsupported {sorted(unknown)} (a session cannot be sent to "
                f"workers); use {sorted(_CLIENT_OPTIONS)}"
            )
        token = options.pop("token", None)
        api_key = options.pop("api_key", None)
        if not options.get("base_url") and os.environ.get("COREVIZ_BASE_URL"):
            options["base_url"] = os.environ["COREVIZ_BASE_URL"]
        credentials = resolve_credentials(
            api_key=api_key,
            token=token,
            base_url=options.get("base_url") or DEFAULT_BASE_URL,
            missing="no CoreViz credentials: pass client_kwargs={'api_key': ...} or set "
            "COREVIZ_API_KEY",
        )
        self._kind = credentials.kind
        self._secret = _Sealed(credentials.secrets()[0])
        self._options = {k: v for k, v in options.items() if v is not None}
        self._nonce = uuid.uuid4().hex

    @property
    def base_url(self) -> str | None:
        """The API base URL (None: the client's default)."""
        return self._options.get("base_url")

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in sorted(self._options.items()))
        return f"ClientSpec({self._kind}=***{opts})"

    __str__ = __repr__

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("coreviz_frames.ClientSpec", sorted(self._options.items()), self._nonce)

    def __reduce__(self):
        return (_restore_spec, (self._kind, self._secret, self._options, self._nonce))

    def new_client(self) -> Client:
        """A new client (the caller closes it)."""
        options = dict(self._options)
        backoff = options.pop("backoff_factor", None)
        if backoff is not None:
            options["session"] = build_session(
                retries=options.get("retries", 5),
                pool_size=max(options.get("max_workers", 8), 10),
                backoff_factor=float(backoff),
            )
        kwargs: dict[str, Any] = {self._kind: self._secret.reveal(), **options}
        return Client(**kwargs)

    def client(self) -> Client:
        """The client of this spec in this process (built once, then reused)."""
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(self._nonce)
            if client is None:
                client = _CLIENTS[self._nonce] = self.new_client()
            return client


def _restore_spec(kind: str, secret: _Sealed, options: dict[str, Any], nonce: str) -> ClientSpec:
    spec = ClientSpec.__new__(ClientSpec)
    spec._kind, spec._secret, spec._options, spec._nonce = kind, secret, options, nonce
    return spec


# --------------------------------------------------------------------------- tasks


class _Part:
    """What one partition task returns: its tables, media count and failed records."""

    __slots__ = ("failed", "media", "tables")

    def __init__(self, tables: MediaTables, failed: list[dict[str, Any]]) -> None:
        self.tables = tables
        self.media = len(tables.media)
        self.failed = failed

    def __repr__(self) -> str:
        return f"<_Part media={self.media} failed={len(self.failed)}>"


def _flatten(records: list[dict], on_error: str) -> tuple[MediaTables, list[dict[str, Any]]]:
    if on_error == "raise":
        return to_tables(records), []
    report = FlattenReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordWarning)
        tables = to_tables(records, on_error="skip", report=report)
    failed = [
        failure_to_manifest(FailedFetch.from_error(err.media_id, err)) for err in report.skipped
    ]
    return tables, failed


def _wrap(exc: BaseException, where: str, **attrs: Any) -> PartitionError:
    status = getattr(exc, "status", None)
    return PartitionError(
        f"{where} failed: {type(exc).__name__}: {exc}",
        cause_type=type(exc).__name__,
        cause=str(exc),
        status=status if is_int(status) else None,
        **attrs,
    )


@dataclass(frozen=True)
class _RangeRead:
    """What every partition of one collection read shares."""

    collection_id: str
    filters: BrowseFilters
    page_size: int
    max_overrun: int | None


def _collection_part(
    spec: ClientSpec, read: _RangeRead, index: int, start: int, stop: int, last: bool, on_error: str
) -> _Part:
    """Partition ``index``: offsets ``[start, stop)``, or from ``start`` until ``hasMore:
    false`` for the ``last`` one (a total that under-reported, a collection that grew)."""
    span = f"offsets {start}-{stop - 1}" + (" and on to the end" if last else "")
    where = f"partition {index} of collection {read.collection_id!r} ({span})"
    attrs: dict[str, Any] = {
        "index": index,
        "start": start,
        "stop": stop,
        "collection_id": read.collection_id,
    }
    try:
        it = spec.client().iter_range(
            read.collection_id,
            start,
            None if last else stop,
            filters=read.filters,
            page_size=read.page_size,
            max_overrun=read.max_overrun,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedRecordWarning)  # listed in it.report
            records = list(it)
        tables, failed = _flatten(records, on_error)
    except Exception as exc:
        raise _wrap(exc, where, **attrs) from None
    report = it.report
    if not report.complete:
        raise PaginationError(
            f"{where}: the walk stopped before hasMore: false ({report.incomplete_reason})",
            cause_type="PaginationWarning",
            cause=report.incomplete_reason,
            **attrs,
        )
    if on_error == "raise" and report.failed:
        first = report.failed[0]
        raise PartitionError(
            f"{where} failed: {first.error_type}: {first.reason}",
            cause_type=first.error_type,
            cause=first.reason,
            status=first.status,
            **attrs,
        )
    fetch_failed = [failure_to_manifest(f) for f in report.failed]
    return _Part(tables, fetch_failed + failed)


def _media_part(spec: ClientSpec, ids: list[str], index: int, start: int, on_error: str) -> _Part:
    stop = start + len(ids)
    span = f"{ids[0]}..{ids[-1]}" if ids else "none"
    where = f"partition {index} of the id list (ids {start}-{stop - 1}: {span})"
    try:
        iterator = spec.client().iter_media(ids, on_error=on_error, progress=False)  # type: ignore[arg-type]
        records = list(iterator)
        tables, failed = _flatten(records, on_error)
    except Exception as exc:
        raise _wrap(exc, where, index=index, start=start, stop=stop) from None
    failed = [failure_to_manifest(f) for f in iterator.report.failed] + failed
    return _Part(tables, failed)


def _grain_of(part: _Part, grain: str) -> pd.DataFrame:
    return getattr(part.tables, grain)


def _summary_of(part: _Part) -> pd.DataFrame:
    return pd.DataFrame({"media": [part.media], "failed": [json.dumps(part.failed)]})


_SUMMARY_META = pd.DataFrame(
    {"media": pd.Series([], dtype="int64"), "failed": pd.Series([], dtype=object)}
)


# --------------------------------------------------------------------------- plans


class _Plan:
    """Partition tasks (one :class:`Delayed` per partition) and what they cover."""

    def __init__(self, token: str, parts: list[Delayed], source: dict[str, Any]) -> None:
        self.token = token
        self.parts = parts
        self.source = source

    def frames(self) -> dict[str, dd.DataFrame]:
        out: dict[str, dd.DataFrame] = {}
        with dask.config.set({"dataframe.convert-string": False}):
            for grain in GRAINS:
                pieces = [
                    delayed(_grain_of, pure=True)(
                        part, grain, dask_key_name=(f"coreviz-grain-{grain}-{self.token}", i)
                    )
                    for i, part in enumerate(self.parts)
                ]
                out[grain] = dd.from_delayed(
                    pieces, meta=empty_frame(grain), divisions=None, verify_meta=True
                )
        return out

    def summary(self) -> dd.DataFrame:
        """One row per partition: its media count and its failures (JSON text)."""
        pieces = [
            delayed(_summary_of, pure=True)(
                part, dask_key_name=(f"coreviz-summary-{self.token}", i)
            )
            for i, part in enumerate(self.parts)
        ]
        with dask.config.set({"dataframe.convert-string": False}):
            return dd.from_delayed(pieces, meta=_SUMMARY_META, divisions=None, verify_meta=False)


def _offset_ranges(total: int, page_size: int, npartitions: int | None) -> list[tuple[int, int]]:
    """Page-aligned ``[start, stop)`` offset ranges covering ``total`` rows."""
    pages = max(1, math.ceil(total / page_size))
    if npartitions is None:
        npartitions = math.ceil(pages / PAGES_PER_PARTITION)
    n = max(1, min(npartitions, pages))
    bounds = [min(total, (pages * i // n) * page_size) for i in range(n + 1)]
    bounds[-1] = total
    return list(itertools.pairwise(bounds))


def _planned_total(
    client: Client, collection_id: str, filters: BrowseFilters, max_total: int
) -> int:
    """``pagination.total`` of the first page (one request), refused above ``max_total``."""
    first = client.fetch_page(collection_id, offset=0, limit=1, filters=filters)
    total = (first.get("pagination") or {}).get("total")
    if not is_int(total) or total < 0:
        raise PartitionError(
            f"collection {collection_id!r}: the API gave no pagination.total ({total!r}); "
            "it cannot be split into partitions (use Client.browse instead)",
            collection_id=collection_id,
        )
    if total > max_total:
        raise PaginationError(
            f"collection {collection_id!r}: pagination.total is {total:,}, above "
            f"max_total={max_total:,}; no partitions were planned (pass a larger max_total= "
            "if the collection really is that large)",
            collection_id=collection_id,
        )
    return total


def _collection_plan(
    read: _RangeRead,
    client_kwargs: Mapping[str, Any] | None,
    npartitions: int | None,
    on_error: str,
    max_total: int,
) -> _Plan:
    """One task per page-aligned offset range of ``pagination.total``; the last one reads
    on until ``hasMore: false`` (bounded by ``read.max_overrun``)."""
    check_int("page_size", read.page_size, minimum=1)
    if npartitions is not None:
        check_int("npartitions", npartitions, minimum=1)
    check_int("max_total", max_total, minimum=0)
    spec = ClientSpec(client_kwargs)
    with spec.new_client() as client:  # validates options, reads total once
        total = _planned_total(client, read.collection_id, read.filters, max_total)
    ranges = _offset_ranges(total, read.page_size, npartitions)
    token = tokenize(read, ranges, spec)
    name = f"coreviz-fetch-{token}"
    parts = [
        delayed(_collection_part, pure=True)(
            spec, read, i, start, stop, i == len(ranges) - 1, on_error, dask_key_name=(name, i)
        )
        for i, (start, stop) in enumerate(ranges)
    ]
    source = {
        **walk_source(spec.base_url, read.collection_id, read.filters),
        "engine": "dask",
        "partitions": len(ranges),
    }
    return _Plan(token, parts, source)


def _range_read(
    collection_id: str,
    page_size: int,
    filters: BrowseFilters | None,
    max_overrun: int | None,
    browse_filters: Mapping[str, Any],
) -> _RangeRead:
    return _RangeRead(
        validate_id(collection_id, kind="collection id"),
        BrowseFilters.build(filters, **browse_filters),
        page_size,
        check_max_overrun(max_overrun),
    )


def _media_plan(
    ids: Iterable[str],
    client_kwargs: Mapping[str, Any] | None,
    npartitions: int | None,
    on_error: str,
) -> _Plan:
    if isinstance(ids, (str, bytes)):
        raise ConfigError("ids must be an iterable of ids, not a single string")
    if npartitions is not None:
        check_int("npartitions", npartitions, minimum=1)
    ids = list(dict.fromkeys(validate_id(m) for m in ids))
    spec = ClientSpec(client_kwargs)
    spec.new_client().close()  # validate the options here, not on a worker
    if npartitions is None:
        npartitions = math.ceil(len(ids) / IDS_PER_PARTITION)
    n = max(1, min(npartitions, len(ids)))
    bounds = [len(ids) * i // n for i in range(n + 1)]
    token = tokenize(ids, bounds, spec, on_error)
    parts = [
        delayed(_media_part, pure=True)(
            spec, ids[a:b], i, a, on_error, dask_key_name=(f"coreviz-fetch-ids-{token}", i)
        )
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    source = {"base_url": spec.base_url, "media_ids": len(ids), "engine": "dask"}
    return _Plan(token, parts, source)


# --------------------------------------------------------------------------- reading


def read_collection(
    collection_id: str,
    *,
    client_kwargs: Mapping[str, Any] | None = None,
    npartitions: int | None = None,
    page_size: int = 100,
    filters: BrowseFilters | None = None,
    max_total: int = DEFAULT_MAX_TOTAL,
    max_overrun: int | None = None,
    **browse_filters: Any,
) -> dict[str, dd.DataFrame]:
    """Every media of a collection as one lazy Dask DataFrame per grain.

    ``pagination.total`` is read once (one request); the offset range is split into
    ``npartitions`` page-aligned partitions (default: one per 10 pages). ``filters`` (a
    :class:`~coreviz_frames.api.filters.BrowseFilters`) or ``browse_filters`` keywords are
    those of :meth:`Client.browse` (``path``, ``recursive``, ``type``, ``tag_filters``,
    ``date_from``, ``date_to``, ``q``, ...). Columns and dtypes are exactly
    :func:`coreviz_frames.schema.pandas_dtypes`; rows of a grain come in partition order.
    A partition that fails raises :class:`PartitionError` when computed.

    The total is not trusted: above ``max_total`` it is refused with
    :class:`PaginationError` before any task is built, and the last partition reads on
    until ``hasMore: false``, so media beyond a total that under-reports (or added during
    the run) are read; one that passes the total by more than ``max_overrun`` rows (default:
    as many again as the total, at least 1,000) raises :class:`PaginationError`.

    Example:
        >>> frames = read_collection("COL", client_kwargs={"api_key": "sk-.."}, npartitions=8)
        >>> media, objects = dask.compute(frames["media"], frames["objects"])
        >>> frames["objects"].label.value_counts().compute()
    """
    read = _range_read(collection_id, page_size, filters, max_overrun, browse_filters)
    return _collection_plan(read, client_kwargs, npartitions, "raise", max_total).frames()


def read_media(
    ids: Iterable[str],
    *,
    client_kwargs: Mapping[str, Any] | None = None,
    npartitions: int | None = None,
) -> dict[str, dd.DataFrame]:
    """Media by id (de-duplicated, input order) as one lazy Dask DataFrame per grain.

    Each partition fetches its ids with :meth:`Client.iter_media` (``max_workers`` at a
    time); any failed id fails its partition with :class:`PartitionError` naming the id range
    (use :func:`export_media` to skip and report failed ids instead).

    Example:
        >>> frames = read_media(ids, client_kwargs={"api_key": "sk-.."}, npartitions=4)
        >>> frames["frames"].groupby("media_id").size().compute()
    """
    return _media_plan(ids, client_kwargs, npartitions, "raise").frames()


# --------------------------------------------------------------------------- exporting


def refuse_resume() -> None:
    """Raise the :class:`ConfigError` of ``resume=True`` on Dask (whole files, no parts)."""
    raise ConfigError(
        "--resume is not supported with --dask: Dask writes whole files, not committed "
        "parts; re-run with --overwrite, or finish a crashed Dask export without --dask "
        "(export_parquet(..., resume=True))"
    )


def _write_part_files(
    frame: pd.DataFrame,
    root: str,
    grain: str,
    partition_by: str | None,
    compression: str,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """On a worker: one partition of ``grain`` written as ``export_parquet`` writes a part
    (declared schema, file and pandas metadata, partition folders); its row count."""
    seq = int((partition_info or {}).get("number", 0))
    table = to_arrow(frame, grain)
    for subdir, piece in split_partitions(table, partition_by):
        target = Path(root, grain, subdir, part_name(seq))
        write_file(target, piece, row_group_size=DEFAULT_ROW_GROUP_SIZE, compression=compression)
    return pd.DataFrame({"rows": [table.num_rows]})


def _write_parquet(plan: _Plan, store: ExportStore, report: ExportReport) -> None:
    """Workers write the part files of every grain (the package's writer, not Dask's
    ``to_parquet``: plain pandas and Dask read them back); the store adopts them."""
    root = os.fspath(store.root)
    meta = pd.DataFrame({"rows": pd.Series([], dtype="int64")})
    writes = [
        frame.map_partitions(
            _write_part_files, root, grain, store.partition_by, store.compression, meta=meta
        )
        for grain, frame in plan.frames().items()
    ]
    *_, summary = dask.compute(*writes, plan.summary())  # one fetch per partition
    rows = list(summary.itertuples())
    for commit in store.adopt_parts([int(row.media) for row in rows]):
        report.add(commit)
    store.record_failures(
        failure_from_manifest(item) for row in rows for item in json.loads(row.failed)
    )


def _commit_delta(plan: _Plan, store: ExportStore, report: ExportReport) -> None:
    """Workers fetch and flatten ``DELTA_WINDOW`` partitions at a time; this process
    commits each to the Delta tables (one commit per table), so memory holds a window."""
    for start in range(0, len(plan.parts), DELTA_WINDOW):
        for part in dask.compute(*plan.parts[start : start + DELTA_WINDOW]):
            failures = [failure_from_manifest(item) for item in part.failed]
            report.add(store.commit_part(part.tables, failures=failures))


def _export(
    plan: _Plan,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool,
    resume: bool,
    partition_by: str | None,
    compression: str,
    table_format: str | None = None,
) -> ExportReport:
    if resume:
        refuse_resume()
    started = time.monotonic()
    store = open_store(
        out_dir,
        table_format,
        default="parquet",
        replacing=overwrite,
        partition_by=partition_by,
        compression=compression,
    )
    report = ExportReport(path=store.root)
    with store.open(overwrite=overwrite, source=plan.source):  # locks; refuses / clears
        if store.table_format == "delta":
            _commit_delta(plan, store, report)
        else:
            _write_parquet(plan, store, report)
        store.finish("complete")
        report.failed = store.failure_entries()
    report.elapsed = time.monotonic() - started
    return report


def export_collection(
    collection_id: str,
    out_dir: str | os.PathLike,
    *,
    client_kwargs: Mapping[str, Any] | None = None,
    npartitions: int | None = None,
    page_size: int = 100,
    overwrite: bool = False,
    resume: bool = False,
    partition_by: str | None = None,
    compression: str = "zstd",
    filters: BrowseFilters | None = None,
    max_total: int = DEFAULT_MAX_TOTAL,
    max_overrun: int | None = None,
    table_format: str | None = None,
    **browse_filters: Any,
) -> ExportReport:
    """Export a collection to Parquet on the current Dask scheduler, one file per partition.

    Same layout, file metadata and manifest as :func:`~coreviz_frames.exports.writer.export_parquet`
    (part ``N`` is partition ``N``); ``read_parquet`` and DuckDB read it. Refuses a non-empty
    ``out_dir`` unless ``overwrite``; ``resume=True`` raises :class:`ConfigError` (not
    supported on Dask). Malformed records and media whose Get Media fails are skipped and
    listed in ``report.failed``; a partition whose pages fail raises
    :class:`PartitionError`, and one whose walk stops early :class:`PaginationError`
    (nothing is committed). Filters, ``max_total`` and ``max_overrun`` as in
    :func:`read_collection`. ``table_format="delta"`` commits each partition to Delta
    tables from this process (the workers fetch and flatten), as ``export_parquet`` would.

    Example:
        >>> with distributed.Client("tcp://scheduler:8786"):
        ...     report = export_collection("COL", "export/", client_kwargs={"api_key": "sk-.."})
        >>> print(report)
    """
    if resume:
        refuse_resume()
    read = _range_read(collection_id, page_size, filters, max_overrun, browse_filters)
    plan = _collection_plan(read, client_kwargs, npartitions, "skip", max_total)
    return _export(
        plan,
        out_dir,
        overwrite=overwrite,
        resume=False,
        partition_by=partition_by,
        compression=compression,
        table_format=table_format,
    )


def export_media(
    ids: Iterable[str],
    out_dir: str | os.PathLike,
    *,
    client_kwargs: Mapping[str, Any] | None = None,
    npartitions: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    partition_by: str | None = None,
    compression: str = "zstd",
    table_format: str | None = None,
) -> ExportReport:
    """Export media by id to Parquet on the current Dask scheduler.

    Failed ids are skipped and listed (id, status, reason) in ``report.failed`` and the
    manifest, as with ``export_parquet(client.iter_media(ids, on_error="skip"), ...)``.

    Example:
        >>> report = export_media(ids, "export/", client_kwargs={"api_key": "sk-.."})
        >>> report.ok, len(report.failed)
        (False, 2)
    """
    if resume:
        refuse_resume()
    plan = _media_plan(ids, client_kwargs, npartitions, "skip")
    return _export(
        plan,
        out_dir,
        overwrite=overwrite,
        resume=False,
        partition_by=partition_by,
        compression=compression,
        table_format=table_format,
    )

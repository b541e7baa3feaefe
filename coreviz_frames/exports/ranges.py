"""A collection cut into offset ranges, and how one range is read in any process.

The one planner of a collection's partitions, shared by :mod:`coreviz_frames.dask` (a Dask
cluster) and :mod:`coreviz_frames.exports.processes` (local processes): ``pagination.total``
is read once (:func:`planned_total`, refused above ``max_total``), cut into page-aligned
``[start, stop)`` ranges (:func:`offset_ranges`), and each range is read where it runs by
:func:`read_range` with :meth:`Client.iter_range <coreviz_frames.api.client.Client.iter_range>`
(the last one reads on until ``hasMore: false``). A range that fails raises
:class:`PartitionError` naming its offsets and the cause; one whose walk stops early,
:class:`PaginationError`.

Credentials travel inside a :class:`ClientSpec`: it pickles with the key (a worker needs
it; a process pool sends it through its pipe, never in argv, the environment or a file)
but its ``repr``, its Dask token and every task key show ``***`` or a hash instead.

Example:
    >>> offset_ranges(250, 100, 2)
    [(0, 100), (100, 250)]
    >>> ClientSpec({"api_key": "sk-1", "base_url": "http://127.0.0.1:8000/api"})
    ClientSpec(api_key=***, base_url='http://127.0.0.1:8000/api')
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any, TypeVar

from coreviz_frames._util.checks import is_int
from coreviz_frames.api.client import DEFAULT_BASE_URL, Client, FetchReport
from coreviz_frames.api.filters import BrowseFilters
from coreviz_frames.errors import ConfigError, CorevizError, SkippedRecordWarning
from coreviz_frames.http.credentials import Secret, resolve_credentials
from coreviz_frames.http.transport import build_session

__all__ = [
    "ClientSpec",
    "OffsetRange",
    "PaginationError",
    "PartitionError",
    "RangeRead",
    "offset_ranges",
    "planned_total",
    "read_range",
    "wrap_error",
]

#: Pages per range when the number of ranges is not given (1,000 media at page_size 100).
PAGES_PER_PARTITION = 10

_CLIENT_OPTIONS = frozenset(
    {"api_key", "token", "base_url", "timeout", "retries", "max_workers", "backoff_factor"}
)
T = TypeVar("T")


# --------------------------------------------------------------------------- errors


def _restore_partition_error(cls: type, message: str, attrs: dict[str, Any]) -> PartitionError:
    err = cls(message)
    err.__dict__.update(attrs)
    return err


class PartitionError(CorevizError):
    """A partition (an offset range) failed after the client's retries.

    ``message`` names the partition, its range and the cause. Attributes: ``index``,
    ``start``/``stop`` (offsets, or positions in the id list; ``stop`` exclusive),
    ``collection_id`` (None for id lists), ``cause_type`` (e.g. ``"ServerError"``),
    ``cause`` (its message) and ``status`` (HTTP status or None). Pickles across processes.

    Example:
        >>> err = PartitionError("partition 2 failed", index=2, start=200, stop=300, status=503)
        >>> err.start, err.stop, err.status
        (200, 300, 503)
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

    Raised before any range is read for a ``pagination.total`` above ``max_total``, and
    by the last range when its walk stops before ``hasMore: false`` (a total that
    under-reports by more than ``max_overrun`` rows, an empty or repeated page). Same
    attributes as :class:`PartitionError`.

    Example:
        >>> isinstance(PaginationError("total above max_total"), PartitionError)
        True
    """


# --------------------------------------------------------------------------- credentials


class SealedSecret(Secret):
    """A :class:`~coreviz_frames.http.credentials.Secret` that pickles (so it reaches the workers).

    Its repr, str and Dask token stay ``***``: the key is in no task key or graph repr.

    Example:
        >>> SealedSecret("sk-1")
        ***
    """

    __slots__ = ()

    def __reduce__(self):
        return (SealedSecret, (self.reveal(),))

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
        self._secret = SealedSecret(credentials.secrets()[0])
        self._options = {k: v for k, v in options.items() if v is not None}
        self._nonce = uuid.uuid4().hex

    @classmethod
    def of_client(cls, client: Client) -> ClientSpec:
        """The spec of an existing client (its key, base URL, timeout, retries, workers);
        ``ConfigError`` for a client built with its own ``session`` (it cannot travel)."""
        kind, secret, options = client.worker_options()
        return _restore_spec(kind, SealedSecret(secret.reveal()), options, uuid.uuid4().hex)

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


def _restore_spec(
    kind: str, secret: SealedSecret, options: dict[str, Any], nonce: str
) -> ClientSpec:
    spec = ClientSpec.__new__(ClientSpec)
    spec._kind, spec._secret, spec._options, spec._nonce = kind, secret, options, nonce
    return spec


# --------------------------------------------------------------------------- ranges


@dataclass(frozen=True)
class RangeRead:
    """What every range of one collection read shares."""

    collection_id: str
    filters: BrowseFilters
    page_size: int
    max_overrun: int | None


@dataclass(frozen=True)
class OffsetRange:
    """Range ``index``: offsets ``[start, stop)``, or from ``start`` on until ``hasMore:
    false`` when ``last``."""

    index: int
    start: int
    stop: int
    last: bool

    def where(self, collection_id: str) -> str:
        """How messages name this range."""
        span = f"offsets {self.start}-{self.stop - 1}" + (" and on to the end" if self.last else "")
        return f"partition {self.index} of collection {collection_id!r} ({span})"


def offset_ranges(total: int, page_size: int, npartitions: int | None) -> list[tuple[int, int]]:
    """Page-aligned ``[start, stop)`` offset ranges covering ``total`` rows (default: one
    per :data:`PAGES_PER_PARTITION` pages).

    Example:
        >>> offset_ranges(0, 100, None), offset_ranges(250, 100, 8)
        ([(0, 0)], [(0, 100), (100, 200), (200, 250)])
    """
    pages = max(1, math.ceil(total / page_size))
    if npartitions is None:
        npartitions = math.ceil(pages / PAGES_PER_PARTITION)
    n = max(1, min(npartitions, pages))
    bounds = [min(total, (pages * i // n) * page_size) for i in range(n + 1)]
    bounds[-1] = total
    return list(itertools.pairwise(bounds))


def planned_total(
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


def wrap_error(exc: BaseException, where: str, **attrs: Any) -> PartitionError:
    """``exc`` as the :class:`PartitionError` of the partition ``where`` names."""
    status = getattr(exc, "status", None)
    return PartitionError(
        f"{where} failed: {type(exc).__name__}: {exc}",
        cause_type=type(exc).__name__,
        cause=str(exc),
        status=status if is_int(status) else None,
        **attrs,
    )


def read_range(
    spec: ClientSpec,
    read: RangeRead,
    rng: OffsetRange,
    consume: Callable[[Iterator[dict]], T],
    *,
    on_error: str = "skip",
    exclude: Set[str] = frozenset(),
) -> tuple[T, FetchReport]:
    """``consume(records)`` of the range's records (media ids in ``exclude`` neither
    fetched nor yielded), and the walk's report. Any error, of the fetch or of ``consume``,
    becomes a :class:`PartitionError` naming the range; a walk that stopped before
    ``hasMore: false``, a :class:`PaginationError`; with ``on_error="raise"`` a failed
    media fails the range."""
    where = rng.where(read.collection_id)
    attrs: dict[str, Any] = {
        "index": rng.index,
        "start": rng.start,
        "stop": rng.stop,
        "collection_id": read.collection_id,
    }
    try:
        it = spec.client().iter_range(
            read.collection_id,
            rng.start,
            None if rng.last else rng.stop,
            filters=read.filters,
            page_size=read.page_size,
            max_overrun=read.max_overrun,
        )
        if exclude:
            it.exclude(exclude)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedRecordWarning)  # listed in it.report
            product = consume(it)
    except Exception as exc:
        raise wrap_error(exc, where, **attrs) from None
    _check_walk(it.report, where, on_error, attrs)
    return product, it.report


def _check_walk(report: FetchReport, where: str, on_error: str, attrs: dict[str, Any]) -> None:
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

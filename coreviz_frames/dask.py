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
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from coreviz_frames._util.optional import import_optional
from coreviz_frames.errors import ConfigError

import_optional("dask.dataframe", extra="dask", purpose="coreviz_frames.dask")

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from dask.base import tokenize  # noqa: E402
from dask.delayed import Delayed, delayed  # noqa: E402

from coreviz_frames._util.checks import check_int  # noqa: E402
from coreviz_frames._util.ids import validate_id  # noqa: E402
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

# the errors a Dask user catches, and the spec, keep their names here too (defined where
# local processes use them as well: coreviz_frames.exports.ranges)
from coreviz_frames.exports.ranges import (  # noqa: E402
    ClientSpec as ClientSpec,
    OffsetRange,
    PaginationError as PaginationError,
    PartitionError as PartitionError,
    RangeRead,
    offset_ranges,
    planned_total,
    read_range,
    wrap_error,
)
from coreviz_frames.exports.store import ExportStore, part_name  # noqa: E402
from coreviz_frames.exports.writer import ExportReport  # noqa: E402
from coreviz_frames.failures import FailedFetch  # noqa: E402
from coreviz_frames.schema import GRAINS, empty_frame  # noqa: E402
from coreviz_frames.tables.arrow import to_arrow  # noqa: E402
from coreviz_frames.tables.flatten import FlattenReport  # noqa: E402
from coreviz_frames.tables.media_tables import MediaTables, to_tables  # noqa: E402

__all__ = [
    "export_collection",
    "export_media",
    "read_collection",
    "read_media",
    "refuse_resume",
]

#: Ids per partition of :func:`read_media` when ``npartitions`` is not given.
IDS_PER_PARTITION = 1000

#: The largest ``pagination.total`` planned unless ``max_total=`` raises it (a total of
#: 10**12 would build a billion tasks; a real collection is 10**5 to 10**6 media).
DEFAULT_MAX_TOTAL = 10_000_000
#: Partitions computed at a time by a Delta export (their tables wait for the commits).
DELTA_WINDOW = 4


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


def _range_chunks(records: Iterator[dict]) -> list[Any]:
    """A range's walk as page chunks (``BrowseIterator.chunks``: pages pyarrow reads
    provably exactly stay Arrow, never decoded), else its records."""
    chunks = getattr(records, "chunks", None)
    return list(chunks() if callable(chunks) else records)


def _flatten(records: list[Any], on_error: str) -> tuple[MediaTables, list[dict[str, Any]]]:
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


def _collection_part(
    spec: ClientSpec, read: RangeRead, index: int, start: int, stop: int, last: bool, on_error: str
) -> _Part:
    """Partition ``index``: offsets ``[start, stop)``, or from ``start`` until ``hasMore:
    false`` for the ``last`` one (a total that under-reported, a collection that grew)."""
    (tables, failed), report = read_range(
        spec,
        read,
        OffsetRange(index, start, stop, last),
        lambda records: _flatten(_range_chunks(records), on_error),
        on_error=on_error,
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
        raise wrap_error(exc, where, index=index, start=start, stop=stop) from None
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


def _collection_plan(
    read: RangeRead,
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
        total = planned_total(client, read.collection_id, read.filters, max_total)
    ranges = offset_ranges(total, read.page_size, npartitions)
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
) -> RangeRead:
    return RangeRead(
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

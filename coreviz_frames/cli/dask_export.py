"""``coreviz-frames export --dask ADDRESS|local``: connect to a Dask cluster, export, report.

``"local"`` starts a ``LocalCluster`` for the duration of the export; anything else is
a scheduler address for ``distributed.Client``. The export itself is
:func:`coreviz_frames.dask.export_collection` (or ``export_media`` for ``--ids``).

Example:
    >>> export_on_dask("local", collection_id="COL", out_dir="export/", resume=True)
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.ConfigError: --resume is not supported with --dask: ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from coreviz_frames._util.idsfile import read_ids_file
from coreviz_frames._util.optional import import_optional
from coreviz_frames.api.filters import BrowseFilters
from coreviz_frames.dask import export_collection, export_media, refuse_resume
from coreviz_frames.errors import ConfigError
from coreviz_frames.exports.writer import ExportReport

__all__ = ["export_on_dask"]


def _connect(dask_address: str, n_workers: int | None) -> tuple[Any, Any]:
    """A ``distributed.Client`` (and the ``LocalCluster`` it runs on, or None)."""
    distributed = import_optional("distributed", extra="dask", purpose="--dask")
    cluster = None
    try:
        if dask_address == "local":
            cluster = distributed.LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # the scheduler serves health/metrics even without a dashboard: on a free
                # port, since 8787 may be another cluster's (a warning, then, and no port)
                scheduler_kwargs={"dashboard_address": ":0"},
            )
            return distributed.Client(cluster), cluster
        return distributed.Client(dask_address), None
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ConfigError(f"cannot connect to the Dask scheduler {dask_address!r}: {exc}") from exc


def export_on_dask(
    dask_address: str,
    *,
    collection_id: str | None = None,
    ids_file: str | None = None,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    resume: bool = False,
    page_size: int = 100,
    api_key: str | None = None,
    base_url: str | None = None,
    partition_by: str | None = None,
    filters: BrowseFilters | Mapping[str, Any] | None = None,
    n_workers: int | None = None,
    table_format: str | None = None,
) -> ExportReport:
    """Connect, export, return the report.

    ``"local"`` starts a ``LocalCluster`` (one single-threaded worker process per core, on
    127.0.0.1, no dashboard) for the duration; anything else is a scheduler address for
    ``distributed.Client``. Exactly one of ``collection_id`` and ``ids_file`` (one id per
    line, ``-`` for stdin). ``filters`` holds the browse filters (a
    :class:`~coreviz_frames.api.filters.BrowseFilters`, or a mapping whose None values are
    ignored). ``resume`` is refused before any cluster is started.
    """
    if resume:
        refuse_resume()
    if (collection_id is None) == (ids_file is None):
        raise ConfigError("give exactly one of collection_id and ids_file")
    if not isinstance(filters, BrowseFilters):
        filters = BrowseFilters.build(
            None, **{k: v for k, v in (filters or {}).items() if v is not None}
        )
    client_kwargs = {"api_key": api_key, "base_url": base_url}
    client_kwargs = {k: v for k, v in client_kwargs.items() if v is not None}
    dask_client, cluster = _connect(dask_address, n_workers)
    try:
        with dask_client:
            if collection_id is not None:
                return export_collection(
                    collection_id,
                    out_dir,
                    client_kwargs=client_kwargs,
                    page_size=page_size,
                    overwrite=overwrite,
                    partition_by=partition_by,
                    filters=filters,
                    table_format=table_format,
                )
            assert ids_file is not None
            return export_media(
                read_ids_file(ids_file),
                out_dir,
                client_kwargs=client_kwargs,
                overwrite=overwrite,
                partition_by=partition_by,
                table_format=table_format,
            )
    finally:
        if cluster is not None:
            cluster.close()

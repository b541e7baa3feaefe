"""Parquet datasets: read an export back, describe it; the public home of the export names.

The directory layout, the manifest and the rules for overwrite and resume belong to
:mod:`.store`; the Parquet files of a grain to :mod:`.grainfiles`; the streaming
pipeline (:func:`export_parquet`, :class:`ExportReport`) to :mod:`.export`. This module
reads an export back into :class:`~coreviz_frames.tables.MediaTables`
(:func:`read_parquet`), describes one (:func:`describe_export`), and re-exports the
names users import from ``coreviz_frames.parquet``.

Example:
    >>> import tempfile
    >>> import coreviz_frames as cvf
    >>> path = cvf.MediaTables.empty().to_parquet(tempfile.mkdtemp())
    >>> cvf.read_parquet(path).objects.shape
    (0, 18)
    >>> print(describe_export(path).splitlines()[0])  # doctest: +ELLIPSIS
    export     ...  (complete)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .engines import export_files
from .errors import ConfigError, ExportError
from .export import ExportReport, export_parquet
from .grainfiles import (
    DEFAULT_ROW_GROUP_SIZE,
    METADATA_KEY,
    detect_partition,
    file_metadata,
    read_grain,
)
from .lock import DirectoryLock
from .manifest import MANIFEST_NAME, manifest_files, read_manifest, repair_hint, utc_now
from .schema import GRAINS, arrow_to_pandas, empty_frame
from .store import ExportStore, part_name, write_tables
from .tables import MediaTables

__all__ = [
    "DEFAULT_ROW_GROUP_SIZE",
    "MANIFEST_NAME",
    "METADATA_KEY",
    "ExportReport",
    "ExportStore",
    "describe_export",
    "export_parquet",
    "file_metadata",
    "part_name",
    "read_manifest",
    "read_parquet",
    "utc_now",
    "write_tables",
]

PathLike = str | os.PathLike


def read_parquet(
    path: PathLike, *, grains: Iterable[str] | None = None, filters: Any = None
) -> MediaTables:
    """Read an export (or any ``to_parquet`` directory) back into ``MediaTables``.

    Columns and dtypes are exactly the declared ones. Only committed parts are
    read when a manifest is present; rows come in part order. ``grains`` limits
    the grains read (the others are empty); ``filters`` is a pyarrow expression
    or DNF list such as ``[("dataset_id", "=", "abc")]`` applied to every grain
    read, so name only columns they all have (``media_id``, ``dataset_id``).
    A manifest that lists missing files is an :class:`ExportError` naming the
    command that rebuilds the export.

    Example:
        >>> dogs = [("label", "=", "dog")]
        >>> t = read_parquet("export/", grains=["objects"], filters=dogs)  # doctest: +SKIP
        >>> t.objects.label.unique().tolist()  # doctest: +SKIP
        ['dog']
    """
    root = Path(path)
    if not root.is_dir():
        raise ExportError(f"no Parquet export at {root}", path=str(root))
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else None
    if manifest is None and not any((root / grain).is_dir() for grain in GRAINS):
        raise ExportError(
            f"no Parquet export at {root}: no manifest and none of the folders {', '.join(GRAINS)}",
            path=str(root),
        )
    partition_by = manifest.get("partition_by") if manifest else detect_partition(root)
    wanted = set(GRAINS if grains is None else grains)
    unknown = wanted - set(GRAINS)
    if unknown:
        raise ConfigError(f"unknown grains {sorted(unknown)}; choose from {list(GRAINS)}")
    frames = {}
    for grain in GRAINS:
        if grain in wanted:
            files = export_files(root, grain, manifest)
            table = read_grain(root, grain, files, partition_by, filters)
            frames[grain] = arrow_to_pandas(table, grain)
        else:
            frames[grain] = empty_frame(grain)
    return MediaTables(**frames)


def _status_line(root: Path, manifest: Mapping[str, Any]) -> str:
    status = manifest.get("status", "?")
    reason = manifest.get("status_reason")
    line = f"export     {root}  ({status}{': ' + str(reason) if reason else ''})"
    holder = DirectoryLock(root).current_holder() if status == "running" else None
    if holder is not None:
        line += f"\n           being written now by {holder.describe()}"
    elif status == "incomplete":
        line += "\n           the walk stopped early: run the export again with --resume"
    elif status in ("failed", "running"):
        line += "\n           not finished: run the export again with --resume to complete it"
    return line


def _failed_lines(failed: list[Mapping[str, Any]]) -> list[str]:
    if not failed:
        return []
    lines = ["", f"failed records ({len(failed):,}):"]
    for item in failed[:10]:
        status = f" {item['status']}" if item.get("status") is not None else ""
        lines.append(f"  {item.get('id')}{status}: {item.get('reason')}")
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10:,} more")
    return lines


def describe_export(path: PathLike) -> str:
    """A human summary of an export: manifest, then rows and files per grain (from Parquet footers).

    An overwrite interrupted while clearing is said, with the command that finishes it;
    a manifest listing missing files is an :class:`ExportError` naming the repair.

    Example:
        >>> print(describe_export("export/"))  # doctest: +SKIP
        export     /data/export  (complete)
        ...
    """
    root = Path(path)
    manifest = read_manifest(root)
    if manifest.get("status") == "clearing":
        return (
            f"export     {root}  (clearing)\n"
            "           an overwrite was interrupted while clearing the old export: run "
            f"{repair_hint(root, manifest)}, or the same command with --resume"
        )
    source = manifest.get("source") or {}
    lines = [_status_line(root, manifest)]
    if source:
        lines.append("source     " + ", ".join(f"{k}={v}" for k, v in source.items()))
    lines += [
        f"schema     version {manifest.get('schema_version')}, written by coreviz_frames "
        f"{manifest.get('package_version')}"
        + (f", partitioned by {manifest['partition_by']}" if manifest.get("partition_by") else ""),
        f"started    {manifest.get('started_at')}   updated {manifest.get('updated_at')}"
        f"   runs {manifest.get('runs', 1)}",
        f"parts      {len(manifest.get('parts', []))}   media {manifest.get('media_exported', 0):,}"
        f"   failed {len(manifest.get('failed', [])):,}",
        "",
        f"{'grain':<10} {'rows':>12} {'files':>6} {'bytes':>12}",
    ]
    mismatched = []
    for grain in GRAINS:
        files = manifest_files(root, manifest, grain)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        size = sum(f.stat().st_size for f in files)
        lines.append(f"{grain:<10} {rows:>12,} {len(files):>6} {size:>12,}")
        if rows != manifest.get("rows", {}).get(grain, rows):
            mismatched.append(grain)
    if mismatched:
        lines.append(f"WARNING: manifest row counts differ from the files for {mismatched}")
    return "\n".join(lines + _failed_lines(manifest.get("failed", [])))

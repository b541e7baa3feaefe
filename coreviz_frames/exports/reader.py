"""Parquet datasets: read an export back, describe it; the public home of the export names.

The directory layout, the manifest and the rules for overwrite and resume belong to
:mod:`.store`; the Parquet files of a grain to :mod:`.grainfiles`; the streaming
pipeline (:func:`export_parquet`, :class:`ExportReport`) to :mod:`.export`. This module
reads an export back into :class:`~coreviz_frames.tables.media_tables.MediaTables`
(:func:`read_parquet`), describes one (:func:`describe_export`), and re-exports the
names users import from ``coreviz_frames.exports.reader``.

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
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from coreviz_frames.errors import ConfigError, ExportError
from coreviz_frames.exports import delta
from coreviz_frames.exports.delta import is_delta, pinned_versions
from coreviz_frames.exports.deltastore import open_store
from coreviz_frames.exports.engines import export_files
from coreviz_frames.exports.grainfiles import (
    damaged_part,
    detect_partition,
    part_problem,
    read_grain,
)
from coreviz_frames.exports.lock import DirectoryLock
from coreviz_frames.exports.manifest import (
    MANIFEST_NAME,
    manifest_files,
    read_manifest,
    repair_hint,
)
from coreviz_frames.failures import failure_line
from coreviz_frames.schema import GRAINS, SCHEMAS, arrow_to_pandas, empty_frame
from coreviz_frames.tables.convert import BACKENDS, arrow_to_polars
from coreviz_frames.tables.media_tables import MediaTables

__all__ = ["describe_export", "read_parquet"]

PathLike = str | os.PathLike


def _missing_message(what: str, column: str, lacking: list[str]) -> str:
    having = [g for g in GRAINS if column in SCHEMAS[g].names]
    where = (
        f"only {', '.join(having)} {'has' if len(having) == 1 else 'have'} it"
        if having
        else ("no grain has it")
    )
    hint = f"; pass grains={having!r}" if having else ""
    return f"{what} name the column {column!r}, which {', '.join(lacking)} lack ({where}){hint}"


def _filter_expression(filters: Any, grains: Sequence[str]) -> ds.Expression | None:
    """``filters`` as one expression, checked against every grain read (one-line errors)."""
    if filters is None:
        return None
    try:
        expression = (
            filters if isinstance(filters, ds.Expression) else pq.filters_to_expression(filters)
        )
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise ConfigError(f"filters {filters!r} is not a pyarrow filter: {exc}") from exc
    lacking: dict[str, list[str]] = {}
    for grain in grains:
        try:
            ds.dataset(SCHEMAS[grain].empty_table()).to_table(filter=expression)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            found = re.search(r"FieldRef\.Name\(([^)]*)\)", str(exc))
            if found is None:
                first = str(exc).splitlines()[0]
                raise ExportError(f"filters {filters!r} do not apply to {grain}: {first}") from exc
            lacking.setdefault(found.group(1), []).append(grain)
    for column, names in lacking.items():
        raise ExportError(_missing_message("filters", column, names))
    return expression


def _check_columns(columns: Sequence[str] | None, grains: Sequence[str]) -> None:
    if columns is None:
        return
    if isinstance(columns, str):
        raise ConfigError(f"columns must be a list of names, not the string {columns!r}")
    for column in columns:
        lacking = [g for g in grains if column not in SCHEMAS[g].names]
        if lacking:
            raise ExportError(_missing_message("columns", column, lacking))


def _to_pandas(table: pa.Table, grain: str, columns: Sequence[str] | None) -> pd.DataFrame:
    """The declared pandas dtypes, for all columns or only ``columns``."""
    if columns is None:
        return arrow_to_pandas(table, grain)
    schema = SCHEMAS[grain]
    arrays = [
        table.column(f.name) if f.name in columns else pa.nulls(len(table), f.type) for f in schema
    ]  # the columns not read are null stand-ins, dropped below
    full = pa.Table.from_arrays(arrays, schema=schema)
    return arrow_to_pandas(full, grain)[list(columns)]


#: How many newer snapshots :func:`read_parquet` follows while syncs replace its parts.
SNAPSHOT_RETRIES = 50


def _current_manifest(root: Path) -> dict[str, Any] | None:
    return read_manifest(root) if (root / MANIFEST_NAME).is_file() else None


def _read_grains(
    root: Path,
    manifest: Mapping[str, Any] | None,
    wanted: Sequence[str],
    expression: ds.Expression | None,
    columns: Sequence[str] | None,
    snapshot: int | None,
) -> dict[str, pa.Table]:
    """Each grain read: the pinned Delta versions, or the committed Parquet parts."""
    if is_delta(manifest):
        assert manifest is not None
        versions = pinned_versions(root, manifest, snapshot)
        return {g: delta.read_table(root, g, versions[g], columns, expression) for g in wanted}
    if snapshot is not None:
        raise ExportError(
            f"{root} is a Parquet export: it keeps only its current snapshot (a Delta "
            "export, table_format='delta', keeps the earlier ones)",
            path=str(root),
        )
    partition_by = manifest.get("partition_by") if manifest else detect_partition(root)
    hint = f"rebuild the export with {repair_hint(root, manifest)}"
    return {
        grain: read_grain(
            root,
            grain,
            export_files(root, grain, manifest),
            partition_by,
            expression,
            columns,
            hint=hint,
        )
        for grain in wanted
    }


def _read_snapshot(
    root: Path,
    wanted: Sequence[str],
    expression: ds.Expression | None,
    columns: Sequence[str] | None,
    snapshot: int | None,
) -> dict[str, pa.Table]:
    """The grains of one snapshot. A sync may replace the manifest and delete the parts it
    listed while they are read: then the new manifest is read and the read starts again
    (an error with the manifest unchanged is the export's own, and raised)."""
    manifest = _current_manifest(root)
    for _ in range(SNAPSHOT_RETRIES):
        try:
            return _read_grains(root, manifest, wanted, expression, columns, snapshot)
        except (ExportError, OSError, pa.ArrowException):
            newer = _current_manifest(root)
            if newer is None or newer == manifest:
                raise
            manifest = newer
    raise ExportError(
        f"{root} changed {SNAPSHOT_RETRIES} times while it was read (syncs in a loop?); "
        "read it again when they pause",
        path=str(root),
    )


def read_parquet(
    path: PathLike,
    *,
    grains: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
    filters: Any = None,
    backend: str = "pandas",
    snapshot: int | None = None,
) -> Any:
    """Read an export (or any ``to_parquet`` directory) back.

    ``backend="pandas"`` (default) gives :class:`MediaTables` with the declared columns
    and dtypes (grains not read are empty); ``"arrow"`` a ``{grain: pyarrow.Table}``
    dict and ``"polars"`` a ``{grain: polars.DataFrame}`` dict of the grains read. Only
    committed parts are read when a manifest is present; rows come in part order.
    ``grains`` limits the grains read; ``columns`` the columns of each (every grain read
    must have them); ``filters`` is a pyarrow expression or DNF list such as
    ``[("label", "=", "dog")]``: a column some grain read lacks is a one-line
    :class:`ExportError` naming the column and the grains that have it. A manifest that
    lists missing files is an :class:`ExportError` naming the command that rebuilds it.
    A Delta export is read at the table versions its manifest pins, so the grains belong
    to one snapshot; ``snapshot=N`` reads an earlier one the manifest still keeps.

    Example:
        >>> dogs = [("label", "=", "dog")]
        >>> t = read_parquet("export/", grains=["objects"], filters=dogs)  # doctest: +SKIP
        >>> t.objects.label.unique().tolist()  # doctest: +SKIP
        ['dog']
        >>> pl = read_parquet("export/", grains=["objects"], backend="polars")  # doctest: +SKIP
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
    root = Path(path)
    if not root.is_dir():
        raise ExportError(f"no Parquet export at {root}", path=str(root))
    if not (root / MANIFEST_NAME).is_file() and not any((root / g).is_dir() for g in GRAINS):
        raise ExportError(
            f"no Parquet export at {root}: no manifest and none of the folders {', '.join(GRAINS)}",
            path=str(root),
        )
    wanted = [g for g in GRAINS if grains is None or g in set(grains)]
    unknown = set(GRAINS if grains is None else grains) - set(GRAINS)
    if unknown:
        raise ConfigError(f"unknown grains {sorted(unknown)}; choose from {list(GRAINS)}")
    _check_columns(columns, wanted)
    expression = _filter_expression(filters, wanted)
    tables = _read_snapshot(root, wanted, expression, columns, snapshot)
    if backend == "arrow":
        return tables
    if backend == "polars":
        return {grain: arrow_to_polars(table) for grain, table in tables.items()}
    frames = {grain: _to_pandas(table, grain, columns) for grain, table in tables.items()}
    return MediaTables(**{g: frames[g] if g in frames else empty_frame(g) for g in GRAINS})


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
    lines.extend(failure_line(item) for item in failed[:10])
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10:,} more")
    return lines


def _leftover_lines(root: Path) -> list[str]:
    """A warning about files an interrupted run left (none while a writer holds the lock)."""
    if DirectoryLock(root).current_holder() is not None:
        return []
    left = open_store(root, None, default="parquet").leftovers()
    if not left:
        return []
    parts = [f for f in left if f.name.endswith(".parquet")]
    shown = (parts or left)[0].relative_to(root).as_posix()
    return [
        f"WARNING: {len(left)} file(s) left by an interrupted run ({len(parts)} uncommitted "
        f"part(s), such as {shown}): DuckDB, Polars or Spark globbing *.parquet would read "
        f"them; remove them with: coreviz-frames repair {root}"
    ]


def _footer_rows(path: Path, grain: str, partition_by: str | None, hint: str) -> int:
    """The row count in the footer of a part, after checking it is one (ExportError)."""
    problem = part_problem(path, grain, partition_by)
    if problem is not None:
        raise damaged_part(path, problem, hint)
    return int(pq.ParquetFile(path).metadata.num_rows)


def _grain_stats(root: Path, manifest: Mapping[str, Any]) -> list[tuple[str, int, int, int]]:
    """``(grain, rows, files, bytes)`` of the committed parts, or of the pinned Delta versions."""
    if is_delta(manifest):
        return delta.describe(root, pinned_versions(root, manifest))
    out = []
    hint = f"rebuild the export with {repair_hint(root, manifest)}"
    for grain in GRAINS:
        files = manifest_files(root, manifest, grain)
        rows = sum(_footer_rows(f, grain, manifest.get("partition_by"), hint) for f in files)
        out.append((grain, rows, len(files), sum(f.stat().st_size for f in files)))
    return out


def _parts_line(manifest: Mapping[str, Any]) -> str:
    """Parts (or, for a Delta export, the snapshot and table versions), media, failures."""
    counts = (
        f"media {manifest.get('media_exported', 0):,}   failed {len(manifest.get('failed', [])):,}"
    )
    if not is_delta(manifest):
        return f"parts      {len(manifest.get('parts', []))}   {counts}"
    tables = manifest.get("tables") or {}
    versions = ", ".join(f"{name} v{version}" for name, version in tables.items())
    return f"snapshot   {manifest.get('snapshot')}   {counts}\ntables     {versions}"


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
        + (f", partitioned by {manifest['partition_by']}" if manifest.get("partition_by") else "")
        + (", Delta Lake tables" if is_delta(manifest) else ""),
        f"started    {manifest.get('started_at')}   updated {manifest.get('updated_at')}"
        f"   runs {manifest.get('runs', 1)}",
        _parts_line(manifest),
        "",
        f"{'grain':<10} {'rows':>12} {'files':>6} {'bytes':>12}",
    ]
    mismatched = []
    for grain, rows, nfiles, size in _grain_stats(root, manifest):
        lines.append(f"{grain:<10} {rows:>12,} {nfiles:>6} {size:>12,}")
        if rows != manifest.get("rows", {}).get(grain, rows):
            mismatched.append(grain)
    if mismatched:
        lines.append(f"WARNING: manifest row counts differ from the files for {mismatched}")
    lines += _leftover_lines(root)
    return "\n".join(lines + _failed_lines(manifest.get("failed", [])))

"""Parquet datasets: write, read back, stream a whole collection, resume after a crash.

An export is a directory with one sub-directory per grain and a manifest::

    export/
        _coreviz_manifest.json          what was exported, from where, row counts, failures
        media/part-000000.parquet       one file per grain per batch ("part")
        frames/part-000000.parquet
        captions/ objects/ tags/
        (with partition_by="dataset_id": objects/dataset_id=abc/part-000000.parquet, ...)

Every file carries the declared Arrow schema of its grain (:mod:`.schema`), zstd
compression, bounded row groups and a ``coreviz_frames`` key in its schema
metadata (package version, schema version, grain, box convention). With
``partition_by`` the partition column lives in the hive path, not in the file,
as Spark, DuckDB and Polars expect.

Files are written under a temporary name (``.tmp-part-000042.parquet.<pid>.tmp``:
hidden from pyarrow and not matched by ``*.parquet`` globs) and renamed with
:func:`os.replace` once complete. A part is *committed* when all of its files are
renamed and the manifest (itself replaced atomically) lists it; on
``resume=True`` any part file the manifest does not list is deleted and its
media exported again, and media already in committed parts are skipped, so a
re-run never duplicates a row. The exported media ids are the ``media_id``
column of the committed ``media`` parts (the Parquet files are the record of
what was exported; the manifest lists those files and their row counts).

``overwrite=True`` deletes the manifest, temporary files and the five grain
directories, and nothing else; it refuses (before deleting anything) when a
grain directory holds a file that is not Parquet or one of ours.

Example:
    >>> import coreviz_frames as cvf
    >>> path = cvf.MediaTables.empty().to_parquet("export/")
    >>> cvf.read_parquet(path).objects.shape
    (0, 18)
    >>> report = cvf.export_parquet(client.browse("COLLECTION_ID"), "big/", resume=True)
    >>> print(describe_export("big/"))
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ._version import __version__
from .errors import ConfigError, ExportError, SchemaError
from .ids import normalize_id
from .progress import progress_bar
from .schema import BOX_CONVENTION, GRAINS, SCHEMA_VERSION, SCHEMAS, arrow_to_pandas, empty_frame

if TYPE_CHECKING:
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

#: Name of the manifest file at the root of an export.
MANIFEST_NAME = "_coreviz_manifest.json"
#: Key of the JSON blob in every Parquet file's schema metadata.
METADATA_KEY = "coreviz_frames"
#: Rows per Parquet row group (at most).
DEFAULT_ROW_GROUP_SIZE = 100_000

_MANIFEST_FORMAT = "coreviz_frames.export"
_MANIFEST_VERSION = 1
_TMP_PREFIX = ".tmp-"
_TMP_SUFFIX = ".tmp"
_PART_RE = re.compile(r"^part-(\d{6,})\.parquet$")
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_SECRET_KEY_RE = re.compile(
    r"key|token|secret|passw|auth|credential|cookie|signature|session", re.IGNORECASE
)

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- small helpers


def utc_now() -> str:
    """The current UTC time as ISO-8601 text, as the manifest records it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_metadata(grain: str) -> dict[bytes, bytes]:
    """The ``coreviz_frames`` schema-metadata entry every Parquet file of ``grain`` carries."""
    blob = {
        "package_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "grain": grain,
        "box_convention": BOX_CONVENTION,
    }
    return {METADATA_KEY.encode(): json.dumps(blob, sort_keys=True).encode()}


def part_name(seq: int) -> str:
    """The file name of part ``seq`` (``part-000042.parquet``), sortable by name."""
    return f"part-{seq:06d}.parquet"


def _is_tmp(name: str) -> bool:
    return name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)


def _strip_url(value: str) -> str:
    """Drop user:password@ and secret-looking query parameters from a URL."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc:
        return value
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = "&".join(
        item
        for item in parts.query.split("&")
        if item and not _SECRET_KEY_RE.search(item.split("=", 1)[0])
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _clean_source(value: Any) -> Any:
    """A JSON-safe copy of ``value`` without secret-looking keys or URL credentials."""
    if isinstance(value, Mapping):
        return {
            str(k): _clean_source(v) for k, v in value.items() if not _SECRET_KEY_RE.search(str(k))
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean_source(v) for v in value]
    if isinstance(value, str):
        return _strip_url(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _check_partition_by(partition_by: str | None) -> str | None:
    if partition_by is None:
        return None
    for grain, schema in SCHEMAS.items():
        if partition_by not in schema.names:
            raise ConfigError(
                f"partition_by={partition_by!r}: the {grain} table has no such column "
                "(use a column of every grain, such as 'dataset_id')"
            )
        typ = schema.field(partition_by).type
        if not (pa.types.is_string(typ) or pa.types.is_integer(typ)):
            raise ConfigError(f"partition_by={partition_by!r}: only text or integer columns")
    return partition_by


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    tmp = target.with_name(f"{_TMP_PREFIX}{target.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------- the writer


def _to_arrow(frame: pd.DataFrame, grain: str) -> pa.Table:
    schema = SCHEMAS[grain]
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"cannot write the {grain} table: it has no column {missing[0]!r}", field=missing[0]
        )
    try:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        bad = None  # name the offending column (only on this error path)
        for f in schema:
            column = frame[f.name]
            if not f.nullable and column.isna().any():
                bad = f.name
                break
            try:
                pa.Array.from_pandas(column, type=f.type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                bad = f.name
                break
        where = f"column {bad!r} of the {grain} table" if bad else f"the {grain} table"
        raise SchemaError(
            f"cannot write {where}: it does not fit the declared schema ({exc})", field=bad
        ) from exc
    return table.replace_schema_metadata(file_metadata(grain))


def _split_partitions(table: pa.Table, column: str | None) -> list[tuple[str, pa.Table]]:
    """``(relative directory, table without the partition column)`` per partition value."""
    if column is None:
        return [("", table)]
    values = table.column(column)
    rest = table.drop_columns([column])
    out: list[tuple[str, pa.Table]] = []
    uniques = pc.unique(values).to_pylist()
    for value in sorted((v for v in uniques if v is not None), key=str):
        out.append((f"{column}={quote(str(value), safe='')}", rest.filter(pc.equal(values, value))))
    if None in uniques or not out:
        out.append((f"{column}={_HIVE_NULL}", rest.filter(pc.is_null(values))))
    return out


class ExportStore:
    """One export directory: its manifest, its committed parts, atomic part writes."""

    def __init__(
        self,
        root: PathLike,
        *,
        partition_by: str | None,
        row_group_size: int,
        compression: str,
    ) -> None:
        self.root = Path(root)
        self.partition_by = _check_partition_by(partition_by)
        if row_group_size < 1:
            raise ConfigError(f"row_group_size must be at least 1, not {row_group_size}")
        self.row_group_size = row_group_size
        self.compression = compression
        self.manifest: dict[str, Any] = {}

    # -- opening ----------------------------------------------------------------------

    def open(self, *, overwrite: bool, resume: bool, source: Any) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise ExportError(f"{root} exists and is not a directory", path=str(root))
        entries = sorted(root.iterdir()) if root.exists() else []
        if entries and resume and (root / MANIFEST_NAME).is_file():
            self._open_resume(source)
            return
        if entries and resume and not overwrite:
            raise ExportError(
                f"cannot resume: {root} is not empty and holds no {MANIFEST_NAME}",
                path=str(root),
            )
        if entries and not overwrite:
            raise ExportError(
                f"{root} is not empty: pass overwrite=True to replace the export there, "
                "or resume=True to continue it",
                path=str(root),
            )
        if entries:
            self._clear()
        root.mkdir(parents=True, exist_ok=True)
        now = utc_now()
        self.manifest = {
            "format": _MANIFEST_FORMAT,
            "manifest_version": _MANIFEST_VERSION,
            "package_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "box_convention": BOX_CONVENTION,
            "grains": list(GRAINS),
            "partition_by": self.partition_by,
            "source": _clean_source(source) if source is not None else None,
            "status": "running",
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
            "runs": 1,
            "media_exported": 0,
            "rows": dict.fromkeys(GRAINS, 0),
            "parts": [],
            "failed": [],
        }
        self.save()

    def _open_resume(self, source: Any) -> None:
        manifest = read_manifest(self.root)
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ExportError(
                f"cannot resume {self.root}: it was written with schema version "
                f"{manifest.get('schema_version')}, this is version {SCHEMA_VERSION}",
                path=str(self.root),
            )
        previous = manifest.get("partition_by")
        if self.partition_by is not None and self.partition_by != previous:
            raise ExportError(
                f"cannot resume {self.root} with partition_by={self.partition_by!r}: "
                f"it is partitioned by {previous!r}",
                path=str(self.root),
            )
        self.partition_by = previous
        if source is not None:
            old = (manifest.get("source") or {}).get("collection_id")
            new = (
                _clean_source(source).get("collection_id") if isinstance(source, Mapping) else None
            )
            if old and new and old != new:
                raise ExportError(
                    f"cannot resume {self.root}: it exports collection {old!r}, not {new!r}",
                    path=str(self.root),
                )
            if not manifest.get("source"):
                manifest["source"] = _clean_source(source)
        self.manifest = manifest
        self._drop_uncommitted()
        manifest["status"] = "running"
        manifest["finished_at"] = None
        manifest["runs"] = int(manifest.get("runs", 1)) + 1
        manifest["updated_at"] = utc_now()
        self.save()

    def _grain_entries(self) -> Iterator[Path]:
        for grain in GRAINS:
            gdir = self.root / grain
            if gdir.is_dir():
                yield from gdir.rglob("*")

    def _drop_uncommitted(self) -> None:
        """Delete temporary files and part files that no committed part lists."""
        committed = self.committed_files()
        for entry in list(self._grain_entries()):
            if entry.is_file() and (_is_tmp(entry.name) or entry not in committed):
                entry.unlink()
        for entry in self.root.iterdir():
            if entry.is_file() and _is_tmp(entry.name):
                entry.unlink()

    def _clear(self) -> None:
        """Remove a previous export (grain dirs, manifest, temp files); check everything first."""
        strays = [self.root / g for g in GRAINS if (self.root / g).exists()]
        strays = [p for p in strays if p.is_symlink() or not p.is_dir()]
        for entry in itertools.chain(strays, self._grain_entries()):
            if entry in strays:
                ok = False
            elif entry.is_dir():
                ok = "=" in entry.name
            else:
                ok = entry.name.endswith(".parquet") or _is_tmp(entry.name)
            if not ok:
                raise ExportError(
                    f"refusing to overwrite {self.root}: {entry} does not look like part of an "
                    "export; remove it yourself",
                    path=str(self.root),
                )
        for grain in GRAINS:
            gdir = self.root / grain
            if gdir.is_dir():
                shutil.rmtree(gdir)
        for entry in self.root.iterdir():
            if entry.is_file() and (entry.name == MANIFEST_NAME or _is_tmp(entry.name)):
                entry.unlink()

    # -- state ------------------------------------------------------------------------

    def committed_files(self) -> set[Path]:
        return {
            self.root / rel
            for part in self.manifest.get("parts", [])
            for files in part["files"].values()
            for rel in files
        }

    def next_seq(self) -> int:
        parts = self.manifest.get("parts", [])
        return max((int(p["part"]) for p in parts), default=-1) + 1

    def exported_ids(self) -> set[str]:
        """Media ids of the committed media parts (read from the Parquet files)."""
        ids: set[str] = set()
        for part in self.manifest.get("parts", []):
            for rel in part["files"]["media"]:
                file = self.root / rel
                if self.partition_by == "media_id":  # the id is in the hive path only
                    if pq.ParquetFile(file).metadata.num_rows:
                        ids.add(unquote(file.parent.name.split("=", 1)[1]))
                    continue
                column = pq.read_table(file, columns=["media_id"]).column(0)
                ids.update(column.to_pylist())
        return ids

    def save(self) -> None:
        self.manifest["updated_at"] = utc_now()
        data = json.dumps(self.manifest, indent=1, sort_keys=False).encode()
        _atomic_write_bytes(self.root / MANIFEST_NAME, data + b"\n")

    # -- writing ----------------------------------------------------------------------

    def write_part(self, seq: int, tables: MediaTables, *, media: int) -> dict[str, Any]:
        """Write one part (a file per grain and partition), rename, record it in the manifest."""
        pending: list[tuple[Path, Path]] = []
        files: dict[str, list[str]] = {}
        rows: dict[str, int] = {}
        name = part_name(seq)
        try:
            for grain, frame in tables.items():
                table = _to_arrow(frame, grain)
                rows[grain] = table.num_rows
                files[grain] = []
                for subdir, piece in _split_partitions(table, self.partition_by):
                    rel = Path(grain, subdir, name) if subdir else Path(grain, name)
                    final = self.root / rel
                    final.parent.mkdir(parents=True, exist_ok=True)
                    tmp = final.with_name(f"{_TMP_PREFIX}{name}.{os.getpid()}{_TMP_SUFFIX}")
                    pending.append((tmp, final))
                    with open(tmp, "wb") as fh:
                        pq.write_table(
                            piece,
                            fh,
                            row_group_size=self.row_group_size,
                            compression=self.compression,
                        )
                        fh.flush()
                        os.fsync(fh.fileno())
                    files[grain].append(rel.as_posix())
            for tmp, final in pending:
                os.replace(tmp, final)
        finally:
            for tmp, _ in pending:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        entry = {
            "part": seq,
            "media": media,
            "rows": rows,
            "files": files,
            "committed_at": utc_now(),
        }
        manifest = self.manifest
        manifest["parts"].append(entry)
        manifest["media_exported"] = int(manifest.get("media_exported", 0)) + media
        for grain, n in rows.items():
            manifest["rows"][grain] = int(manifest["rows"].get(grain, 0)) + n
        return entry


# --------------------------------------------------------------------------- write / read


def write_tables(
    tables: MediaTables,
    path: PathLike,
    *,
    partition_by: str | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
    overwrite: bool = False,
) -> Path:
    """Write :class:`~coreviz_frames.tables.MediaTables` as one Parquet directory per grain.

    Every grain gets a file, even with zero rows, so readers always see the
    columns. Refuses a non-empty ``path`` unless ``overwrite`` (see module doc).
    Returns ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> path = write_tables(tables, "export/", partition_by="dataset_id")
        >>> read_parquet(path).media.equals(tables.media)
        True
    """
    store = ExportStore(
        path, partition_by=partition_by, row_group_size=row_group_size, compression=compression
    )
    store.open(overwrite=overwrite, resume=False, source=None)
    store.write_part(0, tables, media=len(tables.media))
    store.manifest["status"] = "complete"
    store.manifest["finished_at"] = utc_now()
    store.save()
    return store.root


def read_manifest(path: PathLike) -> dict[str, Any]:
    """The manifest of the export at ``path`` as a dict; :class:`ExportError` if there is none.

    Example:
        >>> read_manifest("export/")["rows"]["objects"]
        23104
    """
    target = Path(path) / MANIFEST_NAME
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"no {MANIFEST_NAME} in {Path(path)}", path=str(path)) from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"unreadable manifest {target}: {exc}", path=str(path)) from None


def _visible_parquet(gdir: Path) -> list[Path]:
    """Parquet files under ``gdir`` that readers see (no ``.``/``_`` path components)."""
    found = []
    for file in gdir.rglob("*.parquet"):
        rel = file.relative_to(gdir)
        if not any(p.startswith((".", "_")) for p in rel.parts):
            found.append(file)
    return sorted(found, key=lambda f: (f.name, f.relative_to(gdir).as_posix()))


def _grain_files(root: Path, grain: str, manifest: dict[str, Any] | None) -> list[Path]:
    if manifest is None:
        return _visible_parquet(root / grain)
    files = []
    for part in sorted(manifest.get("parts", []), key=lambda p: int(p["part"])):
        for rel in sorted(part["files"].get(grain, [])):
            file = root / rel
            if not file.is_file():
                raise ExportError(f"{file} is listed in the manifest but missing", path=str(root))
            files.append(file)
    return files


def _detect_partition(root: Path) -> str | None:
    gdir = root / "media"
    if gdir.is_dir():
        for entry in sorted(gdir.iterdir()):
            if entry.is_dir() and "=" in entry.name and not entry.name.startswith((".", "_")):
                return entry.name.split("=", 1)[0]
    return None


def _as_expression(filters: Any) -> ds.Expression | None:
    if filters is None or isinstance(filters, ds.Expression):
        return filters
    return pq.filters_to_expression(filters)


def _read_grain(
    root: Path, grain: str, files: Sequence[Path], partition_by: str | None, filters: Any
) -> pa.Table:
    schema = SCHEMAS[grain]
    if not files:
        return schema.empty_table()
    partitioning = None
    if partition_by is not None:
        partitioning = ds.partitioning(pa.schema([schema.field(partition_by)]), flavor="hive")
    dataset = ds.dataset(
        [str(f) for f in files],
        schema=schema,
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=str(root / grain),
    )
    try:
        table = dataset.to_table(filter=_as_expression(filters))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise ExportError(
            f"cannot read {grain} of {root} with {filters!r}: {exc}", path=str(root)
        ) from exc
    return table.select(schema.names)


def read_parquet(
    path: PathLike, *, grains: Iterable[str] | None = None, filters: Any = None
) -> MediaTables:
    """Read an export (or any ``to_parquet`` directory) back into ``MediaTables``.

    Columns and dtypes are exactly the declared ones. Only committed parts are
    read when a manifest is present; rows come in part order. ``grains`` limits
    the grains read (the others are empty); ``filters`` is a pyarrow expression
    or DNF list such as ``[("dataset_id", "=", "abc")]`` applied to every grain
    read, so name only columns they all have (``media_id``, ``dataset_id``).

    Example:
        >>> t = read_parquet("export/", grains=["objects"], filters=[("label", "=", "dog")])
        >>> t.objects.label.unique().tolist()
        ['dog']
    """
    from .tables import MediaTables

    root = Path(path)
    if not root.is_dir():
        raise ExportError(f"no Parquet export at {root}", path=str(root))
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else None
    if manifest is None and not any((root / grain).is_dir() for grain in GRAINS):
        raise ExportError(
            f"no Parquet export at {root}: no manifest and none of the folders {', '.join(GRAINS)}",
            path=str(root),
        )
    partition_by = manifest.get("partition_by") if manifest else _detect_partition(root)
    wanted = set(GRAINS if grains is None else grains)
    unknown = wanted - set(GRAINS)
    if unknown:
        raise ConfigError(f"unknown grains {sorted(unknown)}; choose from {list(GRAINS)}")
    frames = {}
    for grain in GRAINS:
        if grain in wanted:
            files = _grain_files(root, grain, manifest)
            table = _read_grain(root, grain, files, partition_by, filters)
            frames[grain] = arrow_to_pandas(table, grain)
        else:
            frames[grain] = empty_frame(grain)
    return MediaTables(**frames)


# --------------------------------------------------------------------------- streaming export


@dataclass
class ExportReport:
    """What one :func:`export_parquet` run did.

    ``rows`` counts rows written by this run per grain; ``failed`` lists every
    record not exported (``{"id", "status", "reason"}``), including failures of
    earlier runs that were not retried successfully.
    """

    path: Path
    media_exported: int = 0
    media_skipped: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GRAINS, 0))
    failed: list[dict[str, Any]] = field(default_factory=list)
    parts_written: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no record failed."""
        return not self.failed

    def __str__(self) -> str:
        rate = self.media_exported / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"exported {self.media_exported:,} media to {self.path} in {self.elapsed:.1f}s "
            f"({rate:,.0f} media/s, {self.parts_written} parts)"
        ]
        if self.media_skipped:
            lines.append(f"skipped {self.media_skipped:,} media already exported")
        lines.append("rows: " + ", ".join(f"{g} {n:,}" for g, n in self.rows.items()))
        if self.failed:
            lines.append(
                f"FAILED: {len(self.failed):,} records (listed in {MANIFEST_NAME}; "
                "a re-run with resume=True, or --resume, retries them)"
            )
            for item in self.failed[:5]:
                status = f" {item['status']}" if item.get("status") is not None else ""
                lines.append(f"  {item.get('id')}{status}: {item.get('reason')}")
            if len(self.failed) > 5:
                lines.append(f"  ... and {len(self.failed) - 5:,} more")
        return "\n".join(lines)


def _failure(item: Any) -> dict[str, Any]:
    """Normalise one failure (dict, tuple, object or exception) to ``{id, status, reason}``."""
    if isinstance(item, Mapping):
        ident = item.get("id", item.get("media_id"))
        status = item.get("status")
        reason = item.get("reason", item.get("error"))
    elif isinstance(item, tuple):
        ident, rest = (item[0], item[1:]) if item else (None, ())
        err = rest[0] if rest else None
        status = getattr(err, "status", None)
        reason = err
    else:
        ident = getattr(item, "media_id", getattr(item, "id", None))
        status = getattr(item, "status", None)
        reason = getattr(item, "reason", None) or getattr(item, "error", None)
        kind = getattr(item, "error_type", None)  # client.FailedFetch
        if kind and isinstance(reason, str):
            reason = f"{kind}: {reason}"
        if isinstance(item, BaseException):
            reason = item
    if isinstance(reason, BaseException):
        status = status if status is not None else getattr(reason, "status", None)
        reason = f"{type(reason).__name__}: {reason}"
    return {
        "id": None if ident is None else str(ident),
        "status": status if isinstance(status, int) else None,
        "reason": None if reason is None else str(reason),
    }


def _reported_failures(records: Any) -> list[dict[str, Any]]:
    """Failures exposed by a client iterator (``records.report.failed`` or similar)."""
    report = getattr(records, "report", None)
    holder = report if report is not None else records
    for name in ("failed", "failures", "errors"):
        items = getattr(holder, name, None)
        if items is None or callable(items):
            continue
        if isinstance(items, Mapping):
            items = [
                {"id": k, **(v if isinstance(v, Mapping) else {"reason": v})}
                for k, v in items.items()
            ]
        return [_failure(item) for item in list(items)]
    return []


def _record_id(record: Any) -> str | None:
    if isinstance(record, Mapping):
        ident = record.get("id")
        return normalize_id(ident) if isinstance(ident, str) else None
    return None


def _flatten(batch: list[Any]) -> tuple[MediaTables, list[dict[str, Any]]]:
    """``to_tables`` of a batch; a malformed record becomes a failure, not a crashed export."""
    from .flatten import FlattenReport, SkippedRecordWarning
    from .tables import to_tables

    skipped = FlattenReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordWarning)
        tables = to_tables(batch, errors="skip", report=skipped)
    return tables, [_failure((err.media_id, err)) for err in skipped.skipped]


def export_parquet(
    records: Iterable[Mapping[str, Any]],
    path: PathLike,
    *,
    batch_size: int = 1000,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    source: Mapping[str, Any] | None = None,
    partition_by: str | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
) -> ExportReport:
    """Stream media records into a Parquet export, ``batch_size`` media per part.

    Memory is bounded by the batch. ``source`` (e.g. ``{"base_url": ...,
    "collection_id": ..., "filters": {...}}``) goes into the manifest with any
    credential removed. Failed fetches exposed by ``records.report`` (the
    client's ``errors="skip"`` iterators) and records that cannot be flattened
    are listed in the report and the manifest. With ``resume=True`` media of
    committed parts are skipped and an interrupted part is redone (a directory
    without a manifest is refused, or cleared if ``overwrite`` is also given).
    ``ExportError`` when ``path`` is not empty and neither flag is given.

    Example:
        >>> recs = client.browse("COLLECTION_ID", page_size=100)
        >>> src = {"base_url": client.base_url, "collection_id": "COLLECTION_ID"}
        >>> report = export_parquet(recs, "export/", resume=True, source=src)
        >>> print(report)
    """
    started = time.monotonic()
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
    if source is None:
        source = getattr(records, "source", None)
    store = ExportStore(
        path, partition_by=partition_by, row_group_size=row_group_size, compression=compression
    )
    store.open(overwrite=overwrite, resume=resume, source=source)
    manifest = store.manifest
    report = ExportReport(path=store.root)
    done = store.exported_ids()
    # keyed by normalised id, so a record that failed before and is exported now drops out
    failed: dict[Any, dict[str, Any]] = {
        normalize_id(f.get("id")): f for f in manifest.get("failed", [])
    }

    def sync_failures(extra: Iterable[dict[str, Any]] = ()) -> None:
        for item in itertools.chain(_reported_failures(records), extra):
            ident = normalize_id(item["id"])
            if ident is None:
                failed[("no id", len(failed))] = item
            elif ident not in done:
                failed[ident] = item
        manifest["failed"] = list(failed.values())

    batch: list[Any] = []
    batch_ids: set[str] = set()

    def flush() -> None:
        tables, bad = _flatten(batch)
        ids = tables.media["media_id"].tolist()
        store.write_part(store.next_seq(), tables, media=len(ids))
        done.update(ids)
        for ident in ids:
            failed.pop(ident, None)
        sync_failures(bad)
        store.save()
        report.parts_written += 1
        report.media_exported += len(ids)
        for grain, frame in tables.items():
            report.rows[grain] += len(frame)
        batch.clear()
        batch_ids.clear()

    with progress_bar(
        total=len(records) if hasattr(records, "__len__") else None,  # type: ignore[arg-type]
        desc="export",
        unit="media",
        progress=progress,
    ) as bar:
        for record in records:
            bar.update(1)
            if isinstance(record, Mapping) and record.get("type") == "folder":
                continue
            ident = _record_id(record)
            if ident is not None and (ident in done or ident in batch_ids):
                report.media_skipped += 1
                continue
            batch.append(record)
            if ident is not None:
                batch_ids.add(ident)
            if len(batch) >= batch_size:
                flush()
        if batch or not manifest["parts"]:
            flush()  # the last batch; or an empty part so every grain has its columns
    sync_failures()
    manifest["status"] = "complete"
    manifest["finished_at"] = utc_now()
    store.save()
    report.failed = list(manifest["failed"])
    report.elapsed = time.monotonic() - started
    return report


# --------------------------------------------------------------------------- describe


def describe_export(path: PathLike) -> str:
    """A human summary of an export: manifest, then rows and files per grain (from Parquet footers).

    Example:
        >>> print(describe_export("export/"))
        export     /data/export  (complete)
        ...
    """
    root = Path(path)
    manifest = read_manifest(root)
    source = manifest.get("source") or {}
    lines = [f"export     {root}  ({manifest.get('status', '?')})"]
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
        files = _grain_files(root, grain, manifest)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        size = sum(f.stat().st_size for f in files)
        lines.append(f"{grain:<10} {rows:>12,} {len(files):>6} {size:>12,}")
        if rows != manifest.get("rows", {}).get(grain, rows):
            mismatched.append(grain)
    if mismatched:
        lines.append(f"WARNING: manifest row counts differ from the files for {mismatched}")
    failed = manifest.get("failed", [])
    if failed:
        lines.append("")
        lines.append(f"failed records ({len(failed):,}):")
        for item in failed[:10]:
            status = f" {item['status']}" if item.get("status") is not None else ""
            lines.append(f"  {item.get('id')}{status}: {item.get('reason')}")
        if len(failed) > 10:
            lines.append(f"  ... and {len(failed) - 10:,} more")
    return "\n".join(lines)

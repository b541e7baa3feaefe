"""The Delta Lake tables of an export: one table per grain, written and read with delta-rs.

A Delta export (``table_format="delta"``) keeps each grain as a Delta table at
``<export>/<grain>/`` (Parquet data files plus a ``_delta_log/`` of atomic commits) and
the fingerprints of its media in one more table, ``_coreviz_index/`` (hidden from
readers by its leading ``_``). Every table carries the grain's declared Arrow schema
(:mod:`.schema`): nullable integers, UTC microsecond timestamps, lists, and the
partition column typed in the log (a dataset id ``"0042"`` stays text).

This module knows nothing of manifests: it creates, appends to, replaces the rows of
some media in, rolls back, vacuums and reads tables; :mod:`.deltastore` decides which
versions make the export. A commit never deletes a file: files it replaces stay until
:func:`vacuum` removes those replaced longer ago than the retention, so a reader pinned
to an older version never finds a file missing. Every error of delta-rs becomes an
:class:`~coreviz_frames.errors.ExportError` naming the table.

Example:
    >>> import tempfile
    >>> from coreviz_frames.schema import SCHEMAS
    >>> root = Path(tempfile.mkdtemp())
    >>> create_table(root, "tags", None)
    0
    >>> append(root, "tags", SCHEMAS["tags"].empty_table(), None), latest_version(root, "tags")
    (0, 0)
    >>> read_table(root, "tags", 0).schema.equals(SCHEMAS["tags"])
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from coreviz_frames._util.optional import import_optional
from coreviz_frames.errors import ExportError
from coreviz_frames.schema import GRAINS, SCHEMAS

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "DEFAULT_RETENTION",
    "INDEX_TABLE",
    "TABLES",
    "any_table",
    "append",
    "create_table",
    "describe",
    "is_delta",
    "pinned_versions",
    "read_table",
    "replace_media",
    "require_deltalake",
    "restore",
    "retention_hours",
    "staged_reader",
    "table_dataset",
    "table_rows",
    "vacuum",
]

#: The fingerprint table of a Delta export (media id, fingerprint, listing fingerprint).
INDEX_TABLE = "_coreviz_index"
#: Every table of a Delta export: the five grains, then the fingerprints.
TABLES: tuple[str, ...] = (*GRAINS, INDEX_TABLE)
#: How long a file a commit replaced stays for readers pinned to an older version.
DEFAULT_RETENTION = timedelta(days=7)
INDEX_SCHEMA = pa.schema(
    [
        pa.field("media_id", pa.string(), nullable=False),
        pa.field("fingerprint", pa.string()),
        pa.field("listing_fingerprint", pa.string()),
    ]
)
#: A checkpoint every 10 commits (delta-rs's default: 100): every write replays the log
#: since the last checkpoint, and a 50,000-media export (50 commits per table) peaked at
#: 451 MB instead of 414 MB with the default (bench_delta.py).
_CONFIGURATION = {"delta.checkpointInterval": "10"}


def require_deltalake() -> None:
    """Refuse, naming the package, when delta-rs (a dependency imported late) is missing."""
    _deltalake()


@cache
def _deltalake() -> Any:
    """delta-rs, imported when a Delta table is first touched."""
    purpose = 'Delta Lake exports (table_format="delta")'
    import_optional("deltalake.exceptions", extra=None, purpose=purpose)
    return import_optional("deltalake", extra=None, purpose=purpose)


@cache
def _writer() -> Any:
    return _deltalake().WriterProperties(compression="ZSTD")


def _write(*args: Any, **kwargs: Any) -> None:
    _deltalake().write_deltalake(*args, writer_properties=_writer(), **kwargs)


def _schema(name: str) -> pa.Schema:
    schema = INDEX_SCHEMA if name == INDEX_TABLE else SCHEMAS[name]
    return schema.remove_metadata()


def _partitions(name: str, partition_by: str | None) -> list[str] | None:
    return [partition_by] if partition_by and name != INDEX_TABLE else None


@contextlib.contextmanager
def _translated(root: Path, name: str, doing: str) -> Iterator[None]:
    """delta-rs errors as one ExportError naming the table and what was being done."""
    errors = (_deltalake().exceptions.DeltaError, OSError, pa.ArrowException)
    try:
        yield
    except errors as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"{root}: cannot {doing} the Delta table {name}/ ({type(exc).__name__}: {first}); "
            f"run: coreviz-frames repair {root}, or re-export with --overwrite",
            path=str(root),
        ) from exc


def retention_hours(retention: timedelta | float | int) -> int:
    """``retention`` (a timedelta, or hours) as whole hours, at least 0.

    Example:
        >>> retention_hours(timedelta(days=7)), retention_hours(1.5)
        (168, 1)
    """
    hours = retention.total_seconds() / 3600 if isinstance(retention, timedelta) else retention
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours < 0:
        raise ExportError(f"retention must be a timedelta or hours >= 0, not {retention!r}")
    return int(hours)


def _table(root: Path, name: str, version: int | None = None) -> DeltaTable:
    with _translated(root, name, "open"):
        return _deltalake().DeltaTable(str(root / name), version=version)


def latest_version(root: Path, name: str) -> int | None:
    """The newest version of table ``name`` under ``root`` (None when there is none)."""
    if not (root / name / "_delta_log").is_dir():
        return None
    try:
        return _deltalake().DeltaTable(str(root / name)).version()
    except _deltalake().exceptions.TableNotFoundError:
        return None  # a log folder a killed create left without its first commit
    except _deltalake().exceptions.DeltaError as exc:
        with _translated(root, name, "open"):
            raise exc


def create_table(root: Path, name: str, partition_by: str | None) -> int:
    """Create table ``name`` empty, with its declared schema; returns its version (0)."""
    with _translated(root, name, "create"):
        _deltalake().DeltaTable.create(
            str(root / name),
            _schema(name),
            mode="error",
            partition_by=_partitions(name, partition_by),
            configuration=_CONFIGURATION,
        )
    return 0


def append(root: Path, name: str, table: pa.Table, partition_by: str | None) -> int:
    """Append ``table`` to ``name`` in one commit (none for zero rows); the new version."""
    if table.num_rows:
        with _translated(root, name, "append to"):
            _write(
                str(root / name),
                table.cast(_schema(name)),
                mode="append",
                partition_by=_partitions(name, partition_by),
            )
    version = latest_version(root, name)
    assert version is not None
    return version


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def media_predicate(media_ids: Iterable[str]) -> str:
    """The SQL predicate that selects the rows of ``media_ids``.

    Example:
        >>> media_predicate(["b", "a'x"])
        "media_id IN ('a''x', 'b')"
    """
    return "media_id IN (" + ", ".join(_sql_text(i) for i in sorted(set(media_ids))) + ")"


def replace_media(
    root: Path,
    name: str,
    data: pa.Table | pa.RecordBatchReader,
    media_ids: Iterable[str],
    partition_by: str | None,
) -> int:
    """One commit: the rows of ``media_ids`` leave table ``name`` and ``data`` (rows of
    those media only) comes in; the files it rewrites stay until a vacuum. New version."""
    ids = set(media_ids)
    where = str(root / name)
    parts = _partitions(name, partition_by)
    with _translated(root, name, "commit to"):
        if ids:
            _write(
                where, data, mode="overwrite", predicate=media_predicate(ids), partition_by=parts
            )
        else:
            _write(where, data, mode="append", partition_by=parts)
    version = latest_version(root, name)
    assert version is not None
    return version


def restore(root: Path, name: str, version: int) -> bool:
    """Make ``version`` the newest state of ``name`` again (a new commit), when a later
    commit exists; True if it did. Files stay (a reader of any version still finds them)."""
    latest = latest_version(root, name)
    if latest is None or latest == version:
        return False
    with _translated(root, name, f"restore version {version} of"):
        _table(root, name).restore(version)
    return True


def vacuum(root: Path, name: str, retention: timedelta | float, *, full: bool = False) -> list[str]:
    """Delete the files of ``name`` that commits replaced more than ``retention`` ago
    (``full``: also files no commit ever listed, such as those of a killed write).
    Returns the files deleted."""
    if latest_version(root, name) is None:
        return []
    with _translated(root, name, "vacuum"):
        return list(
            _table(root, name).vacuum(
                retention_hours=retention_hours(retention),
                dry_run=False,
                enforce_retention_duration=False,
                full=full,
            )
        )


def table_dataset(root: Path, name: str, version: int) -> ds.Dataset:
    """Version ``version`` of ``name`` as a pyarrow dataset (partition column included)."""
    table = _table(root, name, version)
    with _translated(root, name, f"read version {version} of"):
        return table.to_pyarrow_dataset()


def read_table(
    root: Path,
    name: str,
    version: int,
    columns: Sequence[str] | None = None,
    filters: ds.Expression | None = None,
) -> pa.Table:
    """Rows of version ``version`` of ``name``, cast to the declared schema (or its
    ``columns``), filtered by ``filters``."""
    schema = SCHEMAS.get(name, INDEX_SCHEMA)
    names = schema.names if columns is None else list(columns)
    dataset = table_dataset(root, name, version)
    with _translated(root, name, f"read version {version} of"):
        table = dataset.to_table(columns=names, filter=filters)
    target = pa.schema([schema.field(n) for n in names], metadata=schema.metadata)
    return table.select(names).cast(target)


def _add_actions(root: Path, name: str, version: int, doing: str) -> pa.Table:
    """The log's add actions (one row per data file) of version ``version`` of ``name``."""
    table = _table(root, name, version)
    with _translated(root, name, doing):
        return pa.table(table.get_add_actions(flatten=True))


def _rows(actions: pa.Table) -> int:
    if not actions.num_rows:
        return 0
    return int(sum(v or 0 for v in actions.column("num_records").to_pylist()))


def _files(root: Path, name: str, actions: pa.Table) -> list[Path]:
    return [root / name / path for path in actions.column("path").to_pylist()]


def table_rows(root: Path, name: str, version: int) -> int:
    """The row count of version ``version`` of ``name`` (from the log's file statistics)."""
    return _rows(_add_actions(root, name, version, "count the rows of"))


def data_files(root: Path, name: str, version: int) -> list[Path]:
    """The Parquet data files of version ``version`` of ``name``."""
    return _files(root, name, _add_actions(root, name, version, "list the files of"))


def staged_reader(files: Sequence[Path], name: str) -> pa.RecordBatchReader:
    """A stream over staged Parquet ``files`` of table ``name`` (its declared schema)."""
    schema = _schema(name)

    def batches() -> Iterator[pa.RecordBatch]:
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches():
                yield from pa.Table.from_batches([batch]).cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def any_table(root: Path) -> bool:
    """True when a Delta log exists under any table folder of ``root``."""
    return any((root / name / "_delta_log").is_dir() for name in TABLES)


def describe(root: Path, versions: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    """``(table, rows, files, bytes)`` of each grain at its pinned version."""
    out = []
    for grain in GRAINS:
        actions = _add_actions(root, grain, int(versions[grain]), "list the files of")
        files = _files(root, grain, actions)
        size = sum(f.stat().st_size for f in files if f.is_file())
        out.append((grain, _rows(actions), len(files), size))
    return out


def is_delta(manifest: Mapping[str, Any] | None) -> bool:
    """True for the manifest of a Delta export.

    Example:
        >>> is_delta({"table_format": "delta"}), is_delta(None)
        (True, False)
    """
    return manifest is not None and manifest.get("table_format") == "delta"


def pinned_versions(
    root: Path | str, manifest: Mapping[str, Any], snapshot: int | None = None
) -> dict[str, int]:
    """The table versions the manifest pins for ``snapshot`` (None: the current one);
    ExportError when it keeps no such snapshot.

    Example:
        >>> m = {"tables": {"media": 3}, "snapshots": [{"snapshot": 1, "tables": {"media": 1}}]}
        >>> pinned_versions("x", m), pinned_versions("x", m, 1)
        ({'media': 3}, {'media': 1})
    """
    if snapshot is None:
        tables = manifest.get("tables")
    else:
        kept = {s.get("snapshot"): s.get("tables") for s in manifest.get("snapshots") or []}
        if snapshot not in kept:
            raise ExportError(
                f"{root}: snapshot {snapshot} is not among the snapshots its manifest keeps "
                f"({sorted(k for k in kept if k is not None)})",
                path=str(root),
            )
        tables = kept[snapshot]
    if not isinstance(tables, Mapping) or not tables:
        raise ExportError(
            f"{root}: this Delta export has no committed snapshot yet (an interrupted first "
            f"run): run the same command again, or coreviz-frames repair {root}",
            path=str(root),
        )
    return {str(k): int(v) for k, v in tables.items()}

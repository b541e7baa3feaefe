"""Other engines on an export: its dataset card (``README.md``) and DuckDB views.

An export holds five grains with different columns, so a reader pointed at the export
directory itself (``pd.read_parquet(export_dir)``, a DuckDB ``**/*.parquet`` glob) mixes
them. Every export therefore carries a dataset card, ``README.md``, whose ``configs:``
header gives one Hugging Face ``datasets`` configuration per grain
(``load_dataset(export_dir, "objects")``) and whose text says where to point pandas,
DuckDB, Polars and Spark; :func:`duckdb_views` makes one DuckDB view per grain.

Example:
    >>> card = dataset_card(None)
    >>> "config_name: objects" in card and 'path: "objects/**/*.parquet"' in card
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames._version import __version__
from coreviz_frames.errors import ConfigError, ExportError
from coreviz_frames.exports import delta
from coreviz_frames.exports.grainfiles import detect_partition, visible_parquet
from coreviz_frames.exports.manifest import MANIFEST_NAME, manifest_files, read_manifest
from coreviz_frames.exports.manifestcheck import hive_layout
from coreviz_frames.schema import GRAINS, SCHEMAS

__all__ = ["CARD_NAME", "duckdb_views", "export_files", "is_our_card", "write_dataset_card"]

#: The dataset card's file name, at the top of every export.
CARD_NAME = "README.md"
_MARK = "<!-- written by coreviz_frames: rewritten on every export run -->"

_ONE_ROW_PER = {
    "media": "media file (image, video, PDF)",
    "frames": "frame (an image is one frame; a video or PDF has several)",
    "captions": "caption of a frame",
    "objects": "detected object (box, polygon, label)",
    "tags": "tag value of a media",
}

PathLike = str | os.PathLike


def _delta_card(partition_by: str | None) -> str:
    """The dataset card of a Delta export: every engine through a Delta reader."""
    rows = "".join(f"| `{g}/` | {_ONE_ROW_PER[g]} | {len(SCHEMAS[g])} |\n" for g in GRAINS)
    parted = (
        f"\nEach table is partitioned by `{partition_by}`, typed in the Delta log (a value "
        "such as `0042` stays text).\n"
        if partition_by
        else ""
    )
    return (
        f"{_MARK}\n\n# CoreViz export (Delta Lake)\n\nWritten by coreviz_frames {__version__}. "
        "Each grain folder is a **Delta table**: read it with a Delta reader, never with a "
        "Parquet glob (a glob also reads the files that later commits replaced, until a "
        "vacuum removes them). Ancestor ids (`media_id`, `frame_id`) are in every row.\n\n"
        f"| folder | one row per | columns |\n|---|---|---|\n{rows}{parted}\n"
        "`_coreviz_manifest.json` pins, for each snapshot, the version of each table "
        "(`tables`, and `snapshots` for the last ones): `coreviz_frames.read_parquet` reads "
        "those versions, so its five grains always belong to one snapshot. A reader of one "
        "table reads its newest version.\n\n"
        "```python\n"
        'deltalake.DeltaTable("objects").to_pyarrow_table()          # pyarrow\n'
        'deltalake.DeltaTable("objects").to_pandas()                 # pandas\n'
        'pl.read_delta("objects")                                    # Polars (or pl.scan_delta)\n'
        'spark.read.format("delta").load("objects")                  # Spark (delta-spark)\n'
        'datasets.Dataset(deltalake.DeltaTable("objects").to_pyarrow_table())  # Hugging Face\n'
        'coreviz_frames.duckdb_views(con, "path/to/export")           # DuckDB views\n'
        "```\n\n"
        "```sql\n"
        "SELECT * FROM delta_scan('objects');  -- DuckDB with its delta extension\n"
        "```\n"
    )


def dataset_card(
    partition_by: str | None, table_format: str = "parquet", *, hive: bool = False
) -> str:
    """The text of an export's ``README.md``: a ``configs:`` header, then where to read
    (for a Delta export, no ``configs:``: a Parquet glob would read replaced files).

    Example:
        >>> dataset_card("dataset_id").count("config_name:")
        5
        >>> "pl.read_delta" in dataset_card(None, "delta")
        True
    """
    if table_format == "delta":
        return _delta_card(partition_by)
    configs = "".join(
        f"- config_name: {grain}\n"
        "  data_files:\n"
        "  - split: train\n"
        f'    path: "{grain}/**/*.parquet"\n'
        for grain in GRAINS
    )
    rows = "".join(f"| `{g}/` | {_ONE_ROW_PER[g]} | {len(SCHEMAS[g])} |\n" for g in GRAINS)
    parted = _partition_text(partition_by, hive)
    hive_sql = "true" if hive else "false"
    return (
        f"---\nconfigs:\n{configs}---\n{_MARK}\n\n"
        f"# CoreViz export\n\nWritten by coreviz_frames {__version__}. One folder per grain, "
        "each with its own columns: **point a reader at one grain folder, never at this "
        "directory** (that would mix five tables). Ancestor ids (`media_id`, `frame_id`) "
        "are in every row, so most questions need no join.\n\n"
        f"| folder | one row per | columns |\n|---|---|---|\n{rows}{parted}\n"
        "Only the files listed in `_coreviz_manifest.json` belong to the export; "
        "`coreviz-frames info` checks it and `coreviz-frames repair` removes leftovers of an "
        "interrupted run.\n\n"
        "```python\n"
        'pd.read_parquet("objects")                                   # pandas\n'
        f'pl.read_parquet("objects/**/*.parquet", hive_partitioning={hive})  # Polars\n'
        'spark.read.option("recursiveFileLookup", "true").parquet("objects")  # Spark\n'
        'datasets.load_dataset("path/to/export", "objects")           # Hugging Face\n'
        'coreviz_frames.duckdb_views(con, "path/to/export")            # DuckDB views\n'
        "```\n\n"
        "```sql\n"
        f"SELECT * FROM read_parquet('objects/**/*.parquet', hive_partitioning = {hive_sql});\n"
        "```\n"
    )


def _partition_text(partition_by: str | None, hive: bool) -> str:
    if not partition_by:
        return ""
    if hive:
        return (
            f"\nThe folders are hive-partitioned by `{partition_by}` "
            f"(`objects/{partition_by}=.../part-000000.parquet`); a null value is "
            "`__HIVE_DEFAULT_PARTITION__`.\n"
        )
    return (
        f"\nEach value of `{partition_by}` has its own folder "
        f"(`objects/{partition_by}-.../part-000000.parquet`; a null value is "
        f"`{partition_by}-__HIVE_DEFAULT_PARTITION__`). The column is inside every file, "
        "so each reader takes its value and type from the files (no hive option: `0042` "
        "stays the text `0042`, a null stays null).\n"
    )


def is_our_card(path: Path) -> bool:
    """True if ``path`` is a dataset card this package wrote (it carries the mark).

    Example:
        >>> import tempfile
        >>> is_our_card(write_dataset_card(tempfile.mkdtemp(), None))
        True
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _MARK in fh.read(64 * 1024)
    except OSError:
        return False


def write_dataset_card(
    root: PathLike, partition_by: str | None, table_format: str = "parquet", *, hive: bool = False
) -> Path | None:
    """Write ``README.md`` into the export ``root`` (atomically, and only when it changes);
    a README.md that this package did not write is left alone (and ``None`` returned).

    Example:
        >>> import tempfile
        >>> write_dataset_card(tempfile.mkdtemp(), None).name
        'README.md'
    """
    target = Path(root) / CARD_NAME
    text = dataset_card(partition_by, table_format, hive=hive)
    if target.exists():
        try:
            current = target.read_text(encoding="utf-8", errors="replace")
        except OSError:
            current = ""
        if _MARK not in current:
            return None
        if current == text:
            return target  # unchanged (a resumed run): nothing to write
    atomic_write_bytes(target, text.encode("utf-8"))
    return target


def export_files(
    root: PathLike, grain: str, manifest: Mapping[str, Any] | None = None
) -> list[Path]:
    """The Parquet files of ``grain`` that make the export at ``root``.

    With a manifest, only its committed parts (a leftover of an interrupted run is not
    one); without (a folder written by another tool), every visible ``*.parquet`` file.

    Example:
        >>> export_files("export/", "objects")  # doctest: +SKIP
        [PosixPath('export/objects/part-000000.parquet')]
    """
    root = Path(root)
    if grain not in GRAINS:
        raise ConfigError(f"unknown grain {grain!r}; choose from {', '.join(GRAINS)}")
    if manifest is None and (root / MANIFEST_NAME).is_file():
        manifest = read_manifest(root)
    if manifest is None:
        return visible_parquet(root / grain)
    return manifest_files(root, manifest, grain)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_prefix(prefix: Any) -> str:
    """``prefix`` if it is empty or an SQL identifier (letters, digits, ``_``), else ConfigError."""
    if not isinstance(prefix, str) or (prefix and not _IDENTIFIER.fullmatch(prefix)):
        raise ConfigError(
            f"prefix={prefix!r} is not an SQL identifier: use letters, digits and _ only, "
            "not starting with a digit (such as 'cv_')"
        )
    return prefix


def _has_delta_extension(con: Any) -> bool:
    """True when DuckDB's ``delta`` extension is installed and loads (never downloads)."""
    try:
        rows = con.execute(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'delta'"
        ).fetchall()
        if not rows or not rows[0][0]:
            return False
        con.execute("LOAD delta").fetchall()
    except Exception:
        return False
    return True


def _delta_views(con: Any, root: Path, manifest: Mapping[str, Any], prefix: str) -> list[str]:
    """Views over a Delta export: ``delta_scan`` (the newest version of each table, so a
    view follows the syncs), else the Arrow dataset of the version the manifest pins,
    registered in DuckDB (the view keeps that snapshot; its files stay until a vacuum
    past the retention; call :func:`duckdb_views` again for a newer snapshot)."""
    scan = _has_delta_extension(con)
    versions = delta.pinned_versions(root, manifest)
    names = []
    for grain in GRAINS:
        view = f"{prefix}{grain}"
        if scan:
            source = f"delta_scan({_sql_text(os.fspath(root / grain))})"
        else:
            source = f'"__coreviz_delta_{view}"'
            con.register(source.strip('"'), delta.table_dataset(root, grain, versions[grain]))
        columns = ", ".join(f'"{name}"' for name in SCHEMAS[grain].names)
        con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT {columns} FROM {source}')
        names.append(view)
    return names


def _view_source(root: Path, grain: str, manifest: Mapping[str, Any] | None) -> str:
    """What a view of ``grain`` reads, as SQL: a glob of the grain folder (so the view
    stays exact across syncs, which leave exactly the current parts there), or the list
    of files when the path has glob characters. ExportError when the folder holds a part
    no manifest lists (a killed run's: ``coreviz-frames repair`` removes it)."""
    files = export_files(root, grain, manifest)
    if not files:
        raise ExportError(f"{root}: the {grain} folder holds no Parquet file", path=str(root))
    if any(c in os.fspath(root.resolve()) for c in "*?[]{}"):
        return "[" + ", ".join(_sql_text(os.fspath(f)) for f in files) + "]"
    pattern = "part-*.parquet" if manifest is not None else "*.parquet"
    folder = root.resolve() / grain
    found = set(folder.glob(f"**/{pattern}"))
    extra = sorted(found - {f.resolve() for f in files})
    if manifest is not None and extra:
        raise ExportError(
            f"{root}: {extra[0]} is a part its manifest does not list (left by an interrupted "
            f"run), which a view of the folder would read; run: coreviz-frames repair {root}",
            path=str(root),
        )
    return _sql_text(f"{folder.as_posix()}/**/{pattern}")


def duckdb_views(con: Any, export_dir: PathLike, *, prefix: str = "") -> list[str]:
    """Create one DuckDB view per grain (``media``, ``frames``, ...) over an export.

    Each view reads its grain folder (a glob), so views made before a sync are exact after
    it; with the declared column order, and a hive partition column typed as declared
    (never guessed from the folder names). A folder holding a part the manifest does not
    list (left by an interrupted run) is an :class:`ExportError` naming the repair. Returns the
    view names. ``prefix`` is put before each name (``prefix="cv_"`` gives ``cv_objects``);
    it must be an SQL identifier (letters, digits, ``_``), else :class:`ConfigError`.
    Over a Delta export the views read each table with DuckDB's ``delta_scan`` when its
    ``delta`` extension is installed (nothing is downloaded), else the Arrow dataset of
    the snapshot the manifest pins (call again after a sync to see the new one).

    Example:
        >>> import duckdb  # doctest: +SKIP
        >>> con = duckdb.connect()  # doctest: +SKIP
        >>> duckdb_views(con, "export/")  # doctest: +SKIP
        ['media', 'frames', 'captions', 'objects', 'tags']
        >>> con.sql("SELECT label, count(*) FROM objects GROUP BY label")  # doctest: +SKIP
    """
    prefix = _check_prefix(prefix)
    root = Path(export_dir)
    if not root.is_dir():
        raise ExportError(f"no Parquet export at {root}", path=str(root))
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else None
    if delta.is_delta(manifest):
        assert manifest is not None
        return _delta_views(con, root, manifest, prefix)
    partition_by = manifest.get("partition_by") if manifest else detect_partition(root)
    names = []
    for grain in GRAINS:
        paths = _view_source(root, grain, manifest)
        options = ""
        if partition_by and (manifest is None or hive_layout(manifest)):
            integer = pa.types.is_integer(SCHEMAS[grain].field(partition_by).type)
            typ = _sql_text("BIGINT" if integer else "VARCHAR")
            options = (
                ", hive_partitioning = true, hive_types_autocast = false"
                f", hive_types = {{{_sql_text(partition_by)}: {typ}}}"
            )
        columns = ", ".join(f'"{name}"' for name in SCHEMAS[grain].names)
        view = f"{prefix}{grain}"
        con.execute(
            f'CREATE OR REPLACE VIEW "{view}" AS SELECT {columns} '
            f"FROM read_parquet({paths}{options})"
        )
        names.append(view)
    return names

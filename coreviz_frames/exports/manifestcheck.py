"""What a manifest may say: every entry's JSON type, and every path it lists.

A manifest is read by :func:`coreviz_frames.exports.manifest.read_manifest`, which calls
:func:`check_manifest` before anyone uses it. The store only reads or deletes a file that
its manifest lists, so the paths are checked first: each is relative, inside its grain
folder (a part file, ``<grain>/part-NNNNNN.parquet``, or one level deeper in a partition
folder of the export's ``partition_by`` column) or inside the fingerprint folder
(``_coreviz_index/``), of a known kind, and listed once. Anything else (``../x``, an
absolute path, an unknown ``files`` key, a file listed twice, a ``parts`` that is not a
list, a part without ``files``) is described by :func:`manifest_problem`, which
``read_manifest`` turns into an :class:`~coreviz_frames.errors.ExportError` naming the
entry, so nothing is read or deleted through it.

Example:
    >>> part = {"part": 0, "media": 1, "rows": {}, "files": {"media": ["../x.parquet"]}}
    >>> manifest_problem({"parts": [part]})
    "parts[0].files.media[0] is '../x.parquet', not a part file inside media/"
    >>> manifest_problem({"parts": [], "failed": []}) is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from coreviz_frames._util.checks import is_int
from coreviz_frames.schema import GRAINS, SCHEMAS

__all__ = [
    "INDEX_DIR",
    "INDEX_SUFFIX",
    "PART_RE",
    "hive_layout",
    "is_partition_folder",
    "manifest_problem",
]

#: Folder of the per-part fingerprint files (see :mod:`.store`).
INDEX_DIR = "_coreviz_index"
#: The suffix of a fingerprint file (Parquet inside; no ``*.parquet`` glob matches it).
INDEX_SUFFIX = ".index"
#: The name of a part file of a grain.
PART_RE = re.compile(r"^part-(\d{6,})\.parquet$")
_INDEX_RE = re.compile(r"^part-\d{6,}(-s\d+)?\.(parquet|index)$")

#: Top-level keys and the JSON types they must have when present.
_TYPES: dict[str, tuple[type, ...]] = {
    "parts": (list,),
    "failed": (list,),
    "rows": (dict,),
    "status": (str,),
    "partition_by": (str, type(None)),
    "source": (dict, type(None)),
    "snapshot": (int,),
    "runs": (int,),
    "media_exported": (int,),
    "syncs": (list,),
    "schema_version": (int, str, type(None)),
    "next_part": (int,),
}


def is_index_name(name: str) -> bool:
    """True for the name of a fingerprint file (``part-000003.index``, or the older
    ``part-000003-s7.parquet``).

    Example:
        >>> is_index_name("part-000003-s7.index"), is_index_name("notes.txt")
        (True, False)
    """
    return bool(_INDEX_RE.match(name))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _top_level_problem(manifest: Mapping[str, Any]) -> str | None:
    for key, types in _TYPES.items():
        if key not in manifest:
            continue
        value = manifest[key]
        ok = is_int(value) if types == (int,) else isinstance(value, types)
        if not ok or (isinstance(value, bool) and int not in types):
            return f"{key} is {_type_name(value)} {value!r:.60}, not {types[0].__name__}"
    partition_by = manifest.get("partition_by")
    if partition_by is not None and any(partition_by not in s.names for s in SCHEMAS.values()):
        return f"partition_by is {partition_by!r}, not a column of every grain"
    for i, entry in enumerate(manifest.get("failed", [])):
        if not isinstance(entry, dict):
            return f"failed[{i}] is {_type_name(entry)}, not an object"
    return None


def _path_problem(where: str, rel: Any, grain: str, partition_by: str | None) -> str | None:
    """Why ``rel`` cannot be a file of ``grain`` (None when it can)."""
    what = f"a part file inside {grain}/"
    if not isinstance(rel, str) or "\\" in rel or "\x00" in rel:
        return f"{where} is {rel!r:.80}, not {what}"
    path = PurePosixPath(rel)
    parts = rel.split("/")
    if path.is_absolute() or any(p in ("", ".", "..") for p in parts) or parts[0] != grain:
        return f"{where} is {rel!r:.80}, not {what}"
    if not PART_RE.match(parts[-1]):
        return f"{where} is {rel!r:.80}, not {what}"
    depth = 2 if partition_by is None else 3
    if len(parts) != depth or (depth == 3 and not is_partition_folder(parts[1], partition_by)):
        shape = f"{grain}/part-NNNNNN.parquet" if depth == 2 else f"{grain}/<partition>/part-..."
        return f"{where} is {rel!r:.80}, not {what} ({shape})"
    return None


def is_partition_folder(name: str, partition_by: str | None) -> bool:
    """True for the name of a partition folder of ``partition_by`` (``dataset_id=abc``).

    Example:
        >>> is_partition_folder("dataset_id=0042", "dataset_id"), is_partition_folder("..", "x")
        (True, False)
    """
    return (
        partition_by is not None
        and name.startswith((f"{partition_by}=", f"{partition_by}-"))
        and "/" not in name
    )


def hive_layout(manifest: Mapping[str, Any]) -> bool:
    """True for a partitioned export of an older version: ``<column>=<value>`` folders, the
    column only in the path (new ones keep it in the files, folders ``<column>-<value>``).

    Example:
        >>> part = {"files": {"media": ["media/dataset_id=a/part-000000.parquet"]}}
        >>> hive_layout({"partition_by": "dataset_id", "parts": [part]})
        True
    """
    if not manifest.get("partition_by"):
        return False
    for part in manifest.get("parts", []):
        for rels in part.get("files", {}).values():
            for rel in rels:
                return "=" in rel.split("/")[1]
    return False


def _index_problem(where: str, rel: Any) -> str | None:
    if not isinstance(rel, str) or "\\" in rel or "\x00" in rel:
        return f"{where} is {rel!r:.80}, not a fingerprint file inside {INDEX_DIR}/"
    parts = rel.split("/")
    if len(parts) != 2 or parts[0] != INDEX_DIR or not is_index_name(parts[1]):
        return f"{where} is {rel!r:.80}, not a fingerprint file inside {INDEX_DIR}/"
    return None


def _part_files(i: int, part: Any, partition_by: str | None) -> Iterator[tuple[str, Any]]:
    """``(where, problem or path)`` for every file of part ``i``; a problem is yielded
    as ``(where, None)`` after being put in ``where``."""
    files = part.get("files")
    if not isinstance(files, dict):
        yield f"parts[{i}].files is {_type_name(files)}, not an object of grain: [files]", None
        return
    for grain, rels in files.items():
        where = f"parts[{i}].files.{grain}"
        if grain not in GRAINS:
            yield f"{where} is not a grain (one of {', '.join(GRAINS)})", None
            return
        if not isinstance(rels, list):
            yield f"{where} is {_type_name(rels)}, not a list of files", None
            return
        for j, rel in enumerate(rels):
            problem = _path_problem(f"{where}[{j}]", rel, grain, partition_by)
            yield (problem, None) if problem else (f"{where}[{j}]", rel)
    if part.get("index") is not None:
        problem = _index_problem(f"parts[{i}].index", part["index"])
        yield (problem, None) if problem else (f"parts[{i}].index", part["index"])


def _part_problem(i: int, part: Any) -> str | None:
    if not isinstance(part, dict):
        return f"parts[{i}] is {_type_name(part)}, not an object"
    for key in ("part", "media"):
        if not is_int(part.get(key)) or part[key] < 0:
            return f"parts[{i}].{key} is {part.get(key)!r:.40}, not a whole number"
    rows = part.get("rows", {})
    if not isinstance(rows, dict) or not all(is_int(v) for v in rows.values()):
        return f"parts[{i}].rows is {rows!r:.60}, not an object of grain: row count"
    return None


def manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with ``manifest`` (naming the entry), or None when nothing is.

    Checks the JSON types of the entries the package uses and every path (see the module
    doc); unknown top-level keys are allowed (newer versions add some).
    """
    problem = _top_level_problem(manifest)
    if problem is not None:
        return problem
    partition_by = manifest.get("partition_by")
    seen: dict[str, str] = {}
    numbers: set[int] = set()
    for i, part in enumerate(manifest.get("parts", [])):
        problem = _part_problem(i, part)
        if problem is not None:
            return problem
        if part["part"] in numbers:
            return f"parts[{i}].part is {part['part']}, which an earlier part has too"
        numbers.add(part["part"])
        for where, rel in _part_files(i, part, partition_by):
            if rel is None:
                return where
            if rel in seen:
                return f"{where} is {rel!r}, already listed as {seen[rel]}"
            seen[rel] = where
    return None

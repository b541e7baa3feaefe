"""The manifest of an export: its name, how it is read, and the shapes of its entries.

The manifest (``_coreviz_manifest.json``) is plain JSON written only by
:class:`coreviz_frames.exports.store.ExportStore`; this module reads it and converts what goes
in and out of it: failures (:class:`~coreviz_frames.failures.FailedFetch` <-> entries
``{"id", "status", "error_type", "reason"}``, the reason starting with the error type as
manifests written before ``error_type`` did), the source without credentials, and the
committed files of a grain (an :class:`ExportError` naming the repair when some are
missing).

Example:
    >>> entry = failure_to_manifest(FailedFetch("a1", 404, "NotFoundError", "gone"))
    >>> entry["reason"], failure_from_manifest(entry).reason
    ('NotFoundError: gone', 'gone')
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from coreviz_frames.errors import ExportError
from coreviz_frames.exports.manifestcheck import manifest_problem
from coreviz_frames.failures import FailedFetch

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "clean_source",
    "failure_from_manifest",
    "failure_to_manifest",
    "manifest_files",
    "read_manifest",
    "repair_hint",
    "sync_history_lines",
    "utc_now",
]

#: Name of the manifest file at the root of an export.
MANIFEST_NAME = "_coreviz_manifest.json"
#: The manifest's ``format`` value and version.
MANIFEST_FORMAT = "coreviz_frames.exports.writer"
MANIFEST_VERSION = 1

_SECRET_KEY_RE = re.compile(
    r"key|token|secret|passw|auth|credential|cookie|signature|session", re.IGNORECASE
)

PathLike = str | os.PathLike


def utc_now() -> str:
    """The current UTC time as ISO-8601 text, as the manifest records it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _strip_url(value: str) -> str:
    """Drop user:password@ and secret-looking query parameters from a URL."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc:
        return value
    netloc = parts.hostname or ""
    if port:
        netloc = f"{netloc}:{port}"
    query = "&".join(
        item
        for item in parts.query.split("&")
        if item and not _SECRET_KEY_RE.search(item.split("=", 1)[0])
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def clean_source(value: Any) -> Any:
    """A JSON-safe copy of ``value`` without secret-looking keys or URL credentials.

    Example:
        >>> clean_source({"base_url": "https://u:pw@h/api?token=x", "api_key": "k", "c": 1})
        {'base_url': 'https://h/api', 'c': 1}
    """
    if isinstance(value, Mapping):
        return {
            str(k): clean_source(v) for k, v in value.items() if not _SECRET_KEY_RE.search(str(k))
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [clean_source(v) for v in value]
    if isinstance(value, str):
        return _strip_url(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def failure_to_manifest(failure: FailedFetch) -> dict[str, Any]:
    """The manifest entry of ``failure``: ``{"id", "status", "error_type", "reason"}``.

    Example:
        >>> failure_to_manifest(FailedFetch("a1", 404, "NotFoundError", "media 'a1': 404"))
        {'id': 'a1', 'status': 404, 'error_type': 'NotFoundError', 'reason': "NotFoundError: media 'a1': 404"}
    """  # noqa: E501
    entry = failure.to_dict()
    if failure.error_type:
        entry["reason"] = f"{failure.error_type}: {failure.reason}"
    return entry


def failure_from_manifest(entry: Mapping[str, Any]) -> FailedFetch:
    """Read back :func:`failure_to_manifest` (also entries written before ``error_type``).

    Example:
        >>> failure_from_manifest({"id": "a1", "status": 404, "reason": "gone"})
        FailedFetch(media_id='a1', status=404, error_type='', reason='gone')
    """
    failure = FailedFetch.from_dict(entry)
    prefix = f"{failure.error_type}: "
    if failure.error_type and failure.reason.startswith(prefix):
        failure = FailedFetch(
            failure.media_id, failure.status, failure.error_type, failure.reason[len(prefix) :]
        )
    return failure


def read_manifest(path: PathLike) -> dict[str, Any]:
    """The manifest of the export at ``path`` as a dict; :class:`ExportError` if there is
    none, or if it is not JSON or an entry is damaged (see :mod:`.manifestcheck`: wrong JSON
    types, a path outside its grain folder, a file listed twice), naming the entry.

    Example:
        >>> read_manifest("export/")["rows"]["objects"]  # doctest: +SKIP
        23104
    """
    target = Path(path) / MANIFEST_NAME
    try:
        manifest = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"no {MANIFEST_NAME} in {Path(path)}", path=str(path)) from None
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"unreadable manifest {target}: {exc}; rebuild the export with "
            f"{repair_hint(path, None)}",
            path=str(path),
        ) from None
    if not isinstance(manifest, dict):
        raise ExportError(
            f"unreadable manifest {target}: not a JSON object; rebuild the export with "
            f"{repair_hint(path, None)}",
            path=str(path),
        )
    problem = manifest_problem(manifest)
    if problem is not None:
        raise ExportError(
            f"damaged manifest {target}: {problem}. Nothing was read or deleted through it; "
            f"rebuild the export with {repair_hint(path, manifest)}",
            path=str(path),
        )
    return manifest


def repair_hint(root: PathLike, manifest: Mapping[str, Any] | None) -> str:
    """The command that rebuilds the export at ``root`` (for error messages).

    Example:
        >>> repair_hint("out", {"source": {"collection_id": "c1"}})
        'coreviz-frames export --collection c1 --out out --overwrite (or overwrite=True)'
    """
    source = (manifest or {}).get("source") or {}
    collection = source.get("collection_id") if isinstance(source, Mapping) else None
    if collection:
        command = f"coreviz-frames export --collection {collection} --out {root} --overwrite"
    else:
        command = f"the same export command with --overwrite, into {root}"
    return f"{command} (or overwrite=True)"


def manifest_files(root: Path, manifest: Mapping[str, Any], grain: str) -> list[Path]:
    """The committed files of ``grain``, in part order; ExportError if any is missing.

    A manifest listing files that are gone (deleted by hand, or an older version's
    ``--overwrite`` killed while clearing) names the command that rebuilds the export.
    """
    if manifest.get("status") == "clearing":
        raise ExportError(
            f"{root}: an overwrite of this export was interrupted while clearing the old one; "
            f"run {repair_hint(root, manifest)}, or the same command with --resume",
            path=str(root),
        )
    files: list[Path] = []
    missing: list[str] = []
    for part in sorted(manifest.get("parts", []), key=lambda p: int(p["part"])):
        for rel in sorted(part["files"].get(grain, [])):
            file = root / rel
            (files if file.is_file() else missing).append(file if file.is_file() else rel)
    if missing:
        raise ExportError(
            f"{root} is damaged: its manifest lists {len(missing)} {grain} file(s) that are "
            f"missing (such as {missing[0]}); the files were deleted, or an overwrite was "
            f"interrupted. Rebuild it with {repair_hint(root, manifest)}",
            path=str(root),
        )
    return files


def sync_history_lines(manifest: Mapping[str, Any], last: int = 10) -> list[str]:
    """The manifest's sync history (``syncs``) as text lines, newest last; [] if none.

    Example:
        >>> entry = {"at": "2026-11-30T03:00:00Z", "snapshot": 2, "added": 3, "updated": 1,
        ...          "deleted": 0, "unchanged": 96, "failed": 0, "bytes_written": 2048}
        >>> print("\\n".join(sync_history_lines({"snapshot": 2, "syncs": [entry]})))
        <BLANKLINE>
        syncs (snapshot 2 is current; last 1):
          2026-11-30T03:00:00Z  snapshot 2  +3 ~1 -0 =96  failed 0  2,048 bytes
        >>> entry.update(unproven="its last page did not say hasMore: false")
        >>> sync_history_lines({"snapshot": 2, "syncs": [entry]})[-1]
        '    NOT WHOLE listing: its last page did not say hasMore: false'
    """
    syncs = [s for s in manifest.get("syncs") or [] if isinstance(s, Mapping)][-last:]
    if not syncs:
        return []
    lines = ["", f"syncs (snapshot {manifest.get('snapshot')} is current; last {len(syncs)}):"]
    for s in syncs:
        flag = "" if s.get("complete", True) else "  INCOMPLETE listing"
        lines.append(
            f"  {s.get('at')}  snapshot {s.get('snapshot')}  +{s.get('added', 0)} "
            f"~{s.get('updated', 0)} -{s.get('deleted', 0)} ={s.get('unchanged', 0)}  "
            f"failed {s.get('failed', 0)}  {int(s.get('bytes_written', 0)):,} bytes{flag}"
        )
        if s.get("unproven"):
            lines.append(f"    NOT WHOLE listing: {s['unproven']}")
        if s.get("deletes_skipped"):
            lines.append(
                f"    NOT DELETED: {s['deletes_skipped']} media ({s.get('deletes_skipped_reason')})"
            )
    return lines

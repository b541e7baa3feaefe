"""One shape for a record that could not be had: :class:`FailedFetch`.

The client reports failed fetches with it, flattening reports malformed records with
it, and the export store writes it to (and reads it from) the manifest. Nothing else
carries failures between modules.

Example:
    >>> from coreviz_frames.errors import NotFoundError
    >>> f = FailedFetch.from_error("abc", NotFoundError("media 'abc': 404", status=404))
    >>> f.to_dict()
    {'id': 'abc', 'status': 404, 'error_type': 'NotFoundError', 'reason': "media 'abc': 404"}
    >>> FailedFetch.from_dict(f.to_dict()) == f
    True
    >>> failure_line({"id": "abc", "status": 404, "reason": "gone\\x1b]0;x\\x07"})
    '  abc 404: gone\\\\x1b]0;x\\\\x07'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coreviz_frames._util.checks import is_int
from coreviz_frames._util.terminal import printable
from coreviz_frames.errors import APIStatusError

__all__ = ["FailedFetch", "failure_line"]


def failure_line(entry: Mapping[str, Any]) -> str:
    """``  ID STATUS: reason``: one manifest failure entry as a report line, on one line and
    with the server's control characters shown, not run (:func:`~.terminal.printable`)."""
    status = f" {entry['status']}" if entry.get("status") is not None else ""
    return printable(f"  {entry.get('id')}{status}: {entry.get('reason')}")


@dataclass(frozen=True)
class FailedFetch:
    """One id that could not be fetched or flattened: its HTTP status (None for transport
    and schema errors), the exception type name (``"NotFoundError"``) and the message."""

    media_id: str | None
    status: int | None
    error_type: str
    reason: str

    @classmethod
    def from_error(cls, media_id: str | None, exc: BaseException) -> FailedFetch:
        """The failure of ``media_id`` that raised ``exc``."""
        status = exc.status if isinstance(exc, APIStatusError) else None
        return cls(media_id, status, type(exc).__name__, str(exc))

    def to_dict(self) -> dict[str, Any]:
        """The manifest's JSON form: ``{"id", "status", "error_type", "reason"}``."""
        return {
            "id": self.media_id,
            "status": self.status,
            "error_type": self.error_type,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailedFetch:
        """Read back :meth:`to_dict`'s form (also manifests written before ``error_type``)."""
        ident = data.get("id")
        status = data.get("status")
        return cls(
            None if ident is None else str(ident),
            status if is_int(status) else None,
            str(data.get("error_type") or ""),
            str(data.get("reason") or ""),
        )

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        return f"{self.media_id}{status}: {self.reason}"

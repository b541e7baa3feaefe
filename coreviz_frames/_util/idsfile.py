"""Reading a list of media ids from a text file: the one reader of ``--ids`` files.

One id per line; blank lines and lines starting with ``#`` are skipped; surrounding
whitespace is dropped; ``-`` reads standard input. Ids are validated later, by whoever
sends them (:meth:`Client.iter_media <coreviz_frames.api.client.Client.iter_media>`).

Example:
    >>> import io
    >>> read_ids(io.StringIO("# wanted\\nabc123\\n\\n  def456 \\n"))
    ['abc123', 'def456']
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from coreviz_frames.errors import ConfigError

__all__ = ["read_ids_file"]


def read_ids(lines: Iterable[str]) -> list[str]:
    """The ids in ``lines`` (comments and blank lines skipped), in order."""
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_ids_file(ids_file: str | os.PathLike) -> list[str]:
    """The ids listed in ``ids_file`` (``"-"``: standard input).

    A file that cannot be read (missing, a directory, not UTF-8) raises
    :class:`~coreviz_frames.errors.ConfigError` naming it.

    Example:
        >>> read_ids_file("ids.txt")  # doctest: +SKIP
        ['abc123', 'def456']
    """
    if str(ids_file) == "-":
        return read_ids(sys.stdin)
    try:
        with open(ids_file, encoding="utf-8") as stream:
            return read_ids(stream)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the ids file {str(ids_file)!r}: {reason}") from None

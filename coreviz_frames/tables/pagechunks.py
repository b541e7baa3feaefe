"""Page chunks: rows of a page read by pyarrow, flattened the fast way when provably exact.

A browse walk (``client.browse(...).chunks()``) hands its consumer *page chunks* in listing
order: :class:`PageRows` (an :class:`~coreviz_frames.tables.arrowrecords.ArrowPage` and the
positions of the rows it keeps, never decoded into dicts) or decoded media records (dicts:
hydrated items, pages pyarrow could not prove exact). :func:`flatten_parts` flattens a batch
of them: through Arrow compute (:func:`flatten_arrow`) when every part of the batch is a
:class:`PageRows` and the Arrow result is provably the exact one, else through
:func:`~coreviz_frames.tables.flatten.flatten` on the decoded records of the whole batch, so
the tables never depend on which path ran.

Example:
    >>> from coreviz_frames.tables.arrowrecords import read_page
    >>> page = read_page(b'{"media": [{"id": "m1", "frames": []}, {"id": "m2", "frames": []}]}')
    >>> part = PageRows(page, [1], ["m2"])
    >>> len(part), part.records()
    (1, [{'id': 'm2', 'frames': []}])
    >>> tables = flatten_parts([part, {"id": "m3"}])
    >>> tables["media"].column("media_id").to_pylist()
    ['m2', 'm3']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa

from coreviz_frames._util.ids import id_keys
from coreviz_frames._util.jsoncodec import loads, paused_gc
from coreviz_frames.tables.arrowflatten import flatten_arrow
from coreviz_frames.tables.arrowrecords import ArrowPage
from coreviz_frames.tables.flatten import FlattenReport, flatten

__all__ = ["PageRows", "flatten_parts", "part_size"]


@dataclass(frozen=True)
class PageRows:
    """The rows ``rows`` (positions, in listing order) of an ArrowPage, and their ``ids``
    (as ``item.get("id")`` gives them)."""

    page: ArrowPage
    rows: Sequence[int]
    ids: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.rows)

    def cut(self, start: int, stop: int | None = None) -> PageRows:
        """The rows ``[start:stop]`` of this part."""
        return PageRows(self.page, self.rows[start:stop], self.ids[start:stop])

    def table(self) -> pa.Table:
        """The rows as a table of media records: a zero-copy slice of the page's table for
        consecutive rows (the usual case), else ``ArrowPage.take`` (which copies)."""
        rows = self.rows
        if (
            rows
            and rows[-1] - rows[0] == len(rows) - 1
            and list(rows) == list(range(rows[0], rows[-1] + 1))
        ):
            return self.page.media.slice(rows[0], len(rows))
        return self.page.take(list(rows))

    def distinct_keys(self) -> list[str] | None:
        """The rows' ids as they are known (:func:`~coreviz_frames._util.ids.id_keys`), in
        order, when every one is a text and none repeats within this part; else None (such a
        part is looked at row by row).

        Example:
            >>> from coreviz_frames.tables.arrowrecords import read_page
            >>> page = read_page(b'{"media": [{"id": "a"}, {"id": "a"}, {"id": "b"}]}')
            >>> PageRows(page, [0, 2], ["a", "b"]).distinct_keys()
            ['a', 'b']
            >>> PageRows(page, [0, 1], ["a", "a"]).distinct_keys() is None
            True
        """
        keys = id_keys(list(self.ids))
        if None in keys or len(set(keys)) != len(keys):
            return None
        return cast(list[str], keys)

    def records(self) -> list[dict]:
        """The rows decoded the exact way (the dicts a decoded page holds)."""
        with paused_gc():
            media = loads(self.page.body)["media"]
        return [media[i] for i in self.rows]


def part_size(part: Any) -> int:
    """Media in one part: the rows of a :class:`PageRows`, 1 for a record."""
    return len(part) if isinstance(part, PageRows) else 1


def decoded_parts(parts: Iterable[Any]) -> Iterator[Any]:
    """The records of ``parts`` as the exact path sees them (PageRows decoded)."""
    for part in parts:
        if isinstance(part, PageRows):
            yield from part.records()
        else:
            yield part


def _fast(parts: Sequence[Any]) -> dict[str, pa.Table] | None:
    """The batch's tables by Arrow compute, when every part is a PageRows (each page's
    table handed over as it is: its tag fields keep their own order)."""
    if not parts or not all(isinstance(p, PageRows) for p in parts):
        return None
    return flatten_arrow([p.table() for p in parts])


def flatten_parts(
    parts: Sequence[Any], *, on_error: str = "raise", report: FlattenReport | None = None
) -> dict[str, pa.Table]:
    """The tables of a batch of page chunks, equal to ``flatten`` of its decoded records
    (``on_error`` and ``report`` as there; the fast path skips nothing)."""
    fast = _fast(parts)
    if fast is not None:
        return fast
    return flatten(decoded_parts(parts), on_error=on_error, report=report)[0]

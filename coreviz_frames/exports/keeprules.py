"""Which listed items an export keeps: never a folder, and each media id once.

A listing may hold folder rows and the same media twice (a page boundary moving while it
is walked). The in-process export (:mod:`~coreviz_frames.exports.writer`) and the ranged
one (:mod:`~coreviz_frames.exports.processes`) keep the first item of each normalised id
and skip the rest; what "seen" means is theirs (the writer also counts ids exported
earlier and ids waiting in a batch not yet committed).

Example:
    >>> kept = {}
    >>> rules = KeepRules(seen=kept.__contains__, keep=kept.__setitem__)
    >>> u = "0F0E0D0C-0B0A-0908-0706-050403020100"
    >>> [rules.record(r) for r in ({"id": u}, {"id": u.lower()}, {"id": "f", "type": "folder"})]
    [True, False, False]
    >>> list(kept), rules.skipped
    (['0f0e0d0c0b0a09080706050403020100'], 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coreviz_frames._util.ids import id_key
from coreviz_frames.tables.pagechunks import PageRows

__all__ = ["KeepRules"]


def _record_id(record: Any) -> str | None:
    """The normalised id of a record (None when it has no string id; see
    :func:`~coreviz_frames._util.ids.normalize_id`).

    Example:
        >>> _record_id({"id": "m1"}), _record_id({"id": 5}), _record_id(None)
        ('m1', None, None)
    """
    return id_key(record.get("id")) if isinstance(record, Mapping) else None


class KeepRules:
    """Keeps the first item of each media id and no folder.

    ``seen(ident)`` says whether an id was kept already (by these rules or earlier);
    ``keep(ident, item)`` is told each id kept, with its record or its :class:`PageRows`.
    ``skipped`` counts the items left out as repeats (folders are not counted: they are
    no media), and ``on_skip()`` is called for each.

    Example:
        >>> from coreviz_frames.tables.arrowrecords import read_page
        >>> page = read_page(b'{"media": [{"id": "a"}, {"id": "a"}, {"id": "b"}]}')
        >>> kept = {}
        >>> rules = KeepRules(seen=kept.__contains__, keep=kept.__setitem__)
        >>> rules.rows(PageRows(page, [0, 1, 2], ["a", "a", "b"])).rows, rules.skipped
        ([0, 2], 1)
    """

    def __init__(
        self,
        seen: Callable[[str], bool],
        keep: Callable[[str, Any], Any],
        on_skip: Callable[[], Any] | None = None,
        *,
        any_seen: Callable[[set[str]], bool] | None = None,
    ) -> None:
        self.seen, self.keep, self.on_skip = seen, keep, on_skip
        self.any_seen = any_seen  # seen() of a set of ids at once: a page in one step
        self.skipped = 0

    def record(self, record: Any) -> bool:
        """Whether to export ``record`` (a decoded item); its id is kept if it has one."""
        if isinstance(record, Mapping) and record.get("type") == "folder":
            return False
        return self._first(_record_id(record), record)

    def rows(self, part: PageRows) -> PageRows:
        """The rows of ``part`` to export, in order (a page chunk holds no folder row).
        With ``any_seen``, a part whose ids are all texts, none twice and none seen is
        kept whole in one step (the usual page)."""
        any_seen = self.any_seen
        keys = part.distinct_keys() if any_seen is not None else None
        if any_seen is not None and keys is not None and not any_seen(set(keys)):
            for key in keys:
                self.keep(key, part)
            return PageRows(part.page, list(part.rows), list(part.ids))
        rows: list[int] = []
        ids: list[str | None] = []
        for row, media_id in zip(part.rows, part.ids, strict=True):
            if self._first(id_key(media_id), part):
                rows.append(row)
                ids.append(media_id)
        return PageRows(part.page, rows, ids)

    def _first(self, ident: str | None, item: Any) -> bool:
        if ident is None:
            return True  # no id to repeat: flattening reports it
        if self.seen(ident):
            self.skipped += 1
            if self.on_skip is not None:
                self.on_skip()
            return False
        self.keep(ident, item)
        return True

"""A page of ids handled in one step gives what the step-a-row rules give.

The browse (which items it keeps: ``_Keeper``), the export (which rows it writes:
``KeepRules`` with ``any_seen``) and the pagination checks (``_page_ids``) take a whole page
at once in the usual case; random pages of repeated ids, both UUID spellings, ids that are
not text, folders, exclusions and ``max_items`` must give the same rows, counts and
reports as the rules applied row by row.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest
from hypothesis import example, given, strategies as st

from coreviz_frames._util.ids import all_safe_ids, id_key, id_keys, is_safe_id
from coreviz_frames.api.client import _Keeper
from coreviz_frames.api.pagination import PageWalk
from coreviz_frames.exports.keeprules import KeepRules
from coreviz_frames.tables.arrowrecords import read_page
from coreviz_frames.tables.pagechunks import PageRows

_UUID = str(uuid.UUID(int=7))
#: ids that repeat across pages: plain, a UUID in both spellings, unsafe, empty, missing
#: (a page pyarrow reads holds text ids or none)
_IDS = st.sampled_from(
    ["m1", "m2", "m3", "m4", _UUID, _UUID.upper(), _UUID.replace("-", ""), "a/b", "", None]
)


def _page(items: list[tuple[str | None, bool]]) -> PageRows:
    """A page read by pyarrow whose rows are ``items`` (id, is a folder), every row."""
    media = [{"id": ident, "type": "folder" if folder else "image"} for ident, folder in items]
    page = read_page(json.dumps({"media": media}).encode())
    assert page is not None
    return PageRows(page, list(range(len(items))), page.ids)


class _Bar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n


def _keeper(excluded: frozenset, max_items: int | None) -> _Keeper:
    browse = SimpleNamespace(
        _walk=SimpleNamespace(max_items=max_items),
        _excluded=excluded,
        report=SimpleNamespace(excluded=0),
    )
    browse._is_excluded = lambda media_id: (
        bool(excluded) and isinstance(media_id, str) and id_key(media_id) in excluded
    )
    return _Keeper(browse, _Bar())  # type: ignore[arg-type]


@given(
    pages=st.lists(
        st.lists(st.tuples(_IDS, st.sampled_from([False, False, False, True])), max_size=6),
        min_size=1,
        max_size=5,
    ),
    excluded=st.sets(st.sampled_from(["m2", _UUID.replace("-", "")]), max_size=1),
    max_items=st.none() | st.integers(0, 6),
)
@example(pages=[[("m1", False), ("m2", False), ("m3", False)]], excluded=set(), max_items=2)
def test_browse_keeps_the_same_rows_at_once(pages, excluded, max_items):
    chunks = [_page(items) for items in pages]
    results = {}
    for way in ("at once", "row by row"):
        keeper = _keeper(frozenset(excluded), max_items)
        if way == "row by row":
            keeper._all_kept = lambda part: None  # type: ignore[method-assign]
        kept = []
        for chunk in chunks:
            if keeper.full:
                break
            part = keeper.kept_rows(chunk)
            kept.append((part.rows, part.ids))
        report = keeper.browse.report
        results[way] = (kept, keeper.seen, keeper.queued, keeper.bar.n, report.excluded)
    assert results["at once"] == results["row by row"]


@given(
    pages=st.lists(st.lists(_IDS, max_size=6), min_size=1, max_size=5),
    before=st.sets(st.sampled_from(["m1", _UUID.replace("-", "")]), max_size=1),
)
def test_export_keeps_the_same_rows_at_once(pages, before):
    chunks = [_page([(ident, False) for ident in items]) for items in pages]
    results = {}
    for way in ("at once", "row by row"):
        kept: dict = {}
        earlier = set(before)

        def seen(ident, kept=kept, earlier=earlier):
            return ident in kept or ident in earlier

        def any_seen(idents, kept=kept, earlier=earlier):
            return any(map(kept.__contains__, idents)) or not earlier.isdisjoint(idents)

        rules = KeepRules(seen, kept.__setitem__, any_seen=any_seen if way == "at once" else None)
        rows = [(p.rows, p.ids) for p in map(rules.rows, chunks)]
        results[way] = (rows, list(kept), rules.skipped)
    assert results["at once"] == results["row by row"]


def test_the_usual_page_is_kept_at_once(monkeypatch):
    """A page of distinct safe ids takes the one-step way (else a silent slowdown)."""
    chunk = _page([(f"m{i}", False) for i in range(50)])
    keeper = _keeper(frozenset(), None)
    monkeypatch.setattr(_Keeper, "keeps", lambda *a: pytest.fail("kept row by row"))
    assert keeper.kept_rows(chunk).rows == list(range(50))
    kept: dict = {}
    rules = KeepRules(
        lambda i: pytest.fail("seen row by row"), kept.__setitem__, any_seen=lambda s: False
    )
    assert rules.rows(chunk).rows == list(range(50)) and len(kept) == 50


@given(st.lists(st.text(alphabet="ab-_/\n .é0", max_size=4) | _IDS | st.just(5)))
@example(["m1", "a\nb"])  # two safe lines, one unsafe id
def test_ids_at_once_as_one_by_one(values):
    assert id_keys(values) == [id_key(v) for v in values]
    texts = [v for v in values if isinstance(v, str)]
    assert all_safe_ids(texts) == all(map(is_safe_id, texts))


@given(st.lists(st.tuples(_IDS, st.sampled_from(["image", "folder"])), max_size=8))
def test_page_ids_at_once_as_one_by_one(items):
    ids, kinds = [i for i, _ in items], [k for _, k in items]
    walks = [PageWalk.__new__(PageWalk) for _ in range(2)]
    for walk in walks:
        walk._unnamed = walk._bad_ids = 0
    one_by_one = set()
    for ident, kind in items:  # the rules, as the docstring states them
        if isinstance(ident, str):
            one_by_one.add(ident)
        else:
            walks[1]._unnamed += 1
        if not is_safe_id(ident) and kind != "folder":
            walks[1]._bad_ids += 1
    assert walks[0]._page_ids((ids, kinds)) == one_by_one
    assert (walks[0]._unnamed, walks[0]._bad_ids) == (walks[1]._unnamed, walks[1]._bad_ids)

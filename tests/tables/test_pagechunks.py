"""Page chunks flatten to the tables of the exact path, whichever path a batch takes."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.tables import pagechunks
from coreviz_frames.tables.arrowrecords import read_page
from coreviz_frames.tables.flatten import flatten
from coreviz_frames.tables.media_tables import flatten_chunks
from coreviz_frames.tables.pagechunks import PageRows, decoded_parts, flatten_parts, part_size


def _page(records: list[dict]) -> PageRows:
    body = json.dumps({"media": records, "pagination": {"hasMore": False}}).encode()
    page = read_page(body)
    assert page is not None
    return PageRows(page, range(len(records)), [r.get("id") for r in records])


def _equal(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    assert a.keys() == b.keys()
    for grain in a:
        assert a[grain].equals(b[grain], check_metadata=True), grain


def test_pagerows_decode_to_the_records_of_the_page():
    records = [synthetic_media(i) for i in range(5)]
    part = _page(records).cut(1, 4)
    assert len(part) == part_size(part) == 3
    assert part.records() == records[1:4]
    assert list(decoded_parts([records[0], part])) == records[:4]


@pytest.mark.parametrize("arrow", [True, False])
def test_a_batch_flattens_to_the_exact_tables_on_either_path(monkeypatch, arrow):
    results: list[bool] = []
    original = pagechunks.flatten_arrow

    def spy(media):
        tables = original(media) if arrow else None  # None: the exact path
        results.append(tables is not None)
        return tables

    monkeypatch.setattr(pagechunks, "flatten_arrow", spy)
    records = [synthetic_media(i) for i in range(12)]
    parts = [_page(records[:5]).cut(2), _page(records[5:12])]
    _equal(flatten_parts(parts), flatten(records[2:12])[0])
    assert results == [arrow]  # one call for the batch; Arrow's tables used when given


def test_a_mixed_batch_is_flattened_the_exact_way(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(pagechunks, "flatten_arrow", lambda media: calls.append(1))
    records = [synthetic_media(i) for i in range(6)]
    _equal(
        flatten_parts([_page(records[:3]), records[3], _page(records[4:])]),
        flatten(records[:3] + records[3:])[0],
    )
    assert calls == []  # a decoded record in the batch: no Arrow flatten tried


def test_flatten_chunks_counts_media_of_pagerows_and_keeps_the_order():
    records = [synthetic_media(i) for i in range(9)]
    parts = [_page(records[:4]), records[4], _page(records[5:])]
    _equal(flatten_chunks(parts, chunk=3), flatten(records)[0])


def test_consecutive_rows_are_a_slice_others_a_take():
    records = [synthetic_media(i) for i in range(6)]
    whole = _page(records)
    cut = whole.cut(2, 5)
    assert cut.table().equals(whole.page.take([2, 3, 4]))
    assert cut.table().column("id").chunk(0).offset == 2  # no copy: a view of the page
    gaps = PageRows(whole.page, [0, 2, 5], [records[i]["id"] for i in (0, 2, 5)])
    assert gaps.table().column("id").to_pylist() == gaps.ids
    _equal(flatten_parts([cut, gaps]), flatten(records[2:5] + [records[i] for i in (0, 2, 5)])[0])

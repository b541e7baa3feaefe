"""to_tables flattens records in chunks as they arrive (tables.flatten_chunks): the tables,
errors, reports and warnings are those of one flatten call over all the records."""

from __future__ import annotations

import json
import warnings

import pytest

from coreviz_frames.errors import SchemaError, SkippedRecordWarning
from coreviz_frames.local_api import SAMPLE_DATA_DIR
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import GRAINS
from coreviz_frames.tables.flatten import FlattenReport, flatten
from coreviz_frames.tables.media_tables import flatten_chunks, to_tables


def _sample() -> list[dict]:
    return json.loads((SAMPLE_DATA_DIR / "collection.json").read_text())["media"]


@pytest.mark.parametrize("chunk", [1, 3, 7, 2000])
def test_chunks_build_the_tables_of_one_flatten(chunk: int) -> None:
    records = _sample() + list(iter_synthetic(40))
    whole, _ = flatten(records)
    parts = flatten_chunks(iter(records), chunk=chunk)
    for grain in GRAINS:
        assert parts[grain].equals(whole[grain]), grain
        assert parts[grain].schema.equals(whole[grain].schema)


def test_a_generator_is_consumed_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first chunk is flattened before the source is drained (records are released)."""
    flattened_before_end: list[bool] = []
    finished = False

    def source():
        nonlocal finished
        yield from iter_synthetic(10)
        finished = True

    import coreviz_frames.tables.media_tables as tables_module

    original = tables_module.flatten

    def spy(records, **kwargs):
        flattened_before_end.append(not finished)
        return original(records, **kwargs)

    monkeypatch.setattr(tables_module, "flatten", spy)
    flatten_chunks(source(), chunk=4)
    assert flattened_before_end == [True, True, False]


def test_skips_across_chunks_are_reported_and_warned_once_each() -> None:
    good = list(iter_synthetic(6))
    records = [good[0], {"id": "bad1", "width": "wide"}, *good[1:4], {"id": "bad2", "frames": 3}]
    records += [{"id": "f1", "type": "folder"}, *good[4:]]
    report = FlattenReport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = flatten_chunks(records, on_error="skip", report=report, chunk=3)
        skipped_then = len([w for w in caught if issubclass(w.category, SkippedRecordWarning)])
        media_of_to_tables = len(to_tables(records, on_error="skip").media)
    assert sorted(e.media_id for e in report.skipped) == ["bad1", "bad2"]
    assert skipped_then == 2
    assert report.folders == 1
    assert tables["media"].num_rows == 6
    assert media_of_to_tables == 6


def test_raise_mode_raises_the_first_bad_record_in_order() -> None:
    records = [*iter_synthetic(3), {"id": "bad1", "width": "wide"}, {"id": "bad2", "frames": 3}]
    with pytest.raises(SchemaError) as err:
        flatten_chunks(records, chunk=2)
    assert err.value.media_id == "bad1"


def test_no_records_still_give_every_grain_its_columns() -> None:
    tables = flatten_chunks(iter(()))
    assert {g: t.num_rows for g, t in tables.items()} == dict.fromkeys(GRAINS, 0)

"""Exports of a MediaTables: export_parquet takes one, and sync compares such exports right."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.local_api import LocalAPI

KEY = "tables-export-key"


@pytest.fixture
def api():
    with LocalAPI(api_key=KEY) as served:
        yield served


def _tables(api: LocalAPI) -> cvf.MediaTables:
    with cvf.Client(api_key=KEY, base_url=api.base_url) as client:
        return cvf.to_tables(client.browse(api.collection_id, progress=False))


def _sync(api: LocalAPI, path: Path) -> cvf.SyncReport:
    with cvf.Client(api_key=KEY, base_url=api.base_url) as client:
        return cvf.sync(client, api.collection_id, path, progress=False)


def test_export_parquet_takes_a_media_tables(api, tmp_path):
    tables = _tables(api)
    report = cvf.export_parquet(tables, tmp_path / "out", batch_size=4, progress=False)
    assert report.ok and report.media_exported == 15 and report.parts_written == 4
    back = cvf.read_parquet(tmp_path / "out")
    for grain, frame in tables.items():
        pd.testing.assert_frame_equal(getattr(back, grain), frame, obj=grain)
    again = cvf.export_parquet(tables, tmp_path / "out", resume=True, progress=False)
    assert again.media_exported == 0 and again.media_skipped == 15


@pytest.mark.parametrize("wrong", ["export/", pd.DataFrame({"media_id": ["m1"]}), {"id": "m1"}])
def test_export_parquet_says_what_to_pass(tmp_path, wrong):
    with pytest.raises(ConfigError, match=r"takes media records \(client.browse.*or a MediaTables"):
        cvf.export_parquet(wrong, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("writer", ["to_parquet", "export_parquet", "export_parquet_delta"])
def test_sync_over_an_export_of_tables_finds_nothing_changed(api, tmp_path, writer):
    tables, path = _tables(api), tmp_path / "export"
    if writer == "to_parquet":
        tables.to_parquet(path)
    else:
        fmt = "delta" if writer.endswith("delta") else None
        cvf.export_parquet(tables, path, table_format=fmt, progress=False)
    first = _sync(api, path)
    assert (first.added, first.updated, first.deleted, first.unchanged) == (0, 0, 0, 15)
    second = _sync(api, path)  # the fingerprints the first one stored
    assert (second.updated, second.unchanged, second.fetched) == (0, 15, 0)
    assert not second.changed
    back = cvf.read_parquet(path)
    for grain, frame in tables.items():
        assert len(getattr(back, grain)) == len(frame), grain


def test_sync_over_a_to_parquet_export_sees_real_changes(api, tmp_path):
    path = tmp_path / "export"
    _tables(api).to_parquet(path)
    changes = api.mutate(seed=4, edits=2, adds=1)
    report = _sync(api, path)
    assert report.updated == len(changes.edited) == 2
    assert (report.added, report.unchanged) == (1, 15 - 2)
    fresh = _tables(api)
    back = cvf.read_parquet(path)
    assert sorted(back.captions.text.dropna()) == sorted(fresh.captions.text.dropna())
    assert sorted(back.media.name) == sorted(fresh.media.name)

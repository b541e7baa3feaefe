"""Progress bars: shown on request with the total from pagination, silent with progress=False."""

from __future__ import annotations

import sys

import coreviz_frames as cvf
from coreviz_frames._util.progress import progress_bar


def _browse(api, capsys, progress):
    with cvf.Client(api_key="k", base_url=api.base_url) as client:
        records = list(client.browse(api.collection_id, page_size=4, progress=progress))
    return records, capsys.readouterr().err


def test_browse_bar_shows_the_total_from_pagination(sample_api, capsys):
    records, err = _browse(sample_api, capsys, True)
    assert len(records) == 15
    assert "browse" in err
    # 15 media and 3 folder rows: the bar's total comes from pagination.total
    assert "/18" in err


def test_progress_false_is_silent(sample_api, capsys):
    records, err = _browse(sample_api, capsys, False)
    assert len(records) == 15
    assert err == ""


def test_bulk_fetch_and_export_bars(sample_api, capsys, tmp_path):
    with cvf.Client(api_key="k", base_url=sample_api.base_url) as client:
        ids = [r["id"] for r in client.browse(sample_api.collection_id, progress=False)]
        records = list(client.iter_media(ids, progress=True))
        assert "media" in capsys.readouterr().err
        cvf.export_parquet(records, tmp_path / "x", progress=True)
        assert capsys.readouterr().err != ""
        tables = cvf.to_tables(records)
        cvf.load_crops(tables, on_error="record", progress=True)
        assert "crops" in capsys.readouterr().err


def test_default_progress_without_a_stderr(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)  # pythonw, some services and daemons
    with progress_bar(total=2, desc="x") as bar:
        bar.update(2)

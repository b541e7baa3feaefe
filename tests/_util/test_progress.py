"""Progress bars: shown on request with the total from pagination, silent with progress=False."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import coreviz_frames as cvf
from coreviz_frames._util.progress import progress_bar
from coreviz_frames.errors import ConfigError


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


def test_one_switch_hides_or_shows_every_bar_whose_call_says_nothing(sample_api, capsys, tmp_path):
    with cvf.set_options(progress=True):
        records, err = _browse(sample_api, capsys, None)
        assert "browse" in err  # shown, though stderr is not a terminal here
        cvf.export_parquet(records, tmp_path / "shown", progress=None)
        assert "export" in capsys.readouterr().err
        with cvf.set_options(progress=False):
            assert _browse(sample_api, capsys, None)[1] == ""
            cvf.export_parquet(records, tmp_path / "hidden")
            assert capsys.readouterr().err == ""
            assert "browse" in _browse(sample_api, capsys, True)[1]  # a call's own word wins
        assert "browse" in _browse(sample_api, capsys, None)[1]  # the with block restored it
    assert _browse(sample_api, capsys, None)[1] == ""  # back to auto: no terminal, no bar


def test_the_environment_variable_is_the_switch_outside_python(monkeypatch, sample_api, capsys):
    monkeypatch.setenv("COREVIZ_PROGRESS", "1")
    assert "browse" in _browse(sample_api, capsys, None)[1]
    monkeypatch.setenv("COREVIZ_PROGRESS", "off")
    with progress_bar(desc="x") as bar:
        assert bar.disable
    with cvf.set_options(progress=True), progress_bar(desc="x") as bar:
        assert not bar.disable  # set_options wins over the environment
    monkeypatch.setenv("COREVIZ_PROGRESS", "maybe")
    with pytest.raises(ConfigError, match="COREVIZ_PROGRESS='maybe': use 0"):
        progress_bar(desc="x")
    with pytest.raises(ConfigError, match="True, False or None"):
        cvf.set_options(progress="no")


def test_every_bar_of_the_package_is_made_by_progress_bar():
    """So the one switch reaches them all: no module builds a tqdm bar of its own."""
    root = Path(cvf.__file__).parent
    own = [
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if path.name != "progress.py" and re.search(r"\btqdm\b", path.read_text())
    ]
    assert own == []


def test_the_cli_honours_the_variable(sample_api, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREVIZ_")}
    env.update(COREVIZ_API_KEY="k", COREVIZ_BASE_URL=sample_api.base_url, COREVIZ_PROGRESS="1")
    args = [sys.executable, "-m", "coreviz_frames", "export", "--collection"]
    args += [sample_api.collection_id]
    shown = subprocess.run(
        [*args, "--out", str(tmp_path / "a")], env=env, capture_output=True, text=True, check=True
    )
    assert "browse" in shown.stderr and "media/s" in shown.stderr
    env["COREVIZ_PROGRESS"] = "0"
    hidden = subprocess.run(
        [*args, "--out", str(tmp_path / "b"), "--progress"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "media/s" in hidden.stderr  # --progress, the command's own word, wins
    quiet = subprocess.run(
        [*args, "--out", str(tmp_path / "c")], env=env, capture_output=True, text=True, check=True
    )
    assert "media/s" not in quiet.stderr

"""Ctrl-C and a failed first run leave the user told what to do, and a folder that works."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import coreviz_frames as cvf
from coreviz_frames.cli.main import main
from coreviz_frames.exports.manifest import MANIFEST_NAME
from coreviz_frames.local_api import LocalAPI

KEY = "interrupt-secret-key"


def _env(api: LocalAPI | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREVIZ_")}
    if api is not None:
        env["COREVIZ_BASE_URL"] = api.base_url
    return env


def _parts(out: Path) -> int:
    try:
        return len(json.loads((out / MANIFEST_NAME).read_text())["parts"])
    except (OSError, ValueError, KeyError):
        return 0


def test_ctrl_c_says_what_was_committed_and_the_command_to_continue(tmp_path):
    out = tmp_path / "export"
    with LocalAPI(synthetic=60, latency=0.05, api_key=KEY) as api:
        args = ["export", "--collection", api.collection_id, "--out", str(out)]
        args += ["--batch-size", "5", "--workers", "1", "--no-progress", "--api-key", KEY]
        proc = subprocess.Popen(
            [sys.executable, "-m", "coreviz_frames", *args],
            env=_env(api),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while _parts(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the export ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err  # one line: no traceback, no bare "Aborted!"
        committed = json.loads((out / MANIFEST_NAME).read_text())["media_exported"]
        assert committed >= 10
        prefix = f"interrupted: {committed:,} media committed to {out} in "
        assert lines[0].startswith(prefix), lines[0]
        assert KEY not in err and lines[0].endswith(" (and your --api-key)")
        command = lines[0].split("continue with: ", 1)[1].removesuffix(" (and your --api-key)")
        argv = shlex.split(command)
        assert argv[:2] == ["coreviz-frames", "export"] and argv[-1] == "--resume"
        again = subprocess.run(
            [sys.executable, "-m", "coreviz_frames", *argv[1:], "--api-key", KEY],
            env=_env(api),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        assert "skipped" in again.stdout and f"{committed:,} media already exported" in again.stdout
    tables = cvf.read_parquet(out)
    assert len(tables.media) == tables.media.media_id.nunique() == 60


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_first_run_that_committed_nothing_leaves_a_folder_the_next_run_uses(tmp_path, fmt):
    out = tmp_path / "export"
    with LocalAPI(api_key=KEY) as api:
        args = ["export", "--collection", api.collection_id, "--out", str(out), "--format", fmt]
        args += ["--no-progress"]
        bad = CliRunner().invoke(main, args, env={**_env(api), "COREVIZ_API_KEY": "wrong"})
        assert bad.exit_code == 1 and "401" in bad.output
        assert out.is_dir() and any(out.iterdir())  # the manifest of a run that wrote nothing
        good = CliRunner().invoke(main, args, env={**_env(api), "COREVIZ_API_KEY": KEY})
        assert good.exit_code == 0, good.output  # no --resume, no --overwrite needed
    assert len(cvf.read_parquet(out).media) == 15


def test_a_folder_with_an_export_or_files_of_its_own_is_still_refused(tmp_path):
    with LocalAPI(api_key=KEY) as api:
        args = ["export", "--collection", api.collection_id, "--no-progress", "--out"]
        ok, wrong = {**_env(api), "COREVIZ_API_KEY": KEY}, {**_env(api), "COREVIZ_API_KEY": "x"}
        done = tmp_path / "done"
        assert CliRunner().invoke(main, [*args, str(done)], env=ok).exit_code == 0
        again = CliRunner().invoke(main, [*args, str(done)], env=ok)
        assert again.exit_code == 1 and "not empty" in again.output  # a committed export
        mixed = tmp_path / "mixed"
        assert CliRunner().invoke(main, [*args, str(mixed)], env=wrong).exit_code == 1
        (mixed / "notes.txt").write_text("mine")
        refused = CliRunner().invoke(main, [*args, str(mixed)], env=ok)
        assert refused.exit_code == 1 and "not empty" in refused.output
        assert (mixed / "notes.txt").read_text() == "mine"


def test_ctrl_c_during_a_sync_says_the_export_is_unchanged(tmp_path):
    out = tmp_path / "synced"
    with LocalAPI(synthetic=40, latency=0.05, api_key=KEY) as api:
        args = ["sync", "--collection", api.collection_id, "--out", str(out), "--no-progress"]
        args += ["--workers", "1", "--page-size", "5"]
        env = {**_env(api), "COREVIZ_API_KEY": KEY}
        proc = subprocess.Popen(
            [sys.executable, "-m", "coreviz_frames", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while api.stats.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted: {out} is unchanged"), err
    assert lines[0].endswith(shlex.join(["coreviz-frames", *args]))

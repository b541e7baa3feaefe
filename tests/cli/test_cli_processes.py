"""``coreviz-frames export --processes N``: the collection's ranges in local worker processes."""

from __future__ import annotations

import pyarrow.parquet as pq
from click.testing import CliRunner

from coreviz_frames.cli.main import main
from coreviz_frames.exports.manifest import read_manifest
from coreviz_frames.local_api import LocalAPI

KEY = "sk-cli-procs-8d2c41e6"


def test_export_with_processes_writes_every_media_once(tmp_path):
    out = tmp_path / "out"
    with LocalAPI(synthetic=120, api_key=KEY) as api:
        args = ["export", "--collection", "synthetic", "--out", str(out), "--batch-size", "50"]
        args += ["--page-size", "50"]
        env = {"COREVIZ_API_KEY": KEY, "COREVIZ_BASE_URL": api.base_url}
        result = CliRunner().invoke(main, [*args, "--processes", "2", "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert "exported 120 media" in result.output and "3 parts" in result.output
    manifest = read_manifest(out)
    files = [out / rel for part in manifest["parts"] for rel in part["files"]["media"]]
    ids = [i for f in files for i in pq.read_table(f, columns=["media_id"])["media_id"].to_pylist()]
    assert len(ids) == len(set(ids)) == 120


def test_processes_is_refused_with_dask_and_with_ids(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("a\n")
    runner = CliRunner()
    env = {"COREVIZ_API_KEY": KEY}
    out = ["--out", str(tmp_path / "x")]
    both = runner.invoke(
        main, ["export", "--collection", "C", *out, "--processes", "2", "--dask", "local"], env=env
    )
    assert both.exit_code == 2 and "--processes or --dask" in both.output
    listed = runner.invoke(main, ["export", "--ids", str(ids), *out, "--processes", "2"], env=env)
    assert listed.exit_code == 2 and "--processes splits a --collection" in listed.output
    zero = runner.invoke(main, ["export", "--collection", "C", *out, "--processes", "0"], env=env)
    assert zero.exit_code == 2

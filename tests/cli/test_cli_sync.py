"""coreviz-frames sync and the sync history in info, against the local API's sample."""

from __future__ import annotations

from click.testing import CliRunner

import coreviz_frames as cvf
from coreviz_frames.cli.main import main

API_KEY = "cli-sync-key-0123456789"


def _env(api) -> dict[str, str]:
    return {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": api.base_url}


def _sync(api, out, *extra):
    args = ["sync", "--collection", api.collection_id, "--out", str(out), "--no-progress"]
    return CliRunner().invoke(main, [*args, *extra], env=_env(api))


def test_sync_then_changes_then_info_shows_the_history(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "export"
    result = _sync(api, out, "--page-size", "4")
    assert result.exit_code == 0, result.output
    assert "15 added, 0 updated, 0 deleted, 0 unchanged, 0 failed -> snapshot 1" in result.output
    api.mutate(seed=1, adds=2, edits=3, deletes=1)
    result = _sync(api, out)
    assert result.exit_code == 0, result.output
    assert "2 added, 3 updated, 1 deleted, 11 unchanged, 0 failed -> snapshot 2" in result.output
    result = _sync(api, out)
    assert result.exit_code == 0 and "nothing changed, no file written" in result.output
    assert len(cvf.read_parquet(out).media) == 16
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "syncs (snapshot 2 is current; last 2):" in info.output
    assert "snapshot 1  +15 ~0 -0 =0" in info.output
    assert "snapshot 2  +2 ~3 -1 =11" in info.output


def test_sync_with_other_filters_exits_1(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "export"
    assert _sync(api, out, "--type", "image").exit_code == 0
    result = _sync(api, out)
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "filters" in result.output
    assert "Traceback" not in result.output


def test_failed_media_exit_1_unless_allow_failures(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY, light=True)
    out = tmp_path / "export"
    assert _sync(api, out).exit_code == 0
    (media_id,) = api.mutate(seed=2, edits=1, kinds=("rename",)).edited
    api.add_fault(f"/api/media/{media_id}", status=500, count=100)
    result = _sync(api, out, "--retries", "0")
    assert result.exit_code == 1, result.output
    assert "1 media failed" in result.output and media_id in result.output
    result = _sync(api, out, "--retries", "0", "--allow-failures")
    assert result.exit_code == 0, result.output


def test_mass_delete_needs_the_flag(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "export"
    assert _sync(api, out).exit_code == 0
    api.mutate(seed=3, deletes=10)
    result = _sync(api, out)
    assert result.exit_code == 1
    assert "NOT DELETED: 10 media" in result.output and "more than half" in result.output
    assert len(cvf.read_parquet(out).media) == 15
    result = _sync(api, out, "--allow-mass-delete")
    assert result.exit_code == 0, result.output
    assert "10 deleted" in result.output and len(cvf.read_parquet(out).media) == 5

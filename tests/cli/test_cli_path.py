"""``--path`` of ``export`` and ``sync`` is a folder path of the collection named: one that is
not a folder path (``a b/../c``), lies under another collection or selects nothing is a usage
error (exit 2) before anything is written; a real folder exports what is under it."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from coreviz_frames.api.filters import BrowseFilters
from coreviz_frames.cli.main import main
from coreviz_frames.errors import ConfigError

API_KEY = "cli-path-key"
SPACE = "58fb2c4962835d6b9689fe622e1ee502"  # the "Space" folder of the sample collection


def _run(api, command: str, out, path: str):
    args = [command, "--collection", api.collection_id, "--out", str(out), "--no-progress"]
    env = {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": api.base_url}
    return CliRunner().invoke(main, [*args, "--path", path], env=env)


@pytest.mark.parametrize("command", ["export", "sync"])
@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("a b/../c", "is not a folder path"),
        ("{c}.x/../..", "is not a folder path"),
        ("0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b.{space}", "is outside collection"),
        ("{c}.ffffffffffffffffffffffffffffffff", "selects nothing"),
        ("", "is not a folder path"),  # an unset shell variable: not the whole collection
    ],
)
def test_a_path_outside_or_selecting_nothing_exits_2(
    local_api_factory, tmp_path, command, path, says
):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "export"
    path = path.format(c=api.collection_id, space=SPACE)
    result = _run(api, command, out, path)
    assert result.exit_code == 2, result.output
    assert says in result.output and "--path" in result.output and "Traceback" not in result.output
    assert not out.exists()  # refused before anything was written


def test_a_real_folder_exports_what_is_under_it(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "export"
    result = _run(api, "export", out, f"{api.collection_id}.{SPACE}")
    assert result.exit_code == 0, result.output
    media = pq.read_table(out / "media").to_pandas()
    assert len(media) > 0 and media.path.str.contains(SPACE).all()


def test_the_library_refuses_a_file_system_path():
    with pytest.raises(ConfigError, match="not a folder path"):
        BrowseFilters(path="a b/../c")
    assert BrowseFilters(path="col1.folder_A-2").path == "col1.folder_A-2"


def test_a_path_with_ids_exits_2(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    ids = tmp_path / "ids.txt"
    ids.write_text("m1\n")
    out = tmp_path / "export"
    args = ["export", "--ids", str(ids), "--out", str(out), "--path", f"{api.collection_id}.x"]
    env = {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": api.base_url}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2 and "with --ids it would be ignored" in result.output
    assert not out.exists()

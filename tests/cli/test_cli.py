"""The coreviz-frames command line: help texts, exit codes and output, against the local API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

import coreviz_frames as cvf
from coreviz_frames.cli.main import main
from coreviz_frames.exports.reader import MANIFEST_NAME
from coreviz_frames.local_api import SAMPLE_DATA_DIR

API_KEY = "cli-test-key-0123456789"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    yield prefix, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


@pytest.mark.parametrize(
    "path", [p for p, _ in _commands(main)], ids=lambda p: " ".join(p) or "main"
)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert "coreviz-frames" in result.output.split("Example", 1)[1]
    command = main
    for name in path:
        command = command.commands[name]
    assert command.help and len(command.help.strip()) > 20


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert cvf.__version__ in result.output


@pytest.fixture
def keyed_api(local_api_factory):
    return local_api_factory(api_key=API_KEY)


def _env(api) -> dict[str, str]:
    return {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": api.base_url}


def test_export_collection_then_info(keyed_api, tmp_path):
    out = tmp_path / "export"
    result = CliRunner().invoke(
        main,
        ["export", "--collection", keyed_api.collection_id, "--out", str(out), "--page-size", "4"],
        env=_env(keyed_api),
    )
    assert result.exit_code == 0, result.output
    assert "exported 15 media" in result.output
    tables = cvf.read_parquet(out)
    assert len(tables.media) == 15
    assert tables.media.media_id.is_unique
    manifest = (out / MANIFEST_NAME).read_text()
    assert API_KEY not in manifest
    assert keyed_api.collection_id in manifest

    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "media" in info.output and "15" in info.output


def test_export_with_filters_sends_them(keyed_api, tmp_path):
    out = tmp_path / "red"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--collection",
            keyed_api.collection_id,
            "--out",
            str(out),
            "--type",
            "image",
            "--no-progress",
        ],
        env=_env(keyed_api),
    )
    assert result.exit_code == 0, result.output
    media = cvf.read_parquet(out).media
    assert set(media.type) == {"image"}
    assert len(media) == 13


def test_export_ids_from_stdin_with_a_missing_id_exits_non_zero(keyed_api, tmp_path):
    records = json.loads((SAMPLE_DATA_DIR / "collection.json").read_text())["media"]
    ids = [r["id"] for r in records[:3]] + ["no-such-media"]
    out = tmp_path / "ids"
    result = CliRunner().invoke(
        main,
        ["export", "--ids", "-", "--out", str(out)],
        input="\n".join(ids) + "\n",
        env=_env(keyed_api),
    )
    assert result.exit_code == 1, result.output
    assert "no-such-media" in result.output
    assert len(cvf.read_parquet(out).media) == 3
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [f["id"] for f in manifest["failed"]] == ["no-such-media"]

    again = CliRunner().invoke(
        main,
        ["export", "--ids", "-", "--out", str(tmp_path / "ids2"), "--allow-failures"],
        input="\n".join(ids) + "\n",
        env=_env(keyed_api),
    )
    assert again.exit_code == 0, again.output


def test_export_refuses_a_non_empty_directory(keyed_api, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(
        main,
        ["export", "--collection", keyed_api.collection_id, "--out", str(out)],
        env=_env(keyed_api),
    )
    assert result.exit_code == 1
    assert "error:" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_export_wrong_key_is_a_one_line_error(keyed_api, tmp_path):
    result = CliRunner().invoke(
        main,
        ["export", "--collection", keyed_api.collection_id, "--out", str(tmp_path / "x")],
        env={"COREVIZ_API_KEY": "wrong-key", "COREVIZ_BASE_URL": keyed_api.base_url},
    )
    assert result.exit_code == 1
    assert "401" in result.output
    assert "Traceback" not in result.output
    assert "wrong-key" not in result.output


def test_export_needs_exactly_one_source(tmp_path):
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "exactly one of --collection or --ids" in result.output


def test_crops_over_an_export(keyed_api, tmp_path):
    out = tmp_path / "export"
    CliRunner().invoke(
        main,
        ["export", "--collection", keyed_api.collection_id, "--out", str(out)],
        env=_env(keyed_api),
        catch_exceptions=False,
    )
    crops = tmp_path / "crops"
    result = CliRunner().invoke(main, ["crops", str(out), "--out", str(crops)])
    # the sample holds one object with neither crop blob nor geometry: left out, as dataset does
    assert result.exit_code == 0, result.output
    assert "19 crops written" in result.output and "0 failed, 1 left out" in result.output
    manifest = pd.read_parquet(crops / "manifest.parquet")
    assert (manifest.status == "written").sum() == 19
    assert len(list(crops.glob("*/*.jpg"))) == 19

    allowed = CliRunner().invoke(
        main, ["crops", str(out), "--out", str(tmp_path / "c2"), "--allow-failures"]
    )
    assert allowed.exit_code == 0, allowed.output


def test_demo_runs_the_whole_path(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Fetched 15 media records" in out
    for grain, count in [("media", 15), ("frames", 19), ("objects", 20), ("tags", 32)]:
        assert any(line.split() == [grain, str(count)] for line in out.splitlines()), grain
    assert "Parquet export:" in out and "Object crops:" in out and "Next, try:" in out
    assert len(cvf.read_parquet(tmp_path / "demo" / "export").media) == 15
    assert any((tmp_path / "demo" / "crops").glob("*/*.jpg"))
    again = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert again.exit_code == 0, again.output  # the demo replaces its own crops


def test_export_stopped_by_an_error_resumes_without_duplicates(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY, light=True)  # browse items need hydration
    records = json.loads((SAMPLE_DATA_DIR / "collection.json").read_text())["media"]
    with cvf.Client(api_key=API_KEY, base_url=api.base_url) as client:
        order = [r["id"] for r in client.browse(api.collection_id, hydrate=False)]
    assert sorted(order) == sorted(r["id"] for r in records)
    # a 404 on hydration is now skipped and recorded; a 401 still stops the walk
    api.add_fault(f"/api/media/{order[9]}", status=401, count=1)
    out = tmp_path / "export"
    args = ["export", "--collection", api.collection_id, "--out", str(out), "--batch-size", "3"]
    first = CliRunner().invoke(main, args, env=_env(api))
    assert first.exit_code == 1
    assert order[9] in first.output and "--resume" in first.output
    assert 0 < len(cvf.read_parquet(out).media) < 15

    second = CliRunner().invoke(main, [*args, "--resume"], env=_env(api))
    assert second.exit_code == 0, second.output
    media = cvf.read_parquet(out).media
    assert sorted(media.media_id) == sorted(cvf.to_tables(records).media.media_id)


def test_sigkill_mid_export_then_cli_resume(local_api_factory, tmp_path):
    n = 120
    api = local_api_factory(synthetic=n, latency=0.02, light=True, api_key=API_KEY)
    out = tmp_path / "crash"
    args = ["export", "--collection", api.collection_id, "--out", str(out), "--batch-size", "10"]
    env = {**os.environ, **_env(api)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "coreviz_frames", *args, "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "tags").glob("part-*.parquet"))) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the export never wrote two parts"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert 0 < len(cvf.read_parquet(out).media) < n

    result = subprocess.run(
        [sys.executable, "-m", "coreviz_frames", *args, "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    media = cvf.read_parquet(out).media
    assert len(media) == n and media.media_id.is_unique
    con = duckdb.connect()
    assert con.execute(
        f"SELECT count(*), count(DISTINCT media_id) FROM '{out}/media/*.parquet'"
    ).fetchone() == (n, n)
    leftovers = [p.name for p in out.rglob("*") if "tmp" in p.name]
    assert leftovers == []


def test_serve_prints_its_urls_and_answers(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "coreviz_frames", "serve", "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        with cvf.Client(api_key=API_KEY, base_url=info["base_url"]) as client:
            records = list(client.browse(info["collection_id"], progress=False))
        assert len(records) == 15
        with (
            cvf.Client(api_key="wrong", base_url=info["base_url"]) as client,
            pytest.raises(cvf.AuthenticationError),
        ):
            client.get_media(records[0]["id"])
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_a_missing_ids_file_is_a_usage_error_not_a_traceback(tmp_path):
    for extra in ([], ["--dask", "local"]):
        result = CliRunner().invoke(
            main,
            [
                "export",
                "--ids",
                str(tmp_path / "missing.txt"),
                "--out",
                str(tmp_path / "x"),
                *extra,
            ],
            env={"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": "http://127.0.0.1:9/api"},
        )
        assert result.exit_code == 2, result.output
        assert "missing.txt" in result.output and "does not exist" in result.output
        assert not isinstance(result.exception, FileNotFoundError)


def test_an_unwritable_output_is_a_one_line_error(keyed_api, tmp_path):
    out = tmp_path / "export"
    CliRunner().invoke(
        main,
        ["export", "--collection", keyed_api.collection_id, "--out", str(out)],
        env=_env(keyed_api),
        catch_exceptions=False,
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["crops", str(out), "--out", str(blocker / "crops")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert not isinstance(result.exception, OSError)


def test_export_stopped_by_a_server_error_says_how_to_resume(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY, light=True)
    with cvf.Client(api_key=API_KEY, base_url=api.base_url) as client:
        order = [r["id"] for r in client.browse(api.collection_id, hydrate=False)]
    api.add_fault(f"/api/media/{order[7]}", status=503, count=1)
    out = tmp_path / "export"
    args = ["export", "--collection", api.collection_id, "--out", str(out), "--batch-size", "3"]
    with pytest.warns(cvf.SkippedRecordWarning):  # one media failing is recorded, not fatal
        first = CliRunner().invoke(main, [*args, "--retries", "0"], env=_env(api))
    assert first.exit_code == 1
    assert "503" in first.output and "--resume" in first.output
    assert "Traceback" not in first.output
    second = CliRunner().invoke(main, [*args, "--resume"], env=_env(api))
    assert second.exit_code == 0, second.output
    media = cvf.read_parquet(out).media
    assert len(media) == 15 and media.media_id.is_unique


def test_crops_over_a_directory_that_is_not_an_export(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = CliRunner().invoke(main, ["crops", str(tmp_path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "no Parquet export" in result.output


def test_export_of_a_walk_cut_short_exits_1_with_the_reason(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY, browse_quirk="has_more_forever")
    out = tmp_path / "export"
    args = ["export", "--collection", api.collection_id, "--out", str(out), "--page-size", "4"]
    for extra in ([], ["--resume", "--allow-failures"]):  # never a success, whatever the flags
        with pytest.warns(cvf.PaginationWarning):
            result = CliRunner().invoke(main, [*args, *extra], env=_env(api))
        assert result.exit_code == 1, result.output
        manifest = json.loads((out / MANIFEST_NAME).read_text())
        assert manifest["status"] == "incomplete"
        assert f"export incomplete: {manifest['status_reason']}" in result.output
        assert "--resume" in result.output and "Traceback" not in result.output
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0 and "(incomplete: " in info.output


def test_info_and_export_on_a_damaged_export_name_the_repair(keyed_api, tmp_path):
    out = tmp_path / "export"
    args = ["export", "--collection", keyed_api.collection_id, "--out", str(out)]
    assert CliRunner().invoke(main, [*args, "--page-size", "4"], env=_env(keyed_api)).exit_code == 0
    next((out / "frames").glob("part-*.parquet")).unlink()
    repair = f"coreviz-frames export --collection {keyed_api.collection_id} --out {out} --overwrite"
    for command in (["info", str(out)], [*args, "--resume"]):
        result = CliRunner().invoke(main, command, env=_env(keyed_api))
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: ") and "missing" in result.output
        assert repair in result.output and "Traceback" not in result.output
    assert CliRunner().invoke(main, [*args, "--overwrite"], env=_env(keyed_api)).exit_code == 0
    assert len(cvf.read_parquet(out).media) == 15


def test_export_into_a_locked_directory_exits_1_naming_the_holder(keyed_api, tmp_path):
    from coreviz_frames.exports.lock import DirectoryLock

    out = tmp_path / "export"
    out.mkdir()
    with DirectoryLock(out):
        result = CliRunner().invoke(
            main,
            ["export", "--collection", keyed_api.collection_id, "--out", str(out), "--overwrite"],
            env=_env(keyed_api),
        )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ")
    assert (
        "being written by another export" in result.output and f"pid {os.getpid()}" in result.output
    )
    assert not (out / MANIFEST_NAME).exists()


def test_an_ids_file_that_cannot_be_decoded_is_a_one_line_error(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"abc\n\xff\xfe\n")
    result = CliRunner().invoke(
        main,
        ["export", "--ids", str(ids), "--out", str(tmp_path / "x")],
        env={"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": "http://127.0.0.1:9/api"},
    )
    assert result.exit_code == 1, result.output
    assert "cannot read the ids file" in result.output and "ids.txt" in result.output
    assert "Traceback" not in result.output


def test_export_filters_are_one_value_recorded_in_the_manifest(keyed_api, tmp_path):
    out = tmp_path / "images"
    args = ["export", "--collection", keyed_api.collection_id, "--out", str(out)]
    result = CliRunner().invoke(
        main,
        [*args, "--type", "image", "--date-from", "2000-01-01", "--no-progress"],
        env=_env(keyed_api),
    )
    assert result.exit_code == 0, result.output
    source = json.loads((out / "_coreviz_manifest.json").read_text())["source"]
    assert source["filters"] == {"type": "image", "date_from": "2000-01-01"}
    bad = CliRunner().invoke(main, [*args, "--date-from", "2000-13-01"], env=_env(keyed_api))
    assert bad.exit_code == 1 and "date_from" in bad.output


# -- messages a person can act on (issue 16, item 6) ---------------------------------------


def _closed_port_url() -> str:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/api"


def test_a_non_empty_directory_names_the_flags_not_python_arguments(keyed_api, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["export", "--collection", keyed_api.collection_id, "--out", str(out)]
    result = CliRunner().invoke(main, args, env=_env(keyed_api))
    assert result.exit_code == 1
    assert "--overwrite" in result.stderr and "--resume" in result.stderr
    assert "overwrite=True" not in result.output and "resume=True" not in result.output


def test_a_401_says_check_the_api_key_once_without_query_string_or_resume(keyed_api, tmp_path):
    out = tmp_path / "x"
    args = ["export", "--collection", keyed_api.collection_id, "--out", str(out)]
    env = {"COREVIZ_API_KEY": "wrong-key-0000", "COREVIZ_BASE_URL": keyed_api.base_url}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    err = result.stderr
    assert "check the API key (COREVIZ_API_KEY or --api-key)" in err
    assert err.count("Unauthorized") == 1  # not "401 Unauthorized: Unauthorized: ..."
    assert "?" not in err and "offset=" not in err  # URLs without their query string
    assert "--resume" not in result.output  # nothing was written: nothing to resume
    assert "wrong-key-0000" not in result.output


def test_a_401_on_every_id_names_the_key_and_the_flag_not_resume_true(keyed_api, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("a1b2c3\n")
    args = ["export", "--ids", str(ids), "--out", str(tmp_path / "x"), "--no-progress"]
    env = {"COREVIZ_API_KEY": "wrong-key-0000", "COREVIZ_BASE_URL": keyed_api.base_url}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    assert "check the API key (COREVIZ_API_KEY or --api-key)" in result.stderr
    assert "resume=True" not in result.output and "--resume" in result.stdout
    assert "(0 media/s, 1 part)" in result.stdout and "FAILED: 1 record " in result.stdout


def test_connection_refused_says_check_base_url_after_few_shown_retries(tmp_path, caplog):
    args = ["export", "--collection", "abc", "--out", str(tmp_path / "x"), "--no-progress"]
    env = {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": _closed_port_url()}
    with caplog.at_level("WARNING", logger="coreviz_frames.http"):
        result = CliRunner().invoke(main, args, env=env)  # used to retry 5 times (~20 s)
    assert result.exit_code == 1
    assert "check --base-url / COREVIZ_BASE_URL" in result.stderr
    retries = [r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage()]
    assert retries and retries[0].endswith("(connection refused): retry 1 of 2")
    assert "--resume" not in result.output
    assert "Traceback" not in result.output


def test_an_unknown_host_says_check_base_url(tmp_path):
    args = ["export", "--collection", "abc", "--out", str(tmp_path / "x"), "--no-progress"]
    env = {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": "http://no-such-host.invalid/api"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    assert "check --base-url / COREVIZ_BASE_URL" in result.stderr


def test_crops_with_the_image_host_down_list_each_id_once_on_stderr(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "export"
    args = ["export", "--collection", api.collection_id, "--out", str(out), "--no-progress"]
    assert CliRunner().invoke(main, args, env=_env(api)).exit_code == 0
    api.stop()  # the image host is gone
    crops = tmp_path / "crops"
    result = CliRunner().invoke(
        main, ["crops", str(out), "--out", str(crops), "--no-progress"], env={}
    )
    assert result.exit_code == 1
    assert "0 crops written" in result.stdout and "failed" not in result.stdout.split(")", 1)[1]
    failed = [line for line in result.stderr.splitlines() if line.startswith("  failed ")]
    ids = [line.split()[1].rstrip(":") for line in failed]
    assert len(ids) == len(set(ids)) == 10
    # 19 failed: the object without geometry is left out, not failed
    assert "  ... and 9 more (see " in result.stderr and "manifest.parquet)" in result.stderr
    assert "could not connect: the image host (127.0.0.1:" in result.stderr
    assert not any(line.split()[2] == "object" for line in failed)  # the id is said once


def test_info_warns_about_leftovers_and_repair_removes_them(keyed_api, tmp_path):
    """An interrupted run's uncommitted part would be read by a DuckDB glob; info says so,
    repair removes it (and a manifest left running becomes failed)."""
    out = tmp_path / "export"
    args = ["export", "--collection", keyed_api.collection_id, "--out", str(out)]
    assert CliRunner().invoke(main, [*args, "--no-progress"], env=_env(keyed_api)).exit_code == 0
    committed = next((out / "objects").glob("part-*.parquet"))
    orphan = out / "objects" / "part-000007.parquet"
    orphan.write_bytes(committed.read_bytes())  # renamed into place, never committed
    (out / "media" / ".tmp-part-000007.parquet.1.abc.tmp").write_bytes(b"junk")
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["status"] = "running"  # the writer was killed
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    glob = f"SELECT count(*) FROM read_parquet('{out}/objects/**/*.parquet')"
    rows = len(cvf.read_parquet(out).objects)
    assert duckdb.sql(glob).fetchall()[0][0] == 2 * rows  # fooled by the orphan

    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "2 file(s) left by an interrupted run" in info.output
    assert "objects/part-000007.parquet" in info.output
    assert f"coreviz-frames repair {out}" in info.output

    repaired = CliRunner().invoke(main, ["repair", str(out)])
    assert repaired.exit_code == 0, repaired.output
    assert "removed objects/part-000007.parquet" in repaired.output
    assert "2 leftover file(s) removed" in repaired.output
    assert duckdb.sql(glob).fetchall()[0][0] == rows
    assert json.loads((out / MANIFEST_NAME).read_text())["status"] == "failed"
    again = CliRunner().invoke(main, ["info", str(out)])
    assert "left by an interrupted run" not in again.output
    resumed = CliRunner().invoke(main, [*args, "--resume", "--no-progress"], env=_env(keyed_api))
    assert resumed.exit_code == 0, resumed.output
    assert len(cvf.read_parquet(out).objects) == rows


def test_demo_next_steps_name_files_that_exist(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    steps = result.output.split("Next, try:\n", 1)[1].splitlines()
    command = steps[0].split()[0]
    assert command == "coreviz-frames" or os.path.isfile(command) or command == sys.executable
    assert steps[1].split()[0] == sys.executable
    notebook = steps[2].split()[0]
    assert notebook.endswith("01_explore_collection.ipynb") and os.path.isfile(notebook)


def test_demo_names_an_install_of_the_notebook_extra_that_works_from_a_checkout(tmp_path):
    """Run from a clone, the package is not on an index: the hint installs the clone's extra."""
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    checkout = Path(cvf.__file__).resolve().parents[1]
    assert (checkout / "pyproject.toml").is_file()  # the tests run from a checkout
    assert f'pip install -e "{checkout}[notebook]"' in result.output
    assert '"coreviz-frames[notebook]"' not in result.output


@pytest.mark.parametrize("command", ["export", "sync"])
def test_batch_size_defaults_to_the_library_default(command):
    """--batch-size defaults to DEFAULT_BATCH_SIZE, like export_parquet and sync (the CLI
    spells the number out so that it does not import the exports to start)."""
    import inspect

    from coreviz_frames.exports.store import DEFAULT_BATCH_SIZE
    from coreviz_frames.exports.syncing import sync
    from coreviz_frames.exports.writer import export_parquet

    option = next(p for p in main.commands[command].params if p.name == "batch_size")
    assert option.default == DEFAULT_BATCH_SIZE
    for function in (export_parquet, sync):
        assert inspect.signature(function).parameters["batch_size"].default == DEFAULT_BATCH_SIZE

"""export_parquet(client.browse(...), processes=N): ranges exported by local worker processes.

Every output is read back with pandas/pyarrow straight from the Parquet files (not the
package's reader) and compared with the in-process export of the same collection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.exports import processes
from coreviz_frames.exports.manifest import read_manifest
from coreviz_frames.exports.ranges import ClientSpec, PartitionError
from coreviz_frames.exports.store import ExportStore
from coreviz_frames.exports.writer import export_parquet, flatten_batch
from coreviz_frames.local_api import LocalAPI
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import GRAINS

KEY = "sk-procs-secret-4f1a9c2e7b"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api():
    with LocalAPI(synthetic=250, api_key=KEY) as served:
        yield served


def _client(api: LocalAPI, **kwargs) -> cvf.Client:
    return cvf.Client(api_key=KEY, base_url=api.base_url, **kwargs)


def _grain(root: Path, grain: str) -> pd.DataFrame:
    """Every committed file of ``grain`` (as the manifest lists them), read by pandas and
    sorted, so two exports compare by content whatever their part order."""
    files = [root / rel for part in read_manifest(root)["parts"] for rel in part["files"][grain]]
    frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    keys = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).all()]
    return frame.sort_values(keys or list(frame.columns[:1])).reset_index(drop=True)


def _index(root: Path) -> dict[str, str]:
    parts = read_manifest(root)["parts"]
    rows = [
        r for p in parts if p.get("index") for r in pq.read_table(root / p["index"]).to_pylist()
    ]
    return {r["media_id"]: r["fingerprint"] for r in rows}


def _assert_same_export(a: Path, b: Path) -> None:
    for grain in GRAINS:
        pd.testing.assert_frame_equal(_grain(a, grain), _grain(b, grain))
    assert _index(a) == _index(b) and len(_index(a)) == 250


def _part_files_on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for g in GRAINS for p in (root / g).rglob("part-*")}


def _listed(root: Path) -> set[str]:
    parts = read_manifest(root)["parts"]
    return {rel for p in parts for rels in p["files"].values() for rel in rels}


def test_two_processes_export_what_one_process_exports(api, tmp_path):
    with _client(api) as client:
        one = export_parquet(client.browse("synthetic"), tmp_path / "one", batch_size=100)
        two = export_parquet(
            client.browse("synthetic"), tmp_path / "two", batch_size=100, processes=2
        )
    assert (one.media_exported, two.media_exported) == (250, 250)
    assert two.rows == one.rows and two.ok and two.parts_written == 3
    _assert_same_export(tmp_path / "one", tmp_path / "two")
    assert read_manifest(tmp_path / "two")["status"] == "complete"
    assert _part_files_on_disk(tmp_path / "two") == _listed(tmp_path / "two")


def test_a_failing_range_is_named_keeps_committed_parts_and_resume_finishes(api, tmp_path):
    out = tmp_path / "out"
    page = "/api/dataset/synthetic/media?recursive=true&sortBy=createdAt&sortDirection=asc"
    api.add_fault(f"{page}&limit=50&offset=100", status=500, count=1000)
    try:
        with _client(api, retries=0) as client, pytest.raises(PartitionError) as info:
            export_parquet(
                client.browse("synthetic", page_size=50), out, batch_size=50, processes=2
            )
    finally:
        api.faults.clear()
    err = info.value
    assert (err.start, err.stop, err.status) == (100, 150, 500)
    assert "offsets 100-149" in str(err)
    manifest = read_manifest(out)
    assert manifest["status"] == "failed"
    assert _part_files_on_disk(out) == _listed(out)  # nothing uncommitted left behind
    committed = manifest["media_exported"]
    with _client(api) as client:
        report = export_parquet(
            client.browse("synthetic", page_size=50), out, batch_size=50, processes=2, resume=True
        )
        export_parquet(client.browse("synthetic"), tmp_path / "whole", batch_size=100)
    assert report.media_exported == 250 - committed and report.media_skipped == committed
    _assert_same_export(tmp_path / "whole", out)


def test_where_processes_cannot_start_the_ranges_run_here(api, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("this platform lacks a functioning sem_open implementation")

    monkeypatch.setattr(processes, "ProcessPoolExecutor", refuse)
    with _client(api) as client:
        with pytest.warns(RuntimeWarning, match="cannot be started here .*sem_open"):
            export_parquet(
                client.browse("synthetic"), tmp_path / "here", batch_size=100, processes=2
            )
        export_parquet(client.browse("synthetic"), tmp_path / "one", batch_size=100)
    _assert_same_export(tmp_path / "one", tmp_path / "here")


def test_the_key_reaches_workers_through_the_pipe_only(api, tmp_path):
    with _client(api) as client, ExportStore(tmp_path / "x").open() as store:
        plan = processes.ranged_plan(client.browse("synthetic"))
        spec = ClientSpec.of_client(client)
        read, _ = processes._plan_ranges(plan, 100)
        worker = processes._Worker(spec, read, store.part_writer(), flatten_batch, frozenset())
        pool = processes._start_pool(2, worker)
        assert pool is not None
        try:
            pids = list(pool._processes)
            assert pids
            for pid in pids:
                for name in ("cmdline", "environ"):
                    assert KEY.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
            for _ in pids:
                pool.submit(time.sleep, 120)  # a range that takes long
        finally:
            processes._stop(pool)
        deadline = time.monotonic() + 10  # stopped, not left to finish their 120 s
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids)
        assert KEY not in repr(spec) + repr(worker) + repr(plan)
        store.finish("complete")
    with _client(api) as client:
        export_parquet(client.browse("synthetic"), tmp_path / "y", batch_size=100, processes=2)
    for path in (tmp_path / "y").rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes()


def test_processes_refuses_what_it_cannot_split(api, tmp_path):
    with _client(api) as client:
        with pytest.raises(ConfigError, match=r"client\.browse"):
            export_parquet(client.iter_media(["a"]), tmp_path / "a", processes=2)
        with pytest.raises(ConfigError, match="max_items"):
            export_parquet(client.browse("synthetic", max_items=5), tmp_path / "b", processes=2)
        with pytest.raises(ConfigError, match="processes"):
            export_parquet(client.browse("synthetic"), tmp_path / "c", processes=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_media_read_by_two_ranges_is_committed_once(tmp_path):
    records = list(iter_synthetic(6))
    tables = {i: cvf.to_tables(records[a:b]) for i, (a, b) in enumerate([(0, 4), (2, 6)])}
    with ExportStore(tmp_path).open() as store:
        writer = store.part_writer()
        first = writer.write(tables[0], store.reserve_part(), None)
        second = writer.write(tables[1], store.reserve_part(), None)
        store.adopt_pending(first)
        commit = store.adopt_pending(second)
        store.finish("complete")
    assert commit.media == 2
    media = _grain(tmp_path, "media")["media_id"]
    assert sorted(media) == sorted(r["id"] for r in records)
    assert _part_files_on_disk(tmp_path) == _listed(tmp_path)


_SCRIPT = """
import sys
import coreviz_frames as cvf
from coreviz_frames.exports.writer import export_parquet, flatten_batch
client = cvf.Client(api_key=sys.argv[1], base_url=sys.argv[2])
print("start", flush=True)
export_parquet(client.browse("synthetic", page_size=10), sys.argv[3], batch_size=10, processes=2)
"""


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            kids = {int(k) for k in task.read_text().split()}
            todo += list(kids - found)
            found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _running_workers(pid: int, out: Path) -> set[int]:
    """The live descendants of ``pid`` once its export committed a part (so its workers
    run), or fail after a minute."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        manifest = out / "_coreviz_manifest.json"
        if manifest.is_file() and '"part"' in manifest.read_text():
            workers = {p for p in _descendants(pid) if _alive(p)}
            if len(workers) >= 2:
                return workers
        time.sleep(0.1)
    raise AssertionError("the workers did not start")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_to_the_export_leaves_no_worker_behind(tmp_path, sig):
    with LocalAPI(synthetic=400, api_key=KEY, latency=0.2) as slow:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_SCRIPT), KEY, slow.base_url, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as proc:
            try:
                assert proc.stdout is not None and proc.stdout.readline().strip() == b"start"
                workers = _running_workers(proc.pid, tmp_path)
                proc.send_signal(sig)
                proc.wait(30)
                deadline = time.monotonic() + 15
                while any(_alive(p) for p in workers) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not any(_alive(p) for p in workers)
            finally:
                proc.kill()
    if sig != signal.SIGKILL:
        assert proc.returncode in (1, 130, 143, -sig)
        assert read_manifest(tmp_path)["status"] == "failed"


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_once(api, tmp_path):
    """Spawned workers import nothing of the user's script (it would run again in each)."""
    script = tmp_path / "export_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import coreviz_frames as cvf
            print("script body ran", flush=True)
            with cvf.Client(api_key={KEY!r}, base_url={api.base_url!r}) as client:
                cvf.export_parquet(
                    client.browse("synthetic"), {str(tmp_path / "out")!r}, batch_size=100,
                    processes=2,
                )
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("script body ran") == 1
    assert read_manifest(tmp_path / "out")["media_exported"] == 250

"""Delta exports killed (SIGKILL) at twenty points of a sync and of an export.

A child process runs the sync or export with every commit step counted: each Delta write
(``write_deltalake``, a table created, a restore), each staged file and each manifest
save. At step N (before it runs, or just after) the child kills itself. Then:

- right after the kill, ``read_parquet`` (the versions the manifest pins) reads the old
  or the new snapshot, never a mix;
- a re-run finishes the work, and then each grain's *newest* version (what a reader of
  one table sees) equals a clean run's rows.

The children are forked by one runner process per test module, which imported pandas,
pyarrow, deltalake and the package once (a fresh interpreter per kill spent most of its time
importing them); each child is still its own process, killed with SIGKILL by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from coreviz_frames.api.client import Client
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.syncing import sync
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.schema import GRAINS
from tests.exports.test_delta import _records, assert_same

ROOT = Path(__file__).resolve().parents[2]
KEY = "kill-test-key"
POINTS = 20

# Reads one JSON task a line; forks a child per task and answers with the child's exit code
# (-9 when it killed itself, "hung" after 300 s) and the steps it counted (written to the
# task's "steps" file).
RUNNER = textwrap.dedent(
    """
    import json, os, signal, sys, time, traceback
    import deltalake
    from deltalake import DeltaTable
    import coreviz_frames.exports.deltastore as deltastore
    import coreviz_frames.exports.store as store
    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.syncing import sync
    from coreviz_frames.exports.writer import export_parquet

    state = {"kill_at": 0, "mode": "none", "steps": 0}

    def counted(real):
        def step(*args, **kwargs):
            state["steps"] += 1
            if state["steps"] == state["kill_at"] and state["mode"] == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            out = real(*args, **kwargs)
            if state["steps"] == state["kill_at"] and state["mode"] == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return step

    # the package calls deltalake.write_deltalake through the module (imported on first use)
    deltalake.write_deltalake = counted(deltalake.write_deltalake)
    DeltaTable.create = staticmethod(counted(DeltaTable.create))
    DeltaTable.restore = counted(DeltaTable.restore)
    deltastore.write_file = counted(deltastore.write_file)
    store.ExportStore._save = counted(store.ExportStore._save)

    def run(task):
        state.update(kill_at=task["kill_at"], mode=task["mode"], steps=0)
        if task["what"] == "sync":
            with Client(api_key=task["key"], base_url=task["base_url"]) as client:
                sync(client, task["collection"], task["out"], batch_size=7, progress=False)
        else:
            records = json.loads(open(task["records"]).read())
            export_parquet(records, task["out"], batch_size=7, table_format="delta",
                           resume=task["resume"], progress=False)
        with open(task["steps"], "w") as fh:
            fh.write(str(state["steps"]))

    for line in sys.stdin:
        task = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run(task)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        deadline = time.monotonic() + 300  # a child that hangs is killed and reported
        while not (done := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        if not done[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(done[1]) if done[0] else "hung", flush=True)
    """
)


class Runner:
    """The forking runner: ``run(task, kill_at, mode)`` -> (finished, steps counted)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "runner.log"
        self.count = 0
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=ROOT,
                env=env,
            )

    def run(self, task: dict, kill_at: int = 0, mode: str = "none") -> tuple[bool, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.count += 1
        steps = self.folder / f"steps-{self.count}"
        line = json.dumps({**task, "kill_at": kill_at, "mode": mode, "steps": str(steps)})
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, self.log.read_text()[-2000:]  # the runner itself died
        assert answer.strip() != "hung", f"{task['what']} hung: {self.log.read_text()[-2000:]}"
        code = int(answer)
        if code == 0:
            return True, int(steps.read_text())
        assert code == -9, self.log.read_text()[-2000:]
        return False, kill_at

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    started = Runner(tmp_path_factory.mktemp("runner"))
    yield started
    started.close()


def _points(total: int) -> list[tuple[int, str]]:
    """Twenty (step, before/after) points spread over a run of ``total`` steps."""
    every = [(n, mode) for n in range(1, total + 1) for mode in ("before", "after")]
    if len(every) <= POINTS:
        return every
    return [every[round(i * (len(every) - 1) / (POINTS - 1))] for i in range(POINTS)]


def _newest(out: Path) -> dict:
    """Each grain's newest Delta version, as read_parquet's pandas frames."""
    import pandas as pd

    from coreviz_frames.schema import SCHEMAS, arrow_to_pandas

    return {
        grain: arrow_to_pandas(
            DeltaTable(str(out / grain)).to_pyarrow_table().cast(SCHEMAS[grain]), grain
        )
        if (out / grain / "_delta_log").is_dir()
        else pd.DataFrame()
        for grain in GRAINS
    }


def _same(a, b) -> bool:
    try:
        assert_same(a, b)
    except AssertionError:
        return False
    return True


@pytest.mark.slow
def test_sigkill_at_twenty_points_of_a_delta_sync(local_api_factory, runner, tmp_path):
    api = local_api_factory(synthetic=40, api_key=KEY)
    pristine = tmp_path / "pristine"
    with Client(api_key=KEY, base_url=api.base_url) as client:
        sync(client, api.collection_id, pristine, batch_size=7, progress=False)
    old = read_parquet(pristine)
    api.mutate(seed=7, adds=8, edits=9, deletes=5)
    task = {"what": "sync", "key": KEY, "base_url": api.base_url}
    task["collection"] = api.collection_id
    clean = tmp_path / "clean"
    shutil.copytree(pristine, clean)
    finished, total = runner.run({**task, "out": str(clean)})
    assert finished
    new = read_parquet(clean)
    assert not _same(new, old)
    outcomes = []
    for n, mode in _points(total):
        out = tmp_path / f"kill-{n}-{mode}"
        shutil.copytree(pristine, out)
        finished, _ = runner.run({**task, "out": str(out)}, n, mode)
        pinned = read_parquet(out)
        outcomes.append("old" if _same(pinned, old) else "new")
        assert outcomes[-1] == "old" or _same(pinned, new), (n, mode)  # never a mix
        assert runner.run({**task, "out": str(out)})[0]  # the re-run
        assert_same(_newest(out), new)
        assert_same(read_parquet(out), new)
        shutil.rmtree(out)
    assert "old" in outcomes and "new" in outcomes


@pytest.mark.slow
def test_sigkill_at_twenty_points_of_a_delta_export(runner, tmp_path):
    records = _records(40)
    (tmp_path / "records.json").write_text(json.dumps(records))
    task = {"what": "export", "records": str(tmp_path / "records.json"), "resume": False}
    finished, total = runner.run({**task, "out": str(tmp_path / "clean")})
    assert finished
    clean = read_parquet(tmp_path / "clean")
    assert len(clean.media) == 40
    for n, mode in _points(total):
        out = tmp_path / f"kill-{n}-{mode}"
        finished, _ = runner.run({**task, "out": str(out)}, n, mode)
        manifest = out / "_coreviz_manifest.json"
        if not finished and manifest.is_file() and json.loads(manifest.read_text())["tables"]:
            media = read_parquet(out).media
            assert media.media_id.is_unique  # whole batches only, never one twice
        assert runner.run({**task, "out": str(out), "resume": True})[0]  # the re-run
        assert_same(_newest(out), clean)
        assert_same(read_parquet(out), clean)
        shutil.rmtree(out)


def test_a_killed_delta_sync_reads_old_then_new(local_api_factory, runner, tmp_path):
    """The quick version: a kill after the first table commit of a sync."""
    api = local_api_factory(synthetic=20, api_key=KEY)
    out = tmp_path / "d"
    with Client(api_key=KEY, base_url=api.base_url) as client:
        sync(client, api.collection_id, out, batch_size=7, progress=False)
        old = read_parquet(out)
        api.mutate(seed=2, adds=2, edits=2, deletes=1)
        task = {"what": "sync", "key": KEY, "base_url": api.base_url, "out": str(out)}
        task["collection"] = api.collection_id
        shutil.copytree(out, tmp_path / "probe")
        total = runner.run({**task, "out": str(tmp_path / "probe")})[1]
        # the last steps: six table commits (media first), then the manifest
        finished, _ = runner.run(task, total - 6, "after")
        assert not finished
        assert DeltaTable(str(out / "media")).version() == 2  # ahead of the manifest's 1
        assert_same(read_parquet(out), old)  # the manifest still pins the old snapshot
        sync(client, api.collection_id, out, batch_size=7, progress=False)
        fresh = tmp_path / "fresh"
        export_parquet(client.browse(api.collection_id, progress=False), fresh, progress=False)
    assert_same(_newest(out), read_parquet(fresh))


def test_a_killed_first_delta_sync_is_continued_by_the_next(local_api_factory, runner, tmp_path):
    """Killed after creating some of its tables: the next sync starts them again."""
    api = local_api_factory(synthetic=12, api_key=KEY)
    out = tmp_path / "d"
    task = {"what": "sync", "key": KEY, "base_url": api.base_url, "out": str(out)}
    task["collection"] = api.collection_id
    # step 1 saves the first manifest, 2-13 stage two batches (a file per table each),
    # 14-19 create the tables: killed after the second one
    finished, _ = runner.run(task, 15, "after")
    assert not finished and (out / "_coreviz_manifest.json").is_file()
    assert (out / "media" / "_delta_log").is_dir()  # a table no snapshot pins
    with Client(api_key=KEY, base_url=api.base_url) as client:
        report = sync(client, api.collection_id, out, batch_size=7, progress=False)
        fresh = tmp_path / "fresh"
        export_parquet(client.browse(api.collection_id, progress=False), fresh, progress=False)
    assert report.ok and report.added == 12
    assert_same(_newest(out), read_parquet(fresh))

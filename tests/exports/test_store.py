"""The export store: one writer per directory, what resume and overwrite may delete, a kill
while clearing, damaged manifests, and an export never left "running" after an error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import coreviz_frames as cvf
from coreviz_frames import ExportError
from coreviz_frames.exports.lock import LOCK_NAME, DirectoryLock, LockHolder
from coreviz_frames.exports.manifest import (
    MANIFEST_NAME,
    failure_from_manifest,
    failure_to_manifest,
    read_manifest,
)
from coreviz_frames.exports.reader import describe_export
from coreviz_frames.exports.store import ExportStore
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.failures import FailedFetch
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.tables.media_tables import to_tables

ROOT = Path(__file__).resolve().parents[2]


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class _Gate:
    """Records that stop after the first one until ``open()`` is called (a slow walk)."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.started = threading.Event()
        self._open = threading.Event()

    def open(self) -> None:
        self._open.set()

    def __iter__(self):
        yield self.records[0]
        self.started.set()
        assert self._open.wait(30), "the test never opened the gate"
        yield from self.records[1:]


# --------------------------------------------------------------------------- one writer


def test_two_concurrent_exports_exactly_one_runs(tmp_path: Path) -> None:
    first, second = list(iter_synthetic(6)), list(iter_synthetic(4, start=50))
    gate = _Gate(first)
    out = tmp_path / "x"
    results: dict[str, object] = {}

    def run_first() -> None:
        try:
            results["first"] = export_parquet(gate, out, batch_size=2, progress=False)
        except BaseException as exc:  # reported to the main thread
            results["first"] = exc

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert gate.started.wait(30)
        for kwargs in ({"overwrite": True}, {"resume": True}, {}):
            with pytest.raises(ExportError, match="being written by another export") as info:
                export_parquet(second, out, progress=False, **kwargs)
            assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(info.value)
            assert info.value.path == str(out)
        described = describe_export(out)
        assert "(running)" in described and f"being written now by pid {os.getpid()}" in described
    finally:
        gate.open()
        thread.join(30)
    report = results["first"]
    assert isinstance(report, cvf.ExportReport) and report.ok, report
    assert sorted(cvf.read_parquet(out).media.media_id) == sorted(to_tables(first).media.media_id)
    assert not (out / LOCK_NAME).exists()  # released on exit
    assert read_manifest(out)["status"] == "complete"


HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from coreviz_frames.exports.writer import export_parquet
    from coreviz_frames.local_api.synthetic import iter_synthetic

    out, go = sys.argv[1], Path(sys.argv[2])

    def records():
        yield from iter_synthetic(3)
        print("started", flush=True)
        while not go.exists():
            time.sleep(0.01)
        yield from iter_synthetic(3, start=3)

    export_parquet(records(), out, batch_size=2, progress=False)
    print("done", flush=True)
    """
)


def test_a_second_process_gets_export_error_naming_the_holder(tmp_path: Path) -> None:
    out, go = tmp_path / "x", tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(out), str(go)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "started", proc.stderr.read()
        with pytest.raises(ExportError, match=f"pid {proc.pid} on host") as info:
            export_parquet(iter_synthetic(2, start=90), out, overwrite=True, progress=False)
        assert str(out / LOCK_NAME) in str(info.value)  # what to delete if that process is gone
    finally:
        go.touch()
        out_text, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "done" in out_text
    assert len(cvf.read_parquet(out).media) == 6  # the holder's export, untouched
    assert not (out / LOCK_NAME).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.mkdir()
    stale = LockHolder(_dead_pid(), socket.gethostname(), "2026-01-01T00:00:00Z")
    (out / LOCK_NAME).write_bytes(stale.to_bytes())
    assert DirectoryLock(out).current_holder() is None  # nobody holds it any more
    report = export_parquet(iter_synthetic(3), out, progress=False)
    assert report.ok and report.media_exported == 3
    assert not (out / LOCK_NAME).exists()


def test_a_lock_written_on_another_host_is_not_taken(tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.mkdir()
    other = LockHolder(4242, "another-host.example", "2026-01-01T00:00:00Z")
    (out / LOCK_NAME).write_bytes(other.to_bytes())
    with pytest.raises(ExportError, match=r"pid 4242 on host another-host\.example"):
        export_parquet(iter_synthetic(3), out, progress=False)
    assert (out / LOCK_NAME).read_bytes() == other.to_bytes()  # left for its owner


def test_the_lock_is_released_after_an_error_and_the_export_is_failed(tmp_path: Path) -> None:
    def broken():
        yield from iter_synthetic(5)
        raise RuntimeError("the source broke")

    out = tmp_path / "x"
    with pytest.raises(RuntimeError, match="the source broke"):
        export_parquet(broken(), out, batch_size=2, progress=False)
    manifest = read_manifest(out)
    assert manifest["status"] == "failed"  # never left "running"
    assert manifest["status_reason"] == "RuntimeError: the source broke"
    assert manifest["media_exported"] == 4  # the two committed parts
    assert not (out / LOCK_NAME).exists()
    assert "(failed: RuntimeError: the source broke)" in describe_export(out)
    report = export_parquet(iter_synthetic(5), out, batch_size=2, resume=True, progress=False)
    assert report.ok and (report.media_skipped, report.media_exported) == (4, 1)
    assert read_manifest(out)["status"] == "complete"


def test_directory_lock_is_exclusive_and_reentrant_safe(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path) as lock:
        assert lock.held
        holder = LockHolder.from_bytes((tmp_path / LOCK_NAME).read_bytes())
        assert holder is not None and holder.pid == os.getpid()
        with pytest.raises(ExportError, match="being written by another export"):
            DirectoryLock(tmp_path).acquire()
        with pytest.raises(ExportError, match="already held"):
            lock.acquire()
    assert not (tmp_path / LOCK_NAME).exists()
    DirectoryLock(tmp_path).acquire().release()  # free again


# --------------------------------------------------------------------------- what resume deletes


def test_resume_deletes_only_its_own_files(tmp_path: Path) -> None:
    out = tmp_path / "x"
    records = list(iter_synthetic(12))
    export_parquet(records[:6], out, batch_size=3, progress=False)
    readme = out / "media" / "README.txt"
    readme.write_text("my notes")
    notes = out / "objects" / "part-notes.parquet.bak"
    notes.write_bytes(b"mine")
    orphan = out / "frames" / "part-000007.parquet"  # a part of ours the manifest never listed
    orphan.write_bytes(b"half")
    tmp = out / "tags" / ".tmp-part-000002.parquet.1.abc.tmp"
    tmp.write_bytes(b"junk")
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"precious")
    (out / "captions" / "part-000099.parquet").symlink_to(outside)

    report = export_parquet(records, out, batch_size=3, resume=True, progress=False)
    assert (report.media_skipped, report.media_exported) == (6, 6)
    assert readme.read_text() == "my notes" and notes.read_bytes() == b"mine"
    assert not orphan.exists() or orphan.read_bytes() != b"half"
    assert not tmp.exists()
    assert outside.read_bytes() == b"precious"  # a symlink is never followed
    assert len(cvf.read_parquet(out).media) == 12


@pytest.mark.parametrize("where", ["grain", "partition"])
def test_resume_refuses_a_symlinked_folder_and_empties_nothing(tmp_path: Path, where) -> None:
    out = tmp_path / "x"
    records = list(iter_synthetic(4, collection_id="a"))
    export_parquet(records[:2], out, partition_by="dataset_id", progress=False)
    target = tmp_path / "elsewhere"
    if where == "grain":  # the grain folder moved elsewhere, a symlink left in its place
        (out / "tags").rename(target)
        (out / "tags").symlink_to(target, target_is_directory=True)
        theirs = target / "dataset_id-a" / "part-000005.parquet"
    else:
        target.mkdir()
        (out / "tags" / "dataset_id=zz").symlink_to(target, target_is_directory=True)
        theirs = target / "part-000005.parquet"
    theirs.write_bytes(b"not yours")  # a part name no committed part lists
    with pytest.raises(ExportError, match="is a symlink"):
        export_parquet(records, out, resume=True, progress=False)
    assert theirs.read_bytes() == b"not yours"
    with pytest.raises(ExportError, match="refusing to overwrite"):
        export_parquet(records, out, overwrite=True, progress=False)
    assert theirs.read_bytes() == b"not yours"


# --------------------------------------------------------------------------- killed overwrite


KILL_WHILE_CLEARING = textwrap.dedent(
    """
    import os, shutil, signal, sys
    import coreviz_frames.exports.store as store
    from coreviz_frames.exports.writer import export_parquet
    from coreviz_frames.local_api.synthetic import iter_synthetic

    real_rmtree, removed, die_after = shutil.rmtree, [], int(sys.argv[2])
    def rmtree_then_die(path, *args, **kwargs):
        if len(removed) == die_after:  # the power cut, after this many grain folders
            os.kill(os.getpid(), signal.SIGKILL)
        real_rmtree(path, *args, **kwargs)
        removed.append(path)
        if len(removed) == die_after:
            os.kill(os.getpid(), signal.SIGKILL)

    store.shutil.rmtree = rmtree_then_die
    export_parquet(iter_synthetic(3, start=100), sys.argv[1], overwrite=True, progress=False)
    """
)


def _killed_while_clearing(out: Path, die_after: int) -> None:
    export_parquet(iter_synthetic(20), out, batch_size=5, progress=False, source={"x": 1})
    proc = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_CLEARING, str(out), str(die_after)],
        cwd=ROOT,
        capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    left = [g for g in ("media", "frames", "captions", "objects", "tags") if (out / g).exists()]
    assert len(left) == 5 - die_after  # killed with that many grain folders removed


@pytest.mark.parametrize("die_after", [0, 2, 5])
@pytest.mark.parametrize("finish", ["resume", "overwrite"])
def test_overwrite_killed_while_clearing_is_finished_by_a_rerun(
    tmp_path: Path, finish, die_after
) -> None:
    out = tmp_path / "x"
    _killed_while_clearing(out, die_after)
    with pytest.raises(ExportError, match="overwrite of this export was interrupted"):
        cvf.read_parquet(out)
    assert "--overwrite" in describe_export(out)
    fresh = list(iter_synthetic(3, start=100))
    report = export_parquet(fresh, out, progress=False, **{finish: True})
    assert report.ok and report.media_exported == 3
    assert sorted(cvf.read_parquet(out).media.media_id) == sorted(to_tables(fresh).media.media_id)
    assert read_manifest(out)["status"] == "complete"


def test_a_manifest_listing_missing_parts_is_a_typed_error_with_the_repair(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x"
    records = list(iter_synthetic(10))
    export_parquet(records, out, batch_size=5, source={"collection_id": "col7"})
    (out / "objects" / "part-000001.parquet").unlink()
    repair = f"coreviz-frames export --collection col7 --out {out} --overwrite"
    for call in (
        lambda: cvf.read_parquet(out),
        lambda: describe_export(out),
        lambda: export_parquet(records, out, resume=True, progress=False),
    ):
        with pytest.raises(ExportError, match="missing") as info:
            call()
        assert "objects/part-000001.parquet" in str(info.value) and repair in str(info.value)
    assert not (out / LOCK_NAME).exists()
    report = export_parquet(records, out, overwrite=True, progress=False)
    assert report.ok and len(cvf.read_parquet(out).media) == 10


# --------------------------------------------------------------------------- failures


def test_failures_are_failed_fetches_and_old_manifests_still_read(tmp_path: Path) -> None:
    failure = FailedFetch("m1", 503, "ServerError", "GET media 'm1' failed: 503")
    entry = failure_to_manifest(failure)
    assert entry == {
        "id": "m1",
        "status": 503,
        "error_type": "ServerError",
        "reason": "ServerError: GET media 'm1' failed: 503",
    }
    assert failure_from_manifest(entry) == failure
    out = tmp_path / "x"
    export_parquet(iter_synthetic(2), out, progress=False)
    manifest = read_manifest(out)
    manifest["failed"] = [{"id": "old1", "status": 404, "reason": "NotFoundError: gone"}]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))  # written before error_type
    report = export_parquet(iter_synthetic(2), out, resume=True, progress=False)
    assert report.failed == [
        {"id": "old1", "status": 404, "error_type": "", "reason": "NotFoundError: gone"}
    ]
    assert report.failures == [FailedFetch("old1", 404, "", "NotFoundError: gone")]


def test_the_store_refuses_changes_once_finished(tmp_path: Path) -> None:
    store = ExportStore(tmp_path / "x").open()
    with store:
        store.finish("complete")
        with pytest.raises(ExportError, match="not running"):
            store.record_failures([FailedFetch("a", None, "X", "y")])
    with pytest.raises(ExportError, match="open"), store:
        pass


def test_a_dask_export_takes_the_same_lock(tmp_path: Path, local_api_factory) -> None:
    pytest.importorskip("dask")
    from coreviz_frames.dask import export_media

    api = local_api_factory(synthetic=3)
    out = tmp_path / "x"
    out.mkdir()
    with DirectoryLock(out), pytest.raises(ExportError, match="being written by another"):
        export_media(["a1"], out, client_kwargs={"api_key": "k", "base_url": api.base_url})
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, lock released


def test_without_flock_the_lock_file_decides(tmp_path: Path, monkeypatch) -> None:
    import coreviz_frames.exports.lock as lock_mod

    monkeypatch.setattr(lock_mod, "fcntl", None)  # as on Windows
    with DirectoryLock(tmp_path):
        with pytest.raises(ExportError, match=f"pid {os.getpid()} on host"):
            DirectoryLock(tmp_path).acquire()
        assert DirectoryLock(tmp_path).current_holder().pid == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()
    dead = _dead_pid()
    (tmp_path / LOCK_NAME).write_bytes(LockHolder(dead, socket.gethostname(), None).to_bytes())
    assert DirectoryLock(tmp_path).current_holder() is None
    lock = DirectoryLock(tmp_path).acquire()
    assert lock.taken_over is not None and lock.taken_over.pid == dead
    lock.release()
    assert not list(tmp_path.iterdir())  # no lock, no temporary file left


# --------------------------------------------------------------------------- part files


def test_the_files_of_a_part_are_written_side_by_side(tmp_path: Path, monkeypatch) -> None:
    """Two grain files of one part are being written at the same moment (a barrier of two
    that a one-by-one writer could never pass), and the part reads back whole."""
    import coreviz_frames.exports.store as store_module

    original = store_module.write_file
    meeting = threading.Barrier(2, timeout=10)
    met: list[bool] = []

    def meet_then_write(target, table, **kwargs):
        if not met:
            try:
                meeting.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
        return original(target, table, **kwargs)

    monkeypatch.setattr(store_module, "write_file", meet_then_write)
    report = export_parquet(iter_synthetic(20), tmp_path / "out", progress=False)
    assert report.ok and met and all(met)
    assert len(cvf.read_parquet(tmp_path / "out").media) == 20


def test_a_failing_file_fails_the_part_and_commits_nothing(tmp_path: Path, monkeypatch) -> None:
    """An error writing one grain file reaches the caller; the part is not committed and
    the rerun (resume) exports every media once."""
    import coreviz_frames.exports.store as store_module

    original = store_module.write_file

    def fail_captions(target, table, **kwargs):
        if "captions" in Path(target).parts:
            raise OSError(28, "No space left on device")
        return original(target, table, **kwargs)

    monkeypatch.setattr(store_module, "write_file", fail_captions)
    with pytest.raises(OSError, match="No space left"):
        export_parquet(iter_synthetic(10), tmp_path / "out", progress=False)
    monkeypatch.setattr(store_module, "write_file", original)
    report = export_parquet(iter_synthetic(10), tmp_path / "out", progress=False, resume=True)
    assert report.ok
    media = cvf.read_parquet(tmp_path / "out").media
    assert sorted(media["media_id"]) == sorted(m["id"] for m in iter_synthetic(10))

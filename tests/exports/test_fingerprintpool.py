"""FingerprintPool: exact results from side processes, the in-process fallback, and no
orphan process after an error, a Ctrl-C, a SIGTERM or a killed child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from coreviz_frames.errors import FingerprintError
from coreviz_frames.exports.fingerprint import fingerprint
from coreviz_frames.exports.fingerprintpool import PROCESSES_ENV, FingerprintPool
from coreviz_frames.local_api.synthetic import iter_synthetic

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name != "posix", reason="signals and /proc")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        import psutil
    except ImportError:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], within: float = 20.0) -> bool:
    """True once none of ``pids`` runs (a liveness bound, not a timing assertion)."""
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _page(start: int, count: int) -> tuple[bytes, dict[str, str]]:
    records = _records(start, count)
    return orjson.dumps({"media": records}), {r["id"]: fingerprint(r) for r in records}


def _records(start: int, count: int) -> list[dict]:
    return [r for i, r in enumerate(iter_synthetic(start + count)) if i >= start]


def test_side_processes_give_the_exact_fingerprints_of_each_body():
    pages = [_page(i * 20, 20) for i in range(3)]
    singles = [(orjson.dumps({"media": r}), {r["id"]: fingerprint(r)}) for r in _records(0, 12)]
    with FingerprintPool(workers=2) as pool:
        futures = [
            (pool.submit(body, what=f"page {i}"), want)
            for i, (body, want) in enumerate(pages + singles)
        ]  # the small ones travel batched
        rows = pool.submit(pages[0][0], [3, 1]).result()
        assert pool.submit(b"not even JSON", []).result() == {}  # no row: never decoded
        assert [f.result(timeout=120) for f, _ in futures] == [want for _, want in futures]
        assert pool.mode == "processes" and pool.reason is None
        pids = pool.pids
        assert pids and os.getpid() not in pids
    assert list(rows) == [_records(3, 1)[0]["id"], _records(1, 1)[0]["id"]]
    assert _gone(pids)
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(b"{}")


def test_a_bad_body_fails_its_own_future_naming_it():
    with FingerprintPool(workers=1) as pool:
        bad = pool.submit(b'{"media": [', what="collection 'c1' (offset 2000)")
        good = pool.submit(b'{"media": [{"id": "m1"}]}')
        with pytest.raises(FingerprintError, match=r"collection 'c1' \(offset 2000\)") as info:
            bad.result(timeout=120)
        assert info.value.page == "collection 'c1' (offset 2000)"
        assert good.result(timeout=120) == {"m1": fingerprint({"id": "m1"})}


def test_the_switch_computes_in_process_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv(PROCESSES_ENV, "0")
    body, want = _page(0, 5)
    with caplog.at_level("INFO", logger="coreviz_frames.exports"), FingerprintPool() as pool:
        assert pool.submit(body).result() == want
    assert (pool.mode, pool.pids) == ("thread", [])
    assert f"in-process ({PROCESSES_ENV}=0)" in pool.describe() in caplog.text


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/false"])
def test_processes_that_cannot_start_fall_back_to_this_process(monkeypatch, caplog, executable):
    if not Path(executable).parent.exists() and executable != "/nonexistent/python":
        pytest.skip(f"no {executable}")
    monkeypatch.setattr(sys, "executable", executable)
    body, want = _page(0, 5)
    with FingerprintPool(workers=2) as pool:
        assert pool.submit(body, what="p0").result(timeout=60) == want
    assert pool.mode == "thread"
    assert "side process" in pool.reason and pool.reason in caplog.text


@posix_only
def test_an_error_in_the_caller_kills_the_side_processes_and_cancels_the_rest():
    body, _ = _page(0, 50)
    with pytest.raises(ZeroDivisionError), FingerprintPool(workers=1) as pool:
        pool.submit(b'{"media": []}').result(timeout=120)  # a side process is running
        futures = [pool.submit(body) for _ in range(40)]  # 8 at most travel at once
        pids = pool.pids
        1 / 0  # noqa: B018
    assert pids and _gone(pids)
    assert all(f.done() for f in futures)
    assert any(f.cancelled() for f in futures)


@posix_only
def test_a_child_killed_mid_work_fails_its_body_by_name_then_a_new_one_serves():
    body, want = _page(0, 30)
    with FingerprintPool(workers=1) as pool:
        assert pool.submit(b'{"media": []}').result(timeout=120) == {}
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)  # frozen: it cannot answer before it is killed
        future = pool.submit(body, what="collection 'c1' (offset 4000)")
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(FingerprintError, match=r"offset 4000.*side process \d+ exited") as info:
            future.result(timeout=120)
        assert info.value.page == "collection 'c1' (offset 4000)"
        assert pool.submit(body).result(timeout=120) == want
        assert pool.pids and pool.pids != [pid]


_PARENT = textwrap.dedent(
    """
    import sys, time
    from coreviz_frames.exports.fingerprintpool import FingerprintPool
    body = b'{"media": [' + b','.join(b'{"id": "m%d", "t": "x"}' % i for i in range(2000)) + b']}'
    with FingerprintPool(workers=2) as pool:
        for _ in range(2):
            pool.submit(body).result()
        print(*pool.pids, flush=True)
        while True:
            pool.submit(body)
            time.sleep(0.01)
    """
)


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGINT to the group", "SIGKILL"])
def test_no_orphan_after_the_parent_is_stopped(how):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own group, as a shell job is
    )
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        if how == "SIGINT to the group":
            os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            parent.send_signal(getattr(signal, how))
        parent.wait(timeout=60)
        assert _gone(pids), f"side processes {pids} outlived their parent ({how})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()


def test_hydrated_rows_travel_with_their_page():
    page = b'{"media": [{"id": "a", "listedOnly": 1}, {"id": "b"}, {"id": "c"}]}'
    full = orjson.dumps({"media": {**_records(0, 1)[0], "id": "a"}})
    with FingerprintPool(workers=1) as pool:
        got = pool.submit(page, [0, 2], hydrated={0: full}).result(timeout=120)
    want = {**_records(0, 1)[0], "id": "a", "listedOnly": 1}
    assert got == {"a": fingerprint(want), "c": fingerprint({"id": "c"})}


def test_a_side_process_that_imports_another_copy_of_the_package_is_not_used(monkeypatch):
    from coreviz_frames.exports import fingerprintpool

    monkeypatch.setattr(fingerprintpool, "__file__", "/elsewhere/fingerprintpool.py")
    with FingerprintPool(workers=1) as pool:
        assert pool.submit(b'{"media": [{"id": "m1"}]}').result(timeout=120) == {
            "m1": fingerprint({"id": "m1"})
        }
    assert pool.mode == "thread" and "another copy of the package" in pool.reason


def _mode_in_a_worker(_: object) -> tuple[str, str | None]:
    with FingerprintPool() as pool:
        pool.submit(b'{"media": []}').result(timeout=120)
        return pool.mode, pool.reason


@pytest.mark.slow
def test_inside_a_multiprocessing_worker_the_pool_computes_in_process():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as workers:
        mode, reason = workers.map(_mode_in_a_worker, [0])[0]
    assert mode == "thread" and "worker process" in reason


@posix_only
def test_a_side_process_that_stays_silent_at_start_is_killed_and_not_used(monkeypatch, tmp_path):
    from coreviz_frames.exports import fingerprintpool

    silent = tmp_path / "python"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(silent))
    monkeypatch.setattr(fingerprintpool, "START_TIMEOUT", 0.5)
    with FingerprintPool(workers=1) as pool:
        assert pool.submit(b'{"media": {"id": "m1"}}').result(timeout=60) == {
            "m1": fingerprint({"id": "m1"})
        }
    assert pool.mode == "thread" and "no answer within" in pool.reason and pool.pids == []


@posix_only
def test_stray_output_before_the_side_process_answers_is_not_taken_for_an_answer(
    monkeypatch, tmp_path
):
    noisy = tmp_path / "python"  # as a sitecustomize that prints would
    noisy.write_text(f'#!/bin/sh\necho "hello from sitecustomize"\nexec {sys.executable} "$@"\n')
    noisy.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(noisy))
    with FingerprintPool(workers=1) as pool:
        assert pool.submit(b'{"media": {"id": "m1"}}').result(timeout=60) == {
            "m1": fingerprint({"id": "m1"})
        }
    assert pool.mode == "thread" and "not its answer" in pool.reason and pool.pids == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are Linux's")
def test_one_side_process_by_default_fed_through_a_pipe_that_holds_a_page():
    import fcntl

    body, want = _page(0, 30)
    with FingerprintPool() as pool:
        assert pool.workers == 1
        assert pool.submit(body).result() == want
        if pool.mode != "processes":
            pytest.skip(f"side processes are not available here: {pool.describe()}")
        (side,) = pool._sides.values()
        size = fcntl.fcntl(side.proc.stdin.fileno(), fcntl.F_GETPIPE_SZ)
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    assert size >= min(1 << 20, limit) > 64 << 10


def test_a_side_process_imports_neither_requests_nor_pyarrow():
    """A side process starts with every export, when the cores are busiest: it imports only
    what fingerprinting needs (``requests`` came in through the JSON codec: 0.13 s)."""
    from coreviz_frames.exports.fingerprintpool import _CHILD

    probe = _CHILD.replace(
        "_serve_child()",
        "print(sorted({'requests', 'urllib3', 'pyarrow', 'pandas'} & set(sys.modules)))",
    )
    assert probe != _CHILD
    out = subprocess.run(
        [sys.executable, "-c", probe, orjson.dumps(sys.path).decode()],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout

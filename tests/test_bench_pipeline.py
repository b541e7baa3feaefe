"""``benchmarks/bench_pipeline.py`` runs and prints every row of issue 25's table.

No figure is checked: timings of a shared machine mean nothing in a test. A tiny run
(200 media, one latency, one round) checks the rows, the aims and today's frozen package;
its parts (the frozen copy, the Arrow floor's batching) are checked on their own.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_pipeline.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The benchmark script as a module (its folder on ``sys.path`` for ``_common``)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("bench_pipeline_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def has_today_commit(bench: ModuleType) -> bool:
    cmd = ["git", "-C", str(ROOT), "cat-file", "-e", f"{bench.TODAY_COMMIT}^{{commit}}"]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


@pytest.mark.slow
def test_a_tiny_run_prints_every_row_and_aim(bench: ModuleType):
    cmd = [sys.executable, str(SCRIPT), "--media", "200", "--latency", "0", "--rounds", "1"]
    cmd += ["--memory-media", "100", "200"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^expected duration: about \d+ min", out, re.M)
    stages = ["fetch", "parse json.loads", "flatten", "fingerprint", "write", "Arrow floor"]
    if importlib.util.find_spec("coreviz_frames.exports.fingerprintpool") is not None:
        stages.append("fingerprint pool")
    for row in stages:
        assert re.search(rf"^{re.escape(row)} +\d+\.\d\d +[\d,]+$", out, re.M), row
    number = r" +200 +\d+\.\d\d +\d+\.\d\d-\d+\.\d\d +[\d,]+ "
    rows = re.findall(rf"^( *[\w()'. ]+?){number}.* +\d+ +\d+$", out, re.M)
    today = has_today_commit(bench)
    expected = ["export_parquet(browse)", "  first release", "to_tables(browse)", "  first release"]
    if today:
        expected[1:1] = ["  today's (b504686)"]
        expected[4:4] = ["  today's (b504686)"]
        assert f"the package at commit {bench.TODAY_COMMIT}" in out
    else:
        assert "the today rows are SKIPPED" in out
    assert rows == expected
    aims = re.findall(r"^  (.*) (MET|MISSED|NOT MEASURED)$", out.split("all aims")[1], re.M)
    assert [text.split(" at ")[0].split(":")[0] for text, _ in aims] == [
        "export_parquet(browse) >= 2.5x today's",
        "export_parquet(browse) >= 3.0x first release",
        "to_tables(browse) >= 2.5x today's",
        "peak RSS of 200 media <= 1.2x that of 100",
    ]
    assert ("NOT MEASURED" in {verdict for _, verdict in aims}) == (not today)
    assert re.search(r"^  peak RSS of the child alone \d+ MB -> \d+ MB", out, re.M)


def test_today_is_the_package_at_the_frozen_commit(bench: ModuleType, tmp_path: Path):
    if not has_today_commit(bench):
        pytest.skip(f"this checkout has no commit {bench.TODAY_COMMIT}")
    folder, how = bench.freeze_today(tmp_path)
    assert folder == tmp_path and bench.TODAY_COMMIT in how
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{bench.TODAY_COMMIT}:coreviz_frames/__init__.py"],
        capture_output=True,
        check=True,
    ).stdout
    assert (tmp_path / "coreviz_frames" / "__init__.py").read_bytes() == shown
    assert (tmp_path / "coreviz_frames" / "__pycache__").is_dir()  # compiled: no child will


def test_without_git_history_today_is_skipped_and_said(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above it
    bench.ROOT = tmp_path / "not-a-checkout"
    bench.ROOT.mkdir()
    folder, how = bench.freeze_today(tmp_path / "out")
    assert folder is None
    assert f"no commit {bench.TODAY_COMMIT}" in how or "git is not available" in how


class FakePage:
    """What ``read_page`` returns, as far as the Arrow floor uses it."""

    def __init__(self, types: list[str]) -> None:
        import pyarrow as pa

        self.types = types
        self.media = pa.table({"type": types})

    def take(self, rows: list[int]):
        return self.media.take(rows)


def test_the_arrow_floor_flattens_kept_rows_in_batches(bench: ModuleType):
    pages = {
        b"a": ["video"] * 600 + ["folder"],
        b"b": ["image"] * 300 + ["folder"] + ["image"] * 300,  # not consecutive: taken
        b"c": None,
        b"d": ["image"],
    }
    seen: list[int] = []

    def flatten_arrow(tables):
        seen.append(sum(table.num_rows for table in tables))
        for table in tables:
            assert set(table.column("type").to_pylist()) <= {"video", "image"}
        return None if len(seen) == 2 else {}

    def read_page(body: bytes):
        kinds = pages[body]
        return None if kinds is None else FakePage(kinds)

    result = bench.read_and_flatten(list(pages), read_page, flatten_arrow)
    assert seen == [1200, 1]  # a batch once BATCH (1,000) rows are kept, then the rest
    assert result == (1, 1, 2)  # pages refused, batches refused, batches


def test_the_arrow_floor_says_what_it_measured(bench: ModuleType, monkeypatch):
    body = b'{"media":[{"id":"m1","type":"image"}],"pagination":{"total":1}}'
    monkeypatch.setattr(bench, "fast_path_parts", lambda: (None, None))
    seconds, note = bench.arrow_floor([body])
    assert seconds >= 0 and "reader only" in note and "MISSING" in note
    monkeypatch.setattr(bench, "fast_path_parts", lambda: (lambda b: None, None))
    _, note = bench.arrow_floor([body, body])
    assert "read_page refused 2 of 2 pages" in note and "MISSING" in note


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux /proc")
def test_the_memory_of_a_process_tree_counts_its_children(bench: ModuleType):
    """A child holding 200 MB shows in its parent's tree; the parent alone does not hold it."""
    holder = "import time; b = bytearray(200 * 2**20); print(1, flush=True); time.sleep(60)"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {holder!r}])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"1\n"
        own = int(Path(f"/proc/{proc.pid}/statm").read_text().split()[1])
        assert own * resource.getpagesize() < 100 * 2**20
        assert bench.tree_rss_mb(proc.pid) >= 200
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test started: parent and child
        proc.wait()
        proc.stdout.close()


def test_each_round_starts_one_path_later(bench: ModuleType, tmp_path: Path, monkeypatch):
    """No path always follows the same one: a child runs slower after some others."""
    order: list[str] = []

    def fake_child(kind, run, out=None):
        order.append(f"{kind}{'-today' if run.package else ''}")
        return {"seconds": 1.0}

    monkeypatch.setattr(bench, "run_child", fake_child)
    paths = [f"{p.child}{'-today' if p.today else ''}" for p in bench.PATHS]
    results = bench.end_to_end(bench.Run(None, 10, 5), tmp_path, tmp_path, rounds=3)
    n = len(paths)
    assert order == paths + paths[1:] + paths[:1] + paths[2:] + paths[:2]
    assert order[:n] != order[n : 2 * n] and all(len(r) == 3 for r in results.values())

"""Benchmark: the export pipeline stage by stage and end to end, vs today's and the first release.

On N synthetic media (default 20,000; ``--quick`` 3,000) served by the local API in its own
process (``LocalAPIProcess``, warmed), at each latency (default 0 and 0.02 s), in ONE run:

* **each stage alone**, one after another on one thread (the floor of each):
  ``fetch`` the page bytes with a bare ``ThreadPoolExecutor`` + ``requests.Session`` (no
  parse); ``parse`` them with ``json.loads`` (and ``coreviz_frames._util.jsoncodec.loads``);
  ``flatten`` the records in batches of 1,000 to Arrow tables; ``to pandas`` (only counted
  while ``ExportStore.commit_part`` takes pandas frames); ``fingerprint`` every record;
  ``write`` the parts with ``ExportStore.commit_part``; ``fingerprint pool``: every page's
  bytes through ``exports.fingerprintpool.FingerprintPool``, the wall time of its side
  processes (when the package has it). At the latencies after the first only ``fetch`` is
  measured again: the other stages never wait on the network;
* the **Arrow floor**: ``tables.arrowrecords.read_page`` of each page's bytes and
  ``tables.arrowflatten.flatten_arrow`` of the kept rows in batches of 1,000 (the five
  tables); where the package has no such modules, ``pyarrow.json.read_json`` of each page
  alone, said in the output (the Arrow compute is then missing from the row);
* **end to end**, each run in a fresh child process (so its peak RSS is its own), in rounds
  interleaved A B C, B C A, C A B ... (each round starts one path later), medians of
  ``--rounds`` (6 rounds give each path every place once):
  ``export_parquet(client.browse(...))`` and ``to_tables(client.browse(...))`` of N media by

  - the current package;
  - **today's** package, frozen: ``git archive`` of commit ``b504686`` (``coreviz_frames``)
    extracted into a temporary folder that is first on ``sys.path`` in its children, so
    "x today" keeps meaning the export path before issue 25 (skipped, and said, where the
    checkout has no git history). Both packages are compiled to bytecode before the first
    child starts, so no child (nor its side processes) compiles a module it imports;
  - the **first release's** path: standard-library JSON with the GC on
    (``response.json()``), stages one after another, each step on one thread: fetch a batch
    of pages with the bare pool, parse, ``to_tables``, then (export) ``pa.Table.from_pandas``
    + ``pq.write_table`` per grain, or (to_tables) one ``to_tables`` of everything at the end.
    No fingerprints.
* **memory**: the peak RSS of ``export_parquet(client.browse(...))`` of 50,000 media against
  5,000 (``--memory-media``), each in a child process, latency 0. Every child's peak RSS is
  given twice: its own (``VmHWM``, exact) and the sum over its process tree (sampled by this
  process every 0.2 s: side processes such as a fingerprint pool count; the aim uses it).

It prints the expected duration first, then media/s of each, the ratios, the peak RSS, and
each aim of issue 25 as MET or MISSED (at each latency):

* ``export_parquet(browse)`` >= 2.5x today's and >= 3x the first release's;
* ``to_tables(browse)`` >= 2.5x today's;
* peak RSS of the 50,000-media export <= 1.2x that of 5,000.

Measure on a quiet machine: other processes on the cores change every figure.
``--sweep`` measures browse throughput (``list(client.browse(cid, page_size=P))``, and the
bare pool's bytes-only fetch) for P in 50, 100, 200, 500, 1000 at each latency;
``--with-sweep`` adds it at the non-zero latency to a normal run.

Usage:
    .venv/bin/python benchmarks/bench_pipeline.py              # 20,000 media, 3 rounds, <= 15 min
    .venv/bin/python benchmarks/bench_pipeline.py --quick      # 3,000 media, < 2 minutes
    .venv/bin/python benchmarks/bench_pipeline.py --sweep      # the page-size sweep only
    .venv/bin/python benchmarks/bench_pipeline.py --media 5000 --latency 0.02 --rounds 5
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import math
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import peak_rss_mb  # noqa: E402

T = TypeVar("T")
API_KEY = "bench-key"
HEADERS = {"x-api-key": API_KEY}
WORKERS = 8  # the Client's default max_workers; the bare pools use as many threads
BATCH = 1000  # media per flattened batch / part, as export_parquet's default batch_size
PAGE_SIZES = (50, 100, 200, 500, 1000)
TODAY_COMMIT = "b504686"  # the package before issue 25's fast path: "today's" export
AIM_EXPORT_X_TODAY = 2.5
AIM_EXPORT_X_FIRST = 3.0
AIM_TABLES_X_TODAY = 2.5
AIM_MEMORY_RATIO = 1.2
STARTED = time.perf_counter()  # the run's clock, for the times printed as it goes


# --------------------------------------------------------------------------- fetching


def pooled_session(workers: int) -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=workers))
    return session


def page_requests(n: int, page_size: int) -> list[tuple[int, int]]:
    """``(offset, limit)`` of the pages holding the first ``n`` media."""
    return [(offset, min(page_size, n - offset)) for offset in range(0, n, page_size)]


class BarePool:
    """A bare thread pool sharing one pooled session: ``get(pages)`` -> the responses."""

    def __init__(self, base_url: str, collection_id: str, workers: int = WORKERS) -> None:
        self.url = f"{base_url}/dataset/{collection_id}/media"
        self.session = pooled_session(workers)
        self.pool = ThreadPoolExecutor(workers)

    def _one(self, page: tuple[int, int]) -> requests.Response:
        offset, limit = page
        params = {
            "recursive": "true",
            "sortBy": "createdAt",
            "sortDirection": "asc",
            "limit": str(limit),
            "offset": str(offset),
        }
        response = self.session.get(self.url, params=params, headers=HEADERS, timeout=120)
        if response.status_code != 200:
            raise RuntimeError(f"page at offset {offset}: HTTP {response.status_code}")
        return response

    def get(self, pages: list[tuple[int, int]]) -> list[requests.Response]:
        return list(self.pool.map(self._one, pages))

    def close(self) -> None:
        self.pool.shutdown()
        self.session.close()

    def __enter__(self) -> BarePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parsers() -> dict[str, Callable[[bytes], Any]]:
    """The JSON parsers to measure: the standard library's, and the package's if present."""
    found: dict[str, Callable[[bytes], Any]] = {"json.loads": json.loads}
    try:
        from coreviz_frames._util import jsoncodec  # written in the same session: may be absent
    except ImportError:
        return found
    loads = getattr(jsoncodec, "loads", None)
    if callable(loads):
        found["jsoncodec.loads"] = loads
    return found


def parse_each(bodies: list[bytes], loads: Callable[[bytes], Any]) -> int:
    """Parse every body, keeping none (each page is dropped once parsed); return the media."""
    return sum(len(loads(body)["media"]) for body in bodies)


def media_of(page: Any) -> list[dict]:
    return [m for m in page["media"] if not (isinstance(m, dict) and m.get("type") == "folder")]


def batches(bodies: list[bytes], loads: Callable[[bytes], Any]) -> Iterator[list[dict]]:
    """The records of ``bodies`` in batches of :data:`BATCH` (the last one shorter)."""
    batch: list[dict] = []
    for body in bodies:
        batch += media_of(loads(body))
        while len(batch) >= BATCH:
            yield batch[:BATCH]
            batch = batch[BATCH:]
    if batch:
        yield batch


# --------------------------------------------------------------------------- stages alone


@dataclass
class Stages:
    """Seconds of each stage alone over ``n`` media."""

    n: int
    seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""
    arrow_note: str = ""
    pool_note: str = ""
    write_takes_arrow: bool = False  # then export_parquet needs no "to pandas" step

    def floor(self, names: tuple[str, ...]) -> float:
        return sum(self.seconds[k] for k in names if k in self.seconds)


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """``(seconds, fn(*args, **kwargs))``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def to_pandas(arrow: Mapping[str, Any]) -> Any:
    """``flatten``'s Arrow tables as ``MediaTables`` (what ``to_tables`` adds to flatten)."""
    from coreviz_frames.schema import arrow_to_pandas
    from coreviz_frames.tables.media_tables import MediaTables

    return MediaTables(**{grain: arrow_to_pandas(table, grain) for grain, table in arrow.items()})


def fingerprints(batch: list[dict]) -> dict[str, tuple[str | None, str | None]]:
    """What export computes per record: ``{id: (fingerprint, None)}``."""
    from coreviz_frames.exports.fingerprint import fingerprint

    return {record["id"]: (fingerprint(record), None) for record in batch}


def commit_takes_arrow(workdir: Path) -> bool:
    """Whether ``ExportStore.commit_part`` takes ``flatten``'s Arrow tables as they are."""
    from coreviz_frames.exports.store import ExportStore
    from coreviz_frames.local_api.synthetic import iter_synthetic
    from coreviz_frames.tables.flatten import flatten

    tables, _ = flatten(list(iter_synthetic(3)), on_error="skip")
    try:
        with ExportStore(workdir / "probe").open(overwrite=True, resume=False, source=None) as st:
            st.commit_part(tables, failures=[], fingerprints={})
            st.finish("complete")
    except Exception:  # any refusal means "pandas frames, as before"
        return False
    return True


def fetch_stage(base_url: str, cid: str, n: int, page_size: int) -> tuple[float, list[bytes]]:
    """Seconds to fetch the pages of ``n`` media with the bare pool, and their bodies."""
    with BarePool(base_url, cid) as pool:
        pool.get(page_requests(min(n, WORKERS * page_size), page_size))  # open connections
        seconds, responses = timed(pool.get, page_requests(n, page_size))
    return seconds, [r.content for r in responses]


def measure_stages(
    server: Any, page_size: int, workdir: Path, earlier: Stages | None = None
) -> Stages:
    """Each stage alone, one after another on one thread (fetch uses the bare pool). With
    ``earlier`` (measured at another latency) only ``fetch`` is measured again: the other
    stages never wait on the network."""
    n = server.options.synthetic
    seconds, bodies = fetch_stage(server.base_url, server.collection_id, n, page_size)
    if earlier is not None:
        stages = Stages(n, dict(earlier.seconds), earlier.note, earlier.arrow_note)
        stages.pool_note = earlier.pool_note
        stages.write_takes_arrow, stages.seconds["fetch"] = earlier.write_takes_arrow, seconds
        stages.note += "; all but fetch measured at the first latency"
        return stages
    stages = Stages(n, {"fetch": seconds})
    found = parsers()
    for name, loads in found.items():  # page by page, as a pipeline holds one page at a time
        stages.seconds[f"parse {name}"] = timed(parse_each, bodies, loads)[0]
    stages.write_takes_arrow = commit_takes_arrow(workdir)
    stages.note = f"commit_part takes {'Arrow' if stages.write_takes_arrow else 'pandas frames'}"
    loads = found.get("jsoncodec.loads", json.loads)
    stages.seconds.update(exact_stages(bodies, loads, stages, workdir / "stages"))
    stages.seconds[ARROW_FLOOR], stages.arrow_note = arrow_floor(bodies)
    pooled = pool_stage(bodies)
    if pooled is not None:
        stages.seconds[POOL], stages.pool_note = pooled
    return stages


POOL = "fingerprint pool"


def pool_stage(bodies: list[bytes]) -> tuple[float, str] | None:
    """Wall seconds of ``FingerprintPool`` fingerprinting every page from its bytes (started
    and warmed before the clock), and where it computed; None without the module."""
    try:
        from coreviz_frames.exports.fingerprintpool import FingerprintPool
    except ImportError:
        return None
    with FingerprintPool() as pool:
        for warm in [pool.submit(bodies[0], what="warm-up") for _ in range(pool.workers)]:
            warm.result()  # every side process started
        start = time.perf_counter()
        futures = [pool.submit(body, what=f"page {i}") for i, body in enumerate(bodies)]
        for future in futures:
            future.result()
        return time.perf_counter() - start, pool.describe()


def exact_stages(
    bodies: list[bytes], loads: Callable, stages: Stages, folder: Path
) -> dict[str, float]:
    """Seconds of flatten, to pandas, fingerprint and write over the batches of ``bodies``
    (the parts written to ``folder``, removed afterwards)."""
    from coreviz_frames.exports.store import ExportStore
    from coreviz_frames.tables.flatten import flatten

    store = ExportStore(folder)
    count = dict.fromkeys(("flatten", "to pandas", "fingerprint", "write"), 0.0)
    with store.open(overwrite=True, resume=False, source=None):
        for batch in batches(bodies, loads):
            seconds, (arrow, _) = timed(flatten, batch, on_error="skip")
            count["flatten"] += seconds
            seconds, frames = timed(to_pandas, arrow)
            count["to pandas"] += seconds
            seconds, fps = timed(fingerprints, batch)
            count["fingerprint"] += seconds
            tables = arrow if stages.write_takes_arrow else frames
            count["write"] += timed(store.commit_part, tables, failures=[], fingerprints=fps)[0]
        store.finish("complete")
    shutil.rmtree(folder, ignore_errors=True)
    return count


# --------------------------------------------------------------------------- the Arrow floor

ARROW_FLOOR = "Arrow floor"


def fast_path_parts() -> tuple[Callable[[bytes], Any] | None, Callable[[Any], Any] | None]:
    """``(read_page, flatten_arrow)`` of the package, each None where it has none (yet)."""
    try:
        from coreviz_frames.tables.arrowrecords import read_page
    except ImportError:
        return None, None
    try:
        from coreviz_frames.tables.arrowflatten import flatten_arrow
    except ImportError:
        return read_page, None
    return read_page, flatten_arrow


def read_json_each(bodies: list[bytes]) -> int:
    """``pyarrow.json.read_json`` of each page as it is (one JSON document, one row)."""
    import pyarrow as pa
    import pyarrow.json as pj

    rows = 0
    for body in bodies:
        options = pj.ReadOptions(block_size=len(body) + 1)  # a block holds a whole document
        rows += pj.read_json(pa.BufferReader(body), read_options=options).num_rows
    return rows


def kept_rows(page: Any) -> Any:
    """The page's media rows but folders: a zero-copy slice when they are consecutive (as
    the export's ``PageRows.table`` takes them), else ``ArrowPage.take`` (a copy)."""
    rows = [r for r, kind in enumerate(page.types) if kind != "folder"]
    if rows and rows == list(range(rows[0], rows[0] + len(rows))):
        return page.media.slice(rows[0], len(rows))
    return page.take(rows)


def read_and_flatten(
    bodies: list[bytes], read_page: Callable[[bytes], Any], flatten_arrow: Callable | None
) -> tuple[int, int, int]:
    """``read_page`` of every body, ``flatten_arrow`` of the kept rows (folders left out) in
    batches of whole pages (one call takes a batch's pages), :data:`BATCH` rows or just over:
    ``(pages read_page refused, batches flatten_arrow refused, batches)``."""
    refused_pages = refused_batches = done = 0
    pending: list[Any] = []
    for i, body in enumerate(bodies):
        page = read_page(body)
        if page is None:
            refused_pages += 1
        elif flatten_arrow is not None:
            pending.append(kept_rows(page))
        rows = sum(table.num_rows for table in pending)
        if pending and (rows >= BATCH or i == len(bodies) - 1):
            refused_batches += flatten_arrow(pending) is None
            done, pending = done + 1, []
    return refused_pages, refused_batches, done


def arrow_floor(bodies: list[bytes]) -> tuple[float, str]:
    """Seconds of the Arrow floor over ``bodies`` and what the row measured."""
    read_page, flatten_arrow = fast_path_parts()
    if read_page is None:
        seconds = timed(read_json_each, bodies)[0]
        return seconds, (
            "reader only: pyarrow.json.read_json of each page; the Arrow compute for the five "
            "tables is MISSING (no tables.arrowrecords / tables.arrowflatten in this package)"
        )
    seconds, (pages, refused, done) = timed(read_and_flatten, bodies, read_page, flatten_arrow)
    note = "read_page of each page"
    note += (
        f" + flatten_arrow of {done} batches of {BATCH}"
        if flatten_arrow is not None
        else "; the Arrow compute is MISSING (no tables.arrowflatten in this package)"
    )
    if pages or refused:
        note += (
            f"; NOT all provable: read_page refused {pages} of {len(bodies)} pages, "
            f"flatten_arrow {refused} of {done} batches (the exact path would take them)"
        )
    return seconds, note


# --------------------------------------------------------------------------- today's package


def compile_package(folder: Path) -> None:
    """Write the bytecode of every module under ``folder``, so that no child compiles a
    module it imports, before or during its timed run (where ``PYTHONDONTWRITEBYTECODE`` is
    set, an import would compile it again in every child, side processes included): both
    packages, today's and this checkout's, start alike."""
    compileall.compile_dir(str(folder), quiet=1, workers=0)


def freeze_today(dest: Path) -> tuple[Path | None, str]:
    """Extract ``coreviz_frames`` as of :data:`TODAY_COMMIT` into ``dest``: ``(folder to put
    first on sys.path, what was done)``, or ``(None, why not)`` without git history."""
    cmd = ["git", "-C", str(ROOT), "archive", "--format=tar", TODAY_COMMIT, "coreviz_frames"]
    try:
        done = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"git is not available ({exc})"
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        return None, f"this checkout has no commit {TODAY_COMMIT} ({' '.join(reason[:1])})"
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        try:
            archive.extractall(dest, filter="data")
        except TypeError:  # a Python without extraction filters (before 3.10.12 / 3.11.4)
            archive.extractall(dest)  # our own repository's archive
    compile_package(dest / "coreviz_frames")
    return dest, (
        f"today's path = the package at commit {TODAY_COMMIT} (git archive extracted into a "
        "temporary folder, first on sys.path in its children)"
    )


# --------------------------------------------------------------------------- end to end


def _browse(client: Any, args: argparse.Namespace) -> Any:
    """``client.browse`` of the benchmark's collection, as every end-to-end child reads it."""
    return client.browse(
        args.collection_id,
        page_size=args.page_size,
        max_items=args.n if args.n < args.total else None,
        progress=False,
    )


def child_export(args: argparse.Namespace) -> int:
    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.writer import export_parquet

    with Client(api_key=API_KEY, base_url=args.base_url, max_workers=WORKERS) as client:
        records = _browse(client, args)
        report = export_parquet(records, args.out, progress=False)
    if not report.ok:
        raise RuntimeError(f"export not ok: {report}")
    return report.media_exported


def child_tables(args: argparse.Namespace) -> int:
    from coreviz_frames.api.client import Client
    from coreviz_frames.tables.media_tables import to_tables

    with Client(api_key=API_KEY, base_url=args.base_url, max_workers=WORKERS) as client:
        records = _browse(client, args)
        return len(to_tables(records).media)


def baseline_steps(args: argparse.Namespace) -> Iterator[list[dict]]:
    """The first release's fetch and parse: a batch of pages with the bare pool, then
    ``response.json()`` of each on this thread (standard-library JSON, GC on)."""
    pages = page_requests(args.n, args.page_size)
    per_batch = max(1, math.ceil(BATCH / args.page_size))
    with BarePool(args.base_url, args.collection_id) as pool:
        for i in range(0, len(pages), per_batch):
            responses = pool.get(pages[i : i + per_batch])
            yield [m for r in responses for m in media_of(r.json())]


def child_baseline_export(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from coreviz_frames.tables.media_tables import to_tables

    out, media = Path(args.out), 0
    for part, records in enumerate(baseline_steps(args)):
        tables = to_tables(records)
        for grain, frame in tables.items():
            (out / grain).mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_table(table, out / grain / f"part-{part:06d}.parquet", compression="zstd")
        media += len(tables.media)
    return media


def child_browse(args: argparse.Namespace) -> int:
    """Drain a browse, dropping each record (for the sweep's peak RSS)."""
    from coreviz_frames.api.client import Client

    with Client(api_key=API_KEY, base_url=args.base_url, max_workers=WORKERS) as client:
        records = _browse(client, args)
        return sum(1 for _ in records)


def child_baseline_tables(args: argparse.Namespace) -> int:
    from coreviz_frames.tables.media_tables import to_tables

    records = [m for step in baseline_steps(args) for m in step]
    return len(to_tables(records).media)


CHILDREN: dict[str, Callable[[argparse.Namespace], int]] = {
    "export": child_export,
    "tables": child_tables,
    "baseline-export": child_baseline_export,
    "baseline-tables": child_baseline_tables,
    "browse": child_browse,
}


@dataclass(frozen=True)
class Run:
    """Where one end-to-end child runs: the collection, how much of it, which package."""

    server: Any
    n: int
    page_size: int
    total: int = 0  # the collection's size (n when 0)
    package: Path | None = None  # a folder first on sys.path in the child (today's package)


RSS_SAMPLE = 0.2  # seconds between two looks at the memory of a child and its processes


def child_pids(pid: int) -> list[int]:
    """The children of process ``pid`` (Linux ``/proc/PID/task/TID/children``; a scan of
    every ``/proc/PID/stat`` where the kernel has no such file)."""
    tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if tasks:
        found = []
        for task in tasks:
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # the thread ended meanwhile
        return found
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return children


def tree_rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` and all its descendants, in MB (Linux
    ``/proc``; 0 elsewhere)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1])
        except (OSError, IndexError):
            continue  # gone meanwhile, with its children
        todo += child_pids(current)
    return total * resource.getpagesize() / 2**20


def watched(cmd: list[str]) -> tuple[int, str, str, float]:
    """Run ``cmd``: its exit code, stdout, stderr, and the highest memory its process tree
    held at once (sampled every :data:`RSS_SAMPLE` s: side processes, such as a pool
    computing fingerprints, count too)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    peak = 0.0
    try:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=RSS_SAMPLE)
            except subprocess.TimeoutExpired:
                peak = max(peak, tree_rss_mb(proc.pid))
            else:
                return proc.returncode, stdout, stderr, peak
    except BaseException:  # Ctrl-C or SIGTERM of the benchmark: the child goes with it
        proc.kill()
        proc.communicate()
        raise


def stop_on_sigterm() -> None:
    """A SIGTERM ends the benchmark as Ctrl-C does: its servers and child are stopped."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def run_child(kind: str, run: Run, out: Path | None = None) -> dict:
    """One end-to-end run in a fresh process: ``{"seconds", "media", "rss_mb", "tree_mb",
    "package"}``; ``rss_mb`` is the child's own peak (exact), ``tree_mb`` that of the child
    with its own processes (sampled); ``out`` (the export's folder) is removed afterwards."""
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(run.n)]
    cmd += ["--total", str(run.total or run.n)] + (["--out", str(out)] if out else [])
    cmd += ["--base-url", run.server.base_url, "--collection-id", run.server.collection_id]
    cmd += ["--page-size", str(run.page_size)]
    if run.package is not None:
        cmd += ["--package-dir", str(run.package)]
    code, stdout, stderr, tree_mb = watched(cmd)
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)  # 20,000 media write ~100 MB a run
    if code != 0:
        raise RuntimeError(f"{kind} child failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tree_mb"] = max(tree_mb, result["rss_mb"])
    if result["media"] != run.n:
        raise RuntimeError(f"{kind}: {result['media']} media, expected {run.n}")
    expected = (run.package or ROOT).resolve()
    if not Path(result["package"]).is_relative_to(expected):
        raise RuntimeError(f"{kind} ran the package at {result['package']}, not {expected}")
    return result


def child_main(args: argparse.Namespace) -> int:
    warnings.simplefilter("error")  # a skipped record or a pagination warning is a failure
    if args.package_dir:  # today's frozen package, before this checkout's
        sys.path.insert(0, args.package_dir)
    # imported before the clock starts (pandas, pyarrow and the package take ~1 s to import,
    # the same for every path): the runs time the work, not the interpreter's start
    import coreviz_frames
    import coreviz_frames.api.client
    import coreviz_frames.exports.writer
    import coreviz_frames.tables.media_tables

    start = time.perf_counter()
    media = CHILDREN[args.child](args)
    seconds = time.perf_counter() - start
    package = str(Path(coreviz_frames.__file__).resolve().parent)
    print(
        json.dumps(
            {"seconds": seconds, "media": media, "rss_mb": peak_rss_mb(), "package": package}
        )
    )
    return 0


@dataclass(frozen=True)
class E2EPath:
    """One end-to-end path of the table."""

    key: str
    child: str  # a key of CHILDREN
    label: str
    today: bool = False  # run by today's frozen package


PATHS = (
    E2EPath("export", "export", "export_parquet(browse)"),
    E2EPath("today-export", "export", "  today's (b504686)", today=True),
    E2EPath("first-export", "baseline-export", "  first release"),
    E2EPath("tables", "tables", "to_tables(browse)"),
    E2EPath("today-tables", "tables", "  today's (b504686)", today=True),
    E2EPath("first-tables", "baseline-tables", "  first release"),
)


def end_to_end(run: Run, today: Path | None, workdir: Path, rounds: int) -> dict[str, list]:
    """Every path once per round, rounds interleaved, each in a fresh process: ``{path key:
    [result of each round]}`` (today's paths left out without git). Each round starts one
    path later than the one before (A B C, B C A, C A B, ...): a child runs slower after some
    others (seen here: ``to_tables`` right after an export, 1.84 s alone and 2.20 s there), so
    no path may always follow the same one."""
    paths = [p for p in PATHS if today is not None or not p.today]
    results: dict[str, list] = {p.key: [] for p in paths}
    for i in range(rounds):
        start = time.perf_counter()
        for p in paths[i % len(paths) :] + paths[: i % len(paths)]:
            child_run = Run(run.server, run.n, run.page_size, package=today if p.today else None)
            results[p.key].append(run_child(p.child, child_run, workdir / f"{p.key}-{i}"))
        print(
            f"  round {i + 1}/{rounds}: {time.perf_counter() - start:.0f} s "
            f"({len(paths)} fresh processes; {time.perf_counter() - STARTED:.0f} s into the run)",
            flush=True,
        )
    return results


def memory_runs(
    server: Any, sizes: tuple[int, int], page_size: int, workdir: Path
) -> dict[int, dict]:
    """``export_parquet(client.browse(...))`` of each of ``sizes`` media (small, then large),
    each in a child process: ``{media: result}``."""
    total = server.options.synthetic
    return {
        n: run_child("export", Run(server, n, page_size, total=total), workdir / f"memory-{n}")
        for n in sizes
    }


# --------------------------------------------------------------------------- the page sweep


def sweep(server: Any, n: int, repeat: int, rss: bool) -> dict[int, dict[str, float]]:
    """Per page size: ``browse`` and bare-pool ``fetch`` seconds over ``n`` media, best of
    ``repeat`` (page sizes interleaved); with ``rss``, the peak RSS of a browse of them
    in a fresh process (``rss_mb``; the records are dropped as they come)."""
    from coreviz_frames.api.client import Client

    best = {size: {"browse": math.inf, "fetch": math.inf} for size in PAGE_SIZES}
    max_items = n if n < server.options.synthetic else None
    with Client(api_key=API_KEY, base_url=server.base_url, max_workers=WORKERS) as client:
        for _ in range(repeat):
            for size in PAGE_SIZES:
                browse = client.browse(
                    server.collection_id, page_size=size, max_items=max_items, progress=False
                )
                seconds, records = timed(list[dict], browse)
                if len(records) != n:
                    raise RuntimeError(f"page_size {size}: {len(records)} media, expected {n}")
                del records
                best[size]["browse"] = min(best[size]["browse"], seconds)
                with BarePool(server.base_url, server.collection_id) as pool:
                    seconds, _ = timed(pool.get, page_requests(n, size))
                best[size]["fetch"] = min(best[size]["fetch"], seconds)
    for size in PAGE_SIZES if rss else ():
        total = server.options.synthetic
        best[size]["rss_mb"] = run_child("browse", Run(server, n, size, total=total))["rss_mb"]
    return best


def print_sweep(n: int, latency: float, result: dict[int, dict[str, float]]) -> None:
    base = result.get(100, next(iter(result.values())))["browse"]
    print(f"\npage-size sweep: {n:,} media, latency {latency * 1000:.0f} ms, {WORKERS} workers")
    head = ("page_size", "requests", "browse s", "media/s", "vs 100", "fetch s", "media/s", "RSS")
    print("{:>9} {:>8} {:>9} {:>9} {:>7} {:>8} {:>9} {:>8}".format(*head))
    for size, row in result.items():
        rss = f"{row['rss_mb']:5.0f} MB" if "rss_mb" in row else ""
        print(
            f"{size:>9} {math.ceil(n / size):>8} {row['browse']:9.2f} {n / row['browse']:9,.0f} "
            f"{base / row['browse']:6.2f}x {row['fetch']:8.2f} {n / row['fetch']:9,.0f} {rss:>8}"
        )
    print(
        "  browse: list(client.browse(...)), parse included; fetch: bare pool, bytes only;"
        + (
            "\n  RSS: peak of a browse in a fresh process, records dropped as they come"
            if rss
            else ""
        )
    )


# --------------------------------------------------------------------------- the report


STAGE_ORDER = ("fetch", "parse", "flatten", "to pandas", "fingerprint", "write")
EXPORT_STAGES = STAGE_ORDER
TABLES_STAGES = ("fetch", "parse", "flatten", "to pandas")
ARROW_EXPORT_STAGES = ("fetch", ARROW_FLOOR, "write")  # fingerprints off the critical path
ARROW_TABLES_STAGES = ("fetch", ARROW_FLOOR, "to pandas")
Aim = tuple[str, bool | None]  # (what, MET / MISSED / None: not measured)


def floor_names(stages: Stages, wanted: tuple[str, ...]) -> list[str]:
    """The stage names counted in a floor: the fastest parser stands for "parse"; "to
    pandas" counts for export only while the store takes pandas frames."""
    if "write" in wanted and stages.write_takes_arrow:
        wanted = tuple(w for w in wanted if w != "to pandas")
    parse = min(
        (k for k in stages.seconds if k.startswith("parse ")), key=stages.seconds.__getitem__
    )
    names = [parse if w == "parse" else w for w in wanted]
    return [name for name in names if name in stages.seconds]


def print_stages(stages: Stages) -> None:
    print(f"\nstages alone ({stages.n:,} media, one after another; {stages.note})")
    print(f"{'stage':34} {'seconds':>8} {'media/s':>10}")
    for name, seconds in stages.seconds.items():
        print(f"{name:34} {seconds:8.2f} {stages.n / seconds:10,.0f}")
    print(f"  {ARROW_FLOOR}: {stages.arrow_note}")
    if stages.pool_note:
        print(
            f"  {POOL}: every page's bytes to FingerprintPool, {stages.pool_note}; wall time,"
            " beside the main process (not in the floor sums)"
        )
    floors = (
        ("export, exact", EXPORT_STAGES),
        ("export, Arrow", ARROW_EXPORT_STAGES),
        ("to_tables, exact", TABLES_STAGES),
        ("to_tables, Arrow", ARROW_TABLES_STAGES),
    )
    for label, wanted in floors:
        names = floor_names(stages, wanted)
        total = stages.floor(tuple(names))
        slow = max(names, key=stages.seconds.__getitem__)
        print(
            f"  {label + ' floors:':24} sum {total:6.2f} s ({stages.n / total:7,.0f} media/s), "
            f"slowest {slow} {stages.seconds[slow]:.2f} s"
        )


def verdict(ok: bool | None) -> str:
    return "NOT MEASURED" if ok is None else "MET" if ok else "MISSED"


def summary(results: list[dict]) -> dict[str, float]:
    """Median seconds of the rounds, their range, the media and the highest peak RSS."""
    seconds = [r["seconds"] for r in results]
    return {
        "seconds": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "media": results[0]["media"],
        "rss_mb": max(r["rss_mb"] for r in results),
        "tree_mb": max(r["tree_mb"] for r in results),
    }


def ratio(runs: dict[str, dict], base: str, key: str) -> float | None:
    """How many times faster ``key`` ran than ``base`` (medians), None if one is missing."""
    if base not in runs or key not in runs:
        return None
    return runs[base]["seconds"] / runs[key]["seconds"]


def times(value: float | None) -> str:
    return f"{value:6.2f}x" if value is not None else f"{'-':>7}"


def print_end_to_end(stages: Stages, results: dict[str, list], page_size: int) -> None:
    """The end-to-end table: medians of the rounds and ratios between paths of one kind."""
    runs = {key: summary(found) for key, found in results.items()}
    rounds = len(next(iter(results.values())))
    print(
        f"\nend to end (a fresh process each; medians of {rounds} interleaved rounds; "
        f"page_size {page_size}, {WORKERS} workers)"
    )
    print(
        f"{'path':26} {'media':>7} {'seconds':>8} {'min-max':>11} {'media/s':>8} "
        f"{'x today':>7} {'x first':>7} {'/ floors':>8} {'RSS MB':>6} {'tree':>5}"
    )
    for path in PATHS:
        if path.key not in runs:
            print(f"{path.label:26} skipped: no git history (see the top)")
            continue
        run, kind = runs[path.key], path.key.rsplit("-", 1)[-1]
        floor = stages.floor(tuple(floor_names(stages, FLOORS[kind]))) / stages.n * run["media"]
        spread = f"{run['min']:.2f}-{run['max']:.2f}"
        print(
            f"{path.label:26} {run['media']:7,} {run['seconds']:8.2f} {spread:>11} "
            f"{run['media'] / run['seconds']:8,.0f} {times(ratio(runs, f'today-{kind}', path.key))}"
            f" {times(ratio(runs, f'first-{kind}', path.key))} {run['seconds'] / floor:7.2f}x "
            f"{run['rss_mb']:6.0f} {run['tree_mb']:5.0f}"
        )
    print(
        "  x today, x first: the median time of today's, the first release's path of the same\n"
        "    kind over this row's; / floors: this row's time over the sum of the exact stage\n"
        "    floors (above) for as many media; RSS: the child's own peak, tree: the peak sum of\n"
        "    the child's and its processes' (sampled; shared pages count in each); both the\n"
        "    highest of the rounds"
    )


FLOORS = {"export": EXPORT_STAGES, "tables": TABLES_STAGES}


def end_to_end_aims(results: dict[str, list], latency: float) -> list[Aim]:
    """The speed aims of issue 25 at one latency, with their figures."""
    runs = {key: summary(found) for key, found in results.items()}
    at = f"at {latency * 1000:.0f} ms"
    aims: list[Aim] = []
    for key, base, aim, label in (
        ("export", "today-export", AIM_EXPORT_X_TODAY, "export_parquet(browse) >= {}x today's"),
        (
            "export",
            "first-export",
            AIM_EXPORT_X_FIRST,
            "export_parquet(browse) >= {}x first release",
        ),
        ("tables", "today-tables", AIM_TABLES_X_TODAY, "to_tables(browse) >= {}x today's"),
    ):
        speed = ratio(runs, base, key)
        figure = f"{speed:.2f}x" if speed is not None else "today's path skipped"
        aims.append(
            (f"{label.format(aim)} {at}: {figure}", None if speed is None else speed >= aim)
        )
    return aims


def memory_aim(runs: dict[int, dict]) -> list[Aim]:
    """Peak RSS of the large export against the small one."""
    (small, low), (large, high) = sorted(runs.items())
    rss = high["tree_mb"] / low["tree_mb"]
    print(
        f"\nmemory: export_parquet(browse) in a child process each, latency 0: {small:,} media "
        f"{low['seconds']:.1f} s, {large:,} media {high['seconds']:.1f} s\n"
        f"  peak RSS of the child alone {low['rss_mb']:.0f} MB -> {high['rss_mb']:.0f} MB "
        f"({high['rss_mb'] / low['rss_mb']:.2f}x); with its own processes {low['tree_mb']:.0f}"
        f" MB -> {high['tree_mb']:.0f} MB ({rss:.2f}x, the aim's figure)"
    )
    return [
        (
            f"peak RSS of {large:,} media <= {AIM_MEMORY_RATIO}x that of {small:,}: {rss:.2f}x",
            rss <= AIM_MEMORY_RATIO,
        )
    ]


def print_aims(title: str, aims: list[Aim]) -> None:
    print(title)
    for text, ok in aims:
        print(f"  {text} {verdict(ok)}")


# --------------------------------------------------------------------------- how long


#: Seconds per media on a quiet 2-core machine before the fast path (measured with
#: ``--quick``): what the duration printed at the start is made of. An upper bound: the
#: fast path makes "export" and "tables" cheaper.
SECONDS_PER_MEDIA = {
    "export": 0.9e-3,
    "tables": 0.75e-3,
    "baseline-export": 1.1e-3,
    "baseline-tables": 1.0e-3,
    "warm": 1.1e-3,  # a server serialising a record once (servers warm two at a time)
    "stages": 1.8e-3,  # every stage alone, both parsers and the Arrow floor
    "fetch": 0.2e-3,  # the fetch stage alone, at another latency
}
CHILD_START = 2.0  # seconds: a fresh interpreter importing pandas, pyarrow and the package


def expected_seconds(args: argparse.Namespace, n: int, today: bool) -> float:
    """What the run should take, from :data:`SECONDS_PER_MEDIA`."""
    cost = SECONDS_PER_MEDIA
    small, large = args.memory_media
    per_round = sum(cost[p.child] * n + CHILD_START for p in PATHS if today or not p.today)
    warmed = n * len(args.latency) + large
    warm = max(warmed / 2, n, large) * cost["warm"]
    memory = (small + large) * cost["export"] + 2 * CHILD_START
    sweep = 40.0 if args.with_sweep else 0.0
    fetches = (len(args.latency) - 1) * cost["fetch"] * n  # the other stages run once
    rounds = len(args.latency) * args.rounds * per_round
    return warm + cost["stages"] * n + fetches + rounds + memory + sweep


# --------------------------------------------------------------------------- main


def start_servers(stack: ExitStack, n: int, latencies: list[float], large: int) -> dict:
    """A warmed local API per latency (``n`` media) and one of ``large`` media at latency 0
    (key ``"memory"``), warming side by side."""
    from coreviz_frames.local_api import LocalAPIProcess

    servers: dict[Any, Any] = {
        latency: LocalAPIProcess(api_key=API_KEY, synthetic=n, latency=latency, warm=True)
        for latency in latencies
    }
    servers["memory"] = LocalAPIProcess(api_key=API_KEY, synthetic=large, latency=0, warm=True)
    for server in servers.values():
        stack.callback(server.stop)
    with ThreadPoolExecutor(len(servers)) as pool:  # side by side: the cores share the work
        list(pool.map(lambda server: server.start(), servers.values()))
    return servers


def one_latency(
    args: argparse.Namespace,
    server: Any,
    workdir: Path,
    today: Path | None,
    earlier: Stages | None,
) -> tuple[list[Aim], Stages]:
    """Stages alone, then the end-to-end rounds, at the server's latency: the aims there,
    and the stages (``earlier``: those of the first latency, all but fetch reused)."""
    latency = server.options.latency
    n = server.options.synthetic
    workdir = workdir / f"latency-{latency}"
    workdir.mkdir()
    print(f"\n=== latency {latency * 1000:.0f} ms: {n:,} synthetic media", flush=True)
    stages = measure_stages(server, args.page_size, workdir, earlier)
    print_stages(stages)
    results = end_to_end(Run(server, n, args.page_size), today, workdir, args.rounds)
    print_end_to_end(stages, results, args.page_size)
    aims = end_to_end_aims(results, latency)
    print_aims("aims:", aims)
    if args.with_sweep and latency > 0:
        size = min(n, args.sweep_media)
        print_sweep(size, latency, sweep(server, size, 1, rss=False))
    return aims, stages


def sweep_main(args: argparse.Namespace, n: int) -> int:
    from coreviz_frames.local_api import LocalAPIProcess

    for latency in args.latency:
        with LocalAPIProcess(api_key=API_KEY, synthetic=n, latency=latency, warm=True) as server:
            print_sweep(n, latency, sweep(server, n, args.rounds, rss=True))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 media, 1 round (< 2 minutes)")
    parser.add_argument("--media", type=int, help="collection size (default 20,000)")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--page-size", type=int, default=100, help="browse page size")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; --quick 1)")
    parser.add_argument(
        "--memory-media",
        type=int,
        nargs=2,
        metavar=("SMALL", "LARGE"),
        help="the two export sizes compared for memory (default 5000 50000; --quick 500 5000)",
    )
    parser.add_argument("--sweep", action="store_true", help="only the page-size sweep")
    parser.add_argument("--sweep-media", type=int, default=5000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--with-sweep", action="store_true", help="add the page-size sweep at the non-zero latency"
    )
    for name, kind in (("--child", str), ("--n", int), ("--total", int), ("--out", str)):
        parser.add_argument(name, type=kind, help=argparse.SUPPRESS)
    for name in ("--base-url", "--collection-id", "--package-dir"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.memory_media = args.memory_media or ((500, 5000) if args.quick else (5000, 50_000))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    stop_on_sigterm()
    n = args.media or (3000 if args.quick else 20_000)
    if args.sweep:
        return sweep_main(args, args.media or (3000 if args.quick else 10_000))
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp, ExitStack() as stack:
        compile_package(ROOT / "coreviz_frames")
        today, how = freeze_today(Path(tmp) / "today")
        print(
            f"bench_pipeline: {n:,} synthetic media, local API in its own process, page_size "
            f"{args.page_size}, {WORKERS} workers, batches of {BATCH}, {args.rounds} interleaved "
            f"rounds at latency {', '.join(f'{x * 1000:.0f}' for x in args.latency)} ms; "
            f"parsers: {', '.join(parsers())}\n{how}"
            f"{'' if today else ': the today rows are SKIPPED'}\n"
            f"expected duration: about {expected_seconds(args, n, today is not None) / 60:.0f} "
            "min on a quiet 2-core machine (costs measured before the fast path: less with it; "
            "each round prints its time)",
            flush=True,
        )
        servers = start_servers(stack, n, args.latency, args.memory_media[1])
        print(f"servers warmed ({time.perf_counter() - STARTED:.0f} s into the run)", flush=True)
        aims: list[Aim] = []
        stages = None
        for latency in args.latency:
            found, stages = one_latency(args, servers[latency], Path(tmp), today, stages)
            aims += found
        aims += memory_aim(
            memory_runs(servers["memory"], args.memory_media, args.page_size, Path(tmp))
        )
    print_aims("\nall aims of issue 25:", aims)
    print(f"\n(total {time.perf_counter() - STARTED:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the export pipeline stage by stage, end to end, and against the first release.

On N synthetic media (default 20,000; ``--quick`` 3,000) served by the local API in its own
process (``LocalAPIProcess``, warmed), at each latency (default 0 and 0.02 s), in ONE run:

* **each stage alone**, one after another on one thread (the floor of each):
  ``fetch`` the page bytes with a bare ``ThreadPoolExecutor`` + ``requests.Session`` (no
  parse); ``parse`` them with ``json.loads`` (and ``coreviz_frames._util.jsoncodec.loads`` when
  that module exists); ``flatten`` the records in batches of 1,000 to Arrow tables;
  ``to pandas`` (only while ``ExportStore.commit_part`` takes pandas frames, as
  ``export_parquet`` then pays for it); ``fingerprint`` every record; ``write`` the parts
  with ``ExportStore.commit_part``;
* **end to end**, each in a fresh child process (so its peak RSS is its own):
  ``export_parquet(client.browse(...))`` of N media and ``to_tables(client.browse(...))``
  of 10,000 (or N if smaller);
* the **baseline** "as in the first release", also in fresh processes: standard-library
  JSON with the GC on (``response.json()``), stages one after another, each step on one
  thread: fetch a batch of pages with the bare pool, parse, ``to_tables``, then (export)
  ``pa.Table.from_pandas`` + ``pq.write_table`` per grain, or (to_tables) one
  ``to_tables`` of everything at the end. The baseline computes no fingerprints.

It prints media/s of each, the end-to-end time against the sum of the stage floors and
against the slowest stage, the end-to-end speed as a ratio of the baseline, the peak RSS,
and each aim of issue 15 as MET or MISSED:

* ``export_parquet`` >= 3x the baseline and within 1.3x of the sum of its stage floors;
* ``to_tables(browse)`` of 10,000 media >= 2.5x the baseline.

``--sweep`` measures browse throughput (``list(client.browse(cid, page_size=P))``, and the
bare pool's bytes-only fetch) for P in 50, 100, 200, 500, 1000 at each latency, to choose
the default page size; the default run prints it at 0.02 s latency on a smaller collection.

Usage:
    .venv/bin/python benchmarks/bench_pipeline.py              # 20,000 media, ~5 minutes
    .venv/bin/python benchmarks/bench_pipeline.py --quick      # 3,000 media, < 1 minute
    .venv/bin/python benchmarks/bench_pipeline.py --sweep      # the page-size sweep only
    .venv/bin/python benchmarks/bench_pipeline.py --media 5000 --latency 0.02
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
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
TABLES_MEDIA = 10_000  # to_tables(browse) is measured on this many media (or N if fewer)
AIM_EXPORT_X_BASELINE = 3.0
AIM_EXPORT_OF_FLOORS = 1.3
AIM_TABLES_X_BASELINE = 2.5


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


def measure_stages(base_url: str, cid: str, n: int, page_size: int, workdir: Path) -> Stages:
    """Each stage alone, one after another on one thread (fetch uses the bare pool)."""
    from coreviz_frames.exports.store import ExportStore
    from coreviz_frames.tables.flatten import flatten

    stages = Stages(n)
    with BarePool(base_url, cid) as pool:
        pool.get(page_requests(min(n, WORKERS * page_size), page_size))  # open connections
        seconds, responses = timed(pool.get, page_requests(n, page_size))
    stages.seconds["fetch"] = seconds
    bodies = [r.content for r in responses]
    del responses
    found = parsers()
    for name, loads in found.items():  # page by page, as a pipeline holds one page at a time
        stages.seconds[f"parse {name}"] = timed(parse_each, bodies, loads)[0]
    loads = found.get("jsoncodec.loads", json.loads)
    arrow_ok = commit_takes_arrow(workdir)
    stages.write_takes_arrow = arrow_ok
    stages.note = "commit_part takes Arrow" if arrow_ok else "commit_part takes pandas frames"
    store = ExportStore(workdir / "stages")
    count = dict.fromkeys(("flatten", "to pandas", "fingerprint", "write"), 0.0)
    with store.open(overwrite=True, resume=False, source=None):
        for batch in batches(bodies, loads):
            seconds, (arrow, _) = timed(flatten, batch, on_error="skip")
            count["flatten"] += seconds
            seconds, frames = timed(to_pandas, arrow)
            count["to pandas"] += seconds
            seconds, fps = timed(fingerprints, batch)
            count["fingerprint"] += seconds
            tables = arrow if arrow_ok else frames
            count["write"] += timed(store.commit_part, tables, failures=[], fingerprints=fps)[0]
        store.finish("complete")
    stages.seconds.update(count)
    return stages


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


def run_child(kind: str, n: int, total: int, server: Any, page_size: int, out: Path) -> dict:
    """One end-to-end run in a fresh process: ``{"seconds", "media", "rss_mb"}``."""
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--total", str(total)]
    cmd += ["--out", str(out), "--base-url", server.base_url]
    cmd += ["--collection-id", server.collection_id, "--page-size", str(page_size)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["media"] != n:
        raise RuntimeError(f"{kind}: {result['media']} media, expected {n}")
    return result


def child_main(args: argparse.Namespace) -> int:
    warnings.simplefilter("error")  # a skipped record or a pagination warning is a failure
    # imported before the clock starts (pandas, pyarrow and the package take ~1 s to import,
    # the same for every path): the runs time the work, not the interpreter's start
    import coreviz_frames.api.client
    import coreviz_frames.exports.writer
    import coreviz_frames.tables.media_tables  # noqa: F401

    start = time.perf_counter()
    media = CHILDREN[args.child](args)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "media": media, "rss_mb": peak_rss_mb()}))
    return 0


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
        best[size]["rss_mb"] = run_child("browse", n, total, server, size, Path())["rss_mb"]
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


def floor_names(stages: Stages, wanted: tuple[str, ...]) -> list[str]:
    """The stage names counted in a floor: the fastest parser stands for "parse"; "to
    pandas" counts for export only while the store takes pandas frames."""
    if wanted == EXPORT_STAGES and stages.write_takes_arrow:
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
    for label, wanted in (("export", EXPORT_STAGES), ("to_tables", TABLES_STAGES)):
        names = floor_names(stages, wanted)
        total = stages.floor(tuple(names))
        slow = max(names, key=stages.seconds.__getitem__)
        print(
            f"  {label} floors: sum {total:.2f} s ({stages.n / total:,.0f} media/s), "
            f"slowest {slow} {stages.seconds[slow]:.2f} s"
        )


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report_end_to_end(stages: Stages, runs: dict[str, dict]) -> None:
    """The end-to-end table and the aims, figures included."""
    print(
        f"\nend to end (each in a fresh process; page_size {runs['page_size']}, {WORKERS} workers)"
    )
    print(
        f"{'path':28} {'media':>7} {'seconds':>8} {'media/s':>9} {'x base':>7} "
        f"{'/ floors':>9} {'/ slowest':>10} {'peak RSS':>9}"
    )
    ratios: dict[str, tuple[float, float]] = {}
    for kind, wanted in (("export", EXPORT_STAGES), ("tables", TABLES_STAGES)):
        run, base = runs[kind], runs[f"baseline-{kind}"]
        names = floor_names(stages, wanted)
        per_media = stages.floor(tuple(names)) / stages.n
        floors = per_media * run["media"]
        slowest = max(stages.seconds[k] for k in names) / stages.n * run["media"]
        speed = base["seconds"] / run["seconds"]
        ratios[kind] = (speed, run["seconds"] / floors)
        label = "export_parquet(browse)" if kind == "export" else "to_tables(browse)"
        for name, r, extra in (
            (
                label,
                run,
                f"{speed:6.2f}x {run['seconds'] / floors:8.2f}x {run['seconds'] / slowest:9.2f}x",
            ),
            (
                f"baseline {kind}",
                base,
                f"{'1.00x':>7} {base['seconds'] / floors:8.2f}x {base['seconds'] / slowest:9.2f}x",
            ),
        ):
            print(
                f"{name:28} {r['media']:7,} {r['seconds']:8.2f} {r['media'] / r['seconds']:9,.0f}"
                f" {extra} {r['rss_mb']:7.0f} MB"
            )
    speed, of_floors = ratios["export"]
    print("aims:")
    print(
        f"  export_parquet >= {AIM_EXPORT_X_BASELINE:.0f}x baseline: {speed:.2f}x "
        f"{verdict(speed >= AIM_EXPORT_X_BASELINE)}"
    )
    beat = f" (overlap beats the sum by {1 / of_floors:.2f}x)" if of_floors < 1 else ""
    print(
        f"  export_parquet within {AIM_EXPORT_OF_FLOORS}x of the sum of stage floors: "
        f"{of_floors:.2f}x {verdict(of_floors <= AIM_EXPORT_OF_FLOORS)}{beat}"
    )
    speed = ratios["tables"][0]
    print(
        f"  to_tables(browse) of {runs['tables']['media']:,} media >= "
        f"{AIM_TABLES_X_BASELINE}x baseline: {speed:.2f}x {verdict(speed >= AIM_TABLES_X_BASELINE)}"
    )
    print(f"  peak RSS of the end-to-end export: {runs['export']['rss_mb']:.0f} MB")


# --------------------------------------------------------------------------- main


def end_to_end(server: Any, n: int, page_size: int, workdir: Path, repeat: int) -> dict:
    """The four end-to-end runs (interleaved, best of ``repeat``), each in a fresh process."""
    sizes = {"export": n, "tables": min(TABLES_MEDIA, n)}
    runs: dict[str, Any] = {"page_size": page_size}
    for i in range(repeat):
        for kind in ("export", "baseline-export", "tables", "baseline-tables"):
            size = sizes[kind.removeprefix("baseline-")]
            out = workdir / f"{kind}-{i}"
            result = run_child(kind, size, n, server, page_size, out)
            if kind not in runs or result["seconds"] < runs[kind]["seconds"]:
                runs[kind] = result
    return runs


def one_latency(args: argparse.Namespace, n: int, latency: float, workdir: Path) -> None:
    from coreviz_frames.local_api import LocalAPIProcess

    workdir = workdir / f"latency-{latency}"
    workdir.mkdir()
    start = time.perf_counter()
    with LocalAPIProcess(api_key=API_KEY, synthetic=n, latency=latency, warm=True) as server:
        print(
            f"\n=== latency {latency * 1000:.0f} ms: {n:,} synthetic media "
            f"(server warmed in {time.perf_counter() - start:.1f} s)",
            flush=True,
        )
        stages = measure_stages(server.base_url, server.collection_id, n, args.page_size, workdir)
        print_stages(stages)
        runs = end_to_end(server, n, args.page_size, workdir, args.repeat)
        report_end_to_end(stages, runs)
        if args.with_sweep is not False and latency > 0:
            size = min(n, args.sweep_media)
            print_sweep(size, latency, sweep(server, size, 1, rss=False))


def sweep_main(args: argparse.Namespace, n: int) -> int:
    from coreviz_frames.local_api import LocalAPIProcess

    for latency in args.latency:
        with LocalAPIProcess(api_key=API_KEY, synthetic=n, latency=latency, warm=True) as server:
            print_sweep(n, latency, sweep(server, n, args.repeat, rss=True))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 media (< 1 minute)")
    parser.add_argument("--media", type=int, help="collection size (default 20,000)")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--page-size", type=int, default=100, help="browse page size")
    parser.add_argument("--repeat", type=int, default=1, help="best of N (interleaved)")
    parser.add_argument("--sweep", action="store_true", help="only the page-size sweep")
    parser.add_argument("--sweep-media", type=int, default=5000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--with-sweep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print the page-size sweep at the non-zero latency (default: on, off with --quick)",
    )
    for name, kind in (("--child", str), ("--n", int), ("--total", int), ("--out", str)):
        parser.add_argument(name, type=kind, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--collection-id", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    n = args.media or (3000 if args.quick else 20_000)
    if args.sweep:
        return sweep_main(args, args.media or (3000 if args.quick else 10_000))
    if args.quick and args.with_sweep is None:
        args.with_sweep = False  # keeps --quick under a minute
    print(
        f"bench_pipeline: {n:,} synthetic media, local API in its own process, "
        f"page_size {args.page_size}, {WORKERS} workers, batches of {BATCH}; "
        f"parsers: {', '.join(parsers())}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for latency in args.latency:
            one_latency(args, n, latency, Path(tmp))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

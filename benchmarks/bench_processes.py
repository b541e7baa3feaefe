"""Benchmark: ``export_parquet(client.browse(...), processes=P)`` against the in-process export.

A synthetic collection behind the local API in its own process (``LocalAPIProcess``,
warmed), at each latency (default 0 and 0.02 s per request). In interleaved rounds, in
ONE run: the in-process export (``processes`` left out: the baseline, "1 process") and the
ranged export with P worker processes (default 2), page_size 100, batch 1,000, 8 concurrent
requests per client. Printed: the median seconds and media/s of each, the ratio against
the baseline measured in the same run, and what the model needs:

* **per worker**: the workers' CPU seconds (``RUSAGE_CHILDREN`` of the reaped pool, less
  their start-up: a fresh interpreter importing the package, measured apart) per 1,000
  media, so one worker exports ``1000 / that`` media per CPU-second;
* **parent**: this process's CPU seconds per 1,000 media in the ranged export (planning,
  adopting parts, the manifest);
* **server**: a bytes-only fetch of every page with 16 threads (the local API is one
  Python process: the server limit here, not the real API's).

The model for C cores: ``min(C_workers x per-worker rate, parent rate, server rate)``,
printed for 16 cores. On a 2-core machine the API server, this process and the workers
share the cores, so the numbers are indicative.

Usage:
    .venv/bin/python benchmarks/bench_processes.py                    # 20,000 media
    .venv/bin/python benchmarks/bench_processes.py --media 3000 --rounds 1 --latency 0
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-processes-key"
PAGE_SIZE = 100
BATCH = 1000


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def one_export(server, out: Path, processes: int | None) -> dict[str, float]:
    """One export of the whole collection: seconds, media, and CPU of parent and workers."""
    from coreviz_frames import Client
    from coreviz_frames.exports.writer import export_parquet

    parent, children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with Client(api_key=KEY, base_url=server.base_url, max_workers=8) as client:
        records = client.browse(server.collection_id, page_size=PAGE_SIZE, progress=False)
        report = export_parquet(records, out, batch_size=BATCH, processes=processes)
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": seconds,
        "media": report.media_exported,
        "parent_cpu": _cpu(resource.RUSAGE_SELF) - parent,
        "workers_cpu": _cpu(resource.RUSAGE_CHILDREN) - children,
    }


def fetch_rate(server, n: int) -> float:
    """Media/s of a bytes-only fetch of every page, 16 requests at a time."""
    import requests

    url = f"{server.base_url}/dataset/{server.collection_id}/media"
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def page(offset: int) -> int:
        params = {"limit": PAGE_SIZE, "offset": offset}
        reply = session.get(url, params=params, headers={"x-api-key": KEY}, timeout=60)
        reply.raise_for_status()
        return len(reply.content)

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(page, range(0, n, PAGE_SIZE)))
    return n / (time.perf_counter() - started)


def startup() -> tuple[float, float]:
    """Wall and CPU seconds of starting one worker: a fresh interpreter importing what a
    worker imports (paid once per worker per export)."""
    import subprocess

    code = "import coreviz_frames.exports.processes, coreviz_frames.exports.writer"
    children = _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    return time.perf_counter() - started, _cpu(resource.RUSAGE_CHILDREN) - children


def rounds(server, n: int, procs: int, count: int, tmp: Path) -> dict[str, list[dict]]:
    """``count`` interleaved rounds of the baseline and the ranged export."""
    runs: dict[str, list[dict]] = {"1 process": [], f"{procs} processes": []}
    for i in range(count):
        for name, processes in (("1 process", None), (f"{procs} processes", procs)):
            result = one_export(server, tmp / f"{i}-{processes}", processes)
            if result["media"] != n:
                raise SystemExit(f"{name}: {result['media']} media exported, expected {n}")
            runs[name].append(result)
    return runs


def report(n: int, procs: int, runs: dict[str, list[dict]], server_rate: float) -> None:
    base = statistics.median(r["seconds"] for r in runs["1 process"])
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        print(
            f"  {name:<12} {seconds:7.2f} s  {n / seconds:8,.0f} media/s  "
            f"x{base / seconds:.2f} of 1 process"
        )
    ranged = runs[f"{procs} processes"]
    start_wall, start_cpu = startup()
    workers = min(procs, -(-n // BATCH))  # one range per batch: no more workers than ranges
    spent = statistics.median(r["workers_cpu"] for r in ranged) - workers * start_cpu
    worker_cpu = max(spent, 1e-9) / n * 1000
    print(f"  worker start-up: {start_wall:.2f} s wall, {start_cpu:.2f} CPU-s (once per worker)")
    parent_cpu = statistics.median(r["parent_cpu"] for r in ranged) / n * 1000
    per_worker = 1000 / worker_cpu
    parent_rate = 1000 / parent_cpu if parent_cpu > 0 else float("inf")
    alone = statistics.median(r["parent_cpu"] for r in runs["1 process"]) / n * 1000
    sides = statistics.median(r["workers_cpu"] for r in runs["1 process"]) / n * 1000
    print(
        f"  1 process: {alone:.3f} CPU-s per 1,000 media in this process, {sides:.3f} in its "
        "fingerprint side processes"
    )
    print(
        f"  per worker: {worker_cpu:.3f} CPU-s per 1,000 media -> {per_worker:,.0f} media/s "
        f"per worker core; parent: {parent_cpu:.3f} CPU-s per 1,000 media -> "
        f"{parent_rate:,.0f} media/s; server (bytes-only fetch, 16 threads): "
        f"{server_rate:,.0f} media/s"
    )
    workers16 = 15 * per_worker  # one core left to this process
    bound = min(workers16, parent_rate, server_rate)
    limit = {workers16: "the workers", parent_rate: "this process", server_rate: "the server"}
    print(
        f"  model, 16 cores: min(15 x {per_worker:,.0f}, {parent_rate:,.0f}, "
        f"{server_rate:,.0f}) = {bound:,.0f} media/s (x{bound * base / n:.1f} of 1 process; "
        f"bound by {limit[bound]})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=20_000)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from coreviz_frames.local_api import LocalAPIProcess

    n = args.media
    print(
        f"bench_processes: {n:,} synthetic media, page_size {PAGE_SIZE}, batch {BATCH}, "
        f"{args.rounds} interleaved round(s), {os.cpu_count()} CPU core(s) here "
        "(shared with the API server)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-processes-") as tmp:
        for latency in args.latency:
            with LocalAPIProcess(api_key=KEY, synthetic=n, latency=latency, warm=True) as server:
                print(f"\n=== latency {latency * 1000:.0f} ms")
                runs = rounds(server, n, args.processes, args.rounds, Path(tmp))
                report(n, args.processes, runs, fetch_rate(server, n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

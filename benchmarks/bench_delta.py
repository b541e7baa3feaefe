"""Benchmark: peak memory of a Delta Lake export against its size, and against Parquet.

Each run is a fresh Python process exporting ``client.browse(...)`` of the local API's
synthetic collection (served by a separate ``LocalAPIProcess``; page_size 100, 4 client
workers, batch 1000) with ``export_parquet(..., table_format=...)``. Its peak resident
memory is the kernel's high-water mark, ``VmHWM`` of ``/proc/self/status``.

Printed: the peak of a Delta export of the small and of the large collection and their
ratio (target: at most 1.2), the same for a plain Parquet export measured in the same
run, and Delta against Parquet at each size (memory and time).

Usage:
    .venv/bin/python benchmarks/bench_delta.py            # 5,000 then 50,000 media
    .venv/bin/python benchmarks/bench_delta.py --quick    # 1,000 then 5,000 media
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import peak_rss_mb  # noqa: E402

BATCH_SIZE = 1000
PAGE_SIZE = 100
WORKERS = 4
TARGET = 1.2


def _child(fmt: str, n: int, out: str, base_url: str, collection_id: str) -> dict:
    """One measured export (in its own process): elapsed seconds, rows and peak memory."""
    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.writer import export_parquet

    start = time.perf_counter()
    with Client(api_key="bench", base_url=base_url, max_workers=WORKERS) as client:
        records = client.browse(collection_id, page_size=PAGE_SIZE, max_items=n, progress=False)
        report = export_parquet(
            records, out, batch_size=BATCH_SIZE, progress=False, table_format=fmt
        )
    return {
        "fmt": fmt,
        "n": n,
        "media": report.media_exported,
        "rows": sum(report.rows.values()),
        "elapsed": time.perf_counter() - start,
        "hwm_mb": peak_rss_mb(),
    }


def _run(fmt: str, n: int, workdir: Path, base_url: str, collection_id: str) -> dict:
    out = workdir / f"{fmt}-{n}"
    cmd = [sys.executable, __file__, "--child", fmt, "--n", str(n), "--out", str(out)]
    cmd += ["--base-url", base_url, "--collection-id", collection_id]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["media"] == n, result
    print(
        f"  {fmt:<8} {n:>7,} media  {result['rows']:>10,} rows  {result['elapsed']:7.1f} s  "
        f"peak (VmHWM) {result['hwm_mb']:7.1f} MB",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 media")
    parser.add_argument("--child", choices=("parquet", "delta"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--collection-id", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.n, args.out, args.base_url, args.collection_id)))
        return 0

    from coreviz_frames.local_api import LocalAPIProcess

    small, large = (1_000, 5_000) if args.quick else (5_000, 50_000)
    print(
        f"bench_delta: {small:,} and {large:,} synthetic media from the local API, batch "
        f"{BATCH_SIZE}, page_size {PAGE_SIZE}, {WORKERS} workers (each run a fresh process)"
    )
    results: dict[tuple[str, int], dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp,
        LocalAPIProcess(synthetic=large) as server,
    ):
        for n in (small, large):
            for fmt in ("delta", "parquet"):
                results[fmt, n] = _run(fmt, n, Path(tmp), server.base_url, server.collection_id)
    print()
    for fmt in ("delta", "parquet"):
        lo, hi = results[fmt, small]["hwm_mb"], results[fmt, large]["hwm_mb"]
        verdict = f" ({'OK' if hi / lo <= TARGET else 'ABOVE'} the {TARGET} target)"
        print(
            f"{fmt:>7} export peak: {lo:.1f} MB ({small:,} media) -> {hi:.1f} MB ({large:,} "
            f"media): ratio {hi / lo:.2f}{verdict if fmt == 'delta' else ''}"
        )
    for n in (small, large):
        d, p = results["delta", n], results["parquet", n]
        print(
            f"delta / parquet at {n:,} media: peak {d['hwm_mb'] / p['hwm_mb']:.2f}x, "
            f"time {d['elapsed'] / p['elapsed']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

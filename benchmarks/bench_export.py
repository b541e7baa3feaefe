"""Benchmark: streaming Parquet export — peak memory vs collection size, and write speed.

Each measured run happens in a fresh Python subprocess, so its peak resident memory
(``ru_maxrss``) is its own. Three kinds of run, at two collection sizes:

* ``api``      ``export_parquet(client.browse(...))`` from the local API, served by a separate
               process (``LocalAPIProcess``), page_size 100, 4 client workers, batch 1000.
               Peak RSS of the small and the large run and their ratio (aim: <= 1.3).
* ``stream``   ``export_parquet`` of the same synthetic records generated in-process (no HTTP),
               to time the flatten + write path alone.
* ``baseline`` ``to_tables`` of every record in memory, then one ``pyarrow.parquet.write_table``
               call per grain (zstd). ``stream`` rows/s is reported against it.

Usage:
    .venv/bin/python benchmarks/bench_export.py            # 5,000 then 50,000 media
    .venv/bin/python benchmarks/bench_export.py --quick    # 1,000 then 5,000 media
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


def _child(kind: str, n: int, out: str, base_url: str, collection_id: str) -> dict:
    """One measured run (in its own process): returns elapsed, rows and peak RSS."""
    import pyarrow.parquet as pq

    from coreviz_frames.exports.writer import export_parquet
    from coreviz_frames.local_api.synthetic import iter_synthetic
    from coreviz_frames.tables.arrow import to_arrow
    from coreviz_frames.tables.media_tables import to_tables

    start = time.perf_counter()
    if kind == "api":
        from coreviz_frames.api.client import Client

        with Client(api_key="bench", base_url=base_url, max_workers=WORKERS) as client:
            records = client.browse(collection_id, page_size=PAGE_SIZE, max_items=n, progress=False)
            source = {"base_url": client.base_url, "collection_id": collection_id}
            report = export_parquet(
                records, out, batch_size=BATCH_SIZE, progress=False, source=source
            )
        rows = sum(report.rows.values())
        media = report.media_exported
    elif kind == "stream":
        report = export_parquet(iter_synthetic(n), out, batch_size=BATCH_SIZE, progress=False)
        rows = sum(report.rows.values())
        media = report.media_exported
    else:  # baseline: everything in memory, one write_table per grain
        tables = to_tables(iter_synthetic(n))
        rows = 0
        for grain, frame in tables.items():
            Path(out, grain).mkdir(parents=True, exist_ok=True)
            pq.write_table(
                to_arrow(frame, grain), f"{out}/{grain}/data.parquet", compression="zstd"
            )
            rows += len(frame)
        media = len(tables.media)
    elapsed = time.perf_counter() - start
    return {
        "kind": kind,
        "n": n,
        "media": media,
        "rows": rows,
        "elapsed": elapsed,
        "rss_mb": peak_rss_mb(),
    }


def _run(kind: str, n: int, workdir: Path, base_url: str = "", collection_id: str = "") -> dict:
    out = workdir / f"{kind}-{n}"
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--n",
        str(n),
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--collection-id",
        collection_id,
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    result["mb_on_disk"] = size / 1e6
    print(
        f"  {kind:<8} {n:>7,} media  {result['rows']:>10,} rows  {result['elapsed']:7.1f} s  "
        f"{result['rows'] / result['elapsed']:>10,.0f} rows/s  peak RSS {result['rss_mb']:7.1f} MB"
        f"  ({result['mb_on_disk']:.1f} MB Parquet)",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 media")
    parser.add_argument("--child", choices=("api", "stream", "baseline"), help=argparse.SUPPRESS)
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
        f"bench_export: {small:,} and {large:,} synthetic media, batch {BATCH_SIZE}, "
        f"page_size {PAGE_SIZE}, {WORKERS} workers (each run in a fresh process)"
    )
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        workdir = Path(tmp)
        with LocalAPIProcess(synthetic=large) as server:
            print(f"local API (separate process): {server.base_url}")
            for n in (small, large):
                results["api", n] = _run("api", n, workdir, server.base_url, server.collection_id)
        for n in (small, large):
            for kind in ("stream", "baseline"):
                results[kind, n] = _run(kind, n, workdir)

    api_small, api_large = results["api", small], results["api", large]
    ratio = api_large["rss_mb"] / api_small["rss_mb"]
    print()
    print(
        f"peak RSS, export from the local API: {api_small['rss_mb']:.1f} MB ({small:,} media) "
        f"-> {api_large['rss_mb']:.1f} MB ({large:,} media): ratio {ratio:.2f} "
        f"({'OK' if ratio <= 1.3 else 'ABOVE'} the 1.3 target)"
    )
    base = results["baseline", large]
    print(f"peak RSS, in-memory baseline at {large:,} media: {base['rss_mb']:.1f} MB")
    for n in (small, large):
        stream, base = results["stream", n], results["baseline", n]
        speed = (stream["rows"] / stream["elapsed"]) / (base["rows"] / base["elapsed"])
        print(
            f"rows/s at {n:,} media: streaming export {stream['rows'] / stream['elapsed']:,.0f}"
            f" vs to_tables + write_table per grain {base['rows'] / base['elapsed']:,.0f}"
            f" = {speed:.2f}x"
        )
    for n in (small, large):
        api = results["api", n]
        print(
            f"end to end from the local API at {n:,} media: {api['rows'] / api['elapsed']:,.0f}"
            f" rows/s ({api['media'] / api['elapsed']:,.0f} media/s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

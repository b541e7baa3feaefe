"""Benchmark: the five tables by Arrow compute (``tables.arrowflatten.flatten_arrow``)
against the exact ``flatten`` of the same media.

``--media`` synthetic media (1,000 by default, one video in ten) are written as browse pages
of ``--page`` media and read once by ``read_page`` (not timed: see bench_arrowrecords.py).
Then, interleaved, median and best of ``--repeat`` rounds, all in this process:

- ``flatten`` of the records as Python dicts (the exact path without its decode: the
  baseline);
- ``flatten_arrow`` of the pages as one batch (a list of tables, as the export hands it);
- ``flatten_arrow`` of the pages concatenated into one table beforehand;
- ``flatten_arrow`` page by page (one call a page: the per-call overhead shows).

Every Arrow result is first checked equal to the exact tables. Times are the calling
thread's CPU (``time.thread_time``: Arrow compute runs in it) and wall time, in ms per
1,000 media; the ratio is the baseline's CPU over each method's.

Usage:
    .venv/bin/python benchmarks/bench_arrowflatten.py               # 1,000 media, 7 rounds
    .venv/bin/python benchmarks/bench_arrowflatten.py --media 5000 --page 100 --repeat 5
    .venv/bin/python benchmarks/bench_arrowflatten.py --quick
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa

from coreviz_frames._util import jsoncodec
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.tables.arrowflatten import flatten_arrow
from coreviz_frames.tables.arrowrecords import read_page
from coreviz_frames.tables.flatten import flatten


def pages(records: list[dict], size: int) -> list[pa.Table]:
    """``records`` as browse pages of ``size`` media, each read by ``read_page``."""
    tables = []
    for start in range(0, len(records), size):
        body = jsoncodec.canonical_dumps({"media": records[start : start + size]})
        page = read_page(body)
        if page is None:
            raise SystemExit("read_page refused a synthetic page: nothing to measure")
        tables.append(page.media)
    return tables


def _checked(tables: dict[str, pa.Table] | None, exact: dict[str, pa.Table]) -> None:
    if tables is None or any(not tables[g].equals(exact[g], check_metadata=True) for g in exact):
        raise SystemExit("flatten_arrow differs from flatten on the synthetic media")


def _one(fn: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=1000)
    parser.add_argument("--page", type=int, default=100, help="media per browse page")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 media, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.media, args.repeat = 1000, 2
    records = list(iter_synthetic(args.media))
    tables = pages(records, args.page)
    joined = pa.concat_tables(tables)
    exact = flatten(records)[0]
    _checked(flatten_arrow(tables), exact)
    _checked(flatten_arrow(joined), exact)
    methods: dict[str, Callable[[], object]] = {
        "flatten (exact)": lambda: flatten(records),
        "arrow, one batch": lambda: flatten_arrow(tables),
        "arrow, one table": lambda: flatten_arrow(joined),
        "arrow, per page": lambda: [flatten_arrow(t) for t in tables],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    for _ in range(args.repeat):
        for name, fn in methods.items():
            times[name].append(_one(fn))
            gc.collect()
    per = 1000 / args.media
    print(
        f"{args.media} synthetic media in pages of {args.page}, {args.repeat} rounds "
        "(ms per 1,000 media; median / best)"
    )
    base = statistics.median(run[0] for run in times["flatten (exact)"])
    print(f"{'method':20s}{'thread CPU':>18s}{'wall':>18s}{'x flatten':>12s}")
    for name, runs in times.items():
        cells = ""
        for column in range(2):
            values = [run[column] * 1e3 * per for run in runs]
            cells += f"{statistics.median(values):9.1f} /{min(values):7.1f}"
        ratio = base / statistics.median(run[0] for run in runs)
        print(f"{name:20s}{cells}{ratio:11.1f}x")


if __name__ == "__main__":
    main()

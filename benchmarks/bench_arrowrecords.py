"""Benchmark: one browse page read by pyarrow (``tables.arrowrecords.read_page``) against
the exact path's decode of the same bytes.

A synthetic browse page of ``--media`` records (1,000 by default, about 9.8 MB, one video in
ten) is read, interleaved, best and median of ``--repeat`` rounds, all in this process:

- ``jsoncodec.loads`` (the exact path's decode, GC paused for large pages: the baseline);
- ``orjson.loads`` with the GC paused (when installed);
- ``read_page``: pyarrow's C++ reader (in its thread pool) plus the proofs made in Python
  (UTF-8, tag order, folders, numbers, needs_hydration).

Columns: the calling thread's CPU (``time.thread_time``: the work done in the caller, where
Python holds the interpreter lock), the whole process's CPU (pyarrow's reader threads
included) and wall time. The ratio is the baseline's thread CPU over each method's.

Usage:
    .venv/bin/python benchmarks/bench_arrowrecords.py              # 1,000 media, 7 rounds
    .venv/bin/python benchmarks/bench_arrowrecords.py --media 200 --repeat 3
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

from coreviz_frames._util import jsoncodec
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.tables.arrowrecords import read_page

try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]


def page(count: int) -> bytes:
    """A compact browse page of ``count`` synthetic media, as the local API writes it."""
    records = list(iter_synthetic(count))
    pagination = {"total": count, "limit": count, "offset": 0, "hasMore": False}
    return jsoncodec.canonical_dumps({"media": records, "pagination": pagination})


def _orjson(body: bytes) -> object:
    with jsoncodec.paused_gc():
        return orjson.loads(body)


def _one(fn: Callable[[bytes], object], body: bytes) -> tuple[float, float, float]:
    cpu, total, wall = time.thread_time(), time.process_time(), time.perf_counter()
    result = fn(body)
    cpu, total = time.thread_time() - cpu, time.process_time() - total
    wall = time.perf_counter() - wall
    if result is None:
        raise SystemExit("read_page refused the synthetic page: nothing to measure")
    return cpu, total, wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    body = page(args.media)
    methods: dict[str, Callable[[bytes], object]] = {"jsoncodec.loads": jsoncodec.loads}
    if orjson is not None:
        methods["orjson.loads"] = _orjson
    methods["read_page"] = read_page
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in methods}
    for _ in range(args.repeat):
        for name, fn in methods.items():
            times[name].append(_one(fn, body))
            gc.collect()
    print(
        f"one page of {args.media} synthetic media, {len(body) / 1e6:.1f} MB, "
        f"{args.repeat} rounds (ms; median / best)"
    )
    base = statistics.median(run[0] for run in times["jsoncodec.loads"])
    heads = ("thread CPU", "process CPU", "wall")
    print(f"{'method':18s}" + "".join(f"{h:>18s}" for h in heads) + f"{'x baseline':>12s}")
    for name, runs in times.items():
        cells = ""
        for column in range(3):
            values = [run[column] * 1e3 for run in runs]
            cells += f"{statistics.median(values):9.1f} /{min(values):7.1f}"
        ratio = base / statistics.median(run[0] for run in runs)
        print(f"{name:18s}{cells}{ratio:11.1f}x")


if __name__ == "__main__":
    main()

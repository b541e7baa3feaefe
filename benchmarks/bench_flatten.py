"""Benchmark: ``to_tables`` against ``pandas.json_normalize`` and a bare pyarrow floor.

Builds the synthetic collection once (10,000 media: 60,000 frames, 90,000
captions, 230,000 objects), then times, best of ``--repeat``:

- ``to_tables``: the five typed DataFrames (ids normalised, dates parsed, boxes...);
- ``json_normalize``: one ``pandas.json_normalize`` call per grain (record_path/meta),
  untyped, no boxes, no tags;
- ``pyarrow floor``: ``pa.Table.from_pylist`` of the records plus ``list_flatten`` of
  frames, captions and objects: no typing, no ids, no pandas.

It prints seconds and ratios, and the peak memory of one ``to_tables`` call
(RSS growth and tracemalloc peak of Python objects + Arrow pool growth)
against the size of the input (its JSON bytes).

With ``--compare`` it also times ``flatten`` against the frozen copy of the flatten
before issue 15 (``tests/oracle_flatten``), interleaved in this one process, best of
``--repeat``, on the 1,000-media batch ``iter_synthetic(3000)[2000:3000]`` and on the
sample collection, and prints old / new.

Usage:
    python benchmarks/bench_flatten.py            # 10,000 media
    python benchmarks/bench_flatten.py --quick    # 1,000 media, 1 repeat
    python benchmarks/bench_flatten.py --compare --repeat 5   # old vs new flatten only
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.tables.flatten import flatten
from coreviz_frames.tables.media_tables import to_tables

ROOT = Path(__file__).resolve().parents[1]


def pyarrow_floor(records: list[dict]) -> tuple[int, int, int, int]:
    """Bare pyarrow: infer nested types, flatten the lists; no typing or renaming."""
    table = pa.Table.from_pylist(records)
    frames = pc.list_flatten(table.column("frames").combine_chunks())
    captions = pc.list_flatten(frames.field("captions"))
    objects = pc.list_flatten(frames.field("objects"))
    return table.num_rows, len(frames), len(captions), len(objects)


def json_normalize_baseline(records: list[dict]) -> tuple[int, int, int, int]:
    """One ``pandas.json_normalize`` call per grain, ancestors through ``meta``."""
    media = pd.json_normalize(records, max_level=1)
    frames = pd.json_normalize(records, record_path="frames", meta=["id"], meta_prefix="media_")
    captions = pd.json_normalize(
        records,
        record_path=["frames", "captions"],
        meta=["id", ["frames", "id"]],
        meta_prefix="parent.",
    )
    objects = pd.json_normalize(
        records,
        record_path=["frames", "objects"],
        meta=["id", ["frames", "id"], ["frames", "timestamp"]],
        meta_prefix="parent.",
    )
    return len(media), len(frames), len(captions), len(objects)


def run_to_tables(records: list[dict]) -> tuple[int, int, int, int]:
    t = to_tables(records)
    return len(t.media), len(t.frames), len(t.captions), len(t.objects)


def best_of(fn: Callable, records: list[dict], repeat: int) -> tuple[float, tuple]:
    best = float("inf")
    result: tuple = ()
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn(records)
        best = min(best, time.perf_counter() - start)
    return best, result


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def memory_of_to_tables(records: list[dict]) -> dict[str, float]:
    """RSS growth of one call (run first, before other peaks) and a tracemalloc peak."""
    gc.collect()
    pool = pa.default_memory_pool()
    pool_before = pool.max_memory() or 0
    rss_before = _maxrss_bytes()
    tables = to_tables(records)
    rss_growth = _maxrss_bytes() - rss_before
    pool_growth = max(0, (pool.max_memory() or 0) - pool_before)
    out_bytes = sum(int(df.memory_usage(deep=True).sum()) for _, df in tables.items())
    del tables
    gc.collect()
    tracemalloc.start()
    tables = to_tables(records)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del tables
    return {
        "rss_growth": rss_growth,
        "py_peak": py_peak,
        "arrow_pool_peak_growth": pool_growth,
        "output": out_bytes,
    }


def compare_with_oracle(repeat: int) -> dict[str, float]:
    """old / new ``flatten`` time (skip mode), interleaved, best of ``repeat`` for each side."""
    sys.path.insert(0, str(ROOT / "tests"))
    from oracle_flatten.flatten import flatten as old_flatten

    doc = json.loads((ROOT / "data" / "collection.json").read_text(encoding="utf-8"))
    inputs = {
        "1,000 synthetic media": list(iter_synthetic(3000))[2000:3000],
        "sample collection": doc.get("folders", []) + doc["media"],
    }
    ratios = {}
    print(f"{'flatten input':<24}{'old s':>9}{'new s':>9}{'old/new':>9}  (best of {repeat})")
    for name, records in inputs.items():
        best = {"old": float("inf"), "new": float("inf")}
        for _ in range(repeat):
            for side, fn in (("old", old_flatten), ("new", flatten)):
                gc.collect()
                start = time.perf_counter()
                fn(records, on_error="skip")
                best[side] = min(best[side], time.perf_counter() - start)
        ratios[name] = best["old"] / best["new"]
        print(f"{name:<24}{best['old']:>9.4f}{best['new']:>9.4f}{ratios[name]:>8.2f}x")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="synthetic media (10000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (3)")
    parser.add_argument("--quick", action="store_true", help="1,000 media, 1 repeat")
    parser.add_argument(
        "--compare", action="store_true", help="only old (tests/oracle_flatten) vs new flatten"
    )
    args = parser.parse_args(argv)
    if args.compare:
        compare_with_oracle(args.repeat)
        return 0
    count, repeat = (1_000, 1) if args.quick else (args.count, args.repeat)

    records = list(iter_synthetic(count))
    input_bytes = len(json.dumps(records).encode())
    mem = memory_of_to_tables(records)

    t_tables, shape = best_of(run_to_tables, records, repeat)
    t_floor, floor_shape = best_of(pyarrow_floor, records, repeat)
    t_norm, norm_shape = best_of(json_normalize_baseline, records, repeat)
    assert shape == floor_shape == norm_shape, (shape, floor_shape, norm_shape)

    mb = 1 / 1e6
    print(
        f"bench_flatten: {shape[0]:,} media, {shape[1]:,} frames, {shape[2]:,} captions, "
        f"{shape[3]:,} objects (best of {repeat})"
    )
    print(f"{'method':<18}{'seconds':>10}{'vs floor':>10}")
    for name, seconds in (
        ("pyarrow floor", t_floor),
        ("to_tables", t_tables),
        ("json_normalize", t_norm),
    ):
        print(f"{name:<18}{seconds:>10.3f}{seconds / t_floor:>9.2f}x")
    print(f"to_tables / floor          = {t_tables / t_floor:.2f}  (aim <= 1.5)")
    print(f"json_normalize / to_tables = {t_norm / t_tables:.2f}  (aim >= 5)")
    print(f"input JSON            {input_bytes * mb:8.1f} MB")
    print(f"output DataFrames     {mem['output'] * mb:8.1f} MB (deep)")
    print(
        f"to_tables RSS growth  {mem['rss_growth'] * mb:8.1f} MB "
        f"({mem['rss_growth'] / input_bytes:.2f}x input JSON)"
    )
    print(
        f"tracemalloc peak      {mem['py_peak'] * mb:8.1f} MB (Python objects) + "
        f"{mem['arrow_pool_peak_growth'] * mb:.1f} MB Arrow pool peak growth"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

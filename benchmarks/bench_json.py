"""Benchmark: JSON parsing of browse pages and canonical JSON for fingerprints.

Parse: synthetic browse pages (100 media each, compact JSON as the local API writes it;
10,000 media, about 100 MB, by default) are parsed by

- ``stdlib, GC on``: ``json.loads(body.decode("utf-8", "replace"))``, what
  ``response.json()`` did in the first release (the baseline of every ratio);
- ``stdlib, GC paused``: the same inside ``jsoncodec.paused_gc()``;
- ``orjson, GC paused`` and ``msgspec, GC paused`` (when installed);
- ``jsoncodec.loads``: what ``Transport.get_json`` now uses.

Every parsed page is kept until the run ends, as ``to_tables(client.browse(...))`` keeps
them: the collector's cost grows with the live objects it has to traverse. Methods run
interleaved, best of ``--repeat``, all in this one process, so ratios are comparable.
A second table times one parse at several input sizes with the GC on and paused (the
reason for ``jsoncodec.GC_PAUSE_MIN_BYTES``).

Canonical JSON: ``stdlib_canonical_dumps`` against ``canonical_dumps`` and the reference
fingerprint (``reference_fingerprint``, the definition) against ``fingerprint``, on synthetic
records as they are and with signed blob URLs (``?X-Amz-...``).

Usage:
    .venv/bin/python benchmarks/bench_json.py            # 10,000 media, ~100 MB
    .venv/bin/python benchmarks/bench_json.py --quick    # 1,000 media, ~10 MB
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coreviz_frames._util import jsoncodec
from coreviz_frames.exports.fingerprint import fingerprint, reference_fingerprint
from coreviz_frames.local_api.synthetic import iter_synthetic

try:
    import orjson
except ImportError:
    orjson = None  # type: ignore[assignment]
try:
    import msgspec
except ImportError:
    msgspec = None  # type: ignore[assignment]

SIGNATURE = (
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature=ab12"
)


def make_pages(media: int, page_size: int) -> list[bytes]:
    pages = []
    records = list(iter_synthetic(media))
    for start in range(0, media, page_size):
        page = {
            "media": records[start : start + page_size],
            "pagination": {"total": media, "limit": page_size, "offset": start},
        }
        pages.append(json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode())
    return pages


def stdlib(body: bytes) -> Any:
    return json.loads(body.decode("utf-8", "replace"))


def paused(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def run(body: bytes) -> Any:
        with jsoncodec.paused_gc():
            return parse(body)

    return run


def parse_methods() -> dict[str, Callable[[bytes], Any]]:
    methods: dict[str, Callable[[bytes], Any]] = {
        "stdlib, GC on (baseline)": stdlib,
        "stdlib, GC paused": paused(stdlib),
    }
    if orjson is not None:
        methods["orjson, GC paused"] = paused(orjson.loads)
    if msgspec is not None:
        methods["msgspec, GC paused"] = paused(msgspec.json.decode)
    methods["jsoncodec.loads"] = jsoncodec.loads
    return methods


def time_all(pages: list[bytes], parse: Callable[[bytes], Any]) -> float:
    kept = []
    start = time.perf_counter()
    for body in pages:
        kept.append(parse(body))
    elapsed = time.perf_counter() - start
    del kept
    gc.collect()
    return elapsed


def best_of(repeat: int, jobs: Mapping[str, Callable[[], float]]) -> dict[str, float]:
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeat):
        for name, job in jobs.items():  # interleaved: noise hits every method alike
            best[name] = min(best[name], job())
    return best


def print_table(title: str, times: dict[str, float], baseline: str, unit: float) -> None:
    print(f"\n{title}")
    base = times[baseline]
    for name, seconds in times.items():
        print(f"  {name:<28} {seconds:8.3f} s  {unit / seconds:8.1f} MB/s  x{base / seconds:5.2f}")


def bench_parse(pages: list[bytes], repeat: int) -> None:
    megabytes = sum(map(len, pages)) / 1e6
    print(f"parse: {len(pages)} pages, {megabytes:.1f} MB (best of {repeat}, ratio vs baseline)")
    jobs = {name: functools.partial(time_all, pages, p) for name, p in parse_methods().items()}
    print_table("whole collection, pages kept", best_of(repeat, jobs), next(iter(jobs)), megabytes)


def bench_sizes(pages: list[bytes]) -> None:
    fast = msgspec.json.decode if msgspec is not None else stdlib
    name = "msgspec" if msgspec is not None else "stdlib"
    print(f"\none parse by input size, {name}: GC on vs paused (jsoncodec pauses from 64 KiB)")
    records = [r for page in pages[:10] for r in json.loads(page)["media"]]
    bodies: dict[int, bytes] = {}
    for kib in (4, 16, 64, 256, 1024):  # records come in uneven sizes: about these
        for count in range(1, len(records) + 1):
            body = json.dumps(records[:count], separators=(",", ":")).encode()
            if len(body) >= kib * 1024:
                break
        bodies[len(body)] = body
    for size, body in sorted(bodies.items()):
        loops = max(5, 2_000_000 // size)  # about 2 MB parsed per cell
        jobs = {
            "on": functools.partial(time_all, [body] * loops, fast),
            "paused": functools.partial(time_all, [body] * loops, paused(fast)),
        }
        best = best_of(3, jobs)
        print(
            f"  {size / 1024:8.1f} KiB x {loops:4d}: GC on {best['on'] * 1e3:7.1f} ms, "
            f"paused {best['paused'] * 1e3:7.1f} ms, x{best['on'] / best['paused']:.2f}"
        )


def signed(record: dict) -> dict:
    return json.loads(json.dumps(record).replace('.jpg"', f'.jpg{SIGNATURE}"'))


def bench_canonical(media: int, repeat: int) -> None:
    plain = list(iter_synthetic(media))
    for label, records in (
        ("as generated", plain),
        ("signed blob URLs", [signed(r) for r in plain]),
    ):
        megabytes = sum(len(jsoncodec.stdlib_canonical_dumps(r)) for r in records) / 1e6

        def over(fn: Callable[[Any], Any], rs: list = records) -> Callable[[], float]:
            def job() -> float:
                start = time.perf_counter()
                for record in rs:
                    fn(record)
                return time.perf_counter() - start

            return job

        jobs = {
            "stdlib canonical dumps": over(jsoncodec.stdlib_canonical_dumps),
            "jsoncodec.canonical_dumps": over(jsoncodec.canonical_dumps),
            "reference fingerprint": over(reference_fingerprint),
            "fingerprint": over(fingerprint),
        }
        times = best_of(repeat, jobs)
        title = f"canonical JSON, {len(records)} records {label}, {megabytes:.1f} MB"
        print_table(title, times, "stdlib canonical dumps", megabytes)
        ratio = times["reference fingerprint"] / times["fingerprint"]
        print(f"  fingerprint: x{ratio:.2f} the reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1,000 media, 3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.media, args.repeat = 1_000, 3
    print(f"orjson {getattr(orjson, '__version__', 'missing')}, ", end="")
    print(f"msgspec {getattr(msgspec, '__version__', 'missing')}, python {sys.version.split()[0]}")
    pages = make_pages(args.media, args.page_size)
    bench_parse(pages, args.repeat)
    bench_sizes(pages)
    bench_canonical(max(200, args.media // 10), max(2, args.repeat))


if __name__ == "__main__":
    main()

"""Benchmark: CPU of fingerprints, from decoded records and from page bytes, in-process and
in FingerprintPool.

Pages of synthetic media (``iter_synthetic``, compact JSON as the local API writes them;
20 pages of 1,000 media, about 200 MB, by default) are fingerprinted by

- ``fingerprint() of decoded records``: the definition on records already decoded (the
  decoding is not counted): the baseline;
- ``legacy_fingerprint() of decoded records``: the previous definition (sorted keys), which
  a sync computes only for media an older release fingerprinted;
- ``decode + fingerprint()``: what fingerprints from bytes cost by decoding them first;
- ``body_fingerprints in-process``: each record's fingerprint from its text in the body;
- ``FingerprintPool, thread``: the fallback (``COREVIZ_FRAMES_PROCESSES=0``);
- ``FingerprintPool, N processes``: every page submitted as bytes, results awaited.

For each: this process's CPU time (``time.process_time``: all its threads) and the wall
time, and their ratios to the baseline. The pool is started and warmed before timing
(its start-up is printed apart). Optionally ``--signed`` adds ``?X-Amz-...`` to every blob
URL (every record then has its blob URLs stripped). Results are checked equal to the
baseline's.

Usage:
    .venv/bin/python benchmarks/bench_fingerprintpool.py              # 20 x 1,000 media
    .venv/bin/python benchmarks/bench_fingerprintpool.py --pages 4    # quicker
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coreviz_frames._util.jsoncodec import canonical_dumps, loads_checked
from coreviz_frames.exports.bodyfingerprints import body_fingerprints
from coreviz_frames.exports.fingerprint import fingerprint, legacy_fingerprint
from coreviz_frames.exports.fingerprintpool import FingerprintPool
from coreviz_frames.local_api.synthetic import iter_synthetic

_BLOB = re.compile(rb'("(?:blob|thumbnailBlob)":"[a-z]+://[^"]*)"')


def _pages(pages: int, per_page: int, signed: bool) -> list[bytes]:
    out = []
    for p in range(pages):
        media = list(iter_synthetic(per_page, start=p * per_page))
        body = canonical_dumps({"media": media, "pagination": {"offset": p * per_page}})
        out.append(
            _BLOB.sub(rb'\1?X-Amz-Signature=0af3&X-Amz-Date=20260101"', body) if signed else body
        )
    return out


def _decoded(
    bodies: list[bytes], prints: Callable[[dict], str] = fingerprint
) -> tuple[list[dict[str, str]], float, float]:
    """``prints`` per decoded record; the decoding is not timed."""
    results, cpu, wall = [], 0.0, 0.0
    for body in bodies:
        media = loads_checked(body)[0]["media"]
        c0, w0 = time.process_time(), time.perf_counter()
        results.append({r["id"]: prints(r) for r in media})
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
    return results, cpu, wall


def _decode_then_fingerprint(bodies: list[bytes]) -> list[dict[str, str]]:
    return [{r["id"]: fingerprint(r) for r in loads_checked(b)[0]["media"]} for b in bodies]


def _timed(run: Callable[[], list[dict[str, str]]]) -> tuple[list[dict[str, str]], float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    results = run()
    return results, time.process_time() - c0, time.perf_counter() - w0


def _through(pool: FingerprintPool, bodies: list[bytes]) -> list[dict[str, str]]:
    futures = [pool.submit(body, what=f"page {i}") for i, body in enumerate(bodies)]
    return [f.result() for f in futures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--per-page", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--signed", action="store_true", help="signed blob URLs")
    args = parser.parse_args()
    bodies = _pages(args.pages, args.per_page, args.signed)
    mb = sum(map(len, bodies)) / 1e6
    print(f"{args.pages} pages x {args.per_page} media, {mb:.0f} MB, signed={args.signed}")
    rows = []
    base, base_cpu, base_wall = _decoded(bodies)
    rows.append(("fingerprint() of decoded records", base_cpu, base_wall))
    _, cpu, wall = _decoded(bodies, legacy_fingerprint)
    rows.append(("legacy_fingerprint() of decoded records", cpu, wall))
    got, cpu, wall = _timed(lambda: _decode_then_fingerprint(bodies))
    assert got == base
    rows.append(("decode + fingerprint()", cpu, wall))
    got, cpu, wall = _timed(lambda: [body_fingerprints(b) for b in bodies])
    assert got == base
    rows.append(("body_fingerprints in-process (the records' text)", cpu, wall))
    for label, kwargs in (
        ("FingerprintPool, thread", {"processes": False}),
        (f"FingerprintPool, {args.workers} processes", {"workers": args.workers}),
    ):
        w0 = time.perf_counter()
        with FingerprintPool(**kwargs) as pool:  # type: ignore[arg-type]
            pool.submit(b'{"media": []}').result()
            started = time.perf_counter() - w0
            got, cpu, wall = _timed(lambda pool=pool: _through(pool, bodies))
            assert got == base, label
            rows.append((f"{label} [{pool.mode}, start {started:.2f}s]", cpu, wall))
    print(f"{'path':<58} {'main CPU s':>10} {'x base':>7} {'wall s':>8} {'x base':>7}")
    for label, cpu, wall in rows:
        print(
            f"{label:<58} {cpu:>10.3f} {base_cpu / max(cpu, 1e-9):>6.1f}x "
            f"{wall:>8.3f} {base_wall / wall:>6.2f}x"
        )


if __name__ == "__main__":
    main()

"""Benchmark: fetching media records through the Client vs plain requests baselines.

The local API runs in its own process (``LocalAPIProcess``, so it does not share the GIL
with the client) with injected latency, serving a synthetic collection. Two workloads:

1. ``iter_media`` over N ids (default 1,000) with 32 workers, against a sequential
   ``requests.get`` loop, a bare ``ThreadPoolExecutor`` of 32 workers sharing one pooled
   ``requests.Session``, and the bound ``N x latency / workers``.
2. ``browse`` of a synthetic collection (default 10,000 media) in pages of 100, against
   sequential paging with one session, a bare pool fetching every offset, and the bound
   ``pages x latency / workers``.

Aims: >= 15x the sequential loop, >= 95% of the bare pool's throughput, >= 80% of the bound.

Usage:
    .venv/bin/python benchmarks/bench_fetch.py            # full size
    .venv/bin/python benchmarks/bench_fetch.py --quick    # 200 ids, 2,000 media
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coreviz_frames import Client
from coreviz_frames.local_api import LocalAPIProcess

API_KEY = "bench-key"
HEADERS = {"x-api-key": API_KEY}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def pooled_session(workers: int) -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=workers))
    return session


def bench_ids(server: LocalAPIProcess, ids: list[str], workers: int, latency: float) -> list:
    base = server.base_url
    n = len(ids)

    def sequential():
        return [
            requests.get(f"{base}/media/{i}", headers=HEADERS, timeout=30).json()["media"]
            for i in ids
        ]

    def bare_pool():
        session = pooled_session(workers)

        def one(media_id):
            r = session.get(f"{base}/media/{media_id}", headers=HEADERS, timeout=30)
            return r.json()["media"]

        with ThreadPoolExecutor(workers) as pool:
            out = list(pool.map(one, ids))
        session.close()
        return out

    def client_iter_media():
        with Client(api_key=API_KEY, base_url=base, max_workers=workers) as client:
            return list(client.iter_media(ids, progress=False))

    rows = []
    for name, fn in (
        ("sequential requests.get", sequential),
        (f"bare pool ({workers} threads)", bare_pool),
        (f"Client.iter_media ({workers} workers)", client_iter_media),
    ):
        server.reset_stats()
        seconds, out = timed(fn)
        assert [r["id"] for r in out] == ids, name
        rows.append((name, seconds, server.stats.max_in_flight))
    bound = n * latency / workers
    return [*rows, (f"bound N x latency / {workers}", bound, None)]


def bench_browse(
    server: LocalAPIProcess, n_media: int, page_size: int, workers: int, latency: float
) -> list:
    base = server.base_url
    url = f"{base}/dataset/{server.collection_id}/media"
    common = {
        "recursive": "true",
        "sortBy": "createdAt",
        "sortDirection": "asc",
        "limit": str(page_size),
    }

    def sequential():
        session = requests.Session()
        out, offset = [], 0
        while True:
            page = session.get(
                url, params={**common, "offset": str(offset)}, headers=HEADERS, timeout=60
            ).json()
            out += page["media"]
            offset += len(page["media"])
            if not page["pagination"]["hasMore"] or not page["media"]:
                break
        session.close()
        return out

    def bare_pool():
        session = pooled_session(workers)
        offsets = range(0, n_media, page_size)

        def one(offset):
            return session.get(
                url, params={**common, "offset": str(offset)}, headers=HEADERS, timeout=60
            ).json()["media"]

        with ThreadPoolExecutor(workers) as pool:
            out = [m for page in pool.map(one, offsets) for m in page]
        session.close()
        return out

    def client_browse():
        with Client(api_key=API_KEY, base_url=base, max_workers=workers) as client:
            return list(client.browse(server.collection_id, page_size=page_size, progress=False))

    rows = []
    expected = None
    for name, fn in (
        ("sequential paging", sequential),
        (f"bare pool ({workers} threads)", bare_pool),
        (f"Client.browse ({workers} workers)", client_browse),
    ):
        server.reset_stats()
        seconds, out = timed(fn)
        ids = [m["id"] for m in out]
        expected = expected or ids
        assert ids == expected and len(ids) == n_media, name
        rows.append((name, seconds, server.stats.max_in_flight))
    pages = -(-n_media // page_size)
    return [*rows, (f"bound pages x latency / {workers}", pages * latency / workers, None)]


def print_table(title: str, n: int, rows: list) -> dict[str, float]:
    seq, bare, ours, bound = (r[1] for r in rows)
    print(f"\n{title}")
    print(f"{'method':40} {'seconds':>9} {'items/s':>10} {'in flight':>10}")
    for name, seconds, in_flight in rows:
        flight = "" if in_flight is None else str(in_flight)
        print(f"{name:40} {seconds:9.3f} {n / seconds:10.0f} {flight:>10}")
    ratios = {
        "x sequential": seq / ours,
        "of bare pool": bare / ours,
        "of bound": bound / ours,
    }
    aims = {"x sequential": 15.0, "of bare pool": 0.95, "of bound": 0.80}
    for key, value in ratios.items():
        shown = f"{value:.1f}x" if key == "x sequential" else f"{value:.0%}"
        aim = f"{aims[key]:.0f}x" if key == "x sequential" else f"{aims[key]:.0%}"
        verdict = "ok" if value >= aims[key] else "below aim"
        print(f"  Client {key:14} {shown:>8}   (aim >= {aim}: {verdict})")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 ids and 2,000 media")
    parser.add_argument("--ids", type=int, help="number of ids for iter_media (default 1000)")
    parser.add_argument("--media", type=int, help="collection size for browse (default 10000)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args(argv)
    n_ids = args.ids or (200 if args.quick else 1000)
    n_media = args.media or (2000 if args.quick else 10_000)

    print(
        f"bench_fetch: local API in a child process, latency {args.latency * 1000:.0f} ms, "
        f"{args.workers} workers"
    )
    with LocalAPIProcess(api_key=API_KEY, synthetic=n_media, latency=args.latency) as server:
        with Client(api_key=API_KEY, base_url=server.base_url, max_workers=8) as client:
            ids = [
                m["id"]
                for page in client.iter_pages(
                    server.collection_id, page_size=1000, max_items=n_ids, progress=False
                )
                for m in page["media"]
            ]
        assert len(ids) == n_ids, (len(ids), n_ids)
        rows = bench_ids(server, ids, args.workers, args.latency)
        print_table(f"iter_media: {n_ids} ids", n_ids, rows)
        rows = bench_browse(server, n_media, args.page_size, args.workers, args.latency)
        print_table(f"browse: {n_media} synthetic media, pages of {args.page_size}", n_media, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

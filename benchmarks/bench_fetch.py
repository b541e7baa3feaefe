"""Benchmark: fetching media records through the Client vs plain requests baselines.

The local API runs in its own process (``LocalAPIProcess``, so it does not share the GIL
with the client) with injected latency, serving a synthetic collection. Two workloads:

1. ``iter_media`` over N ids (default 1,000) with 32 workers, against a sequential
   ``requests.get`` loop, a bare ``ThreadPoolExecutor`` of 32 workers sharing one pooled
   ``requests.Session``, and the latency bound ``ceil(N / workers) x latency``.
2. ``browse`` of a synthetic collection (default 10,000 media) in pages of 100, against
   sequential paging with one session, a bare pool fetching every offset, and the bound
   ``ceil(pages / workers) x latency``.

Aims: >= 15x the sequential loop, >= 95% of the bare pool's throughput, >= 80% of the bound.

The server is warmed (``--warm``: every record serialised before the first request) so all
methods alike time the client, not the server's first touch of a record (``--no-warm`` to
turn that off). Two more floors are printed for honesty, measured first on a second,
warmed server without latency by one keep-alive ``http.client`` connection: the server's
own sequential service time for the same requests, and the single-thread ``json.loads``
time of the bodies (work every method must do in the client process). No method can beat
the largest of the latency bound, the server floor and the parse floor by much (server and
client processes overlap on 2 cores, the server's threads share one GIL).

Usage:
    .venv/bin/python benchmarks/bench_fetch.py            # full size
    .venv/bin/python benchmarks/bench_fetch.py --quick    # 200 ids, 2,000 media
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

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


def service_floor(server: LocalAPIProcess, paths: list[str]) -> tuple[float, float]:
    """Seconds to get ``paths`` one after another over one keep-alive connection (the
    server's own service time, latency 0) and seconds to ``json.loads`` their bodies."""
    split = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
    bodies = []
    for path in paths[:5]:  # open the connection, touch the code paths
        conn.request("GET", split.path + path, headers=HEADERS)
        conn.getresponse().read()
    start = time.perf_counter()
    for path in paths:
        conn.request("GET", split.path + path, headers=HEADERS)
        response = conn.getresponse()
        bodies.append(response.read())
        assert response.status == 200, (path, response.status)
    served = time.perf_counter() - start
    conn.close()
    start = time.perf_counter()
    for body in bodies:
        json.loads(body)
    return served, time.perf_counter() - start


def measure_floors(args, n_ids: int, n_media: int) -> dict[str, tuple[float, float]]:
    """Server and parse floors of both workloads, on a warmed server without latency."""
    with LocalAPIProcess(api_key=API_KEY, synthetic=n_media, latency=0.0, warm=True) as server:
        with Client(api_key=API_KEY, base_url=server.base_url, max_workers=8) as client:
            ids = [
                m["id"]
                for page in client.iter_pages(
                    server.collection_id, page_size=1000, max_items=n_ids, progress=False
                )
                for m in page["media"]
            ]
        query = f"recursive=true&sortBy=createdAt&sortDirection=asc&limit={args.page_size}"
        pages = [
            f"/dataset/{server.collection_id}/media?{query}&offset={offset}"
            for offset in range(0, n_media, args.page_size)
        ]
        return {
            "ids": service_floor(server, [f"/media/{i}" for i in ids]),
            "browse": service_floor(server, pages),
        }


def bench_ids(server: LocalAPIProcess, ids: list[str], workers: int, latency: float) -> list:
    base = server.base_url
    n = len(ids)

    def sequential():
        return [
            requests.get(f"{base}/media/{i}", headers=HEADERS, timeout=30).json()["media"]
            for i in ids
        ]

    def bare_pool(parse: bool = True):
        session = pooled_session(workers)

        def one(media_id):
            r = session.get(f"{base}/media/{media_id}", headers=HEADERS, timeout=30)
            assert r.status_code == 200, r.status_code
            return r.json()["media"] if parse else r.content

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
    bound = math.ceil(n / workers) * latency
    server.reset_stats()
    seconds, out = timed(lambda: bare_pool(parse=False))
    assert len(out) == n
    unparsed = ("bare pool, bytes only (no .json())", seconds, server.stats.max_in_flight)
    return [*rows, (f"bound ceil(N / {workers}) x latency", bound, None), unparsed]


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

    def bare_pool(parse: bool = True):
        session = pooled_session(workers)
        offsets = range(0, n_media, page_size)

        def one(offset):
            r = session.get(
                url, params={**common, "offset": str(offset)}, headers=HEADERS, timeout=60
            )
            assert r.status_code == 200, r.status_code
            return r.json()["media"] if parse else [r.content]

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
    pages = math.ceil(n_media / page_size)
    bound = math.ceil(pages / workers) * latency
    server.reset_stats()
    seconds, out = timed(lambda: bare_pool(parse=False))
    assert len(out) == pages
    unparsed = ("bare pool, bytes only (no .json())", seconds, server.stats.max_in_flight)
    return [*rows, (f"bound ceil(pages / {workers}) x latency", bound, None), unparsed]


def print_table(
    title: str, n: int, rows: list, floors: tuple[float, float] | None
) -> dict[str, float]:
    rows, extra = rows[:4], rows[4:]  # the compared methods and bound, then information
    seq, bare, ours, bound = (r[1] for r in rows)
    if floors is not None:
        served, parsed = floors
        extra += [
            ("server floor: sequential, latency 0", served, None),
            ("parse floor: json.loads, one thread", parsed, None),
        ]
    print(f"\n{title}")
    print(f"{'method':40} {'seconds':>9} {'items/s':>10} {'in flight':>10} {'of bound':>9}")
    for i, (name, seconds, in_flight) in enumerate([*rows, *extra]):
        if i == len(rows):
            print("  information (not compared against the aims):")
        flight = "" if in_flight is None else str(in_flight)
        print(f"{name:40} {seconds:9.3f} {n / seconds:10.0f} {flight:>10} {bound / seconds:9.0%}")
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
    if floors is not None:
        floor = max(bound, *floors)
        print(f"  Client of max(bound, floors) {floor / ours:5.0%}   (information)")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 ids and 2,000 media")
    parser.add_argument("--ids", type=int, help="number of ids for iter_media (default 1000)")
    parser.add_argument("--media", type=int, help="collection size for browse (default 10000)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument(
        "--warm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serialise every record in the server before timing (default: on)",
    )
    parser.add_argument(
        "--floors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the server and parse floors (default: on)",
    )
    args = parser.parse_args(argv)
    n_ids = args.ids or (200 if args.quick else 1000)
    n_media = args.media or (2000 if args.quick else 10_000)

    print(
        f"bench_fetch: local API in a child process, latency {args.latency * 1000:.0f} ms, "
        f"{args.workers} workers"
    )
    floors = measure_floors(args, n_ids, n_media) if args.floors else {}
    start = time.perf_counter()
    with LocalAPIProcess(
        api_key=API_KEY, synthetic=n_media, latency=args.latency, warm=args.warm
    ) as server:
        if args.warm:
            print(
                f"server warmed: all {n_media} records serialised at start-up "
                f"({time.perf_counter() - start:.1f} s), the same for every method"
            )
        else:
            print("server not warmed: the first method to touch a record pays for building it")
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
        print_table(f"iter_media: {n_ids} ids", n_ids, rows, floors.get("ids"))
        rows = bench_browse(server, n_media, args.page_size, args.workers, args.latency)
        title = f"browse: {n_media} synthetic media, pages of {args.page_size}"
        print_table(title, n_media, rows, floors.get("browse"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: single-process ``export_parquet`` against ``coreviz_frames.dask`` on a LocalCluster.

A synthetic collection behind the local API in its own process (``LocalAPIProcess``) with
injected latency per request. Two exports of the whole collection:

* ``single``  ``export_parquet(client.browse(...))`` in this process (page_size 100,
              ``max_workers`` 8 concurrent requests, batch 1000).
* ``dask``    ``export_collection`` on a ``LocalCluster`` of 2 single-threaded worker
              processes (127.0.0.1), one partition per 10 pages; cluster start-up is timed
              separately and not counted.

Both exports are read back with ``read_parquet`` and their row counts compared. The ratio
printed is single-process time / Dask time (> 1: Dask is faster). Note the machine's core
count: the API server, the driver and both workers share it.

Usage:
    .venv/bin/python benchmarks/bench_dask.py            # 20,000 media, 0.02 s latency
    .venv/bin/python benchmarks/bench_dask.py --quick    # 2,000 media
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE_SIZE = 100
WORKERS = 8
KEY = "bench-dask-key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 media instead of 20,000")
    parser.add_argument("--n", type=int, default=None, help="collection size")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per API request")
    args = parser.parse_args(argv)
    n = args.n or (2_000 if args.quick else 20_000)

    import distributed

    import coreviz_frames as cvf
    from coreviz_frames.dask import export_collection
    from coreviz_frames.local_api import LocalAPIProcess
    from coreviz_frames.schema import GRAINS

    cores = os.cpu_count() or 1
    print(
        f"bench_dask: {n:,} synthetic media, {args.latency:.3f} s latency per request, "
        f"page_size {PAGE_SIZE}, {cores} CPU core(s) on this machine"
        + (" (the API server, the driver and both workers share them)" if cores <= 2 else "")
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp,
        LocalAPIProcess(synthetic=n, latency=args.latency, api_key=KEY) as server,
    ):
        kwargs = {"api_key": KEY, "base_url": server.base_url, "max_workers": WORKERS}
        cid = server.collection_id

        start = time.perf_counter()
        with cvf.Client(**kwargs) as client:
            records = client.browse(cid, page_size=PAGE_SIZE, progress=False)
            single = cvf.export_parquet(records, Path(tmp, "single"), progress=False)
        t_single = time.perf_counter() - start
        print(f"  single process export_parquet : {t_single:7.2f} s  ({n / t_single:,.0f} media/s)")

        start = time.perf_counter()
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster),
        ):
            t_cluster = time.perf_counter() - start
            start = time.perf_counter()
            report = export_collection(
                cid, Path(tmp, "dask"), client_kwargs=kwargs, page_size=PAGE_SIZE
            )
            t_dask = time.perf_counter() - start
        print(
            f"  dask export_collection (2 procs): {t_dask:7.2f} s  ({n / t_dask:,.0f} media/s, "
            f"{report.parts_written} partitions; cluster start {t_cluster:.1f} s not counted)"
        )

        a, b = cvf.read_parquet(Path(tmp, "single")), cvf.read_parquet(Path(tmp, "dask"))
        counts = {g: (len(getattr(a, g)), len(getattr(b, g))) for g in GRAINS}
        same = all(x == y for x, y in counts.values()) and single.media_exported == n
        print(
            "  rows (single, dask): "
            + ", ".join(f"{g} {x:,}/{y:,}" for g, (x, y) in counts.items())
        )
        print(f"  row counts identical: {same}")
    print(f"ratio single / dask: {t_single / t_dask:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

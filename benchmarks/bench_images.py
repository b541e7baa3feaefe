"""Benchmark: object crops through ``load_crops`` vs a plain loop, cold vs cached, draft decoding.

The local API runs in its own process (``LocalAPIProcess``) serving a synthetic collection
with injected latency (default 10 ms per request). Workloads:

1. 500 crops (one in four objects has no crop blob, so its box is cut from the frame):
   a sequential ``requests.get`` + ``PIL.Image.open`` loop (cutting from the frame where
   needed) against ``load_crops`` (8 workers, no cache), against ``load_crops`` with a disk
   cache, cold then warm (the warm pass must make zero requests).
2. A large JPEG (4000x3000): ``load_image(max_size=256)`` (JPEG draft decoding) against a
   full decode followed by ``thumbnail``.

Usage:
    .venv/bin/python benchmarks/bench_images.py            # 500 crops
    .venv/bin/python benchmarks/bench_images.py --quick    # 120 crops
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coreviz_frames import Client, load_crops, load_image, to_tables
from coreviz_frames.local_api import LocalAPIProcess


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def objects_for(server: LocalAPIProcess, n: int):
    with Client(api_key="bench-key", base_url=server.base_url) as client:
        records = list(
            client.browse(server.collection_id, max_items=max(20, n // 3), progress=False)
        )
    tables = to_tables(records)
    if len(tables.objects) < n:
        raise SystemExit(f"only {len(tables.objects)} objects, wanted {n}")
    return tables.objects.head(n).reset_index(drop=True), tables.frames


def sequential(objects, frames) -> list[Image.Image]:
    """What a user writes first: one requests.get per object, decode, cut if needed."""
    frame_url = dict(zip(frames.frame_id, frames.blob, strict=True))
    out = []
    for row in objects.itertuples():
        if isinstance(row.blob, str):
            data = requests.get(row.blob, timeout=30).content
            out.append(Image.open(io.BytesIO(data)).convert("RGB"))
        else:
            data = requests.get(frame_url[row.frame_id], timeout=30).content
            frame = Image.open(io.BytesIO(data)).convert("RGB")
            box = (
                int(row.bbox_x),
                int(row.bbox_y),
                int(np.ceil(row.bbox_x + row.bbox_w)),
                int(np.ceil(row.bbox_y + row.bbox_h)),
            )
            out.append(frame.crop(box))
    return out


def bench_crops(n: int, latency: float) -> None:
    with LocalAPIProcess(synthetic=10_000, latency=latency) as server:
        objects, frames = objects_for(server, n)
        no_blob = int(objects.blob.isna().sum())
        print(f"{n} crops ({no_blob} cut from frames), {latency * 1000:g} ms latency per request")

        server.reset_stats()
        t_seq, seq = timed(lambda: sequential(objects, frames))
        seq_requests = server.stats.requests

        server.reset_stats()
        t_lib, crops = timed(lambda: load_crops(objects, frames=frames, progress=False))
        lib_requests = server.stats.requests
        assert len(crops) == len(seq) == n

        with tempfile.TemporaryDirectory() as cache:
            server.reset_stats()
            t_cold, _ = timed(
                lambda: load_crops(objects, frames=frames, cache_dir=cache, progress=False)
            )
            server.reset_stats()
            t_warm, _ = timed(
                lambda: load_crops(objects, frames=frames, cache_dir=cache, progress=False)
            )
            warm_requests = server.stats.requests

    print(f"  sequential loop        {t_seq:7.2f} s  {seq_requests:5d} requests")
    print(
        f"  load_crops (8 thr.)    {t_lib:7.2f} s  {lib_requests:5d} requests"
        f"   {t_seq / t_lib:5.1f}x the loop"
    )
    print(f"  load_crops, cold cache {t_cold:7.2f} s")
    print(
        f"  load_crops, warm cache {t_warm:7.2f} s  {warm_requests:5d} requests"
        f"   {t_lib / t_warm:5.1f}x uncached, {t_seq / t_warm:5.1f}x the loop"
    )
    if warm_requests:
        raise SystemExit("FAIL: the cached pass made requests")


def bench_thumbnail(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.jpg"
        y, x = np.mgrid[0:3000, 0:4000]
        rgb = np.stack([(x // 7) % 256, (y // 5) % 256, ((x + y) // 11) % 256], -1)
        Image.fromarray(rgb.astype(np.uint8)).save(path, "JPEG", quality=90)

        def full():
            img = Image.open(path).convert("RGB")
            img.thumbnail((256, 256))
            return img

        load_image(path, max_size=256)  # warm up
        t_full = min(timed(full)[0] for _ in range(repeat))
        t_draft = min(timed(lambda: load_image(path, max_size=256))[0] for _ in range(repeat))
    print(f"4000x3000 JPEG to a 256 px thumbnail (best of {repeat})")
    print(f"  full decode + thumbnail  {t_full * 1000:7.1f} ms")
    print(f"  load_image(max_size=256) {t_draft * 1000:7.1f} ms   {t_full / t_draft:5.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 crops, 2 repeats")
    parser.add_argument("--crops", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.010)
    args = parser.parse_args()
    n = args.crops or (120 if args.quick else 500)
    bench_crops(n, args.latency)
    bench_thumbnail(2 if args.quick else 5)


if __name__ == "__main__":
    main()

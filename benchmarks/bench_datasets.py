"""Benchmark: ``export_coco`` / ``export_yolo`` against a sequential download-and-write loop.

The local API runs in its own process (``LocalAPIProcess``) serving a synthetic collection
with injected latency (default 10 ms per request). The workload is 2,000 frames with their
objects (``--frames``):

1. what a user writes first: for each frame one ``requests.get`` of its image, the bytes
   written to ``images/<frame>.jpg``, then one COCO JSON and one YOLO label file per frame;
2. ``export_coco`` (8 download threads, no cache);
3. ``export_yolo`` (8 download threads, no cache);
4. ``export_coco`` with a disk cache, cold then warm (the warm run makes no request);
5. from that warm cache, every frame image as the writers now give it (the original
   bytes of a JPEG of the frame's size) against decoding and re-encoding it as JPEG at
   quality 95 (what they did before): time and bytes.

Usage:
    .venv/bin/python benchmarks/bench_datasets.py            # 2,000 frames
    .venv/bin/python benchmarks/bench_datasets.py --quick    # 300 frames
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import frames_for

from coreviz_frames import DownloadOptions, MediaTables, export_coco, export_yolo
from coreviz_frames.local_api import LocalAPIProcess
from coreviz_frames.training.frames import frame_image, frame_jpeg, plan_dataset, run_frames


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sequential(tables: MediaTables, out: Path) -> int:
    """One GET per frame, bytes to disk, then a COCO file and YOLO labels: no threads."""
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    labels = sorted(tables.objects.label.dropna().unique())
    images, annotations = [], []
    for image_id, frame in enumerate(tables.frames.itertuples(), start=1):
        data = requests.get(frame.blob, timeout=30).content
        (out / "images" / f"{frame.frame_id}.jpg").write_bytes(data)
        images.append(
            {
                "id": image_id,
                "file_name": f"{frame.frame_id}.jpg",
                "width": int(frame.width),
                "height": int(frame.height),
            }
        )
        lines = []
        for obj in tables.objects[tables.objects.frame_id == frame.frame_id].itertuples():
            box = [obj.bbox_x, obj.bbox_y, obj.bbox_w, obj.bbox_h]
            cls = labels.index(obj.label)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cls + 1,
                    "bbox": box,
                    "area": obj.bbox_w * obj.bbox_h,
                    "iscrowd": 0,
                }
            )
            cx, cy = (
                (obj.bbox_x + obj.bbox_w / 2) / frame.width,
                (obj.bbox_y + obj.bbox_h / 2) / frame.height,
            )
            lines.append(
                f"{cls} {cx:.6f} {cy:.6f} "
                f"{obj.bbox_w / frame.width:.6f} {obj.bbox_h / frame.height:.6f}"
            )
        (out / "labels" / f"{frame.frame_id}.txt").write_text("".join(f"{ln}\n" for ln in lines))
    cats = [{"id": i + 1, "name": name} for i, name in enumerate(labels)]
    doc = {"images": images, "annotations": annotations, "categories": cats}
    (out / "instances.json").write_text(json.dumps(doc))
    return len(images)


def original_vs_reencoded(tables: MediaTables, cache: Path) -> dict[str, tuple[float, int]]:
    """Seconds and bytes of every frame image: original bytes, then decoded and re-encoded."""
    download = DownloadOptions(cache_dir=cache)
    items = plan_dataset(tables).items

    def reencoded(item) -> bytes:
        buf = io.BytesIO()
        frame_image(item, download).save(buf, "JPEG", quality=95)
        return buf.getvalue()

    out = {}
    for name, work in (
        ("original", lambda it: frame_jpeg(it, download)),
        ("re-encoded", reencoded),
    ):
        seconds, (done, failed) = timed(lambda w=work: run_frames(items, w, progress=False))
        assert not failed, failed
        out[name] = (seconds, sum(len(b) for b in done.values()))
    return out


def bench(n: int, latency: float) -> None:
    with LocalAPIProcess(synthetic=10_000, latency=latency) as server:
        tables = frames_for(server, n)
        print(
            f"{len(tables.frames)} frames, {len(tables.objects)} objects, "
            f"{latency * 1000:g} ms latency per request"
        )
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            server.reset_stats()
            t_seq, _ = timed(lambda: sequential(tables, root / "seq"))
            seq_requests = server.stats.requests

            server.reset_stats()
            t_coco, coco = timed(lambda: export_coco(tables, root / "coco", progress=False))
            coco_requests = server.stats.requests
            t_yolo, yolo = timed(lambda: export_yolo(tables, root / "yolo", progress=False))
            assert coco.total_images == yolo.total_images == n, (coco.summary(), yolo.summary())
            assert not coco.failed_frames and not yolo.failed_frames

            cache = root / "cache"
            t_cold, _ = timed(
                lambda: export_coco(tables, root / "cold", cache_dir=cache, progress=False)
            )
            server.reset_stats()
            t_warm, warm = timed(
                lambda: export_coco(tables, root / "warm", cache_dir=cache, progress=False)
            )
            warm_requests = server.stats.requests
            assert warm.total_images == n
            copies = original_vs_reencoded(tables, cache)

    print(f"  sequential loop          {t_seq:7.2f} s  {seq_requests:5d} requests")
    print(
        f"  export_coco (8 thr.)     {t_coco:7.2f} s  {coco_requests:5d} requests"
        f"   {t_seq / t_coco:5.1f}x the loop"
    )
    print(
        f"  export_yolo (8 thr.)     {t_yolo:7.2f} s"
        f"                  {t_seq / t_yolo:5.1f}x the loop"
    )
    print(f"  export_coco, cold cache  {t_cold:7.2f} s")
    print(
        f"  export_coco, warm cache  {t_warm:7.2f} s  {warm_requests:5d} requests"
        f"   {t_coco / t_warm:5.1f}x uncached, {t_seq / t_warm:5.1f}x the loop"
    )
    (t_orig, b_orig), (t_enc, b_enc) = copies["original"], copies["re-encoded"]
    print(
        f"  frame images, original bytes {t_orig:7.2f} s  {b_orig / 1e6:7.1f} MB"
        f"   {t_enc / t_orig:5.1f}x faster, {b_enc / b_orig:4.2f}x fewer bytes than"
    )
    print(f"  frame images, re-encoded q95 {t_enc:7.2f} s  {b_enc / 1e6:7.1f} MB   (baseline)")
    if warm_requests:
        raise SystemExit("FAIL: the cached run made requests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 frames")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.010)
    args = parser.parse_args()
    bench(args.frames or (300 if args.quick else 2000), args.latency)


if __name__ == "__main__":
    main()

"""Benchmark: peak memory of ``export_hf`` for N frames and for 10 x N frames.

``export_hf`` streams: each batch of rows becomes a Parquet row group as soon as its
images are made, so peak memory should not grow with the dataset (aim: 10x the frames
within 1.3x the peak). The in-memory ``to_hf_dataset`` holds every image and is measured
the same way, as the contrast, and so is ``export_hf`` without images: what the planning
and the metadata of 10x the frames (their objects, captions, ids) cost on their own.

The local API runs in its own process serving a synthetic collection; each measurement
runs in a fresh Python process that reads the frames from a Parquet export and reports
its peak resident memory (``VmHWM``) before and after the call, and the JPEG bytes it
wrote or held.

Usage:
    .venv/bin/python benchmarks/bench_hf.py            # 300 and 3,000 frames
    .venv/bin/python benchmarks/bench_hf.py --quick    # 100 and 1,000 frames
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import frames_for

from coreviz_frames.local_api import LocalAPIProcess

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import datasets  # imported before the baseline: both runs pay for it
    import coreviz_frames as cvf
    from coreviz_frames.training.huggingface import export_hf, to_hf_dataset

    def hwm():
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmHWM:"))

    src, out, how = sys.argv[1:4]
    tables = cvf.read_parquet(src)
    before = hwm()
    start = time.perf_counter()
    if how.startswith("export_hf"):
        images = how == "export_hf"
        report = export_hf(tables, out, progress=False, cache_dir=False, rows_per_shard=500,
                           images=images)
        rows = report.total_images
        image_bytes = sum(p.stat().st_size for p in Path(out, "data").iterdir())
    else:
        ds = to_hf_dataset(tables, progress=False, cache_dir=False)
        rows = len(ds)
        image_bytes = ds.data.nbytes
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": rows, "before": before, "peak": hwm(),
                      "bytes": image_bytes, "seconds": seconds}))
    """
)


#: export_hf, the same without images (the planning and metadata alone), to_hf_dataset.
MODES = ("export_hf", "export_hf_no_images", "to_hf_dataset")


def measure(src: Path, out: Path, how: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(out), how],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode:
        raise SystemExit(f"{how} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(small: int) -> None:
    sizes = (small, 10 * small)
    mb = 2**20
    with LocalAPIProcess(synthetic=2_000) as server, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in sizes:
            frames_for(server, n).to_parquet(root / f"src-{n}")
        results = {}
        for how in MODES:
            for n in sizes:
                results[how, n] = measure(root / f"src-{n}", root / f"{how}-{n}", how)
    print(f"peak resident memory (VmHWM) of a fresh process, {sizes[0]} vs {sizes[1]} frames")
    print(f"  (pyarrow memory pool: {pa.default_memory_pool().backend_name})")
    for how in MODES:
        a, b = results[how, sizes[0]], results[how, sizes[1]]
        for n, r in ((sizes[0], a), (sizes[1], b)):
            print(
                f"  {how:19s} {n:6d} frames: peak {r['peak'] / mb:7.1f} MB"
                f" (tables read: {r['before'] / mb:6.1f} MB), {r['bytes'] / mb:6.1f} MB of data,"
                f" {r['seconds']:6.1f} s"
            )
        own = (b["peak"] - b["before"]) / max(a["peak"] - a["before"], 1)
        print(
            f"  {how:19s} 10x the frames: {b['peak'] / a['peak']:.2f}x the peak"
            f" ({(b['peak'] - a['peak']) / mb:+.1f} MB); above the tables read: {own:.2f}x"
        )
    ratio = results["export_hf", sizes[1]]["peak"] / results["export_hf", sizes[0]]["peak"]
    if ratio > 1.3:
        raise SystemExit(f"FAIL: export_hf peak grew {ratio:.2f}x for 10x the frames (aim 1.3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 frames")
    parser.add_argument("--frames", type=int, default=None, help="the smaller size")
    args = parser.parse_args()
    bench(args.frames or (100 if args.quick else 300))


if __name__ == "__main__":
    main()

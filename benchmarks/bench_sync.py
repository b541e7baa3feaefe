"""Benchmark: incremental ``sync`` against a full re-export, after a day's changes.

A 20,000-media synthetic collection is served by the local API in its own process
(``LocalAPIProcess``). Steps, all in this run:

1. ``sync`` into an empty directory (a full export with fingerprints);
2. on the local API, 1% of the media edited (captions, objects, frames, tags, names),
   0.5% deleted and 1% added (``LocalAPIProcess.mutate``);
3. ``sync`` of the export: time and bytes written (Parquet parts, fingerprint files and
   the manifest), against
4. a full re-export of the changed collection (``export_parquet`` of ``client.browse``
   into a new directory, as ``--overwrite`` would): time and bytes written;
5. a second ``sync`` with nothing changed, which must write no file.

The synced export is checked to hold the same rows per grain as the re-export.

With ``--light`` the local API serves light browse items (no captions or objects), so a
re-export needs a Get Media per media and a sync only for the media whose listed item
changed. These runs keep the plain Parquet format (``table_format="parquet"``).

With ``--formats`` the benchmark compares a **Delta** sync with a **plain Parquet** one
instead, on 50,000 media: both exports are made by a first sync, then 1% of the media
are edited, 0.5% deleted and 1% added, then each is synced; printed per format: time,
bytes written and files written (new or rewritten files, the manifest included), and the
Delta / Parquet ratios. Both must hold the same rows afterwards.

Usage:
    .venv/bin/python benchmarks/bench_sync.py            # 20,000 media
    .venv/bin/python benchmarks/bench_sync.py --light    # light browse items
    .venv/bin/python benchmarks/bench_sync.py --quick    # 2,000 media
    .venv/bin/python benchmarks/bench_sync.py --formats  # Delta vs Parquet, 50,000 media
    .venv/bin/python benchmarks/bench_sync.py --formats --quick   # ... on 5,000 media
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH_SIZE = 1000
PAGE_SIZE = 100
WORKERS = 4


def _files(path: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(path)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in path.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    }


def _written(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    """Bytes of the files that are new or rewritten between two listings."""
    return sum(size for rel, (mtime, size) in after.items() if before.get(rel) != (mtime, size))


def _files_written(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    """How many files are new or rewritten between two listings."""
    return sum(1 for rel, stat in after.items() if before.get(rel) != stat)


def _rows(path: Path) -> dict[str, int]:
    from coreviz_frames.exports.reader import read_parquet

    return {grain: len(frame) for grain, frame in read_parquet(path).items()}


def _scenario(name, server, client, synced: Path, fresh: Path, n: int, **where) -> dict:
    """Change the collection, then time ``sync`` and a full re-export of the result."""
    from coreviz_frames.exports.manifest import read_manifest
    from coreviz_frames.exports.syncing import sync
    from coreviz_frames.exports.writer import export_parquet

    cid = server.collection_id
    changes = server.mutate(edits=n // 100, deletes=n // 200, adds=n // 100, **where)
    print(
        f"[{name}] changes: {len(changes['edited']):,} edited, {len(changes['deleted']):,} "
        f"deleted, {len(changes['added']):,} added"
    )
    parts_before = len(read_manifest(synced)["parts"])
    before = _files(synced)
    start = time.perf_counter()
    report = sync(
        client,
        cid,
        synced,
        batch_size=BATCH_SIZE,
        page_size=PAGE_SIZE,
        progress=False,
        table_format="parquet",
    )
    t_sync = time.perf_counter() - start
    print(f"[{name}] {report}")
    start = time.perf_counter()
    records = client.browse(cid, page_size=PAGE_SIZE, progress=False)
    export_parquet(records, fresh, batch_size=BATCH_SIZE, progress=False)
    t_full = time.perf_counter() - start
    return {
        "name": name,
        "t_sync": t_sync,
        "b_sync": _written(before, _files(synced)),
        "t_full": t_full,
        "b_full": sum(size for _, size in _files(fresh).values()),
        "rewritten": f"{report.parts_rewritten} of {parts_before} parts rewritten",
        "same": _rows(synced) == _rows(fresh),
    }


def _formats(quick: bool) -> None:
    """A Delta sync against a plain Parquet sync of the same changes (see the module doc)."""
    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.syncing import sync
    from coreviz_frames.local_api import LocalAPIProcess

    n = 5_000 if quick else 50_000
    work = Path(tempfile.mkdtemp(prefix="bench-sync-formats-"))
    opts = {"batch_size": BATCH_SIZE, "page_size": PAGE_SIZE, "progress": False}
    with (
        LocalAPIProcess(synthetic=n, warm=True) as server,
        Client(api_key="bench", base_url=server.base_url, max_workers=WORKERS) as client,
    ):
        cid = server.collection_id
        for fmt in ("parquet", "delta"):
            start = time.perf_counter()
            sync(client, cid, work / fmt, table_format=fmt, **opts)
            print(f"initial {fmt} sync of {n:,} media: {time.perf_counter() - start:.1f}s")
        changes = server.mutate(seed=3, edits=n // 100, deletes=n // 200, adds=n // 100)
        print(
            f"changes: {len(changes['edited']):,} edited, {len(changes['deleted']):,} deleted, "
            f"{len(changes['added']):,} added"
        )
        runs = {}
        for fmt in ("parquet", "delta"):
            before = _files(work / fmt)
            start = time.perf_counter()
            report = sync(client, cid, work / fmt, **opts)
            elapsed = time.perf_counter() - start
            after = _files(work / fmt)
            runs[fmt] = (elapsed, _written(before, after), _files_written(before, after))
            print(f"[{fmt}] {report}")
    print()
    print(f"{'sync after the changes':<24} {'seconds':>8} {'bytes written':>14} {'files':>6}")
    for fmt, (elapsed, size, files) in runs.items():
        print(f"{fmt:<24} {elapsed:>8.1f} {size:>14,} {files:>6}")
    (td, bd, fd), (tp, bp, fp) = runs["delta"], runs["parquet"]
    same = _rows(work / "delta") == _rows(work / "parquet")
    print(
        f"delta / parquet: time {td / tp:.2f}x, bytes written {bd / bp:.2f}x, files written "
        f"{fd / fp:.2f}x; same rows per grain: {same}"
    )
    if not same:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 media instead of 20,000")
    parser.add_argument(
        "--formats", action="store_true", help="a Delta sync against a Parquet one (50,000)"
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help="browse items without captions/objects: a re-export fetches every media with "
        "Get Media, a sync only the new and changed ones",
    )
    args = parser.parse_args()
    if args.formats:
        _formats(args.quick)
        return
    n = 2_000 if args.quick else 20_000

    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.syncing import sync
    from coreviz_frames.local_api import LocalAPIProcess

    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    synced = work / "synced"
    with (
        LocalAPIProcess(synthetic=n, warm=True, light=args.light) as server,
        Client(api_key="bench", base_url=server.base_url, max_workers=WORKERS) as client,
    ):
        cid = server.collection_id
        opts = {"batch_size": BATCH_SIZE, "page_size": PAGE_SIZE, "progress": False}
        start = time.perf_counter()
        first = sync(client, cid, synced, table_format="parquet", **opts)
        t_first = time.perf_counter() - start
        print(f"initial sync of {n:,} media: {t_first:.1f}s, {first.bytes_written:,} bytes")
        results = [
            _scenario("recent", server, client, synced, work / "re1", n, seed=1, newest=n // 20),
            _scenario("uniform", server, client, synced, work / "re2", n, seed=2),
        ]
        before = _files(synced)
        start = time.perf_counter()
        again = sync(client, cid, synced, **opts)
        t_again = time.perf_counter() - start
        again_bytes = _written(before, _files(synced))

    print()
    print(f"{'run':<34} {'seconds':>8} {'bytes written':>14}")
    for r in results:
        print(f"{'sync, ' + r['name'] + ' changes':<34} {r['t_sync']:>8.1f} {r['b_sync']:>14,}")
        print(f"{'full re-export':<34} {r['t_full']:>8.1f} {r['b_full']:>14,}")
    print(f"{'sync with no change':<34} {t_again:>8.1f} {again_bytes:>14,}")
    print()
    for r in results:
        print(
            f"{r['name']:>7}: sync / re-export: time {r['t_sync'] / r['t_full']:.2f}x, bytes "
            f"{r['b_sync'] / r['b_full']:.3f}x ({r['rewritten']}); rows per grain equal to "
            f"the re-export: {r['same']}"
        )
    full = results[-1]["t_full"]
    print(
        f"no change: time {t_again / full:.2f}x of a re-export, {again_bytes} bytes written, "
        f"snapshot {again.snapshot} kept"
    )
    if args.light and not all(r["same"] for r in results):
        print(
            "light items: edits an AI pass makes without changing the listed item (captions, "
            "objects) are not seen by hydrate='auto'; hydrate=True (--hydrate always) sees them"
        )
    if again_bytes or again.changed or not (args.light or all(r["same"] for r in results)):
        sys.exit(1)


if __name__ == "__main__":
    main()

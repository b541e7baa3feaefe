"""What several benchmarks share: a process's peak memory, and a slice of frames to write.

Each ``bench_*.py`` runs as a script, so this folder is first on ``sys.path`` and
``from _common import peak_rss_mb`` works in the benchmark and in the children it starts.

Example:
    >>> peak_rss_mb() > 0
    True
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coreviz_frames import MediaTables
    from coreviz_frames.local_api import LocalAPIProcess


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB: ``VmHWM`` (Linux), which a new program starts
    afresh; ``ru_maxrss`` (the fallback) keeps the parent's high-water mark across fork and
    exec, so a child started from a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def frames_for(server: LocalAPIProcess, n: int) -> MediaTables:
    """The first ``n`` frames of the synthetic collection, with their objects and captions."""
    from coreviz_frames import Client, MediaTables, to_tables

    with Client(api_key="bench-key", base_url=server.base_url) as client:
        records = list(client.browse(server.collection_id, max_items=n // 5 + 50, progress=False))
    tables = to_tables(records)
    if len(tables.frames) < n:
        raise SystemExit(f"only {len(tables.frames)} frames, wanted {n}")
    frames = tables.frames.head(n)
    objects = tables.objects[tables.objects.frame_id.isin(frames.frame_id)]
    captions = tables.captions[tables.captions.frame_id.isin(frames.frame_id)]
    return MediaTables(tables.media, frames, captions, objects, tables.tags)

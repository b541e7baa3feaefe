"""A local, CoreViz-compatible read API for tests, notebooks, the demo and benchmarks.

Serves the sample collection of ``data/`` (or N synthetic media) on 127.0.0.1 with
``GET /api/media/{id}``, ``GET /api/dataset/{id}/media`` (pagination, filters, folders),
``GET /api/dataset/{id}/tags``, and the images behind the blob URLs on a second port.

Example:
    >>> import requests
    >>> from coreviz_frames.local_api import LocalAPI, serve_local_api
    >>> with serve_local_api(synthetic=1000, latency=0.01) as base_url:
    ...     requests.get(f"{base_url}/dataset/synthetic/tags").json()["tags"]["split"]
    ['even', 'odd']
"""

from __future__ import annotations

from .process import LocalAPIProcess
from .server import (
    SAMPLE_COLLECTION_ID,
    SAMPLE_DATA_DIR,
    LocalAPI,
    ServerStats,
    StatsSnapshot,
    serve_forever,
    serve_local_api,
)

__all__ = [
    "SAMPLE_COLLECTION_ID",
    "SAMPLE_DATA_DIR",
    "LocalAPI",
    "LocalAPIProcess",
    "ServerStats",
    "StatsSnapshot",
    "main",
    "serve_forever",
    "serve_local_api",
]


def main(argv: list[str] | None = None) -> int:
    """The ``python -m coreviz_frames.local_api`` entry point (also ``coreviz-frames serve``)."""
    from .__main__ import main as _main

    return _main(argv)

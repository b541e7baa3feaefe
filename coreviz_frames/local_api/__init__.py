"""A local, CoreViz-compatible read API for tests, notebooks, the demo and benchmarks.

Serves the sample collection of ``data/`` (or N synthetic media) on 127.0.0.1 with
``GET /api/media/{id}``, ``GET /api/dataset/{id}/media`` (pagination, filters, folders,
scored search and similarity), ``GET /api/dataset/{id}/tags``, the catalogue (``/api/me``,
``/api/auth/organization/list``, ``/api/organization/{id}/datasets``, ``/api/dataset/{id}``,
``/api/media/{id}/versions``, ``/api/search``: see :mod:`.catalogue`), and the images
behind the blob URLs on a second port.

Example:
    >>> import requests
    >>> from coreviz_frames.local_api import LocalAPI, serve_local_api
    >>> with serve_local_api(synthetic=1000, latency=0.01) as base_url:
    ...     requests.get(f"{base_url}/dataset/synthetic/tags").json()["tags"]["split"]
    ['even', 'odd']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coreviz_frames.local_api.options import (
        SAMPLE_COLLECTION_ID,
        SAMPLE_DATA_DIR,
        LocalAPIOptions,
    )
    from coreviz_frames.local_api.process import LocalAPIProcess
    from coreviz_frames.local_api.server import LocalAPI, serve_forever, serve_local_api
    from coreviz_frames.local_api.stats import ServerStats, StatsSnapshot

# Imported on first use, so that ``coreviz_frames.local_api.options`` (read by the CLI)
# does not load the servers, the collections and PIL.
_LAZY = {
    "SAMPLE_COLLECTION_ID": "options",
    "SAMPLE_DATA_DIR": "options",
    "LocalAPIOptions": "options",
    "LocalAPIProcess": "process",
    "LocalAPI": "server",
    "serve_forever": "server",
    "serve_local_api": "server",
    "ServerStats": "stats",
    "StatsSnapshot": "stats",
}

__all__ = [
    "SAMPLE_COLLECTION_ID",
    "SAMPLE_DATA_DIR",
    "LocalAPI",
    "LocalAPIOptions",
    "LocalAPIProcess",
    "ServerStats",
    "StatsSnapshot",
    "main",
    "serve_forever",
    "serve_local_api",
]


def main(argv: list[str] | None = None) -> int:
    """The ``python -m coreviz_frames.local_api`` entry point (also ``coreviz-frames serve``)."""
    from coreviz_frames.local_api.__main__ import main as _main

    return _main(argv)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""``python -m coreviz_frames.local_api``: serve the local API until killed.

Prints one JSON line ``{"base_url": ..., "blob_url": ..., "collection_id": ...}`` first.
The options are the fields of :class:`~.options.LocalAPIOptions`.

Example:
    $ python -m coreviz_frames.local_api --synthetic 10000 --latency 0.02
    {"base_url": "http://127.0.0.1:40123/api", "blob_url": "http://127.0.0.1:40124", ...}
"""

from __future__ import annotations

import argparse
import sys

from coreviz_frames.local_api.options import LocalAPIOptions, add_arguments
from coreviz_frames.local_api.server import serve_forever


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (one per field of :class:`LocalAPIOptions`)."""
    parser = argparse.ArgumentParser(
        prog="python -m coreviz_frames.local_api",
        description="Serve a CoreViz-compatible read API on 127.0.0.1.",
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted."""
    options = LocalAPIOptions.from_namespace(build_parser().parse_args(argv))
    serve_forever(options=options.with_environment())
    return 0


if __name__ == "__main__":
    sys.exit(main())

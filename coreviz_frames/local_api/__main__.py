"""``python -m coreviz_frames.local_api``: serve the local API until killed.

Prints one JSON line ``{"base_url": ..., "blob_url": ..., "collection_id": ...}`` first.

Example:
    $ python -m coreviz_frames.local_api --synthetic 10000 --latency 0.02
    {"base_url": "http://127.0.0.1:40123/api", "blob_url": "http://127.0.0.1:40124", ...}
"""

from __future__ import annotations

import argparse
import os
import sys

from .process import API_KEY_ENV
from .server import BROWSE_QUIRKS, SAMPLE_DATA_DIR, serve_forever


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (the same as :class:`LocalAPI`'s)."""
    parser = argparse.ArgumentParser(
        prog="python -m coreviz_frames.local_api",
        description="Serve a CoreViz-compatible read API on 127.0.0.1.",
    )
    parser.add_argument("--data-dir", default=str(SAMPLE_DATA_DIR), help="collection directory")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=None,
        metavar="N",
        help="serve N synthetic media instead of --data-dir",
    )
    parser.add_argument(
        "--api-key", default=None, help=f"require this key (default: ${API_KEY_ENV}, else no check)"
    )
    parser.add_argument(
        "--forbidden-id",
        action="append",
        default=[],
        metavar="ID",
        help="a media or collection id answering 403 (repeatable)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--light", action="store_true", help="browse items without captions and objects"
    )
    parser.add_argument("--browse-quirk", choices=BROWSE_QUIRKS, default=None)
    parser.add_argument(
        "--warm",
        action="store_true",
        help="serialise every record before serving (the URL line is printed after)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="API port (0: any free port)")
    parser.add_argument("--blob-port", type=int, default=0, help="blob port (0: any free port)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted."""
    args = build_parser().parse_args(argv)
    serve_forever(
        data_dir=args.data_dir,
        synthetic=args.synthetic,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        forbidden_ids=args.forbidden_id,
        latency=args.latency,
        light=args.light,
        browse_quirk=args.browse_quirk,
        host=args.host,
        port=args.port,
        blob_port=args.blob_port,
        warm=args.warm,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``coreviz-frames`` command line: a thin layer over the library.

Every command has help with an example (``coreviz-frames COMMAND --help``).

Example:
    $ coreviz-frames demo
    $ coreviz-frames export --collection COLLECTION_ID --out export/
    $ coreviz-frames info export/
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._version import __version__
from .errors import CorevizError

__all__ = ["main"]

DEMO_API_KEY = "local-demo-key"


class _Group(click.Group):
    """Turns every library error into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CorevizError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)


@click.group(
    cls=_Group,
    epilog="Example:\n\n\b\n  coreviz-frames demo\n  coreviz-frames export --collection ID --out export/",
)
@click.version_option(__version__, prog_name="coreviz-frames")
def main() -> None:
    """CoreViz collections into typed DataFrames, Parquet datasets and training crops.

    Credentials come from COREVIZ_API_KEY (or --api-key), the API from
    COREVIZ_BASE_URL (default https://lab.coreviz.io/api).
    """


def _client(api_key: str | None, base_url: str | None, workers: int):
    from .client import Client

    return Client(api_key=api_key, base_url=base_url, max_workers=workers)


@main.command(
    epilog="Example:\n\n\b\n  coreviz-frames serve --port 8765\n"
    "  coreviz-frames serve --synthetic 100000 --latency 0.02"
)
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Collection directory to serve (default: the embedded sample).")
@click.option("--synthetic", type=int, default=None, help="Serve N synthetic media instead.")
@click.option("--api-key", default=None, help="Require this API key (401 otherwise).")
@click.option("--latency", type=float, default=0.0, help="Seconds of latency per request.")
@click.option("--light", is_flag=True, help="Browse items without captions and objects.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="API port (0: any free port).")
@click.option("--blob-port", type=int, default=0, help="Blob server port (0: any free port).")
def serve(data_dir, synthetic, api_key, latency, light, host, port, blob_port) -> None:
    """Serve a CoreViz-compatible read API on this machine, for tests and demos.

    Prints one JSON line with the base URL, the blob URL and the collection id,
    then serves until interrupted.
    """
    from .local_api.__main__ import main as serve_main

    argv = ["--host", host, "--port", str(port), "--blob-port", str(blob_port),
            "--latency", str(latency)]
    if data_dir:
        argv += ["--data-dir", data_dir]
    if synthetic is not None:
        argv += ["--synthetic", str(synthetic)]
    if api_key:
        argv += ["--api-key", api_key]
    if light:
        argv.append("--light")
    serve_main(argv)

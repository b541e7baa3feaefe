"""The ``coreviz-frames`` command line: a thin layer over the library.

This module holds the group and registers the commands; each command group lives in
its own module (:mod:`.export`, :mod:`.sync`, :mod:`.info`, :mod:`.datasets`,
:mod:`.catalogue`, :mod:`.demo`, :mod:`.serve`), the option stacks they share in
:mod:`.options`. Every command has help with an example (``coreviz-frames COMMAND --help``).

Example:
    >>> from click.testing import CliRunner
    >>> sorted(main.commands)[:4]
    ['collections', 'crops', 'dataset', 'demo']
    >>> CliRunner().invoke(main, ["--version"]).output.startswith("coreviz-frames, version")
    True
"""

from __future__ import annotations

import warnings

import click

from coreviz_frames._version import __version__
from coreviz_frames.cli.catalogue import collections, search
from coreviz_frames.cli.console import echo_error, warning_line
from coreviz_frames.cli.datasets import crops, dataset
from coreviz_frames.cli.demo import demo
from coreviz_frames.cli.export import export
from coreviz_frames.cli.info import info, repair
from coreviz_frames.cli.serve import serve
from coreviz_frames.cli.sync import sync_command
from coreviz_frames.errors import CorevizError

__all__ = ["main"]


class _Group(click.Group):
    """Turns every library error into a one-line message and exit status 1; warnings are
    printed as ``warning:`` lines, escaped like everything else the CLI prints."""

    def invoke(self, ctx: click.Context):
        formatwarning, warnings.formatwarning = warnings.formatwarning, warning_line
        try:
            return super().invoke(ctx)
        except (CorevizError, OSError) as exc:  # OSError: a file that cannot be read/written
            echo_error(exc)
            ctx.exit(1)
        finally:
            warnings.formatwarning = formatwarning


@click.group(
    cls=_Group,
    epilog="Example:\n\n\b\n  coreviz-frames demo\n"
    "  coreviz-frames export --collection ID --out export/",
)
@click.version_option(__version__, prog_name="coreviz-frames")
def main() -> None:
    """CoreViz collections into typed DataFrames, Parquet datasets and training crops.

    Credentials come from COREVIZ_API_KEY (or --api-key), the API from
    COREVIZ_BASE_URL (default https://lab.coreviz.io/api).
    """


for _command in (
    collections,
    crops,
    dataset,
    demo,
    export,
    info,
    repair,
    search,
    serve,
    sync_command,
):
    main.add_command(_command)

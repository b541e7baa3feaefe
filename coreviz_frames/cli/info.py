"""``coreviz-frames info`` and ``repair``: look at an export, and clean up after a crash.

Example:
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(info, ["no-such-export/"])
    >>> result.exit_code, result.output.splitlines()[-1]
    (2, "Error: Invalid value for 'EXPORT_DIR': Directory 'no-such-export/' does not exist.")
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from coreviz_frames.cli.console import echo
from coreviz_frames.cli.options import retention_option

__all__ = ["info", "repair"]


@click.command(epilog="Example:\n\n\b\n  coreviz-frames info export/")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
def info(export_dir) -> None:
    """Print an export's manifest (source, schema version, failures), row counts and the
    history of its syncs."""
    from coreviz_frames.exports.manifest import read_manifest, sync_history_lines
    from coreviz_frames.exports.reader import describe_export

    echo(describe_export(export_dir))
    for line in sync_history_lines(read_manifest(export_dir)):
        echo(line)


@click.command(epilog="Example:\n\n\b\n  coreviz-frames repair export/")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@retention_option
def repair(export_dir, retention_hours) -> None:
    """Remove what an interrupted export left: uncommitted parts and temporary files.

    Third-party readers (DuckDB, Polars, Spark globbing *.parquet) would read those parts.
    A manifest a killed run left "running" becomes "failed"; --resume continues it. A
    Delta export gets its tables restored to the versions its manifest pins, and vacuumed.
    """
    from coreviz_frames.exports.deltastore import open_store

    store = open_store(
        export_dir, None, default="parquet", retention=timedelta(hours=retention_hours)
    )
    removed = store.repair()
    for path in removed:
        echo(f"removed {Path(path).relative_to(export_dir).as_posix()}")
    echo(f"{len(removed)} leftover file(s) removed from {export_dir}")

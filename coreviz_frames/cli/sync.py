"""``coreviz-frames sync``: bring an export up to date with its collection.

Adds new media, replaces changed ones, deletes removed ones, in one atomic snapshot
(:func:`coreviz_frames.exports.syncing.sync`); exits 1 when the listing is not proven
whole, deletes were held back, or media failed.

Example:
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(sync_command, ["--out", "export/"])
    >>> result.exit_code, result.output.splitlines()[-1]
    (2, "Error: Missing option '--collection'.")
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import timedelta

import click

from coreviz_frames.cli.console import again_command, echo
from coreviz_frames.cli.options import (
    api_options,
    browse_filter_options,
    check_path_selects,
    filters_from,
    make_client,
    retention_option,
)

__all__ = ["sync_command"]


@contextlib.contextmanager
def _interrupt_note(out_dir: str) -> Iterator[None]:
    """Ctrl-C: one line saying the export is as the last sync left it (a sync commits all at
    once) and the command to run again; exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        echo(
            f"interrupted: {out_dir} is unchanged, as its last sync left it (a sync commits "
            f"all at once); run it again: {again_command(resume=False)}",
            err=True,
        )
        sys.exit(130)


@click.command(
    "sync",
    epilog="Examples:\n\n\b\n"
    "  coreviz-frames sync --collection ID --out export/\n"
    "  coreviz-frames sync --collection ID --type image --out images/ --allow-mass-delete",
)
@click.option("--collection", "collection_id", required=True, help="Collection to sync.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Export directory (created by the first sync).",
)
@browse_filter_options
@click.option(
    "--hydrate",
    type=click.Choice(["auto", "always"]),
    default="auto",
    show_default=True,
    help="'always': Get Media for every media (sees changes a light listing hides).",
)
@click.option("--keep-deleted", is_flag=True, help="Keep media no longer listed.")
@click.option(
    "--allow-mass-delete",
    is_flag=True,
    help="Delete even when the listing is empty or would delete over half the export.",
)
@click.option("--page-size", type=int, default=100, show_default=True)
@click.option(  # default: DEFAULT_BATCH_SIZE (the CLI does not import the exports to start)
    "--batch-size", type=int, default=2000, show_default=True, help="Media per part."
)
@click.option("--partition-by", default=None, help="Hive partitioning of a new export.")
@click.option(
    "--format",
    "table_format",
    type=click.Choice(["parquet", "delta"]),
    default=None,
    help="Format of a new export (default: delta); an existing one keeps its own.",
)
@retention_option
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some media failed.")
@api_options
def sync_command(collection_id, out_dir, hydrate, keep_deleted, allow_mass_delete, **options):
    """Bring an export up to date: add new media, replace changed ones, delete removed ones.

    The first sync into an empty directory is a full export. Each sync that changes
    something makes a new snapshot atomically (a killed sync leaves the old one); one
    with nothing to change writes no file. Exits 1 when the listing stopped early or does
    not prove it was whole (it ended without hasMore: false, fell short of its announced
    total, or listed items without a valid id: nothing is deleted then), when deletes were
    held back (empty listing, or over half the export: --allow-mass-delete), or when some
    media failed (their previous rows are kept), unless --allow-failures.
    """
    from coreviz_frames.exports.syncing import sync

    filters = filters_from(options, collection_id)
    check_path_selects(options, collection_id, filters)
    client = make_client(
        options["api_key"], options["base_url"], options["workers"], options["retries"]
    )
    with client, _interrupt_note(out_dir):
        report = sync(
            client,
            collection_id,
            out_dir,
            filters=filters,
            hydrate=True if hydrate == "always" else "auto",
            delete_missing=not keep_deleted,
            allow_mass_delete=allow_mass_delete,
            batch_size=options["batch_size"],
            page_size=options["page_size"],
            partition_by=options["partition_by"],
            progress=options["progress"],
            table_format=options["table_format"],
            retention=timedelta(hours=options["retention_hours"]),
        )
    echo(str(report))
    if not report.complete or report.unproven or report.deletes_skipped:
        sys.exit(1)
    if report.failed and not options["allow_failures"]:
        echo(
            f"{len(report.failed)} media failed; see the manifest in {out_dir}",
            fg="yellow",
            err=True,
        )
        sys.exit(1)

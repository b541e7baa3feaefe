"""``coreviz-frames export``: a collection, or a list of media ids, into a Parquet export.

Here, in this process (streamed, resumable), or on a Dask cluster with ``--dask``
(:mod:`coreviz_frames.cli.dask_export`). Exits 1 when a record failed (unless
``--allow-failures``) or the walk stopped early.

Example:
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(export, ["--out", "export/"])
    >>> result.exit_code, result.output.splitlines()[-1]
    (2, 'Error: give exactly one of --collection or --ids')
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from coreviz_frames._util.idsfile import read_ids_file
from coreviz_frames.api.filters import walk_source
from coreviz_frames.cli.console import again_command, echo, echo_error
from coreviz_frames.cli.messages import cli_text
from coreviz_frames.cli.options import (
    api_options,
    browse_filter_options,
    check_path_selects,
    filters_from,
    make_client,
)
from coreviz_frames.errors import ConfigError, CorevizError, ExportError

__all__ = ["export"]


def _committed(out_dir: str) -> tuple[int, int]:
    """``(media, parts)`` committed to the export in ``out_dir`` ((0, 0) when none)."""
    from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest

    if not (Path(out_dir) / MANIFEST_NAME).is_file():
        return 0, 0
    try:
        manifest = read_manifest(out_dir)
    except (CorevizError, OSError):
        return 0, 0
    media = manifest.get("media_exported")
    return (media if isinstance(media, int) else 0), len(manifest.get("parts") or [])


def interrupted(out_dir: str) -> NoReturn:
    """Ctrl-C: one line saying what was committed and how to continue; exit 130."""
    media, parts = _committed(out_dir)
    if media or parts:
        echo(
            f"interrupted: {media:,} media committed to {out_dir} in {parts} part"
            f"{'' if parts == 1 else 's'} (kept); continue with: {again_command(resume=True)}",
            err=True,
        )
    else:
        echo(
            f"interrupted: nothing was committed to {out_dir}; start again with: "
            f"{again_command(resume=False)}",
            err=True,
        )
    sys.exit(130)


@click.command(
    epilog="Examples:\n\n\b\n"
    "  coreviz-frames export --collection 5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c --out export/\n"
    "  coreviz-frames export --collection ID --type image --tag color=red --out red/\n"
    "  coreviz-frames export --collection ID --out export/ --processes 4\n"
    "  coreviz-frames export --ids ids.txt --out export/ --resume\n"
    "  cat ids.txt | coreviz-frames export --ids - --out export/"
)
@click.option("--collection", "collection_id", default=None, help="Collection to export.")
@click.option(
    "--ids",
    "ids_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="File of media ids, one a line ('-': stdin).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Export directory (one folder per grain).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted export; no duplicates.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export in --out.")
@browse_filter_options
@click.option("--page-size", type=int, default=100, show_default=True)
@click.option(
    "--batch-size",
    type=int,
    default=2000,  # DEFAULT_BATCH_SIZE (the CLI does not import the exports to start)
    show_default=True,
    help="Media per Parquet part (bounds memory).",
)
@click.option("--partition-by", default=None, help="Hive-partition every grain on this column.")
@click.option(
    "--format",
    "table_format",
    type=click.Choice(["parquet", "delta"]),
    default=None,
    help="Parquet parts, or a Delta Lake table per grain (default: parquet for a new "
    "export, the existing format on --resume).",
)
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some records failed.")
@api_options
@click.option(
    "--dask",
    "dask_address",
    default=None,
    help="Run on a Dask cluster: a scheduler address, or 'local'.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Export the collection's offset ranges in N local worker processes (1: here; one part "
    "per range of --batch-size media; resumable).",
)
def export(collection_id, ids_file, out_dir, resume, overwrite, dask_address, **options) -> None:
    """Export a collection (or a list of media ids) to a Parquet dataset.

    Streams batch by batch (memory bounded by --batch-size), writes every file
    atomically, and records what was exported in a manifest, so --resume picks
    up after a crash without duplicating a row. Exits 1 when any record failed,
    unless --allow-failures, and when the walk over the collection stopped early
    (an incomplete export: --resume continues it). One export at a time per
    directory: a second one exits 1 naming the process that holds it.
    """
    if (collection_id is None) == (ids_file is None):
        raise click.UsageError("give exactly one of --collection or --ids")
    filters = filters_from(options, collection_id)
    check_path_selects(options, collection_id, filters)
    _check_processes(options["processes"], dask_address, ids_file)
    if dask_address is not None:
        from coreviz_frames.cli.dask_export import export_on_dask

        report = export_on_dask(
            dask_address,
            collection_id=collection_id,
            ids_file=ids_file,
            out_dir=out_dir,
            overwrite=overwrite,
            resume=resume,
            page_size=options["page_size"],
            api_key=options["api_key"],
            base_url=options["base_url"],
            partition_by=options["partition_by"],
            filters=filters,
            table_format=options["table_format"],
        )
    else:
        report = _export_here(
            collection_id, ids_file, out_dir, filters, resume=resume, overwrite=overwrite, **options
        )
    _finish_export(report, out_dir, allow_failures=options["allow_failures"])


def _check_processes(processes: int | None, dask_address: str | None, ids_file: str | None) -> None:
    """--processes splits a collection here: not with --dask, nor for --ids."""
    if processes is not None and dask_address is not None:
        raise click.UsageError("give --processes or --dask, not both (Dask has its own workers)")
    if processes is not None and processes > 1 and ids_file is not None:
        raise click.UsageError("--processes splits a --collection; an --ids export runs here")


def _export_here(collection_id, ids_file, out_dir, filters, *, resume, overwrite, **options):
    """The export in this process; a fetch error ends it with one line and a --resume hint."""
    from coreviz_frames.exports.writer import export_parquet

    client = make_client(
        options["api_key"], options["base_url"], options["workers"], options["retries"]
    )
    with client:
        # one bar, the fetch's: it knows the total (pagination or the id count)
        if collection_id is not None:
            records = client.browse(
                collection_id,
                filters=filters,
                page_size=options["page_size"],
                progress=options["progress"],
            )
            source = records.source
        else:
            ids = read_ids_file(ids_file)
            records = client.iter_media(ids, on_error="skip", progress=options["progress"])
            source = walk_source(client.base_url, None)
        try:
            return export_parquet(
                records,
                out_dir,
                batch_size=options["batch_size"],
                resume=resume,
                overwrite=overwrite,
                progress=False,
                partition_by=options["partition_by"],
                source=source,
                table_format=options["table_format"],
                processes=options["processes"],
            )
        except KeyboardInterrupt:
            interrupted(out_dir)
        except (ExportError, ConfigError):
            raise
        except CorevizError as exc:
            echo_error(exc)
            if _committed(out_dir)[1]:  # parts written
                echo(
                    f"The parts already written to {out_dir} are kept: re-run the same "
                    "command with --resume to continue where it stopped.",
                    err=True,
                )
            sys.exit(1)


def _finish_export(report, out_dir, *, allow_failures: bool) -> None:
    """Print the report; exit 1 for an incomplete walk, or failures unless allowed."""
    echo(cli_text(str(report)))
    if any(item.get("status") == 401 for item in report.failed):
        echo("check the API key (COREVIZ_API_KEY or --api-key)", err=True)
    if not report.complete:  # a walk cut short is never a success, even with --allow-failures
        echo(
            f"export incomplete: {report.incomplete_reason or 'the walk stopped early'}. "
            f"The parts written to {out_dir} are kept: re-run the same command with --resume "
            "to continue.",
            fg="yellow",
            err=True,
        )
        sys.exit(1)
    if not report.ok and not allow_failures:
        echo(
            f"{len(report.failed)} record(s) failed; see the manifest in {out_dir}",
            fg="yellow",
            err=True,
        )
        sys.exit(1)

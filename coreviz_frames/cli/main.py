"""The ``coreviz-frames`` command line: a thin layer over the library.

Every command has help with an example (``coreviz-frames COMMAND --help``).

Example:
    $ coreviz-frames demo
    $ coreviz-frames export --collection COLLECTION_ID --out export/
    $ coreviz-frames info export/
"""

from __future__ import annotations

import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from coreviz_frames._util.idsfile import read_ids_file
from coreviz_frames._util.terminal import printable
from coreviz_frames._version import __version__
from coreviz_frames.api.filters import BrowseFilters, folder_path_problem
from coreviz_frames.cli.messages import cli_text, error_lines, failure_lines
from coreviz_frames.errors import ConfigError, CorevizError, ExportError

__all__ = ["main"]

DEMO_API_KEY = "local-demo-key"


def echo(message: object = "", *, err: bool = False, **style: Any) -> None:
    """Print one message: every line the CLI prints goes through here, so text from a
    server (names, labels, reasons) cannot drive the terminal (see :mod:`.terminal`)."""
    click.secho(printable(message, newlines=True), err=err, **style)


def _warning_line(message: Warning | str, *_args: Any, **_kwargs: Any) -> str:
    """A library warning (a skipped media, a page limit) as one ``warning:`` line, its
    control characters shown, not run (it may quote a server's text)."""
    return printable(f"warning: {message}") + "\n"


class _Group(click.Group):
    """Turns every library error into a one-line message and exit status 1; warnings are
    printed as ``warning:`` lines, escaped like everything else the CLI prints."""

    def invoke(self, ctx: click.Context):
        formatwarning, warnings.formatwarning = warnings.formatwarning, _warning_line
        try:
            return super().invoke(ctx)
        except (CorevizError, OSError) as exc:  # OSError: a file that cannot be read/written
            _echo_error(exc)
            ctx.exit(1)
        finally:
            warnings.formatwarning = formatwarning


def _echo_error(exc: CorevizError | OSError) -> None:
    """``error: ...`` in red on stderr (CLI flags, not Python arguments), then the hint;
    the message is one line, whatever the server's text in it holds."""
    first, *rest = error_lines(exc)
    echo(printable(first), fg="red", err=True)
    for line in rest:
        echo(line, err=True)


def _parts_written(out_dir: str) -> int:
    """Committed parts of the export in ``out_dir`` (0 when there is none)."""
    from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest

    if not (Path(out_dir) / MANIFEST_NAME).is_file():
        return 0
    try:
        return len(read_manifest(out_dir).get("parts", []))
    except (CorevizError, OSError):
        return 0


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


def _client(api_key: str | None, base_url: str | None, workers: int, retries: int = 5):
    from coreviz_frames.api.client import Client

    return Client(api_key=api_key, base_url=base_url, max_workers=workers, retries=retries)


def _local_api_options(command):
    """One click option per field of the local API's ``LocalAPIOptions``."""
    from coreviz_frames.local_api.options import option_specs

    for spec in reversed(option_specs()):
        kwargs: dict = {"help": spec.help[:1].upper() + spec.help[1:] + "."}
        if spec.is_flag:
            kwargs["is_flag"] = True
        elif spec.multiple:
            kwargs.update(multiple=True, metavar=spec.metavar)
        elif spec.name == "data_dir":
            kwargs.update(type=click.Path(exists=True, file_okay=False), default=None)
        else:
            choice = click.Choice(spec.choices) if spec.choices else spec.type
            kwargs.update(type=choice, default=spec.default, metavar=spec.metavar)
            kwargs["show_default"] = spec.default not in (None, 0, 0.0)
        command = click.option(spec.flag, spec.name, **kwargs)(command)
    return command


@main.command(
    epilog="Example:\n\n\b\n  coreviz-frames serve --port 8765\n"
    "  coreviz-frames serve --synthetic 100000 --latency 0.02"
)
@_local_api_options
def serve(**options) -> None:
    """Serve a CoreViz-compatible read API on this machine, for tests and demos.

    Prints one JSON line with the base URL, the blob URL and the collection id,
    then serves until interrupted.
    """
    from coreviz_frames.local_api.options import LocalAPIOptions
    from coreviz_frames.local_api.server import serve_forever

    serve_forever(options=LocalAPIOptions.from_namespace(options).with_environment())


def _source(client, collection_id: str | None, filters: BrowseFilters | None) -> dict:
    return {
        "base_url": client.base_url,
        "collection_id": collection_id,
        "filters": filters.to_dict() if filters is not None else {},
    }


def _tag_filters(values: tuple[str, ...]) -> dict[str, list[str]] | None:
    if not values:
        return None
    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, tag = value.partition("=")
        if not sep or not key or not tag:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--tag")
        filters.setdefault(key, []).append(tag)
    return filters


def _stack(command, options):
    for option in reversed(options):
        command = option(command)
    return command


def _browse_filter_options(command):
    """The browse filter options of ``export`` and ``sync`` (--path ... --q), as one decorator;
    :func:`_filters_from` turns them into one :class:`BrowseFilters`."""
    return _stack(
        command,
        [
            click.option("--path", "folder_path", default=None, help="Only this ltree folder."),
            click.option(
                "--recursive/--no-recursive",
                default=True,
                show_default=True,
                help="Include sub-folders.",
            ),
            click.option(
                "--type",
                "media_type",
                default=None,
                type=click.Choice(["image", "video", "pdf"]),
                help="Only this media type.",
            ),
            click.option(
                "--tag",
                "tags",
                multiple=True,
                metavar="KEY=VALUE",
                help="Tag filter (repeatable; OR within a key, AND between keys).",
            ),
            click.option("--date-from", default=None, help="Created on or after YYYY-MM-DD."),
            click.option("--date-to", default=None, help="Created on or before YYYY-MM-DD."),
            click.option("--q", "query", default=None, help="Semantic search query."),
        ],
    )


def _filters_from(options: dict, collection_id: str | None = None) -> BrowseFilters:
    """Pop :func:`_browse_filter_options`' values from ``options``: one validated value.
    A --path that is no folder path of ``collection_id`` is a usage error (exit 2)."""
    path = options.pop("folder_path")
    # an empty --path (an unset shell variable) is refused, not taken as the whole collection
    problem = folder_path_problem(path, collection_id) if path is not None else None
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--path")
    return BrowseFilters(
        path=path,
        recursive=options.pop("recursive"),
        type=options.pop("media_type"),
        tag_filters=_tag_filters(options.pop("tags")),
        date_from=options.pop("date_from"),
        date_to=options.pop("date_to"),
        q=options.pop("query"),
    )


def _check_path_selects(options: dict, collection_id: str | None, filters: BrowseFilters) -> None:
    """Exit 2 when --path selects nothing in the collection (asks for one item of it)."""
    if filters.path is None:
        return
    if collection_id is None:
        raise click.BadParameter(
            "selects folders of a --collection; with --ids it would be ignored",
            param_hint="--path",
        )
    with _client(options["api_key"], options["base_url"], 1, options["retries"]) as client:
        pages = client.iter_pages(
            collection_id,
            path=filters.path,
            recursive=filters.recursive,
            page_size=1,
            max_items=1,
            progress=False,
        )
        first = next(iter(pages), None)
    if first is None or not first.get("media"):
        raise click.BadParameter(
            f"{filters.path!r} selects nothing in collection {collection_id!r}: no folder "
            "or media is there (a folder's path is the 'path' the API lists for it)",
            param_hint="--path",
        )


def _download_options(command):
    """How a command downloads images (--workers, --cache-dir), as one decorator."""
    return _stack(
        command,
        [
            click.option("--workers", type=int, default=8, show_default=True),
            click.option(
                "--cache-dir",
                default=None,
                envvar="COREVIZ_FRAMES_CACHE",
                show_envvar=True,
                help="Disk cache of downloaded images.",
            ),
        ],
    )


def _split_fractions(ctx, param, value: str | None) -> tuple[float, ...] | None:
    """``"0.8,0.1,0.1"`` or ``"0.8,0.2"`` as fractions (click callback of ``--split``)."""
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) not in (2, 3):
        raise click.BadParameter(
            f"expected two or three fractions like 0.8,0.1,0.1 or 0.8,0.2, got {value!r}"
        )
    return parts


def _names_list(ctx, param, value: str | None) -> list[str] | None:
    """``"a,b"`` as ``["a", "b"]`` (click callback of --labels, --object-types)."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter(f"expected names separated by commas, got {value!r}")
    return names


def _label_map(ctx, param, values: tuple[str, ...]) -> dict[str, str | None] | None:
    """``("kitty=cat", "puppy=dog")`` as a dict (click callback of --label-map)."""
    pairs: dict[str, str | None] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old:
            raise click.BadParameter(f"expected OLD=NEW, got {value!r}")
        pairs[old] = new or None
    return pairs or None


def _dataset_options(command):
    """What every dataset command shares: where, which split, which objects and frames."""
    return _stack(
        command,
        [
            click.option(
                "--overwrite", is_flag=True, help="Replace the dataset in --out (built beside)."
            ),
            click.option(
                "--split",
                "fractions",
                default=None,
                callback=_split_fractions,
                help="train,val[,test] fractions of media (default: no split).",
            ),
            click.option("--seed", type=int, default=0, show_default=True, help="Split seed."),
            click.option(
                "--splits",
                "splits_file",
                default=None,
                type=click.Path(exists=True),
                help="Reuse an assignment: a splits.csv or a dataset folder written before.",
            ),
            click.option("--labels", callback=_names_list, help="Keep only these classes (a,b)."),
            click.option(
                "--label-map", multiple=True, callback=_label_map, help="Rename: OLD=NEW (repeat)."
            ),
            click.option(
                "--include-unlabeled", is_flag=True, help="Keep unlabeled objects (_unlabeled)."
            ),
            click.option("--min-size", type=float, default=None, help="Smallest box side (px)."),
            click.option("--object-types", callback=_names_list, help="Keep these types (a,b)."),
            click.option(
                "--frame-stride", type=int, default=1, help="Every n-th frame of a media."
            ),
            click.option(
                "--max-frames-per-media", type=int, default=None, help="At most n frames."
            ),
            click.option("--no-empty", is_flag=True, help="Leave out frames without objects."),
        ],
    )


def _selection(options: dict[str, Any]) -> dict[str, Any]:
    """Pop the shared dataset options of a command: ``splits``, ``overwrite``, ``select``."""
    from coreviz_frames.training.selection import DatasetOptions

    fractions, splits_file = options.pop("fractions"), options.pop("splits_file")
    if fractions is not None and splits_file is not None:
        raise click.UsageError("give --split or --splits, not both")
    select = DatasetOptions(
        labels=options.pop("labels"),
        label_map=options.pop("label_map"),
        include_unlabeled=options.pop("include_unlabeled"),
        min_size=options.pop("min_size"),
        object_types=options.pop("object_types"),
        frame_stride=options.pop("frame_stride"),
        max_frames_per_media=options.pop("max_frames_per_media"),
        include_empty=not options.pop("no_empty"),
    )
    return {
        "splits": splits_file if splits_file is not None else fractions,
        "seed": options.pop("seed"),
        "overwrite": options.pop("overwrite"),
        "select": select,
    }


def _api_options(command):
    """How a command reaches the API (--workers ... --progress), as one decorator."""
    return _stack(
        command,
        [
            click.option(
                "--workers", type=int, default=8, show_default=True, help="Concurrent requests."
            ),
            click.option(
                "--retries",
                type=click.IntRange(min=0),
                default=5,
                show_default=True,
                help="Retries per request on connection errors, 429 and 5xx.",
            ),
            click.option(
                "--api-key",
                envvar="COREVIZ_API_KEY",
                default=None,
                show_envvar=True,
                help="API key.",
            ),
            click.option(
                "--base-url",
                envvar="COREVIZ_BASE_URL",
                default=None,
                show_envvar=True,
                help="API base URL.",
            ),
            click.option("--progress/--no-progress", default=None, help="Show a progress bar."),
        ],
    )


@main.command(
    epilog="Examples:\n\n\b\n"
    "  coreviz-frames export --collection 5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c --out export/\n"
    "  coreviz-frames export --collection ID --type image --tag color=red --out red/\n"
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
@_browse_filter_options
@click.option("--page-size", type=int, default=100, show_default=True)
@click.option(
    "--batch-size",
    type=int,
    default=1000,
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
@_api_options
@click.option(
    "--dask",
    "dask_address",
    default=None,
    help="Run on a Dask cluster: a scheduler address, or 'local'.",
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
    filters = _filters_from(options, collection_id)
    _check_path_selects(options, collection_id, filters)
    if dask_address is not None:
        from coreviz_frames.dask import export_collection_cli

        report = export_collection_cli(
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


def _export_here(collection_id, ids_file, out_dir, filters, *, resume, overwrite, **options):
    """The export in this process; a fetch error ends it with one line and a --resume hint."""
    from coreviz_frames.exports.reader import export_parquet

    client = _client(
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
            source = _source(client, collection_id, filters)
        else:
            ids = read_ids_file(ids_file)
            records = client.iter_media(ids, on_error="skip", progress=options["progress"])
            source = _source(client, None, None)
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
            )
        except (ExportError, ConfigError):
            raise
        except CorevizError as exc:
            _echo_error(exc)
            if _parts_written(out_dir):
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


@main.command(epilog="Example:\n\n\b\n  coreviz-frames info export/")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
def info(export_dir) -> None:
    """Print an export's manifest (source, schema version, failures), row counts and the
    history of its syncs."""
    from coreviz_frames.exports.manifest import read_manifest, sync_history_lines
    from coreviz_frames.exports.reader import describe_export

    echo(describe_export(export_dir))
    for line in sync_history_lines(read_manifest(export_dir)):
        echo(line)


#: ``coreviz_frames.exports.delta.DEFAULT_RETENTION`` in hours (kept here: the CLI imports delta-rs
#: only when a command needs it).
RETENTION_HOURS = 168.0


def _retention_option(command):
    return click.option(
        "--retention-hours",
        type=click.FloatRange(min=0),
        default=RETENTION_HOURS,
        show_default=True,
        help="Delta: files a commit replaced are vacuumed this long after (readers of "
        "older versions keep them until then).",
    )(command)


@main.command(epilog="Example:\n\n\b\n  coreviz-frames repair export/")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@_retention_option
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


@main.command(
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
@_browse_filter_options
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
@click.option("--batch-size", type=int, default=1000, show_default=True, help="Media per part.")
@click.option("--partition-by", default=None, help="Hive partitioning of a new export.")
@click.option(
    "--format",
    "table_format",
    type=click.Choice(["parquet", "delta"]),
    default=None,
    help="Format of a new export (default: delta); an existing one keeps its own.",
)
@_retention_option
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some media failed.")
@_api_options
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

    filters = _filters_from(options, collection_id)
    _check_path_selects(options, collection_id, filters)
    client = _client(
        options["api_key"], options["base_url"], options["workers"], options["retries"]
    )
    with client:
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


@main.command(
    epilog="Examples:\n\n\b\n  coreviz-frames crops export/ --out crops/\n"
    "  coreviz-frames crops export/ --out crops/ --square --pad 0.1 --max-size 224"
)
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Where to write <label>/<object_id>.jpg and manifest.parquet.",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "blob", "frame"]),
    default="auto",
    show_default=True,
    help="Crop blob, box cut from the frame, or blob else frame.",
)
@click.option(
    "--pad",
    type=float,
    default=0.0,
    show_default=True,
    help="Padding around the box, as a fraction of its size.",
)
@click.option("--square", is_flag=True, help="Grow boxes to squares.")
@click.option("--max-size", type=int, default=None, help="Longest side of a crop, in pixels.")
@_dataset_options
@_download_options
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some crops failed.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar.")
def crops(export_dir, out_dir, source, pad, square, max_size, **options) -> None:
    """Write the object crops of a Parquet export as an ImageFolder (one folder per label).

    Every split has every class folder (classes.txt lists them); objects without a
    label are left out unless --include-unlabeled; --split assigns media by a keyed hash
    of their id and --seed (splits.csv records it, --splits reuses it).
    """
    from coreviz_frames.images.options import CropOptions
    from coreviz_frames.training.crop_dataset import export_crops_from_parquet

    shared = _selection(options)
    allow_failures = options.pop("allow_failures")
    manifest = export_crops_from_parquet(
        export_dir,
        out_dir,
        crop=CropOptions(source=source, pad=pad, square=square, max_size=max_size),
        **shared,
        **options,
    )
    written = int((manifest["status"] == "written").sum())
    skipped = manifest[manifest["status"] == "skipped"]
    failed = manifest[manifest["status"] == "failed"]
    echo(f"{written} crops written to {out_dir} ({len(failed)} failed, {len(skipped)} left out)")
    pairs = zip(failed["object_id"].tolist(), failed["reason"].tolist(), strict=True)
    for line in failure_lines(pairs, listed_in=str(Path(out_dir) / "manifest.parquet")):
        echo(line, err=True)
    if len(failed) and not allow_failures:
        sys.exit(1)


@main.command(
    epilog="Examples:\n\n\b\n"
    "  coreviz-frames dataset coco export/ --out coco/ --split 0.8,0.1,0.1\n"
    "  coreviz-frames dataset yolo export/ --out yolo/ --task segment --seed 1\n"
    "  coreviz-frames dataset hf export/ --out hf/ --no-images\n"
    "  coreviz-frames dataset hf export/ --out captions/ --grain captions --split 0.8,0.1,0.1"
)
@click.argument("fmt", metavar="coco|yolo|hf", type=click.Choice(["coco", "yolo", "hf"]))
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@click.option(
    "--task",
    type=click.Choice(["detect", "segment"]),
    default="detect",
    show_default=True,
    help="YOLO labels: boxes or polygons.",
)
@click.option(
    "--grain",
    type=click.Choice(["frames", "objects", "captions"]),
    default="frames",
    show_default=True,
    help="HF rows: frames with their boxes, object crops, or captions with their frame.",
)
@click.option("--no-images", is_flag=True, help="Annotations only: download no image.")
@_dataset_options
@_download_options
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some frames failed.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar.")
def dataset(fmt, export_dir, out_dir, task, grain, no_images, **options) -> None:
    """Write the frames and objects of a Parquet export as a COCO, YOLO or HF dataset.

    A media's split is a keyed hash of its id and --seed (the same in every format,
    and unmoved when media are added or removed); splits.csv records it and --splits
    reuses it. A non-empty --out is refused unless --overwrite.
    """
    from coreviz_frames.exports.reader import read_parquet

    if task != "detect" and fmt != "yolo":
        raise click.UsageError("--task applies to yolo only")
    if grain != "frames" and fmt != "hf":
        raise click.UsageError("--grain applies to hf only")
    tables = read_parquet(export_dir)
    allow_failures = options.pop("allow_failures")
    common = {**_selection(options), **options}
    if fmt == "coco":
        from coreviz_frames.training.coco import export_coco

        report = export_coco(tables, out_dir, images="none" if no_images else "copy", **common)
    elif fmt == "yolo":
        from coreviz_frames.training.yolo import export_yolo

        report = export_yolo(
            tables, out_dir, images="none" if no_images else "copy", task=task, **common
        )
    else:
        from coreviz_frames.training.huggingface import export_hf

        report = export_hf(tables, out_dir, images=not no_images, grain=grain, **common)
    echo(report.summary())
    for frame_id, reason in list(report.failed_frames.items())[:10]:
        echo(printable(f"  failed {frame_id}: {reason}"))
    if report.failed_frames and not allow_failures:
        sys.exit(1)


_API_KEY_OPTION = click.option(
    "--api-key", envvar="COREVIZ_API_KEY", default=None, show_envvar=True, help="API key."
)
_BASE_URL_OPTION = click.option(
    "--base-url", envvar="COREVIZ_BASE_URL", default=None, show_envvar=True, help="API base URL."
)
_ORGANIZATION_OPTION = click.option(
    "--organization",
    "organization_id",
    default=None,
    help="Organization id (default: yours, from GET /api/me).",
)


@main.command(
    epilog='Examples:\n\n\b\n  coreviz-frames search "purple flowers"\n'
    "  coreviz-frames search rocket --limit 5 --out hits.parquet"
)
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_ORGANIZATION_OPTION
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the hits (ranks included) to this Parquet file.",
)
@_API_KEY_OPTION
@_BASE_URL_OPTION
def search(query, limit, organization_id, out_path, api_key, base_url) -> None:
    """Search every collection of an organization: one line per matching frame, best first,
    with its rank, text rank and object-embedding rank."""
    from coreviz_frames._util.fileio import atomic_writer

    with _client(api_key, base_url, 1) as client:
        results = client.search(query, organization_id=organization_id, limit=limit)
    echo(results.to_text())
    if out_path is not None:
        with atomic_writer(out_path) as fh:
            results.hits.to_parquet(fh, index=False)
        echo(f"Wrote {len(results.hits)} hit(s) to {out_path}")


@main.command(epilog="Examples:\n\n\b\n  coreviz-frames collections\n")
@_ORGANIZATION_OPTION
@_API_KEY_OPTION
@_BASE_URL_OPTION
def collections(organization_id, api_key, base_url) -> None:
    """List the collections of an organization: id, then name."""
    with _client(api_key, base_url, 1) as client:
        table = client.collections(organization_id)
    echo(f"{len(table)} collection(s):")
    for row in table.itertuples(index=False):
        echo(f"  {row.collection_id}  {'' if _isna(row.name) else printable(row.name)}")


def _isna(value: Any) -> bool:
    """True for None and pandas' missing values (pandas imported only when called)."""
    import pandas as pd

    return bool(pd.isna(value))


@main.command(epilog="Example:\n\n\b\n  coreviz-frames demo --out demo-output/")
@click.option(
    "--out",
    "out_dir",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the export and crops go.",
)
def demo(out_dir) -> None:
    """Run the whole path offline on the embedded sample collection.

    Starts the local CoreViz-compatible API, browses the collection through the
    real client (with an API key, pages of 5), flattens the records into the
    five tables, exports them to Parquet and writes a few object crops.
    """
    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.reader import export_parquet
    from coreviz_frames.local_api import LocalAPI
    from coreviz_frames.tables.media_tables import to_tables
    from coreviz_frames.training.crop_dataset import export_crops

    out = Path(out_dir)
    with (
        LocalAPI(api_key=DEMO_API_KEY) as api,
        Client(api_key=DEMO_API_KEY, base_url=api.base_url) as client,
    ):
        echo(f"Local CoreViz API on {api.base_url} (collection {api.collection_id})")
        records = list(client.browse(api.collection_id, page_size=5, progress=False))
        echo(f"Fetched {len(records)} media records in pages of 5:")
        for rec in records:
            frames = rec.get("frames") or []
            n_obj = sum(len(f.get("objects") or []) for f in frames)
            echo(
                f"  {rec['id'][:12]:<12}  {rec.get('type', '?'):<6} "
                f"{len(frames):>2} frame(s) {n_obj:>2} object(s)  {rec.get('name')}"
            )
        tables = to_tables(records)
        summary = tables.summary()
        echo("")
        echo("Flattened into five tables (to_tables):")
        echo(str(summary))
        echo("")
        names = ", ".join(client.collections().name.astype(str))
        echo(f"Collections of your organization (client.collections): {names}")
        echo("Search across the organization (client.search):")
        echo(client.search("rocket launch", limit=3).to_text())
        export_dir = out / "export"
        report = export_parquet(
            records,
            export_dir,
            overwrite=True,
            progress=False,
            source=_source(client, api.collection_id, None),
        )
        crops_dir = out / "crops"
        crop_manifest = export_crops(tables, crops_dir, progress=False, overwrite=True)
    written = int((crop_manifest["status"] == "written").sum())
    counts = ", ".join(f"{n} {grain}" for grain, n in summary.counts.items())
    echo("")
    echo("Done.")
    echo(f"  Rows:           {counts}")
    echo(f"  Parquet export: {export_dir}/  ({report.media_exported} media, one folder per grain)")
    echo(
        f"  Object crops:   {crops_dir}/  ({written} of {len(crop_manifest)} objects; "
        "manifest.parquet says why the others failed)"
    )
    for line in _next_steps(export_dir):
        echo(line)


def _command(name: str, module: str) -> str:
    """``name`` when it is on PATH and runs this Python's copy, else ``python -m module``."""
    import shutil

    found = shutil.which(name)
    here = Path(sys.executable).parent
    if found and Path(found).parent == here:
        return name
    return str(here / name) if (here / name).is_file() else f"{sys.executable} -m {module}"


def _notebook_extra_command() -> str:
    """How to install the ``notebook`` extra: from the checkout this runs from, else by name."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return f'pip install -e "{checkout}[notebook]"'
    return 'pip install "coreviz-frames[notebook]"'


def _notebook_dir() -> Path | None:
    """The installed notebooks (``coreviz_frames.notebooks`` in a wheel), else a checkout's."""
    from importlib import resources

    try:
        installed = Path(str(resources.files("coreviz_frames.notebooks")))
    except (ModuleNotFoundError, TypeError, ValueError):
        installed = None
    checkout = Path(__file__).resolve().parents[2] / "notebooks"
    for folder in (installed, checkout):
        if folder is not None and (folder / "01_explore_collection.ipynb").is_file():
            return folder
    return None


def _next_steps(export_dir: Path) -> list[str]:
    """The demo's "Next, try:" lines, with commands and files that exist for this install."""
    python = Path(sys.executable)
    lines = [
        "Next, try:",
        f"  {_command('coreviz-frames', 'coreviz_frames')} info {export_dir}",
        f'  {python} -c "import coreviz_frames as cvf; '
        f"print(cvf.read_parquet('{export_dir}').objects.label.value_counts())\"",
    ]
    notebooks = _notebook_dir()
    if notebooks is not None:
        lines.append(
            f"  {notebooks / '01_explore_collection.ipynb'}  (a guided tour in Jupyter: "
            f"copy it somewhere, then {_notebook_extra_command()} and open it)"
        )
    else:
        lines.append(
            "  the notebooks (a guided tour in Jupyter) are in the notebooks/ folder of the "
            "source distribution: pip download --no-deps --no-binary :all: coreviz-frames"
        )
    return lines

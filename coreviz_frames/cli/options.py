"""The option stacks commands share, and the values they turn into.

Each stack is one decorator (``@api_options`` adds --workers ... --progress); the
function beside it pops its values from a command's keyword arguments and returns one
validated value (:func:`filters_from` a :class:`~coreviz_frames.api.filters.BrowseFilters`,
:func:`selection` the shared dataset arguments). A bad value is a usage error (exit 2)
naming the flag.

Example:
    >>> import click
    >>> from click.testing import CliRunner
    >>> @click.command()
    ... @browse_filter_options
    ... def show(**options):
    ...     filters = filters_from(options)
    ...     print(filters.type, filters.recursive)
    >>> CliRunner().invoke(show, ["--type", "image", "--no-recursive"]).output
    'image False\\n'
    >>> CliRunner().invoke(show, ["--tag", "red"]).exit_code
    2

"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from coreviz_frames.api.filters import BrowseFilters, folder_path_problem
from coreviz_frames.cli.console import echo

__all__ = [
    "api_key_option",
    "api_options",
    "base_url_option",
    "browse_filter_options",
    "check_path_selects",
    "dataset_cli_options",
    "download_cli_options",
    "filters_from",
    "make_client",
    "organization_option",
    "progress_option",
    "retention_option",
    "selection",
]

#: ``coreviz_frames.exports.delta.DEFAULT_RETENTION`` in hours (kept here: the CLI imports
#: delta-rs only when a command needs it).
RETENTION_HOURS = 168.0

api_key_option = click.option(
    "--api-key", envvar="COREVIZ_API_KEY", default=None, show_envvar=True, help="API key."
)
base_url_option = click.option(
    "--base-url", envvar="COREVIZ_BASE_URL", default=None, show_envvar=True, help="API base URL."
)
organization_option = click.option(
    "--organization",
    "organization_id",
    default=None,
    help="Organization id (default: yours, from GET /api/me).",
)
progress_option = click.option(
    "--progress/--no-progress", default=None, help="Show a progress bar."
)


def make_client(api_key: str | None, base_url: str | None, workers: int, retries: int = 5):
    """The API client of a command (imported only when a command runs)."""
    from coreviz_frames.api.client import Client

    return Client(api_key=api_key, base_url=base_url, max_workers=workers, retries=retries)


def _stack(command: Callable, options: Sequence[Callable]) -> Callable:
    """``command`` decorated by ``options``, the first one outermost (first in --help)."""
    for option in reversed(options):
        command = option(command)
    return command


def api_options(command):
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
            api_key_option,
            base_url_option,
            progress_option,
        ],
    )


def download_cli_options(command):
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


def retention_option(command):
    """--retention-hours: how long a Delta commit keeps the files it replaced."""
    return click.option(
        "--retention-hours",
        type=click.FloatRange(min=0),
        default=RETENTION_HOURS,
        show_default=True,
        help="Delta: files a commit replaced are vacuumed this long after (readers of "
        "older versions keep them until then).",
    )(command)


# --------------------------------------------------------------------------- browse filters


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


def browse_filter_options(command):
    """The browse filter options of ``export`` and ``sync`` (--path ... --q), as one decorator;
    :func:`filters_from` turns them into one :class:`BrowseFilters`."""
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


def filters_from(options: dict, collection_id: str | None = None) -> BrowseFilters:
    """Pop :func:`browse_filter_options`' values from ``options``: one validated value.
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


def check_path_selects(options: dict, collection_id: str | None, filters: BrowseFilters) -> None:
    """Exit 2 when --path selects nothing in the collection (asks for one item of it)."""
    if filters.path is None:
        return
    if collection_id is None:
        raise click.BadParameter(
            "selects folders of a --collection; with --ids it would be ignored",
            param_hint="--path",
        )
    with make_client(options["api_key"], options["base_url"], 1, options["retries"]) as client:
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


# --------------------------------------------------------------------------- dataset options


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
    """``"a,b"`` as ``["a", "b"]`` (click callback of --classes, --object-types)."""
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


def dataset_cli_options(command):
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
            click.option(
                "--label",
                default="label",
                show_default=True,
                help="The objects column to train on, or tag:KEY (a tag's values).",
            ),
            click.option(
                "--classes", callback=_names_list, help="Keep only these classes, in this order."
            ),
            click.option("--labels", callback=_names_list, hidden=True),  # deprecated: --classes
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


def selection(options: dict[str, Any]) -> dict[str, Any]:
    """Pop the shared dataset options of a command: ``overwrite`` and ``options`` (the
    one ``DatasetOptions``: splits, seed, label, classes and the filters)."""
    from coreviz_frames.training.selection import DatasetOptions

    fractions, splits_file = options.pop("fractions"), options.pop("splits_file")
    if fractions is not None and splits_file is not None:
        raise click.UsageError("give --split or --splits, not both")
    classes, labels = options.pop("classes"), options.pop("labels")
    if labels is not None:
        if classes is not None:
            raise click.UsageError("give --classes alone (--labels is its older spelling)")
        echo("warning: --labels is deprecated: pass --classes (the same names)", err=True)
        classes = labels
    dataset = DatasetOptions(
        splits=splits_file if splits_file is not None else fractions,
        seed=options.pop("seed"),
        label=options.pop("label"),
        classes=classes,
        label_map=options.pop("label_map"),
        include_unlabeled=options.pop("include_unlabeled"),
        min_size=options.pop("min_size"),
        object_types=options.pop("object_types"),
        frame_stride=options.pop("frame_stride"),
        max_frames_per_media=options.pop("max_frames_per_media"),
        include_empty=not options.pop("no_empty"),
    )
    return {"overwrite": options.pop("overwrite"), "options": dataset}

"""``coreviz-frames search`` and ``collections``: find things before exporting them.

Example:
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(search, ["--help"]).output.splitlines()[0]
    'Usage: search [OPTIONS] QUERY'
"""

from __future__ import annotations

import click

from coreviz_frames._util.checks import is_missing
from coreviz_frames._util.terminal import printable
from coreviz_frames.cli.console import echo
from coreviz_frames.cli.options import (
    api_key_option,
    base_url_option,
    make_client,
    organization_option,
)

__all__ = ["collections", "search"]


@click.command(
    epilog='Examples:\n\n\b\n  coreviz-frames search "purple flowers"\n'
    "  coreviz-frames search rocket --limit 5 --out hits.parquet\n"
    "  coreviz-frames search rocket --collection ID"
)
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@organization_option
@click.option(
    "--collection",
    "collection_id",
    default=None,
    help="Search one collection (its scored browse): one line per media.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the hits (ranks included) to this Parquet file.",
)
@api_key_option
@base_url_option
def search(query, limit, organization_id, collection_id, out_path, api_key, base_url) -> None:
    """Search every collection of an organization: one line per matching frame, best first,
    with its rank, text rank and object-embedding rank. With --collection, search one
    collection instead: one line per media, ranked by its score."""
    from coreviz_frames._util.fileio import atomic_writer

    if collection_id is not None and organization_id is not None:
        raise click.UsageError("give --organization or --collection, not both")
    with make_client(api_key, base_url, 4) as client:
        results = client.search(
            query, organization_id=organization_id, collection_id=collection_id, limit=limit
        )
    echo(results.to_text())
    if out_path is not None:
        with atomic_writer(out_path) as fh:
            results.hits.to_parquet(fh, index=False)
        echo(f"Wrote {len(results.hits)} hit(s) to {out_path}")


@click.command(epilog="Examples:\n\n\b\n  coreviz-frames collections\n")
@organization_option
@api_key_option
@base_url_option
def collections(organization_id, api_key, base_url) -> None:
    """List the collections of an organization: id, then name."""
    with make_client(api_key, base_url, 1) as client:
        table = client.collections(organization_id)
    echo(f"{len(table)} collection(s):")
    for row in table.itertuples(index=False):
        echo(f"  {row.collection_id}  {'' if is_missing(row.name) else printable(row.name)}")

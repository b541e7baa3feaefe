"""``coreviz-frames demo``: the whole path, offline, on the embedded sample collection.

Starts the local API, browses it through the real client, flattens, exports to Parquet,
writes object crops, then prints what to try next with commands that exist here.

Example:
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(demo, ["--help"]).output.splitlines()[0]
    'Usage: demo [OPTIONS]'
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from coreviz_frames.api.filters import walk_source
from coreviz_frames.cli.console import echo

__all__ = ["demo"]

DEMO_API_KEY = "local-demo-key"


@click.command(epilog="Example:\n\n\b\n  coreviz-frames demo --out demo-output/")
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
    from coreviz_frames.exports.writer import export_parquet
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
            source=walk_source(client.base_url, api.collection_id),
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

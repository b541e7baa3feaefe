"""``coreviz-frames crops`` and ``dataset coco|yolo|hf``: training data from an export.

``crops`` writes object crops as an ImageFolder; ``dataset`` writes frames and their
objects as COCO, YOLO or a Hugging Face dataset. Both share the dataset options of
:func:`coreviz_frames.cli.options.dataset_cli_options` (splits, labels, frames).

Example:
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(dataset, ["coco", ".", "--out", "x/", "--task", "segment"])
    >>> result.exit_code, result.output.splitlines()[-1]
    (2, 'Error: --task applies to yolo only')
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from coreviz_frames._util.terminal import printable
from coreviz_frames.cli.console import echo
from coreviz_frames.cli.messages import failure_lines
from coreviz_frames.cli.options import (
    dataset_cli_options,
    download_cli_options,
    progress_option,
    selection,
)

__all__ = ["crops", "dataset"]


@click.command(
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
@dataset_cli_options
@download_cli_options
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some crops failed.")
@progress_option
def crops(export_dir, out_dir, source, pad, square, max_size, **options) -> None:
    """Write the object crops of a Parquet export as an ImageFolder (one folder per label).

    Every split has every class folder (classes.txt lists them); objects without a
    label are left out unless --include-unlabeled; --split assigns media by a keyed hash
    of their id and --seed (splits.csv records it, --splits reuses it).
    """
    from coreviz_frames.images.options import CropOptions
    from coreviz_frames.training.crop_dataset import export_crops_from_parquet

    shared = selection(options)
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
    for why, count in skipped["reason"].fillna("").value_counts().items():
        echo(printable(f"  left out: {count} ({why})"))
    pairs = zip(failed["object_id"].tolist(), failed["reason"].tolist(), strict=True)
    for line in failure_lines(pairs, listed_in=str(Path(out_dir) / "manifest.parquet")):
        echo(line, err=True)
    if len(failed) and not allow_failures:
        sys.exit(1)


@click.command(
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
@dataset_cli_options
@download_cli_options
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some frames failed.")
@progress_option
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
    common = {**selection(options), **options}
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

"""Hugging Face ``datasets``: :func:`to_hf_dataset` and :func:`export_hf`.

Optional (``pip install "coreviz-frames[hf]"``): ``datasets`` is imported only when one
of these functions runs, and its absence is a :class:`MissingDependencyError` with the
install hint.

- ``grain="frames"``: one row per frame, an ``image`` column (the ``Image`` feature,
  JPEG bytes embedded), ``objects`` holding ``bbox`` (COCO ``[x, y, w, h]`` in frame
  pixels), ``category`` (a ``ClassLabel``), ``area`` and ``object_id``, plus the frame,
  media and image ids, width and height.
- ``grain="objects"``: one crop per row, its ``label`` (a ``ClassLabel``), ``bbox`` and
  ids.
- ``grain="captions"``: one row per caption, its frame's image, ``text`` and the caption,
  frame and media ids (rows built in :mod:`coreviz_frames.training.hfrows`).

:func:`export_hf` streams Parquet shards ``data/<split>-NNNNN-of-NNNNN.parquet`` (image
bytes embedded, a row group per batch of rows) and writes a dataset card ``README.md``
whose ``configs:`` let ``datasets.load_dataset(out_dir)`` load it offline. Splits are
named as ``datasets`` expects (:func:`hf_split_names`): ``train`` without splits,
``validation`` for ``val``.

Example:
    >>> ds = to_hf_dataset(tables)                          # doctest: +SKIP
    >>> ds.features["objects"]["category"].feature.names[:2]  # doctest: +SKIP
    ['cat', 'clock']
    >>> report = export_hf(tables, "hf/", splits=(0.8, 0.1, 0.1))   # doctest: +SKIP
    >>> datasets.load_dataset("hf/")["train"][0]["image"]            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from coreviz_frames._util.checks import check_choice, check_int
from coreviz_frames._util.fileio import atomic_write_bytes, atomic_writer
from coreviz_frames._util.optional import import_optional
from coreviz_frames._util.progress import progress_bar
from coreviz_frames._util.textsafe import markdown_text, yaml_string
from coreviz_frames.errors import ConfigError, EmptySplitWarning, SkippedRecordWarning
from coreviz_frames.images.options import DownloadOptions
from coreviz_frames.training.datasetdir import check_dataset_folder, dataset_folder, make_dir
from coreviz_frames.training.frames import (
    DatasetOnError,
    DatasetPlan,
    DatasetReport,
    dataset_report,
    plan_dataset,
    write_assignment,
)
from coreviz_frames.training.hfrows import HF_GRAINS, RowRun, caption_rows, iter_batches
from coreviz_frames.training.selection import DatasetOptions, writer_options

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.training.selection import DatasetDownloadKwargs

__all__ = ["export_hf", "to_hf_dataset"]

Grain = Literal["frames", "objects", "captions"]
#: What ``datasets`` accepts as a split name (``datasets.splits``), matched whole.
_SPLIT_NAME = re.compile(r"\w+(\.\w+)*")
#: Rows whose images are made together (concurrently) and written as one row group.
_BATCH = 64


def _datasets() -> Any:
    return import_optional("datasets", extra="hf", purpose="Hugging Face output")


def hf_split_names(names: Sequence[str], *, given: bool = True) -> dict[str, str]:
    """``{split: Hugging Face split}``, refused unless ``datasets`` loads every name.

    ``val`` is written as ``validation`` (the name ``datasets`` and the Hub use); without
    splits (``given=False``) the one split is ``train``. A name must match ``\\w+(\\.\\w+)*``
    and not be ``all`` (a keyword of ``datasets``); two names may not differ only in case
    or become the same (``val`` beside ``validation``). Checked before anything is written.

    Example:
        >>> hf_split_names(["train", "val", "test"])
        {'train': 'train', 'val': 'validation', 'test': 'test'}
        >>> hf_split_names(["all"], given=False)
        {'all': 'train'}
    """
    if not given:
        return {name: "train" for name in names}
    out: dict[str, str] = {}
    for name in names:
        hf = "validation" if name == "val" else name
        if not _SPLIT_NAME.fullmatch(hf) or hf.lower() == "all":
            raise ConfigError(
                f"split name {name!r} cannot be a Hugging Face split: use letters, digits and "
                "_ (dots between), and not 'all'"
            )
        out[name] = hf
    lowered = [hf.lower() for hf in out.values()]
    if len(set(lowered)) != len(lowered):
        raise ConfigError(f"split names {list(names)} give the same Hugging Face split twice")
    return out


@dataclass
class _Build:
    """One HF build: the plan, the grain, its features, split names and run options."""

    plan: DatasetPlan
    grain: Grain
    images: bool
    run: RowRun
    features: Any
    names: dict[str, str]
    failed: dict[str, str] = field(default_factory=dict)

    def units(self, split: str) -> list[Any]:
        return HF_GRAINS[self.grain].units(self.plan, split, self.run)

    def batches(self, units: Sequence[Any]) -> Iterator[list[dict[str, Any]]]:
        return iter_batches(
            units, HF_GRAINS[self.grain], self.images, self.run, _BATCH, self.failed
        )


def _prepare(tables: Any, grain: str, images: bool, options: DatasetOptions, run: RowRun) -> _Build:
    """Check the options, plan ``tables`` and name the splits: nothing loaded or written."""
    check_choice("grain", grain, HF_GRAINS)
    ds = _datasets()
    if grain == "captions":
        run = replace(run, captions=caption_rows(tables))
        options = replace(options, include_empty=True)  # a frame's captions need no box
    plan = plan_dataset(tables, options)
    names = hf_split_names(plan.splits, given=options.splits is not None)
    features = HF_GRAINS[grain].features(ds, plan.categories, bool(images))
    return _Build(plan, grain, bool(images), run, features, names)  # type: ignore[arg-type]


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide datasets' own bars ("Creating parquet..."): ours is the one progress bar."""
    ds = _datasets()
    if ds.are_progress_bars_disabled():
        yield
        return
    ds.disable_progress_bars()
    try:
        yield
    finally:
        ds.enable_progress_bars()


def _warn_failed(failed: dict[str, str]) -> None:
    if failed:
        warnings.warn(
            f"{len(failed)} images could not be loaded and were left out: "
            f"{next(iter(failed.values()))}",
            SkippedRecordWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------- public


def to_hf_dataset(
    tables: Any,
    *,
    grain: Grain = "frames",
    images: bool = True,
    on_error: DatasetOnError = "record",
    workers: int = 8,
    progress: bool | None = None,
    quality: int = 95,
    options: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
    **kwargs: Unpack[DatasetDownloadKwargs],
) -> Any:
    """A ``datasets.Dataset`` of the frames, object crops or captions of ``tables``.

    ``grain="captions"``: one row per caption with its frame's image, ``text`` and the
    caption, frame and media ids. What goes in is ``options`` (or its fields as
    keywords: :class:`~coreviz_frames.training.selection.DatasetOptions`); with
    ``splits`` (fractions with ``seed``, or a dict of splits) a ``DatasetDict`` (``val``
    named ``validation``), no media id in two splits. ``images=False`` leaves out the
    image column (``image_url`` remains at the frames and captions grains). Rows whose
    image fails are left out with a :class:`~coreviz_frames.errors.SkippedRecordWarning`
    (``on_error="raise"`` raises).

    Example:
        >>> ds = to_hf_dataset(tables, grain="objects")   # doctest: +SKIP
        >>> ds.features["label"].names[:2]                 # doctest: +SKIP
        ['cat', 'clock']
    """
    options, download = writer_options(kwargs, options=options, download=download)
    run = RowRun(download, on_error, workers, progress, quality)
    build = _prepare(tables, grain, images, options, run)
    ds = _datasets()
    parts = {}
    for split, hf in build.names.items():
        units = build.units(split)
        with progress_bar(total=len(units), desc=hf, unit="row", progress=progress) as bar:
            rows = []
            for batch in build.batches(units):
                rows += batch
                bar.update(len(batch))
        parts[hf] = _rows_dataset(ds, rows, build.features)
    _warn_failed(build.failed)
    if options.splits is None:
        return parts["train"]
    return ds.DatasetDict(parts)


def _rows_dataset(ds: Any, rows: list[dict[str, Any]], features: Any) -> Any:
    """``datasets.Dataset`` of ``rows`` with ``features``; no rows is an empty dataset with
    those columns (``Dataset.from_list([])`` has no columns and fails the features check)."""
    if not rows:
        return ds.Dataset.from_dict({name: [] for name in features}, features=features)
    return ds.Dataset.from_list(rows, features=features)


def _write_split(build: _Build, split: str, data: Path, rows_per_shard: int, bar: Any) -> int:
    """Stream one split into ``data/<hf split>-NNNNN-of-NNNNN.parquet``: rows written.

    Each batch of rows becomes a Parquet row group as soon as its images are made, so
    memory holds one batch whatever the size of the split.
    """
    import pyarrow.parquet as pq

    ds, hf = _datasets(), build.names[split]
    units = build.units(split)
    n = max(1, math.ceil(len(units) / rows_per_shard))
    schema = build.features.arrow_schema
    written = 0
    for i in range(n):
        name = f"{hf}-{i:05d}-of-{n:05d}.parquet"
        shard = units[i * rows_per_shard : (i + 1) * rows_per_shard]
        with atomic_writer(data / name) as fh, pq.ParquetWriter(fh, schema) as writer:
            for rows in build.batches(shard):
                if not rows:  # every image of the batch failed (listed in build.failed)
                    continue
                with _quiet_datasets():
                    table = _rows_dataset(ds, rows, build.features).data.table
                writer.write_table(table.cast(schema))
                written += len(rows)
                bar.update(len(rows))
    return written


_WHAT = {
    "frames": "frames with their objects",
    "objects": "object crops",
    "captions": "captions with their frame images",
}


def _card(build: _Build, counts: dict[str, int]) -> str:
    """The dataset card: YAML ``configs`` for ``load_dataset`` and a short description.

    Split names are quoted YAML and every name in the Markdown is escaped
    (:func:`~coreviz_frames._util.textsafe.markdown_text`): a category cannot become HTML or a link.
    """
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    loadable = [hf for hf in build.names.values() if counts[hf]] or list(build.names.values())
    for hf in loadable:
        lines += [
            f"  - split: {yaml_string(hf)}",
            f"    path: {yaml_string(f'data/{hf}-*.parquet')}",
        ]
    lines += ["---", "", "# CoreViz frames", ""]
    lines += [f"Exported by coreviz_frames: {_WHAT[build.grain]} (grain `{build.grain}`).", ""]
    lines += ["| split | rows |", "|---|---|"]
    lines += [f"| {markdown_text(hf)} | {counts[hf]} |" for hf in build.names.values()]
    if build.grain != "captions":
        lines += ["", "| index | category |", "|---|---|"]
        lines += [f"| {i} | {markdown_text(c)} |" for i, c in enumerate(build.plan.categories)]
    return "\n".join(lines) + "\n"


def export_hf(
    tables: Any,
    out_dir: str | os.PathLike[str],
    *,
    grain: Grain = "frames",
    images: bool = True,
    rows_per_shard: int = 1000,
    on_error: DatasetOnError = "record",
    workers: int = 8,
    progress: bool | None = None,
    quality: int = 95,
    overwrite: bool = False,
    options: DatasetOptions | None = None,
    download: DownloadOptions | None = None,
    **kwargs: Unpack[DatasetDownloadKwargs],
) -> DatasetReport:
    """Write a Hugging Face dataset to ``out_dir``: Parquet shards and a ``README.md`` card.

    ``data/<split>-NNNNN-of-NNNNN.parquet`` hold at most ``rows_per_shard`` rows each, the
    image bytes embedded and the features (``Image``, ``ClassLabel``) in their metadata;
    the card's ``configs:`` name the splits, so ``datasets.load_dataset(out_dir)`` reads
    it with no network. Rows stream to the shards a batch at a time: memory does not grow
    with the dataset. Without splits the one split is ``train``; ``val`` is written as
    ``validation``; split names ``datasets`` would refuse are a ``ConfigError`` before
    anything is written. Options are those of :func:`to_hf_dataset`. Rows whose image
    fails are left out and listed in ``report.failed_frames`` (``skipped_objects`` for
    the objects grain). ``splits.csv`` and ``overwrite`` are as for
    :func:`~coreviz_frames.training.coco.export_coco`.

    Example:
        >>> export_hf(tables, "hf/").summary()   # doctest: +SKIP
        'hf: 19 images, 19 annotations, 13 categories, 0 failures -> hf'
    """
    check_int("rows_per_shard", rows_per_shard, minimum=1)
    options, download = writer_options(kwargs, options=options, download=download)
    run = RowRun(download, on_error, workers, progress, quality)
    check_dataset_folder(out_dir, overwrite=overwrite)  # refused before any download
    build = _prepare(tables, grain, images, options, run)
    counts: dict[str, int] = {}
    total = sum(len(build.units(s)) for s in build.names)
    with (
        dataset_folder(out_dir, overwrite=overwrite) as (stage, out),
        progress_bar(total=total, desc="hf", unit="row", progress=progress) as bar,
    ):
        data = make_dir(stage, "data")
        for split, hf in build.names.items():
            counts[hf] = _write_split(build, split, data, int(rows_per_shard), bar)
        _drop_empty_splits(data, counts)
        atomic_write_bytes(stage / "README.md", _card(build, counts).encode())
        files = [f"data/{p.name}" for p in sorted(data.glob("*.parquet"))] + ["README.md"]
        files += write_assignment(stage, build.plan)
    return _report(build, out, counts, files)


def _drop_empty_splits(data: Path, counts: dict[str, int]) -> None:
    """Remove the shards of splits that got no row (``load_dataset`` refuses an empty
    split: "corresponds to no data"), so the others load; warn about each one. When no
    split has a row, the shards stay and the warning says nothing can be loaded."""
    empty = [hf for hf, n in counts.items() if n == 0]
    if not empty:
        return
    if len(empty) == len(counts):
        warnings.warn(
            "no row was written (every image failed or was left out: see the report's "
            "failed_frames and skipped_frames); the dataset has no data to load",
            EmptySplitWarning,
            stacklevel=3,
        )
        return
    for hf in empty:
        for shard in data.glob(f"{hf}-*.parquet"):
            shard.unlink()
    warnings.warn(
        f"split(s) {', '.join(map(repr, empty))} got no row and are left out of the "
        "dataset card (see the report's failed_frames and skipped_frames)",
        EmptySplitWarning,
        stacklevel=3,
    )


def _report(build: _Build, out: Path, counts: dict[str, int], files: list[str]) -> DatasetReport:
    """The :class:`DatasetReport` of an HF export, by HF split: ``dataset_report``'s, with
    the rows written as images, annotations at the frames grain (rows at the others), and
    the crops that failed (objects grain) as skipped objects, not failed frames."""
    by_frame = HF_GRAINS[build.grain].failures == "frames"
    report = dataset_report("hf", out, build.plan, build.failed if by_frame else {}, files)
    report.images = dict(counts)
    if build.grain == "frames":
        report.annotations = {build.names[s]: n for s, n in report.annotations.items()}
    else:
        report.annotations = dict(counts)
    if not by_frame:
        report.skipped_objects.update(build.failed)
    return report

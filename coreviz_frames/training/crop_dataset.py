"""Training on object crops: a map-style dataset, leak-free splits, an ImageFolder export.

- :class:`CropDataset` gives ``(crop or transform(crop), class index)`` per object, with
  ``classes`` and ``class_to_idx`` as torchvision's ``ImageFolder`` has them. It pickles
  without any session or lock, so a torch ``DataLoader`` with worker processes can use it
  (each worker opens its own connections lazily). torch is never imported here.
- :func:`export_crops` writes ``<label>/<object_id>.jpg`` plus ``manifest.parquet``;
  :func:`export_crops_from_parquet` does the same from a Parquet export directory.

Example:
    >>> import coreviz_frames as cvf
    >>> splits = cvf.split_by_media(tables.objects, seed=1, stratify="label")  # doctest: +SKIP
    >>> ds = cvf.CropDataset(splits["train"], frames=tables.frames)             # doctest: +SKIP
    >>> image, target = ds[0]                                                   # doctest: +SKIP
    >>> manifest = cvf.export_crops(tables, "crops/")                           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from coreviz_frames._util.checks import check_choice, check_on_error
from coreviz_frames._util.fileio import atomic_write_bytes, atomic_writer
from coreviz_frames.errors import ExportError, ImageLoadError, SkippedRecordWarning
from coreviz_frames.images.crop_plan import (
    CropResult,
    blob_loader,
    column,
    iter_crops,
    plan_crops,
    present,
    run_job,
    split_input,
)
from coreviz_frames.images.loading import load_blob
from coreviz_frames.images.options import (
    IMAGE_ON_ERROR,
    CropOptions,
    DownloadOptions,
    MaxSize,
    OnError,
    split_options,
)
from coreviz_frames.training.datasetdir import dataset_folder, make_dir
from coreviz_frames.training.frames import Run
from coreviz_frames.training.labels import (
    LABELS_FILE,
    UNLABELED,
    class_index,
    class_list,
    write_labels,
)
from coreviz_frames.training.names import safe_name
from coreviz_frames.training.selection import (
    DatasetOptions,
    crop_dataset_options,
    select_objects,
    thinned_frames,
)
from coreviz_frames.training.splits import SPLITS_FILE, pick_split, row_splits, write_splits

if TYPE_CHECKING:
    from typing import Unpack

    from coreviz_frames.training.selection import CropDatasetKwargs

__all__ = ["CropDataset", "export_crops", "export_crops_from_parquet"]

#: The crop dataset's table of crops (file path, split, label, ids), one row a crop; not
#: the export's ``MANIFEST_NAME`` (:mod:`coreviz_frames.exports.manifest`).
CROP_MANIFEST_NAME = "manifest.parquet"
#: The class folder names, one a line, in the order ImageFolder numbers them.
CLASSES_NAME = "classes.txt"
#: The file list Hugging Face's ``imagefolder`` reads (``file_name`` and the ids).
METADATA_NAME = "metadata.parquet"
_FRAME_LRU = 8  # decoded frame images kept per dataset (per worker process)


# --------------------------------------------------------------------------- dataset


class CropDataset:
    """A map-style dataset of object crops and class indices (torch-compatible, torch-free).

    Rows whose label is missing (unless ``include_unlabeled=True``), or not among
    ``classes`` when given, are left out, and so are rows the dataset options drop
    (``label``, ``classes``, ``label_map``, ``object_types``, ``frame_stride``... or one
    ``options=`` :class:`~coreviz_frames.training.selection.DatasetOptions`, as for every
    writer, kept as ``self.options``) and rows that can give no crop: never silently
    (rows of media in another split, with ``splits=`` and ``split=``, are simply not
    this dataset's) (``skipped``: object id -> reason, and one ``SkippedRecordWarning``).
    ``classes`` are in the order given (the sorted labels kept by default). A row cut
    from its frame with no frames table is a ``ConfigError`` saying to pass ``frames=``.
    ``objects`` holds the rows kept, ``targets`` their class indices. Crops load on
    ``__getitem__`` (through the disk cache when ``cache_dir`` or
    ``$COREVIZ_FRAMES_CACHE`` is set). The crop and download options are those of
    :func:`~coreviz_frames.load_crops` (``source``, ``pad``, ``square``, ``min_size``,
    ``max_size``; ``timeout``, ``max_bytes``, ``max_pixels``, ``cache_dir``), as keywords
    or as ``crop=`` / ``download=`` values, kept as ``self.crop`` and ``self.download``.

    Example:
        >>> ds = CropDataset(tables, cache_dir="~/.cache/cvf", square=True)   # doctest: +SKIP
        >>> crop = CropOptions(square=True, pad=0.1, max_size=224)            # doctest: +SKIP
        >>> train = CropDataset(tables, splits=(0.8, 0.2), split="train", crop=crop)  # doctest: +SKIP
        >>> len(ds), ds.classes[:3]                                           # doctest: +SKIP
        (40, ['camera', 'cat', 'clock'])
        >>> loader = torch.utils.data.DataLoader(ds, num_workers=2)           # doctest: +SKIP
    """  # noqa: E501

    def __init__(
        self,
        tables_or_objects: Any,
        *,
        split: str | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        frames: pd.DataFrame | None = None,
        options: DatasetOptions | None = None,
        crop: CropOptions | None = None,
        download: DownloadOptions | None = None,
        **kwargs: Unpack[CropDatasetKwargs],
    ) -> None:
        self.options, self.crop, self.download = _split_crop_options(
            kwargs, options, crop, download
        )
        objects, frames = split_input(tables_or_objects, frames)
        tags = getattr(tables_or_objects, "tags", None)
        classes_of, drop = _selected(objects, frames, tags, self.options)
        self.split, others = _pick_split(objects, self.options, split)
        keep = self._croppable(objects, frames, drop, others)
        self.objects = objects.iloc[keep].reset_index(drop=True)
        self.frames = frames
        self.transform = transform
        self.classes: list[str] = class_list([classes_of[p] for p in keep], self.options.classes)
        self.class_to_idx: dict[str, int] = class_index(self.classes)
        self.targets: list[int] = [self.class_to_idx[str(classes_of[p])] for p in keep]
        self._init_runtime()

    def _croppable(
        self,
        objects: pd.DataFrame,
        frames: pd.DataFrame | None,
        drop: dict[int, str],
        others: set[int],
    ) -> list[int]:
        """The rows kept: in this split (not in ``others``), not dropped, and able to give a
        crop. Sets ``self.skipped`` (object id -> why) and warns about the rows left out."""
        ids = [str(v) for v in column(objects, "object_id")]
        self.skipped: dict[str, str] = {
            ids[pos]: why for pos, why in drop.items() if pos not in others
        }
        keep = [pos for pos in range(len(objects)) if pos not in drop and pos not in others]
        # Rows that can never give a crop (no blob and no box, say) are left out up front.
        _, failed = plan_crops(objects.iloc[keep], frames, self.crop)
        self.skipped.update({r.object_id: r.error or "" for r in failed.values()})
        keep = [p for i, p in enumerate(keep) if i not in failed]
        _warn_left_out(self.skipped, len(objects) - len(others))
        return keep

    def _init_runtime(self) -> None:
        # Per-process state: the last few decoded frame images, shared by their objects.
        self._lock = threading.Lock()
        self._frames_lru: OrderedDict[str, Image.Image] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state.pop("_frames_lru", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def _load_frame(self, url: str, max_size: MaxSize) -> Image.Image:
        """A frame image, through a small per-process LRU (its objects are cut from it)."""
        with self._lock:
            image = self._frames_lru.get(url)
            if image is not None:
                self._frames_lru.move_to_end(url)
                return image
        image = load_blob(url, max_size=max_size, download=self.download)
        with self._lock:
            self._frames_lru[url] = image
            while len(self._frames_lru) > _FRAME_LRU:
                self._frames_lru.popitem(last=False)
        return image

    def __len__(self) -> int:
        return len(self.objects)

    def __repr__(self) -> str:
        return f"<CropDataset: {len(self)} crops, {len(self.classes)} classes>"

    def load(self, index: int) -> Image.Image:
        """The crop of row ``index`` (no transform); raises ``ImageLoadError`` on failure."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} crops")
        jobs, failed = plan_crops(self.objects.iloc[[index]], self.frames, self.crop)
        if failed:
            first = next(iter(failed.values()))
            raise ImageLoadError(first.error or "cannot crop", url=first.url, reason="cannot crop")
        job = jobs[0]
        load = self._load_frame if job.kind == "frame" else blob_loader(self.download)
        [(_, result)] = run_job(job, self.crop, on_error="raise", load=load)
        if result.image is None:  # pragma: no cover - on_error="raise" raises instead
            raise ImageLoadError(result.error or "cannot crop")
        return result.image

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.load(index)
        target = self.targets[index]
        if self.transform is not None:
            return self.transform(image), target
        return image, target


def _pick_split(
    objects: pd.DataFrame, opts: DatasetOptions, split: str | None
) -> tuple[str | None, set[int]]:
    """``split`` checked against ``opts.splits``, and the rows whose media is in another
    split (:func:`~coreviz_frames.training.splits.row_splits`, as every writer)."""
    if opts.splits is None:
        return pick_split([], None, split), set()
    names, _, split_of = row_splits(column(objects, "media_id"), opts.splits, opts.seed)
    split = pick_split(names, opts.splits, split)
    return split, {pos for pos, name in enumerate(split_of) if name != split}


def _warn_left_out(skipped: Mapping[str, str], total: int) -> None:
    """One warning saying how many rows a dataset left out, and the first reason."""
    if skipped:
        oid, why = next(iter(skipped.items()))
        warnings.warn(
            f"{len(skipped)} of {total} objects are left out (see .skipped); "
            f"the first, {oid}: {why}",
            SkippedRecordWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------- export


def _label_dirs(labels: Sequence[Any]) -> dict[Any, str]:
    """label -> directory name; labels that sanitize alike get a short hash suffix.

    No directory takes the manifest's or metadata's name (such a label is suffixed too).
    """
    out: dict[Any, str] = {}
    used: dict[str, Any] = {
        name.lower(): object()
        for name in (CROP_MANIFEST_NAME, METADATA_NAME, CLASSES_NAME, LABELS_FILE, SPLITS_FILE)
    }
    distinct = {str(v) if present(v) else None for v in labels}
    for label in sorted(distinct, key=lambda v: (v is None, v or "")):
        name = UNLABELED if label == UNLABELED else safe_name(label)
        if name.lower() in used and used[name.lower()] != label:
            name = f"{name}_{hashlib.sha256(str(label).encode()).hexdigest()[:8]}"
        used[name.lower()] = label
        out[label] = name
    return out


def _crop_paths(
    object_ids: Sequence[str],
    labels: Sequence[Any],
    dirs: dict[Any, str],
    splits: Sequence[str | None] | None = None,
) -> list[str]:
    """Each row's file, relative to the output directory: unique by construction.

    ``<label dir>/<safe object id>.jpg``; a name already taken (ignoring case) by an earlier
    row, for a repeated id or ids equal once sanitized, becomes ``<safe id>~<row>.jpg``.
    ``~`` never occurs in a sanitized id and row positions are distinct, so a suffixed
    name can collide neither with a plain name nor with another suffixed one. With
    ``splits`` (a split name per row) each path starts with ``<split>/``.

    Example:
        >>> _crop_paths(["a", "a_2", "a"], ["x", "x", "x"], {"x": "x"})
        ['x/a.jpg', 'x/a_2.jpg', 'x/a~2.jpg']
    """
    taken: set[str] = set()
    out = []
    prefixes = [f"{s}/" if s else "" for s in (splits or [None] * len(object_ids))]
    for pos, (oid, label) in enumerate(zip(object_ids, labels, strict=True)):
        stem = safe_name(oid, fallback=f"row{pos}")
        folder = f"{prefixes[pos]}{dirs[label]}"
        rel = f"{folder}/{stem}.jpg"
        if rel.lower() in taken:
            rel = f"{folder}/{stem}~{pos}.jpg"
        taken.add(rel.lower())
        out.append(rel)
    return out


_MANIFEST_SCHEMA = pa.schema(
    [
        ("object_id", pa.string()),
        ("media_id", pa.string()),
        ("label", pa.string()),
        ("path", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("split", pa.string()),
    ]
)


def _make_folder(out: Path, rel: str, made: set[str]) -> None:
    """Make ``out/rel`` (:func:`~coreviz_frames.training.datasetdir.make_dir`: never through
    a symbolic link) unless ``made`` says it is there already."""
    if rel not in made:
        make_dir(out, *rel.split("/"))
        made.add(rel)


def _save_crop(out: Path, rel: str, image: Image.Image, quality: int, made: set[str]) -> None:
    """Write ``image`` as JPEG to ``out/rel`` atomically, making its folder the first time."""
    _make_folder(out, rel.rsplit("/", 1)[0], made)  # <label> or <split>/<label>
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    atomic_write_bytes(out / rel, buf.getvalue())


def _save_results(
    out: Path,
    results: Iterable[tuple[int, CropResult]],
    planned: list[str],
    outcome: tuple[list[str | None], list[str | None], list[str]],
    quality: int,
    on_error: str,
    made: set[str],
) -> None:
    """Write each crop to its planned path; fill ``(paths, reasons, status)`` per row."""
    paths, reasons, status = outcome
    for pos, result in results:
        if result.image is None:
            reasons[pos] = result.error
            continue
        try:
            _save_crop(out, planned[pos], result.image, int(quality), made)
        except OSError as exc:
            reason = f"cannot write {planned[pos]}: {type(exc).__name__}: {exc.strerror or exc}"
            if on_error == "raise":
                raise ExportError(reason, path=str(out / planned[pos])) from None
            reasons[pos] = reason
            continue
        paths[pos], status[pos] = planned[pos], "written"


def _write_manifest(out: Path, manifest: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(manifest, schema=_MANIFEST_SCHEMA, preserve_index=False)
    with atomic_writer(out / CROP_MANIFEST_NAME) as fh:
        pq.write_table(table, fh)


def _selected(
    objects: pd.DataFrame, frames: pd.DataFrame | None, tags: Any, opts: DatasetOptions
) -> tuple[list[str | None], dict[int, str]]:
    """Each row's class (None: left out) and why rows are left out: the objects
    (:func:`~coreviz_frames.training.selection.select_objects`), then the frames thinned."""
    classes_of, drop = select_objects(objects, opts, tags)
    thinned = thinned_frames(frames, opts)
    for pos, fid in enumerate(str(f) for f in column(objects, "frame_id")):
        if fid in thinned:
            drop.setdefault(pos, f"frame {fid} left out: {thinned[fid]}")
            classes_of[pos] = None
    return classes_of, drop


_METADATA_SCHEMA = pa.schema(
    [
        ("file_name", pa.string()),
        ("label", pa.string()),
        ("object_id", pa.string()),
        ("frame_id", pa.string()),
        ("media_id", pa.string()),
        ("split", pa.string()),
    ]
)


def _metadata_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns: list[list[Any]] = [
        [row[i] if present(row[i]) else None for row in rows] for i in range(len(_METADATA_SCHEMA))
    ]
    return pa.Table.from_arrays(
        [pa.array(c, type=pa.string()) for c in columns], schema=_METADATA_SCHEMA
    )


def _write_metadata(
    out: Path, manifest: pd.DataFrame, objects: pd.DataFrame, split_of: Any
) -> None:
    """``metadata.parquet``: one row per written crop, ``file_name`` relative to ``out``.

    With splits each ``<split>/`` folder gets its own, ``file_name`` relative to it: the
    file ``imagefolder`` reads for that split.
    """
    frame_ids = [str(v) if present(v) else None for v in column(objects, "frame_id")]
    splits = split_of if split_of is not None else [None] * len(manifest)
    rows = [
        (path, label, oid, fid, mid, split)
        for path, label, oid, fid, mid, split in zip(
            manifest["path"].tolist(),
            manifest["label"].tolist(),
            manifest["object_id"].tolist(),
            frame_ids,
            manifest["media_id"].tolist(),
            splits,
            strict=True,
        )
        if present(path)
    ]
    with atomic_writer(out / METADATA_NAME) as fh:
        pq.write_table(_metadata_table(rows), fh)
    for split in sorted({row[5] for row in rows if row[5] is not None}):
        mine = [(row[0].split("/", 1)[1], *row[1:]) for row in rows if row[5] == split]
        with atomic_writer(out / split / METADATA_NAME) as fh:
            pq.write_table(_metadata_table(mine), fh)


def _manifest_frame(
    object_ids: list[str],
    objects: pd.DataFrame,
    labels: list[str | None],
    outcome: tuple[list[str | None], list[str | None], list[str]],
    owner: Mapping[str, str],
) -> pd.DataFrame:
    """``manifest.parquet``'s rows: one per object, in order, with where it went and why,
    and its media's split (``all`` without splits)."""
    paths, reasons, status = outcome
    media = [str(v) if present(v) else None for v in column(objects, "media_id")]
    return pd.DataFrame(
        {
            "object_id": object_ids,
            "media_id": media,
            "label": labels,
            "path": paths,
            "status": status,
            "reason": reasons,
            "split": [None if m is None else owner.get(m) for m in media],
        }
    ).astype(pd.StringDtype("pyarrow"))


def _split_crop_options(
    kwargs: Mapping[str, Any],
    options: DatasetOptions | None,
    crop: CropOptions | None,
    download: DownloadOptions | None,
) -> tuple[DatasetOptions, CropOptions, DownloadOptions]:
    """The dataset, crop and download values of the keywords (``min_size`` is the crop's)."""
    opts, rest = crop_dataset_options(kwargs, options)
    crop, download = split_options(rest, crop=crop, download=download)
    return opts, crop, download


def _class_folders(out: Path, names: list[str] | None, dirs: dict[Any, str]) -> set[str]:
    """Every class folder in every split (empty ones too): one class list everywhere."""
    made: set[str] = set()
    for split in names or [""]:
        for folder in sorted(dirs.values()):
            _make_folder(out, f"{split}/{folder}" if split else folder, made)
    return made


def _write_classes(
    out: Path, classes: list[str], dirs: dict[Any, str], opts: DatasetOptions
) -> None:
    """``classes.txt`` (the folder names in ImageFolder's index order) and ``labels.json``."""
    folders = sorted(dirs[c] for c in classes)
    atomic_write_bytes(out / CLASSES_NAME, "".join(f"{f}\n" for f in folders).encode())
    by_folder = {dirs[c]: c for c in classes}
    write_labels(out, [by_folder[f] for f in folders], opts.to_dict(), folders=by_folder)


def export_crops(
    tables_or_objects: Any,
    out_dir: str | os.PathLike[str],
    *,
    layout: str = "imagefolder",
    frames: pd.DataFrame | None = None,
    on_error: OnError = "record",
    quality: int = 95,
    workers: int = 8,
    progress: bool | None = None,
    overwrite: bool = False,
    options: DatasetOptions | None = None,
    crop: CropOptions | None = None,
    download: DownloadOptions | None = None,
    **kwargs: Unpack[CropDatasetKwargs],
) -> pd.DataFrame:
    """Write every object's crop as ``out_dir/<class>/<object_id>.jpg`` plus a manifest.

    Classes become safe folder names (none takes the manifest's name); every split
    folder has every class folder, empty ones too, so ImageFolder numbers classes alike
    in every split; ``classes.txt`` lists them in that order and ``labels.json`` maps
    folders to labels. Objects without a label are left out (status ``"skipped"``)
    unless ``include_unlabeled=True`` (class ``_unlabeled``). What goes in is
    ``options`` (or its fields as keywords: ``splits``, ``seed``, ``label`` (a column
    or ``"tag:KEY"``, the media's one value of that tag), ``classes``, ``label_map``,
    ``object_types``, ``frame_stride``, ``max_frames_per_media``;
    :class:`~coreviz_frames.training.selection.DatasetOptions`; the box-size filter goes
    through ``options=`` here, ``min_size`` being the crop option). ``splits``
    (fractions, a dict of splits, or a splits file / dataset folder; see
    :func:`~coreviz_frames.training.splits.assign_splits`) writes
    ``out_dir/<split>/<class>/``, no media id in two splits; ``splits.csv`` records the
    assignment. A non-empty folder is refused unless ``overwrite=True`` (built beside,
    then swapped in). File names are unique (a repeated id gets ``~<row>``).
    ``manifest.parquet`` (object_id, media_id, label, path, status
    ``written``/``failed``/``skipped``, reason, split) lists every row and is returned;
    ``metadata.parquet`` lists the written crops for Hugging Face's ``imagefolder``.
    Crop and download options are those of :func:`~coreviz_frames.load_crops`.

    Example:
        >>> manifest = export_crops(tables, "crops/", square=True, pad=0.1)   # doctest: +SKIP
        >>> by_color = export_crops(tables, "by-color/", label="tag:color",
        ...                         splits=(0.8, 0.1, 0.1))              # doctest: +SKIP
    """
    check_choice("layout", layout, ("imagefolder",))
    check_on_error(on_error, allowed=IMAGE_ON_ERROR)  # crops: "raise" or "record"
    opts, crop, download = _split_crop_options(kwargs, options, crop, download)
    run = Run(download, on_error, workers, progress, quality)
    objects, frames = split_input(tables_or_objects, frames)
    classes_of, drop = _selected(objects, frames, getattr(tables_or_objects, "tags", None), opts)
    classes = class_list(classes_of, opts.classes)
    names, owner, split_of = row_splits(column(objects, "media_id"), opts.splits, opts.seed)
    for pos, split in enumerate(split_of):
        if split is None:
            drop.setdefault(pos, "its media is in no split")
    for pos, why in _without_geometry(objects, crop).items():
        drop.setdefault(pos, why)
    dirs = _label_dirs(classes)
    object_ids = [str(v) for v in column(objects, "object_id")]
    rows = [pos for pos in range(len(objects)) if pos not in drop]
    by_split = None if opts.splits is None else split_of
    with dataset_folder(out_dir, overwrite=overwrite) as (stage, _):
        made = _class_folders(stage, None if by_split is None else names, dirs)
        outcome = _crop_rows(
            stage, objects, frames, rows, (classes_of, dirs, by_split), made, (crop, run)
        )
        _, reasons, status = outcome
        for pos, why in drop.items():
            status[pos], reasons[pos] = "skipped", why
        manifest = _manifest_frame(object_ids, objects, classes_of, outcome, owner)
        _write_manifest(stage, manifest)
        _write_metadata(stage, manifest, objects, by_split)
        write_splits(stage, owner)
        _write_classes(stage, classes, dirs, opts)
    return manifest


def _without_geometry(objects: pd.DataFrame, crop: CropOptions) -> dict[int, str]:
    """Rows whose crop needs a box they do not have (no blob to fall back on with
    ``source="auto"``): left out as ``skipped``, as the detection datasets leave out objects
    with no geometry, rather than failed."""
    if crop.source == "blob" or not len(objects):
        return {}
    none = pd.Series(False, index=objects.index)
    has_box = pd.Series(True, index=objects.index)
    for name in _BOX_COLUMNS:
        has_box &= objects[name].map(present) if name in objects else none
    has_blob = objects["blob"].map(present) if "blob" in objects else none
    why = "no geometry" if crop.source == "frame" else "no crop blob and no geometry"
    missing = ~has_box if crop.source == "frame" else ~has_box & ~has_blob
    return {pos: why for pos, gone in enumerate(missing.tolist()) if gone}


_BOX_COLUMNS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")


def _crop_rows(
    out: Path,
    objects: pd.DataFrame,
    frames: pd.DataFrame | None,
    rows: list[int],
    where: tuple[list[str | None], dict[Any, str], list[str | None] | None],
    made: set[str],
    how: tuple[CropOptions, Run],
) -> tuple[list[str | None], list[str | None], list[str]]:
    """Cut and write the crops of ``rows``; ``(paths, reasons, status)`` for every row."""
    classes_of, dirs, split_of = where
    crop, run = how
    object_ids = [str(v) for v in column(objects, "object_id")]
    planned_rows = _crop_paths(
        [object_ids[p] for p in rows],
        [classes_of[p] for p in rows],
        dirs,
        None if split_of is None else [split_of[p] for p in rows],
    )
    planned: list[str] = [""] * len(objects)
    for pos, rel in zip(rows, planned_rows, strict=True):
        planned[pos] = rel
    outcome: tuple[list[str | None], list[str | None], list[str]] = (
        [None] * len(objects),
        [None] * len(objects),
        ["failed"] * len(objects),
    )
    on_error: OnError = "raise" if run.on_error == "raise" else "record"
    results = iter_crops(
        objects.iloc[rows],
        frames,
        crop,
        run.download,
        on_error=on_error,
        workers=run.workers,
        progress=run.progress,
    )
    mapped = ((rows[sub], r) for sub, r in results)
    _save_results(out, mapped, planned, outcome, run.quality, on_error, made)
    return outcome


def export_crops_from_parquet(
    export_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], **kwargs: Any
) -> pd.DataFrame:
    """:func:`export_crops` over a Parquet export (``tables.to_parquet`` / ``export_parquet``).

    The objects and frames grains are read with :func:`coreviz_frames.exports.reader.read_parquet`;
    ``kwargs`` go to :func:`export_crops`. The ``coreviz-frames crops`` command calls this.

    Example:
        >>> export_crops_from_parquet("export/", "crops/", square=True)   # doctest: +SKIP
    """
    from coreviz_frames.exports.reader import read_parquet

    tables = read_parquet(export_dir)
    return export_crops(tables, out_dir, **kwargs)

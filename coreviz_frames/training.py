"""Training on object crops: a map-style dataset, leak-free splits, an ImageFolder export.

- :class:`CropDataset` gives ``(crop or transform(crop), class index)`` per object, with
  ``classes`` and ``class_to_idx`` as torchvision's ``ImageFolder`` has them. It pickles
  without any session or lock, so a torch ``DataLoader`` with worker processes can use it
  (each worker opens its own connections lazily). torch is never imported here.
- :func:`split_by_media` splits rows into train/val/test so that no media id is in two
  splits (crops of one photo never leak between training and evaluation).
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

import errno
import hashlib
import io
import math
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from .crop_jobs import (
    CropResult,
    blob_loader,
    column,
    iter_crops,
    plan_crops,
    present,
    run_job,
    split_input,
)
from .errors import ConfigError, ExportError, ImageLoadError
from .fileio import atomic_write_bytes, atomic_writer
from .images import load_blob
from .options import CropOptions, DownloadOptions, MaxSize, OnError, split_options

if TYPE_CHECKING:
    from typing import Unpack

    from .options import CropDownloadKwargs

__all__ = [
    "MANIFEST_NAME",
    "METADATA_NAME",
    "CropDataset",
    "export_crops",
    "export_crops_from_parquet",
    "safe_name",
    "split_by_media",
]

MANIFEST_NAME = "manifest.parquet"
#: The file list Hugging Face's ``imagefolder`` reads (``file_name`` and the ids).
METADATA_NAME = "metadata.parquet"
_FRAME_LRU = 8  # decoded frame images kept per dataset (per worker process)
SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------- dataset


class CropDataset:
    """A map-style dataset of object crops and class indices (torch-compatible, torch-free).

    Rows whose label is missing, or not among ``classes`` when given, are left out, and so
    are rows that can give no crop (``skipped``: object id -> reason); ``objects`` holds
    the rows kept, ``targets`` their class indices. Crops load on
    ``__getitem__`` (through the disk cache when ``cache_dir`` or
    ``$COREVIZ_FRAMES_CACHE`` is set). The crop and download options are those of
    :func:`~coreviz_frames.load_crops` (``source``, ``pad``, ``square``, ``min_size``,
    ``max_size``; ``timeout``, ``max_bytes``, ``max_pixels``, ``cache_dir``), as keywords
    or as ``crop=`` / ``download=`` values, kept as ``self.crop`` and ``self.download``.

    Example:
        >>> ds = CropDataset(tables, cache_dir="~/.cache/cvf", square=True)   # doctest: +SKIP
        >>> crop = CropOptions(square=True, pad=0.1, max_size=224)            # doctest: +SKIP
        >>> train = CropDataset(splits["train"], crop=crop)                   # doctest: +SKIP
        >>> len(ds), ds.classes[:3]                                           # doctest: +SKIP
        (40, ['camera', 'cat', 'clock'])
        >>> loader = torch.utils.data.DataLoader(ds, num_workers=2)           # doctest: +SKIP
    """

    def __init__(
        self,
        tables_or_objects: Any,
        *,
        transform: Callable[[Image.Image], Any] | None = None,
        label_column: str = "label",
        classes: Sequence[str] | None = None,
        frames: pd.DataFrame | None = None,
        crop: CropOptions | None = None,
        download: DownloadOptions | None = None,
        **options: Unpack[CropDownloadKwargs],
    ) -> None:
        self.crop, self.download = split_options(options, crop=crop, download=download)
        objects, frames = split_input(tables_or_objects, frames)
        if label_column not in objects.columns:
            raise ConfigError(f"no column {label_column!r} in the objects table")
        labels = objects[label_column].astype("string")
        keep = (labels.notna() & (labels != "")).to_numpy(dtype=bool)
        if classes is not None:
            classes = list(classes)
            if len(set(classes)) != len(classes):
                raise ConfigError("classes must be unique")
            keep &= labels.isin(classes).fillna(False).to_numpy(dtype=bool)
        kept = objects.loc[keep].reset_index(drop=True)
        # Rows that can never give a crop (no blob and no box, say) are left out up front.
        _, failed = plan_crops(kept, frames, self.crop)
        self.skipped: dict[str, str] = {r.object_id: r.error or "" for r in failed.values()}
        if failed:
            kept = kept.drop(index=list(failed)).reset_index(drop=True)
        if classes is None:
            classes = sorted({str(v) for v in kept[label_column].tolist()})
        self.objects = kept
        self.frames = frames
        self.transform = transform
        self.label_column = label_column
        self.classes: list[str] = list(classes)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        self.targets: list[int] = [self.class_to_idx[str(v)] for v in kept[label_column].tolist()]
        self._init_runtime()

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


# --------------------------------------------------------------------------- splits


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3:
        raise ConfigError(f"fractions must be (train, val, test), got {fractions!r}")
    train, val, test = values
    if any(not math.isfinite(f) or f < 0 for f in values):
        raise ConfigError(f"fractions must be non-negative numbers, got {fractions!r}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ConfigError(f"fractions must add up to 1, got {fractions!r} (sum {sum(values)})")
    return train, val, test


def _assign(
    groups: list[tuple[str, int]],
    fractions: tuple[float, float, float],
    totals: list[int] | None = None,
) -> dict[str, int]:
    """Give each (media id, row count) a split so each split's share of rows nears its fraction.

    Greedy: every media goes to the split furthest below its target after the media is added,
    counting both these groups and ``totals`` (the rows already placed by earlier strata, which
    is updated): without the running totals every small stratum would go to train alone.
    """
    counts = [0, 0, 0]
    totals = [0, 0, 0] if totals is None else totals
    out: dict[str, int] = {}
    for key, n in groups:
        placed, placed_all = sum(counts) + n, sum(totals) + n
        deficits = [
            fractions[i] * placed - counts[i] + fractions[i] * placed_all - totals[i]
            if fractions[i] > 0
            else -math.inf
            for i in range(3)
        ]
        best = max(range(3), key=lambda i: (deficits[i], -i))
        out[key] = best
        counts[best] += n
        totals[best] += n
    return out


def split_by_media(
    df: Any,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    stratify: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Split rows into ``train``/``val``/``test`` so that no media id is in two splits.

    Media are shuffled with ``seed`` and assigned greedily so each split's share of rows
    approaches its fraction. ``stratify="label"`` (any column) balances that column
    approximately: media are grouped by their most frequent value and each group is split
    on its own. Same input and seed, same split. Row order and index are kept.

    Example:
        >>> objs = pd.DataFrame({"media_id": list("aabbcdde"), "label": list("xxyyxyxy")})
        >>> parts = split_by_media(objs, (0.5, 0.25, 0.25), seed=0)
        >>> sorted(parts), sum(len(p) for p in parts.values())
        (['test', 'train', 'val'], 8)
    """
    if not isinstance(df, pd.DataFrame):
        df = getattr(df, "objects", df)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a DataFrame or MediaTables, got {type(df).__name__}")
    if "media_id" not in df.columns:
        raise ConfigError("split_by_media needs a media_id column")
    fracs = _check_fractions(fractions)
    if stratify is not None and stratify not in df.columns:
        raise ConfigError(f"no column {stratify!r} to stratify by")
    media = df["media_id"].astype("string").fillna("<NA>")
    sizes = media.value_counts(sort=False)
    keys = sorted(sizes.index.tolist())
    rng = np.random.default_rng(seed)
    if stratify is None:
        strata = {"": keys}
    else:
        values = df[stratify].astype("string").fillna("<NA>")
        pairs = pd.DataFrame({"m": media.to_numpy(), "v": values.to_numpy()})
        counts = pairs.groupby(["m", "v"], sort=True).size().reset_index(name="n")
        # dominant value per media: most rows, ties by value order
        counts = counts.sort_values(["m", "n", "v"], ascending=[True, False, True])
        dominant = counts.drop_duplicates("m").set_index("m")["v"].to_dict()
        strata = {}
        for key in keys:
            strata.setdefault(dominant[key], []).append(key)
    assignment: dict[str, int] = {}
    totals = [0, 0, 0]
    for name in sorted(strata):
        members = strata[name]
        order = rng.permutation(len(members))
        groups = [(members[i], int(sizes[members[i]])) for i in order]
        assignment.update(_assign(groups, fracs, totals))
    which = media.map(assignment).to_numpy()
    return {name: df.loc[which == i] for i, name in enumerate(SPLITS)}


# --------------------------------------------------------------------------- export

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}


def safe_name(text: Any, *, fallback: str = "_unlabeled", max_len: int = 100) -> str:
    """A file or directory name made from ``text``: no separators, dots-only or reserved names.

    Example:
        >>> safe_name("../etc/passwd"), safe_name("chien / dog"), safe_name(None)
        ('etc_passwd', 'chien _ dog', '_unlabeled')
    """
    if not present(text):
        return fallback
    name = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip(" ._")
    name = re.sub(r"_+", "_", name)[:max_len].strip(" .")
    if not name or name.upper().split(".")[0] in _RESERVED:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        name = f"{name or 'label'}_{digest}"
    return name


def _label_dirs(labels: Sequence[Any]) -> dict[Any, str]:
    """label -> directory name; labels that sanitize alike get a short hash suffix.

    No directory takes the manifest's or metadata's name (such a label is suffixed too).
    """
    out: dict[Any, str] = {}
    used: dict[str, Any] = {MANIFEST_NAME.lower(): object(), METADATA_NAME.lower(): object()}
    distinct = {str(v) if present(v) else None for v in labels}
    for label in sorted(distinct, key=lambda v: (v is None, v or "")):
        name = safe_name(label)
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
    ]
)


def _out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """The output directory, made; refused when a non-file holds the manifest's place."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists() and not manifest_path.is_file():
        raise ExportError(
            f"cannot write the crop manifest: {manifest_path} exists and is not a file",
            path=str(manifest_path),
        )
    return out


def _save_crop(out: Path, rel: str, image: Image.Image, quality: int, made: set[str]) -> None:
    """Write ``image`` as JPEG to ``out/rel`` atomically, making its folder the first time."""
    parts = rel.split("/")[:-1]  # <label> or <split>/<label>
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if folder in made:
            continue
        if (out / folder).is_symlink():  # never write through a link to somewhere else
            raise NotADirectoryError(errno.ENOTDIR, "a symbolic link, not a folder", folder)
        (out / folder).mkdir(exist_ok=True)
        made.add(folder)
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
) -> None:
    """Write each crop to its planned path; fill ``(paths, reasons, status)`` per row."""
    paths, reasons, status = outcome
    made: set[str] = set()
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
    with atomic_writer(out / MANIFEST_NAME) as fh:
        pq.write_table(table, fh)


def _row_labels(
    tables_or_objects: Any, objects: pd.DataFrame, label: str | None, label_column: str
) -> list[str | None]:
    """Each row's label: ``label`` (a column or ``"tag:KEY"``), else ``label_column``."""
    if label is not None and label_column != "label" and label != label_column:
        raise ConfigError("pass either label= or label_column=, not both")
    name = label if label is not None else label_column
    if name.startswith("tag:"):
        from .frameset import tag_labels  # the writers' module imports this one

        return tag_labels(objects, getattr(tables_or_objects, "tags", None), name[4:])
    if label is not None and name not in objects.columns:
        raise ConfigError(f"no column {name!r} in the objects table")
    return [str(v) if present(v) else None for v in column(objects, name)]


def _row_splits(objects: pd.DataFrame, splits: Any, seed: int) -> list[str | None] | None:
    """Each row's split (None: its media is in no split), or None without ``splits``."""
    if splits is None:
        return None
    from .frameset import assign_splits

    media = [str(m) for m in column(objects, "media_id")]
    _, owner = assign_splits(media, splits, seed)
    return [owner.get(m) for m in media]


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
) -> pd.DataFrame:
    """``manifest.parquet``'s rows: one per object, in order, with where it went and why."""
    paths, reasons, status = outcome
    return pd.DataFrame(
        {
            "object_id": object_ids,
            "media_id": [str(v) if present(v) else None for v in column(objects, "media_id")],
            "label": labels,
            "path": paths,
            "status": status,
            "reason": reasons,
        }
    ).astype(pd.StringDtype("pyarrow"))


def export_crops(
    tables_or_objects: Any,
    out_dir: str | os.PathLike[str],
    *,
    layout: str = "imagefolder",
    frames: pd.DataFrame | None = None,
    on_error: OnError = "record",
    label_column: str = "label",
    label: str | None = None,
    splits: Any = None,
    seed: int = 0,
    quality: int = 95,
    workers: int = 8,
    progress: bool | None = None,
    crop: CropOptions | None = None,
    download: DownloadOptions | None = None,
    **options: Unpack[CropDownloadKwargs],
) -> pd.DataFrame:
    """Write every object's crop as ``out_dir/<label>/<object_id>.jpg`` plus a manifest.

    Labels become safe directory names (missing labels go to ``_unlabeled``; none takes
    the manifest's name). ``label`` is a column of the objects table or ``"tag:KEY"``, the
    value of that tag on the object's media (a media with several values of the key, or
    none, goes to ``_unlabeled``); ``label_column`` is its older spelling. ``splits``
    (fractions ``(train, val, test)`` with ``seed``, or the dict
    :func:`split_by_media` returns) writes ``out_dir/<split>/<label>/...`` ImageFolders,
    no media id in two splits; rows of media in no split get status ``"skipped"``.
    File names are unique by construction: a repeated object id (or ids equal once
    sanitized, ignoring case) gets ``~<row position>`` appended. Each file is written
    atomically; ``manifest.parquet`` (object_id, media_id, label, path relative to
    ``out_dir``, status ``"written"``, ``"failed"`` or ``"skipped"``, reason) lists every
    row in order and is also returned; ``metadata.parquet`` lists the written crops with
    ``file_name`` (the column Hugging Face's ``imagefolder`` reads), label, object,
    frame and media ids and split (with splits, each split folder has its own too).
    Memory stays bounded: crops are written as they arrive. Crop and download options
    are those of :func:`~coreviz_frames.load_crops`.

    Example:
        >>> manifest = export_crops(tables, "crops/", square=True, pad=0.1)   # doctest: +SKIP
        >>> by_color = export_crops(tables, "by-color/", label="tag:color",
        ...                         splits=(0.8, 0.1, 0.1))              # doctest: +SKIP
    """
    if layout != "imagefolder":
        raise ConfigError(f"layout must be 'imagefolder', got {layout!r}")
    if not 1 <= int(quality) <= 100:
        raise ConfigError(f"quality must be 1..100, got {quality!r}")
    crop, download = split_options(options, crop=crop, download=download)
    objects, frames = split_input(tables_or_objects, frames)
    labels = _row_labels(tables_or_objects, objects, label, label_column)
    split_of = _row_splits(objects, splits, seed)
    out = _out_dir(out_dir)
    object_ids = [str(v) for v in column(objects, "object_id")]
    planned = _crop_paths(object_ids, labels, _label_dirs(labels), split_of)
    paths: list[str | None] = [None] * len(objects)
    reasons: list[str | None] = [None] * len(objects)
    status = ["failed"] * len(objects)
    rows = list(range(len(objects)))
    if split_of is not None:
        rows = [pos for pos in rows if split_of[pos] is not None]
        for pos in set(range(len(objects))) - set(rows):
            status[pos], reasons[pos] = "skipped", "its media is in no split"
    results = iter_crops(
        objects.iloc[rows],
        frames,
        crop,
        download,
        on_error=on_error,
        workers=workers,
        progress=progress,
    )
    outcome = (paths, reasons, status)
    _save_results(out, ((rows[sub], r) for sub, r in results), planned, outcome, quality, on_error)
    manifest = _manifest_frame(object_ids, objects, labels, outcome)
    _write_manifest(out, manifest)
    _write_metadata(out, manifest, objects, split_of)
    return manifest


def export_crops_from_parquet(
    export_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], **kwargs: Any
) -> pd.DataFrame:
    """:func:`export_crops` over a Parquet export (``tables.to_parquet`` / ``export_parquet``).

    The objects and frames grains are read with :func:`coreviz_frames.parquet.read_parquet`;
    ``kwargs`` go to :func:`export_crops`. The ``coreviz-frames crops`` command calls this.

    Example:
        >>> export_crops_from_parquet("export/", "crops/", square=True)   # doctest: +SKIP
    """
    from .parquet import read_parquet

    tables = read_parquet(export_dir)
    return export_crops(tables, out_dir, **kwargs)

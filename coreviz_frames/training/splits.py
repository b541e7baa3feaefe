"""Which split each media is in: the one owner of split assignment.

Every writer and dataset (COCO, YOLO, Hugging Face, crops, ``DetectionDataset``,
``CropDataset``, :func:`split_by_media`, the CLI) asks :func:`assign_splits` (rows:
:func:`row_splits`; one split of a dataset: :func:`pick_split`), so they agree media by
media.

- With fractions a media's split is a pure function of its (normalised) id and the
  seed: ``blake2b(id, key=seed)`` gives a point uniform in ``[0, 1)`` that falls into
  one of the cumulative fractions. Adding or removing media never moves another one,
  and the fractions are of media (a video with 300 frames counts once).
- Fractions are ``(train, val, test)``, ``(train, val)`` or ``{name: fraction}``.
- A dict of rows or media ids per split name pins the assignment by hand; a
  ``splits.csv`` / ``splits.parquet`` file (or the folder of a dataset written
  earlier, which holds one) pins it forever: media not listed are in no split.
- A split that comes out empty is reported with an
  :class:`~coreviz_frames.errors.EmptySplitWarning`.

Example:
    >>> names, owner = assign_splits(["m1", "m2", "m3"], (0.5, 0.5), seed=0)
    >>> names, sorted(owner) == ["m1", "m2", "m3"]
    (['train', 'val'], True)
    >>> split_of("m1", {"train": 0.5, "val": 0.5}, seed=0) == owner["m1"]
    True
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from coreviz_frames._util.checks import check_choice
from coreviz_frames._util.fileio import atomic_writer
from coreviz_frames._util.ids import normalize_id
from coreviz_frames.errors import ConfigError, EmptySplitWarning
from coreviz_frames.images.crop_plan import present
from coreviz_frames.training.names import safe_name

__all__ = [
    "SPLITS_FILE",
    "SplitsArg",
    "assign_splits",
    "fraction_map",
    "pick_split",
    "row_splits",
    "split_by_media",
    "write_splits",
]

#: The one split of a dataset written without ``splits``.
ALL = "all"
#: The assignment every dataset writes beside its data: ``media_id,split``.
SPLITS_FILE = "splits.csv"
_PARQUET_FILE = "splits.parquet"
_NAMES = {2: ("train", "val"), 3: ("train", "val", "test")}
#: None (one split ``all``), fractions, ``{name: fraction}``, ``{name: rows or media ids}``,
#: or the path of a ``splits.csv`` / ``splits.parquet`` file or of a dataset folder.
SplitsArg = Sequence[float] | Mapping[str, Any] | str | os.PathLike[str] | None


def _is_fraction(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def fraction_map(fractions: Sequence[float] | Mapping[str, float]) -> dict[str, float]:
    """``{split name: fraction}`` from ``(train, val[, test])`` or a dict; checked.

    Example:
        >>> fraction_map((0.8, 0.2))
        {'train': 0.8, 'val': 0.2}
    """
    if isinstance(fractions, Mapping):
        pairs = [(k, v) for k, v in fractions.items()]
    elif isinstance(fractions, str | bytes) or not isinstance(fractions, Iterable):
        raise ConfigError(f"fractions must be (train, val[, test]) or a dict, got {fractions!r}")
    else:
        values = list(fractions)
        if len(values) not in _NAMES:
            raise ConfigError(
                f"fractions must be (train, val) or (train, val, test), got {fractions!r}"
            )
        pairs = list(zip(_NAMES[len(values)], values, strict=True))
    if not pairs or not all(_is_fraction(v) and math.isfinite(v) and v >= 0 for _, v in pairs):
        raise ConfigError(f"fractions must be non-negative numbers, got {fractions!r}")
    total = sum(float(v) for _, v in pairs)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ConfigError(f"fractions must add up to 1, got {fractions!r} (sum {total})")
    return {check_split_name(k): float(v) for k, v in pairs}


def check_split_name(name: Any) -> str:
    """``name`` if it can be a folder name (no separator, no dots-only, no spaces around).

    Example:
        >>> check_split_name("train")
        'train'
    """
    if not isinstance(name, str) or not name or safe_name(name) != name or name != name.strip():
        raise ConfigError(f"split name {name!r} is not a plain folder name")
    return name


def media_point(media_id: str, seed: int = 0) -> float:
    """The media's point in ``[0, 1)``: a keyed hash of its normalised id and the seed.

    Example:
        >>> media_point("m1", 0) == media_point("m1", 0) != media_point("m1", 1)
        True
    """
    key = str(int(seed)).encode()
    text = str(normalize_id(str(media_id))).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(text, key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_of(media_id: str, fractions: Mapping[str, float], seed: int = 0) -> str:
    """The split of one media under ``fractions`` (see :func:`fraction_map`) and ``seed``.

    Example:
        >>> split_of("any", {"train": 1.0, "test": 0.0})
        'train'
    """
    point = media_point(media_id, seed)
    upper = 0.0
    last = ""
    for name, fraction in fractions.items():
        if fraction <= 0:
            continue
        upper += fraction
        last = name
        if point < upper:
            return name
    return last  # rounding: the fractions add up to a hair under 1


def _warn_empty(names: Sequence[str], owner: Mapping[str, str], why: str) -> None:
    used = set(owner.values())
    empty = [n for n in names if n not in used]
    if empty and owner:
        warnings.warn(
            f"split {', '.join(map(repr, empty))} has no media ({why})",
            EmptySplitWarning,
            stacklevel=3,
        )


def _media_ids(part: Any, name: str) -> list[str]:
    """The media ids of one split of a dict: rows with a ``media_id`` column, or ids."""
    if isinstance(part, pd.DataFrame):
        if "media_id" not in part.columns:
            raise ConfigError(f"split {name!r} has no media_id column")
        return [str(m) for m in part["media_id"].dropna().unique()]
    media = getattr(part, "media", None)
    if isinstance(getattr(part, "objects", None), pd.DataFrame) and media is not None:
        return _media_ids(media, name)  # MediaTables
    if isinstance(part, str) or not isinstance(part, Iterable):
        raise ConfigError(f"split {name!r} must be rows with a media_id column or media ids")
    return [str(m) for m in part]


def _pinned(splits: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    names: list[str] = []
    owner: dict[str, str] = {}
    for name, part in splits.items():
        names.append(check_split_name(name))
        for mid in _media_ids(part, name):
            if owner.setdefault(mid, name) != name:
                raise ConfigError(f"media {mid} is in two splits: {owner[mid]!r} and {name!r}")
    return names, owner


def assign_splits(
    media: Iterable[str], splits: SplitsArg, seed: int = 0
) -> tuple[list[str], dict[str, str]]:
    """The split names, and ``{media id: split}`` for the media of ``media`` in a split.

    ``media`` holds media ids (repeats are fine: a media counts once). ``splits`` is
    None (one split ``all``), fractions (see :func:`fraction_map`; each media placed by
    :func:`split_of`), a dict of rows or media ids per split, or a splits file or a
    dataset folder (:func:`read_splits`). A split left empty gives an
    :class:`~coreviz_frames.errors.EmptySplitWarning`.

    Example:
        >>> assign_splits(["a", "b"], {"train": ["a"], "test": ["b"]})
        (['train', 'test'], {'a': 'train', 'b': 'test'})
        >>> assign_splits(["a", "b"], None)
        (['all'], {'a': 'all', 'b': 'all'})
    """
    ids = list(dict.fromkeys(str(m) for m in media))
    if splits is None:
        return [ALL], dict.fromkeys(ids, ALL)
    if isinstance(splits, str | os.PathLike):
        pinned = read_splits(splits)
        names = list(dict.fromkeys(pinned.values()))
        owner = {m: pinned[m] for m in ids if m in pinned}
        missing = len(ids) - len(owner)
        if missing:
            warnings.warn(
                f"{missing} media are not in {splits} and are left out (in no split)",
                EmptySplitWarning,
                stacklevel=2,
            )
        _warn_empty(names, owner, f"none of its media is in this data ({splits})")
        return names, owner
    if isinstance(splits, Mapping) and not all(_is_fraction(v) for v in splits.values()):
        names, listed = _pinned(splits)
        owner = {m: listed[m] for m in ids if m in listed}
        _warn_empty(names, owner, "none of its media is in this data")
        return names, owner
    fractions = fraction_map(splits)
    owner = {m: split_of(m, fractions, seed) for m in ids}
    _warn_empty([n for n, f in fractions.items() if f > 0], owner, "too few media")
    return list(fractions), owner


def _splits_path(path: str | os.PathLike[str]) -> Path:
    source = Path(path).expanduser()
    if source.is_dir():
        for name in (SPLITS_FILE, _PARQUET_FILE):
            if (source / name).is_file():
                return source / name
        raise ConfigError(
            f"{source} holds no {SPLITS_FILE}: pass the folder of a dataset written by "
            "coreviz_frames, or a splits file"
        )
    if not source.is_file():
        raise ConfigError(f"no splits file or dataset folder at {source}")
    return source


def read_splits(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{media id: split}`` from a ``splits.csv`` / ``.parquet`` file or a dataset folder.

    Example:
        >>> read_splits("coco/")["0a1b..."]   # doctest: +SKIP
        'train'
    """
    source = _splits_path(path)
    try:
        if source.suffix.lower() == ".parquet":
            table = pq.read_table(source)
        else:
            string = pa.string()
            options = pacsv.ConvertOptions(column_types={"media_id": string, "split": string})
            table = pacsv.read_csv(source, convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"cannot read the splits file {source}: {exc}") from None
    if not {"media_id", "split"} <= set(table.column_names):
        raise ConfigError(f"the splits file {source} needs the columns media_id and split")
    owner: dict[str, str] = {}
    media = table.column("media_id").to_pylist()
    for mid, name in zip(media, table.column("split").to_pylist(), strict=True):
        if mid is None or name is None:
            raise ConfigError(f"the splits file {source} has an empty media_id or split")
        if owner.setdefault(str(mid), check_split_name(str(name))) != name:
            raise ConfigError(f"media {mid} is in two splits in {source}")
    return owner


def write_splits(out: Path, owner: Mapping[str, str]) -> str:
    """Write ``out/splits.csv`` (``media_id,split``, sorted by media id); its name.

    Example:
        >>> import tempfile
        >>> write_splits(Path(tempfile.mkdtemp()), {"m1": "train"})
        'splits.csv'
    """
    media = sorted(owner)
    table = pa.table({"media_id": pa.array(media, pa.string()), "split": [owner[m] for m in media]})
    with atomic_writer(out / SPLITS_FILE) as fh:
        pacsv.write_csv(table, fh, pacsv.WriteOptions(quoting_style="needed"))
    return SPLITS_FILE


def row_splits(
    media_ids: Sequence[Any], splits: SplitsArg, seed: int = 0
) -> tuple[list[str], dict[str, str], list[str | None]]:
    """The split names, ``{media id: split}`` and each row's split (None: its media is in
    no split) for rows holding ``media_ids`` (:func:`assign_splits`).

    Example:
        >>> row_splits(["a", "b", "a"], {"train": ["a"], "test": ["b"]})
        (['train', 'test'], {'a': 'train', 'b': 'test'}, ['train', 'test', 'train'])
    """
    names, owner = assign_splits([str(m) for m in media_ids if present(m)], splits, seed)
    return names, owner, [owner.get(str(m)) if present(m) else None for m in media_ids]


def pick_split(names: Sequence[str], splits: SplitsArg, split: str | None) -> str | None:
    """``split`` checked: None without ``splits``, else one of the split ``names``.

    Example:
        >>> pick_split(["train", "val"], (0.8, 0.2), "val")
        'val'
    """
    if splits is None:
        if split is not None:
            raise ConfigError("split= needs splits= (fractions, a dict of splits or a splits file)")
        return None
    check_choice("split", split, list(names))
    return split


def _check_strata(df: pd.DataFrame, media: pd.Series, which: Any, stratify: str) -> None:
    """Warn about each value of ``stratify`` that has no media in some split."""
    values = df[stratify].astype("string").fillna("<NA>").to_numpy()
    pairs = pd.DataFrame({"m": media.to_numpy(), "v": values, "s": which})
    names = set(pairs["s"].dropna())
    lacking = [
        str(value)
        for value, group in pairs.groupby("v", sort=True)
        if group["m"].nunique() >= len(names) and set(group["s"].dropna()) != names
    ]
    if lacking:
        warnings.warn(
            f"{stratify} {', '.join(lacking[:5])}: not in every split (splits are by media "
            "id alone, so that they never move)",
            EmptySplitWarning,
            stacklevel=3,
        )


def split_by_media(
    df: Any,
    fractions: SplitsArg = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    stratify: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Split rows into ``train``/``val``/``test`` so that no media id is in two splits.

    Each media's split is :func:`assign_splits`'s: a keyed hash of its id and ``seed``, so
    adding or removing media never moves another, fractions are of media, and every writer
    given the same fractions and seed agrees. ``fractions`` is ``(train, val, test)``,
    ``(train, val)``, ``{name: fraction}``, a dict of rows or ids, or a ``splits.csv``
    file or dataset folder to reuse. ``stratify="label"`` (any column) does not change
    the assignment (that would break its stability); each value's media are split with
    the same fractions in expectation, and a value missing from a split is reported with
    an ``EmptySplitWarning``. Row order and index are kept.

    Example:
        >>> objs = pd.DataFrame({"media_id": list("aabbcdde"), "label": list("xxyyxyxy")})
        >>> parts = split_by_media(objs, (0.5, 0.5), seed=4)
        >>> sorted(parts), sum(len(p) for p in parts.values())
        (['train', 'val'], 8)
    """
    if not isinstance(df, pd.DataFrame):
        df = getattr(df, "objects", df)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a DataFrame or MediaTables, got {type(df).__name__}")
    if "media_id" not in df.columns:
        raise ConfigError("split_by_media needs a media_id column")
    if fractions is None:
        raise ConfigError("split_by_media needs fractions, a dict of splits or a splits file")
    if stratify is not None and stratify not in df.columns:
        raise ConfigError(f"no column {stratify!r} to stratify by")
    media = df["media_id"].astype("string").fillna("<NA>")
    names, owner = assign_splits(media.tolist(), fractions, seed)
    which = media.map(owner).to_numpy()
    if stratify is not None:
        _check_strata(df, media, which, stratify)
    return {name: df.loc[which == name] for name in names}

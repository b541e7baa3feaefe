"""MediaTables: the five typed DataFrames, and ``to_tables`` which builds them.

Example:
    >>> import coreviz_frames as cvf
    >>> tables = cvf.to_tables([])
    >>> tables.objects.columns[:3].tolist()
    ['object_id', 'frame_id', 'media_id']
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from coreviz_frames._util.checks import check_on_error
from coreviz_frames.errors import ConfigError, CorevizWarning
from coreviz_frames.schema import GRAINS, arrow_to_pandas, empty_frame
from coreviz_frames.tables.arrow import to_arrow
from coreviz_frames.tables.convert import arrow_to_polars, write_csv
from coreviz_frames.tables.flatten import FLATTEN_ON_ERROR, FlattenReport, flatten
from coreviz_frames.tables.joins import join_grains
from coreviz_frames.tables.pagechunks import PageRows, flatten_parts, part_size
from coreviz_frames.tables.preview import tables_html
from coreviz_frames.tables.subset import GrainPredicate, matching_media, media_ids_of, restrict

__all__ = ["MediaTables", "tags_wide", "to_tables"]


@dataclass(frozen=True)
class TablesSummary:
    """Row counts per grain, media per type and the most frequent object labels.

    Plain dicts, so ``pd.Series(summary.counts)`` or ``pd.DataFrame(summary.to_dict())``
    just work; ``str(summary)`` is a readable block of text.

    Example:
        >>> TablesSummary(counts={"media": 2}, media_types={"image": 2}, top_labels={}).counts
        {'media': 2}
    """

    counts: dict[str, int]
    media_types: dict[str, int] = field(default_factory=dict)
    top_labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, int]]:
        """``{"counts": ..., "media_types": ..., "top_labels": ...}``."""
        return {
            "counts": dict(self.counts),
            "media_types": dict(self.media_types),
            "top_labels": dict(self.top_labels),
        }

    def __str__(self) -> str:
        blocks = (self.counts, self.media_types, self.top_labels)
        width = max((len(str(k)) for items in blocks for k in items), default=0)
        digits = max((len(f"{v:,}") for items in blocks for v in items.values()), default=1)

        def block(title: str, items: dict[str, int]) -> list[str]:
            if not items:
                return [f"{title}: none"]
            return [f"{title}:"] + [f"  {k!s:<{width}}  {v:>{digits},}" for k, v in items.items()]

        lines = block("rows", self.counts)
        lines += block("media per type", self.media_types)
        lines += block("top labels", self.top_labels)
        return "\n".join(lines)


@dataclass(frozen=True, eq=False, repr=False)
class MediaTables:
    """The five grains of a set of media records, one DataFrame each.

    Every frame carries the ids of its ancestors, so no join is needed to group
    or filter; every DataFrame has the columns and dtypes of :mod:`.schema`.

    Example:
        >>> MediaTables.empty()
        MediaTables(media=0, frames=0, captions=0, objects=0, tags=0)
    """

    media: pd.DataFrame
    frames: pd.DataFrame
    captions: pd.DataFrame
    objects: pd.DataFrame
    tags: pd.DataFrame

    @classmethod
    def empty(cls) -> MediaTables:
        """Zero rows in every grain, with the full schema and dtypes."""
        return cls(**{grain: empty_frame(grain) for grain in GRAINS})

    def items(self):
        """``(grain, DataFrame)`` pairs in schema order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def to_parquet(self, path, **options):
        """Write one directory per grain under ``path``.

        See :func:`coreviz_frames.exports.store.write_tables` for the options.
        """
        # The one import from a higher layer, made inside the method (as Hugging Face's
        # Dataset.to_parquet imports its Parquet writer): the export store builds on
        # tables, so importing it at module level would make tables depend on exports.
        from coreviz_frames.exports.store import write_tables

        return write_tables(self, path, **options)

    def join(
        self,
        left: str,
        right: str,
        *,
        how: str = "left",
        columns: Sequence[str] | None = None,
        validate: str | None = None,
    ) -> pd.DataFrame:
        """Join two grains on their shared id; the right grain's columns carry its name.

        ``left``'s columns keep their names; every column of ``right`` but the ids is
        prefixed with its singular name (``media_width``, ``media_type``, ``frame_blob``,
        ``object_label``, ``tag_value``; ``frames_width`` where ``frame_width`` is already
        a left column), so nothing is shadowed and there are no ``_x``/``_y`` columns. The
        shared ids are kept once. Joined with an ancestor (``frames``, ``media``), ``left``
        keeps its row count; any other join repeats rows and is refused unless
        ``validate=`` (pandas' spelling: ``"one_to_many"``, ``"many_to_many"``) says so.
        ``columns`` limits the ``right`` columns brought in.

        Example:
            >>> t = MediaTables.empty()
            >>> t.join("objects", "media").filter(like="media_").columns.tolist()[:3]
            ['media_id', 'media_dataset_name', 'media_organization_id']
            >>> t.join("objects", "captions", validate="many_to_many").columns[-3:].tolist()
            ['caption_status', 'caption_created_at', 'caption_extra']
        """
        frames = dict(self.items())
        return join_grains(frames, left, right, how=how, columns=columns, validate=validate)

    def subset(self, *, media_ids: Iterable[str]) -> MediaTables:
        """The same five tables with only the rows of ``media_ids``, in every grain.

        Ids are compared as the tables store them (a hyphenated UUID matches its plain
        form). Ids the tables do not hold are left out with a warning naming them.

        Example:
            >>> t = to_tables([{"id": "m1", "type": "image"}, {"id": "m2", "type": "video"}])
            >>> t.subset(media_ids=["m2"])
            MediaTables(media=1, frames=0, captions=0, objects=0, tags=0)
        """
        wanted = media_ids_of(media_ids)
        missing = sorted(wanted - set(self.media["media_id"].dropna().tolist()))
        if missing:
            warnings.warn(
                f"subset: {len(missing):,} of the {len(wanted):,} media ids are not in these "
                f"tables (such as {missing[0]!r}); they are left out",
                CorevizWarning,
                stacklevel=2,
            )
        return MediaTables(**restrict(dict(self.items()), wanted))

    def where(
        self,
        *,
        label: str | Iterable[str] | None = None,
        object_type: str | Iterable[str] | None = None,
        tag_filters: Mapping[str, str | Iterable[str]] | None = None,
        caption: str | None = None,
        media_type: str | Iterable[str] | None = None,
        media: GrainPredicate | None = None,
        frames: GrainPredicate | None = None,
        captions: GrainPredicate | None = None,
        objects: GrainPredicate | None = None,
        tags: GrainPredicate | None = None,
    ) -> MediaTables:
        """The media that match, with every grain restricted to them (all their rows).

        ``label``/``object_type``: the media has an object with that label or type (a list:
        any of them); ``tag_filters``: ``{"color": ["red", "blue"]}``, as ``browse`` takes it
        (AND between keys, OR within one; a key no media has warns with the keys there are);
        ``caption``: one of its captions holds this text (case ignored); ``media_type``:
        ``image``, ``video``, ``pdf``; ``media=``, ``frames=``, ``captions=``, ``objects=``,
        ``tags=``: a predicate on that grain (a callable giving a boolean Series, or a
        ``DataFrame.eval`` expression), the media having at least one row it accepts.
        Criteria combine with AND. Rows keep their order; see :meth:`subset`.

        Example:
            >>> t = to_tables([{"id": "m1", "type": "image", "metadata": {"tags": {"c": ["red"]}}},
            ...                {"id": "m2", "type": "video"}])
            >>> t.where(tag_filters={"c": "red"}).media.media_id.tolist()
            ['m1']
            >>> t.where(media="type == 'video'").media.media_id.tolist()
            ['m2']
        """
        given = {"media": media, "frames": frames, "captions": captions}
        given.update({"objects": objects, "tags": tags})
        found = matching_media(
            dict(self.items()),
            label=label,
            object_type=object_type,
            tag_filters=tag_filters,
            caption=caption,
            media_type=media_type,
            predicates={g: p for g, p in given.items() if p is not None},
        )
        return MediaTables(**restrict(dict(self.items()), found))

    def _grains(self, grains: Iterable[str] | None) -> list[str]:
        wanted = list(GRAINS if grains is None else [grains] if isinstance(grains, str) else grains)
        unknown = [g for g in wanted if g not in GRAINS]
        if unknown:
            raise ConfigError(f"unknown grain {unknown[0]!r}; choose from {', '.join(GRAINS)}")
        return wanted

    def to_arrow(self, grains: Iterable[str] | None = None) -> dict[str, pa.Table]:
        """``{grain: pyarrow.Table}`` with the declared Arrow schema (all grains by default).

        Example:
            >>> MediaTables.empty().to_arrow(["tags"])["tags"].schema.names
            ['media_id', 'dataset_id', 'key', 'value']
        """
        return {g: to_arrow(getattr(self, g), g) for g in self._grains(grains)}

    def to_polars(self, grains: Iterable[str] | None = None) -> dict[str, Any]:
        """``{grain: polars.DataFrame}`` (needs ``pip install "coreviz-frames[polars]"``).

        Example:
            >>> MediaTables.empty().to_polars()["objects"].height  # doctest: +SKIP
            0
        """
        return {g: arrow_to_polars(t) for g, t in self.to_arrow(grains).items()}

    def to_csv(
        self, path: str | os.PathLike[str], grains: Iterable[str] | None = None
    ) -> list[Path]:
        """Write ``<grain>.csv`` per grain into the directory ``path``; returns the files.

        Polygons and other lists are one-line JSON text (``[{"x":1.0,"y":2.0}, ...]``),
        timestamps ISO-8601 in UTC, missing values empty cells.

        Example:
            >>> import tempfile
            >>> [f.name for f in MediaTables.empty().to_csv(tempfile.mkdtemp(), ["tags"])]
            ['tags.csv']
        """
        root = Path(path)
        return [write_csv(getattr(self, g), root / f"{g}.csv") for g in self._grains(grains)]

    def summary(self, top: int = 10) -> TablesSummary:
        """Row counts per grain, media per type and the ``top`` object labels.

        Example:
            >>> print(MediaTables.empty().summary())  # doctest: +NORMALIZE_WHITESPACE
            rows:
              media              0
            ...
        """
        counts = {grain: len(frame) for grain, frame in self.items()}
        types = self.media["type"].fillna("<null>").value_counts(sort=True)
        labels = self.objects["label"].fillna("<null>").value_counts(sort=True).head(top)
        return TablesSummary(
            counts=counts,
            media_types={str(k): int(v) for k, v in types.items()},
            top_labels={str(k): int(v) for k, v in labels.items()},
        )

    def __repr__(self) -> str:
        counts = ", ".join(f"{grain}={len(frame)}" for grain, frame in self.items())
        return f"MediaTables({counts})"

    def _repr_html_(self, rows: int = 5) -> str:
        """Notebook view: row counts, then ``rows`` compact rows per grain (see
        :mod:`.preview`: short ids, ``4 pts`` polygons, cached crop thumbnails)."""
        return tables_html(self.items(), rows)


def to_tables(
    records: Iterable[dict],
    *,
    on_error: str | None = None,
    report: FlattenReport | None = None,
    errors: str | None = None,
) -> MediaTables:
    """Flatten media records into :class:`MediaTables` (pure, no I/O).

    ``records`` is any iterable (a generator works) of Get Media inner objects,
    browse items or whole ``{"media": {...}}`` responses; folder rows are not
    media and are left out. A malformed record raises
    :class:`~coreviz_frames.errors.SchemaError` naming the media id and the
    field (e.g. ``frames[2].width``); with ``on_error="skip"`` it is left out
    with a :class:`SkippedRecordWarning`, and listed in ``report.skipped`` when
    a :class:`FlattenReport` is passed. ``errors=`` is the deprecated spelling of
    ``on_error=``. Text holding a lone surrogate (the JSON escape ``\\ud800``,
    not Unicode) is kept with U+FFFD in its place.

    Example:
        >>> report = FlattenReport()
        >>> t = to_tables([{"id": "m1"}, {"frames": []}], on_error="skip", report=report)
        ...  # doctest: +SKIP
        >>> len(t.media), report.skipped_count  # doctest: +SKIP
        (1, 1)
    """
    mode = check_on_error(on_error, allowed=FLATTEN_ON_ERROR, errors=errors)
    arrow = flatten_chunks(records, on_error=mode, report=report)
    return MediaTables(**{grain: arrow_to_pandas(arrow[grain], grain) for grain in GRAINS})


#: Records :func:`flatten_chunks` flattens at a time.
FLATTEN_CHUNK = 2000


def flatten_chunks(
    records: Iterable[Any],
    *,
    on_error: str = "raise",
    report: FlattenReport | None = None,
    chunk: int = FLATTEN_CHUNK,
) -> dict[str, pa.Table]:
    """:func:`~coreviz_frames.tables.flatten.flatten`, ``chunk`` records at a time, as they arrive.

    The records of a chunk are released once flattened (its Arrow columns take a fraction
    of the memory of the dicts), so ``to_tables(client.browse(...))`` never holds the whole
    collection as Python objects, and the garbage collector has a small heap to walk.
    The tables are the ones one call of ``flatten`` would build.

    A browse (``client.browse(...)``, ``client.iter_range(...)``) is walked as page chunks
    (its ``chunks()``): pages pyarrow reads provably exactly are flattened by Arrow compute
    without being decoded (:func:`~coreviz_frames.tables.pagechunks.flatten_parts`), other
    chunks the exact way; :class:`~coreviz_frames.tables.pagechunks.PageRows` among
    ``records`` are taken the same way.

    Example:
        >>> from coreviz_frames.local_api.synthetic import iter_synthetic
        >>> tables = flatten_chunks(iter_synthetic(5), chunk=2)
        >>> tables["media"].num_rows
        5
    """
    if isinstance(records, Mapping):
        records = [records]
    chunks = getattr(records, "chunks", None)
    if callable(chunks) and hasattr(records, "report"):  # a client's browse
        records = chunks()
    parts: list[dict[str, pa.Table]] = []
    pending: list[Any] = []
    size = 0

    def flush() -> None:
        own = FlattenReport()  # flatten warns once per skipped record of its own report
        if any(isinstance(p, PageRows) for p in pending):
            parts.append(flatten_parts(pending, on_error=on_error, report=own))
        else:
            parts.append(flatten(pending, on_error=on_error, report=own)[0])
        if report is not None:
            report.skipped.extend(own.skipped)
            report.folders += own.folders
        pending.clear()

    for record in records:
        pending.append(record)
        size += part_size(record)
        if size >= chunk:
            flush()
            size = 0
    if pending or not parts:
        flush()
    if len(parts) == 1:
        return parts[0]
    return {grain: pa.concat_tables([part[grain] for part in parts]) for grain in GRAINS}


def tags_wide(tags: pd.DataFrame, *, sep: str | None = None) -> pd.DataFrame:
    """Pivot the long ``tags`` table wide: one row per media, one column per tag key.

    Cells hold the list of values of that key, in their API order (``None``
    where the media has no value for the key); with ``sep`` they are joined
    into one string instead (``<NA>`` where missing). The index is
    ``media_id``; media without any tag have no row.

    Example:
        >>> long = pd.DataFrame({"media_id": ["m1", "m1", "m2"], "dataset_id": None,
        ...                      "key": ["color", "color", "split"],
        ...                      "value": ["red", "blue", "train"]})
        >>> tags_wide(long, sep="|").loc["m1", "color"]
        'red|blue'
    """
    cells: dict[str, dict[str, list[str]]] = {}
    for media_id, key, value in zip(
        tags["media_id"].tolist(), tags["key"].tolist(), tags["value"].tolist(), strict=True
    ):
        cells.setdefault(media_id, {}).setdefault(key, []).append(value)
    keys = list(dict.fromkeys(tags["key"].tolist()))
    index = pd.Index(list(cells), name="media_id", dtype=tags["media_id"].dtype)
    if sep is None:
        lists = {k: [cells[m].get(k) for m in cells] for k in keys}
        wide = pd.DataFrame(lists, index=index, columns=keys, dtype=object)
    else:
        joined = {
            k: [sep.join(cells[m][k]) if k in cells[m] else None for m in cells] for k in keys
        }
        wide = pd.DataFrame(joined, index=index, columns=keys).astype(pd.StringDtype("pyarrow"))
    wide.columns.name = "key"
    return wide

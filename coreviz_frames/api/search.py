"""Organisation-wide search results (``GET /api/search``) as tables: :class:`SearchResults`.

A search answers frame-level results: the frame itself, a reduced ``media``, captions as
``{id, text}``, objects with their ``polygon``, a ``rank`` and ``rankingMetrics``
(``textRank``, ``objectEmbeddingRank``, ``totalRank``). Nothing of it is dropped:

- ``hits``: one row per result, in the API's order: ``query``, ``hit_rank`` (1 = first),
  ``frame_id``, ``media_id``, ``rank``, ``text_rank``, ``object_embedding_rank``,
  ``total_rank``, and ``extra`` (JSON text of any other ranking metric, under its API
  spelling, and of any rank that was not a number);
- ``tables``: a :class:`~coreviz_frames.tables.media_tables.MediaTables` of the media, frames,
  captions and objects that came back (reduced media fill what they have; polygons kept, boxes
  derived; unknown fields of a result or its media land in ``extra``);
- iterating a :class:`SearchResults` yields those media records, so ``to_tables(results)``
  works too; ``results`` keeps the raw results as sent, ``extra`` the response's unknown keys.

Example:
    >>> body = {"results": [{"id": "f1", "timestamp": "0", "width": 10, "height": 10,
    ...     "media": {"id": "m1", "name": "a.jpg", "type": "image"},
    ...     "captions": [{"id": "c1", "text": "a flower"}],
    ...     "objects": [{"id": "o1", "label": "flower", "polygon": [{"x": 1, "y": 2},
    ...                  {"x": 5, "y": 2}, {"x": 5, "y": 8}, {"x": 1, "y": 8}]}],
    ...     "rank": 0.3, "rankingMetrics": {"textRank": 0.1, "totalRank": 0.3}}]}
    >>> res = SearchResults.from_response(body, query="flower")
    >>> res.hits[["hit_rank", "frame_id", "rank", "text_rank"]].values.tolist()
    [[1, 'f1', 0.3, 0.1]]
    >>> res.tables.objects[["label", "bbox_w", "bbox_h"]].values.tolist()
    [['flower', 4.0, 6.0]]
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from coreviz_frames._util.checks import is_missing
from coreviz_frames._util.ids import id_key, normalize_id
from coreviz_frames._util.terminal import printable
from coreviz_frames.api.responses import objects_at
from coreviz_frames.errors import CorevizWarning, SkippedRecordWarning
from coreviz_frames.tables.flatten import FlattenReport
from coreviz_frames.tables.listings import extra_json, fit_cell, typed_frame
from coreviz_frames.tables.media_tables import MediaTables, to_tables
from coreviz_frames.tables.preview import listing_html

__all__ = ["SearchResults"]

#: The columns of :attr:`SearchResults.hits`, with their Arrow types.
HIT_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("query", pa.string()),
    ("hit_rank", pa.int64()),
    ("frame_id", pa.string()),
    ("media_id", pa.string()),
    ("rank", pa.float64()),
    ("text_rank", pa.float64()),
    ("object_embedding_rank", pa.float64()),
    ("total_rank", pa.float64()),
    ("extra", pa.string()),
)
#: ``rankingMetrics`` keys that have a column of their own.
RANKING_METRICS = {
    "textRank": "text_rank",
    "objectEmbeddingRank": "object_embedding_rank",
    "totalRank": "total_rank",
}
#: Result keys that are not frame fields (they go to ``hits``, not to the frames table).
_HIT_KEYS = frozenset(("media", "rank", "rankingMetrics"))


def _number(value: Any) -> float | None:
    """A finite number (or numeric string) as float; anything else (``10**400``,
    ``"1e400"``, an object) None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return fit_cell(value, pa.float64())[1]


def _media_id(result: Mapping[str, Any]) -> str | None:
    media = result.get("media")
    if isinstance(media, Mapping) and isinstance(media.get("id"), str):
        return media["id"]
    return result.get("mediaId") if isinstance(result.get("mediaId"), str) else None


def _hit(position: int, result: Mapping[str, Any], query: str) -> dict[str, Any]:
    """One ``hits`` row: ranks in their columns, anything else about the rank in ``extra``."""
    extra: dict[str, Any] = {}
    rank = _number(result.get("rank"))
    if rank is None and result.get("rank") is not None:
        extra["rank"] = result["rank"]
    row: dict[str, Any] = {
        "query": query,
        "hit_rank": position + 1,
        "frame_id": id_key(result.get("id")),
        "media_id": id_key(_media_id(result)),
        "rank": rank,
    }
    if row["frame_id"] is None and result.get("id") is not None:
        extra["id"] = result["id"]  # an id of the wrong type: kept, never lost
    metrics = result.get("rankingMetrics")
    if isinstance(metrics, Mapping):
        for key, value in metrics.items():
            column = RANKING_METRICS.get(key)
            number = _number(value)
            if column is not None and (number is not None or value is None):
                row[column] = number
            else:
                extra.setdefault("rankingMetrics", {})[key] = value
    elif metrics is not None:
        extra["rankingMetrics"] = metrics
    row["extra"] = extra_json(extra, known=())
    return row


def search_records(results: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Media records (``{**media, "frames": [...]}``) of frame-level search results.

    Frames of one media are grouped under it, in the order they came (a repeated frame
    once); the result's keys other than ``media``, ``rank`` and ``rankingMetrics`` are the
    frame's. A result without any media id is left out, with a :class:`SkippedRecordWarning`
    (it stays in ``hits``).

    Example:
        >>> recs = search_records([{"id": "f1", "media": {"id": "m1"}, "rank": 1},
        ...                        {"id": "f2", "media": {"id": "m1"}, "rank": 0.5}])
        >>> [(r["id"], [f["id"] for f in r["frames"]]) for r in recs]
        [('m1', ['f1', 'f2'])]
    """
    records: dict[str, dict] = {}
    seen_frames: set[tuple[str, Any]] = set()
    for position, result in enumerate(results):
        media_id = _media_id(result)
        if media_id is None:
            warnings.warn(
                f"search result {position} (frame {result.get('id')!r}) names no media: "
                "kept in hits, left out of the tables",
                SkippedRecordWarning,
                stacklevel=3,
            )
            continue
        media = result.get("media")
        key = normalize_id(media_id) or media_id
        if key not in records:
            base = dict(media) if isinstance(media, Mapping) else {"id": media_id}
            records[key] = {**base, "frames": []}
        frame = {k: v for k, v in result.items() if k not in _HIT_KEYS}
        frame_key = (key, frame.get("id"))
        if isinstance(frame_key[1], str):  # an id of another type: to_tables reports it
            if frame_key in seen_frames:
                continue
            seen_frames.add(frame_key)
        records[key]["frames"].append(frame)
    return list(records.values())


def _cell(value: Any) -> str:
    """A value of the text table: on one line, control characters shown, not run."""
    return "" if is_missing(value) else printable(value)


def _num(value: Any) -> str:
    return "-" if is_missing(value) else f"{value:.3f}"


def _within_limit(
    results: list[Mapping[str, Any]], limit: int | None, query: str
) -> list[Mapping[str, Any]]:
    """The first ``limit`` results; a warning says how many more the server sent."""
    if limit is None or len(results) <= limit:
        return results
    warnings.warn(
        f"search {query!r}: the server sent {len(results)} results for limit={limit}; "
        f"the {len(results) - limit} beyond the limit were dropped",
        CorevizWarning,
        stacklevel=5,
    )
    return results[:limit]


def _results_of(
    body: Mapping[str, Any], url: str | None, limit: int | None, query: str
) -> list[dict[str, Any]]:
    """The body's ``results`` list, cut to ``limit`` before anything else looks at them."""
    results = body.get("results")
    if isinstance(results, list):
        body = {**body, "results": _within_limit(results, limit, query)}
    return objects_at(body, "results", what="search", url=url or "/api/search")


@dataclass(frozen=True, eq=False, repr=False)
class SearchResults:
    """The answer of :meth:`Client.search <coreviz_frames.api.client.Client.search>` (see the
    module docstring): ``hits``, ``tables``, the raw ``results`` and the media ``records``.

    Example:
        >>> res = client.search("purple flowers", limit=10)
        >>> res.hits.merge(res.tables.media[["media_id", "name"]], on="media_id")
        >>> cvf.to_tables(res).objects.polygon
    """

    query: str
    hits: pd.DataFrame
    tables: MediaTables
    results: list[dict]
    records: list[dict]
    organization_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    report: FlattenReport = field(default_factory=FlattenReport)
    collection_id: str | None = None

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        query: str,
        organization_id: str | None = None,
        url: str | None = None,
        limit: int | None = None,
    ) -> SearchResults:
        """Build from a ``GET /api/search`` body (``{"results": [...]}``); a body of another
        shape is an :class:`~coreviz_frames.errors.InvalidResponseError`. A malformed result
        is left out of ``tables`` (listed in ``report.skipped``) but kept in ``hits``. Results
        beyond ``limit`` (a server that ignored it) are dropped with a warning saying how
        many, before anything is built of them."""
        results = [dict(r) for r in _results_of(body, url, limit, query)]
        hits = typed_frame(HIT_COLUMNS, [_hit(i, r, query) for i, r in enumerate(results)])
        records = search_records(results)
        report = FlattenReport()
        tables = to_tables(records, on_error="skip", report=report)
        extra = {k: v for k, v in body.items() if k != "results"}
        return cls(query, hits, tables, results, records, organization_id, extra, report)

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], *, query: str, collection_id: str
    ) -> SearchResults:
        """Build from the media records of a scored browse (``browse(collection_id, q=...)``),
        best first: one hit per media (``frame_id`` null, ``rank`` its ``_score``); the
        tables are the records' whole tables.

        Example:
            >>> res = SearchResults.from_records([{"id": "m1", "_score": 0.5}], query="cat",
            ...                                  collection_id="c1")
            >>> res.hits[["hit_rank", "media_id", "rank"]].values.tolist()
            [[1, 'm1', 0.5]]
        """
        results = [dict(r) for r in records]
        rows = [
            _hit(i, {"media": r, "rank": r.get("_score")}, query) for i, r in enumerate(results)
        ]
        hits = typed_frame(HIT_COLUMNS, rows)
        report = FlattenReport()
        tables = to_tables(results, on_error="skip", report=report)
        return cls(
            query, hits, tables, results, results, report=report, collection_id=collection_id
        )

    def __iter__(self) -> Iterator[dict]:
        """The media records, so ``to_tables(results)`` flattens them."""
        return iter(self.records)

    def __len__(self) -> int:
        """The number of hits (frames)."""
        return len(self.results)

    def __repr__(self) -> str:
        where = "" if self.collection_id is None else f", collection_id={self.collection_id!r}"
        return (
            f"SearchResults(query={self.query!r}{where}, hits={len(self.hits)}, "
            f"media={len(self.tables.media)})"
        )

    def to_text(self) -> str:
        """A short table of the hits, best first: position, ranks, ids and media name.

        Example:
            >>> print(res.to_text())  # doctest: +SKIP
            2 hit(s) for 'rocket':
              #   rank   text  object  media         frame         name
              1  0.750  0.250   0.500  aea05ccc7dff  0e5e4b95833f  rocket.jpg
        """
        names = dict(zip(self.tables.media.media_id, self.tables.media.name, strict=True))
        lines = [f"{len(self.hits)} hit(s) for {self.query!r}:"]
        if len(self.hits):
            lines.append(
                f"  {'#':>2}  {'rank':>5}  {'text':>5}  {'object':>6}  {'media':<12}  "
                f"{'frame':<12}  name"
            )

        for hit in self.hits.itertuples(index=False):
            media, frame = _cell(hit.media_id), _cell(hit.frame_id)
            lines.append(
                f"  {hit.hit_rank:>2}  {_num(hit.rank):>5}  {_num(hit.text_rank):>5}  "
                f"{_num(hit.object_embedding_rank):>6}  {media[:12]:<12}  {frame[:12]:<12}  "
                f"{_cell(names.get(media))}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The hits in the package's compact style: the query said once, in the caption;
        each hit with its media name; short ids (the full id in a tooltip)."""
        names = dict(zip(self.tables.media.media_id, self.tables.media.name, strict=True))
        view = self.hits.drop(columns="query")
        view.insert(1, "name", view["media_id"].map(names))
        caption = f"{len(self.hits):,} hit(s) for {self.query!r} in {len(names):,} media"
        return listing_html(view, caption=caption, lead=("hit_rank", "name", "rank"))

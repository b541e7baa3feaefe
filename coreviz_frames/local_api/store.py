"""Collections served by the local API: loading, lookup and browse queries.

Two collections share one interface: :class:`FileCollection` (``collection.json`` of a
data directory, see ``data/make_sample.py``) and :class:`SyntheticCollection` (N records
of :mod:`coreviz_frames.local_api.synthetic`, generated on demand). Rows (media and folders) are
addressed by index; :class:`Entry` holds the cheap facts that filters and sorting need,
so a browse page only builds the records it returns.

Example:
    >>> coll = SyntheticCollection(100_000)
    >>> page = browse(coll, BrowseQuery.parse({"recursive": "true", "limit": "2"}))
    >>> page.total, len(page.records)
    (100000, 2)
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from coreviz_frames._util.ids import normalize_id
from coreviz_frames.errors import ConfigError
from coreviz_frames.local_api import synthetic as _syn

__all__ = [
    "BrowseQuery",
    "Collection",
    "Entry",
    "FileCollection",
    "QueryError",
    "SyntheticCollection",
    "browse_indices",
    "light_item",
]

MEDIA_TYPES = ("image", "video", "pdf", "folder")
SORT_KEYS = ("name", "createdAt", "type")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LIGHT_FRAME_KEYS = ("id", "timestamp", "blob", "width", "height")
#: ``similarToObjectModel`` -> the ``type`` of the objects that model compares.
MODEL_OBJECT_TYPES = {"faces": "face", "objects": "object", "shoeprints": "shoeprint"}


def cluster_id_of(label: str) -> str:
    """The local API's cluster of the objects labelled ``label`` (``clusterId`` filter).

    Example:
        >>> cluster_id_of("Coffee cup")
        'cluster-coffee-cup'
    """
    return "cluster-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


class QueryError(ValueError):
    """An invalid browse parameter (answered with HTTP 400)."""


class Entry(NamedTuple):
    """The facts about one row that filtering and sorting need."""

    id: str
    name: str
    type: str
    created_at: str
    parent: str  # ltree path of the containing folder (the collection id at the root)
    tags: Mapping[str, Sequence[str]]


class Collection:
    """Interface of a served collection; rows are indexed ``0 .. len - 1``."""

    collection_id: str

    def __len__(self) -> int:
        raise NotImplementedError

    def entry(self, index: int) -> Entry:
        """What browse filters and sorts on, for row ``index``."""
        raise NotImplementedError

    def record(self, index: int) -> dict:
        """The full Get Media record (or folder row) of row ``index``; do not mutate it."""
        raise NotImplementedError

    def lookup(self, media_id: str) -> int | None:
        """The row index of ``media_id`` (hyphenated or not), or None."""
        raise NotImplementedError

    def tags(self) -> dict[str, list[str]]:
        """Every tag key of the collection with its sorted values."""
        raise NotImplementedError

    def ordered(self, sort_by: str, descending: bool) -> Sequence[int] | None:
        """All rows in order without filtering, if the collection can say so cheaply."""
        return None

    def iter_records(self):
        for index in range(len(self)):
            yield index, self.record(index)


def _parent(path: str | None, collection_id: str) -> str:
    if not path or "." not in path:
        return collection_id
    return path.rsplit(".", 1)[0]


class FileCollection(Collection):
    """The collection stored in ``<data_dir>/collection.json`` (dataset, folders, media)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        doc = json.loads((self.data_dir / "collection.json").read_text(encoding="utf-8"))
        self.dataset: dict = doc["dataset"]
        self.collection_id = self.dataset["id"]
        media: list[dict] = doc["media"]
        folders = [dict(row) for row in doc.get("folders", [])]
        for row in folders:
            prefix = row["path"] + "."
            row["folderItemCount"] = sum(
                1 for m in media if (m.get("path") or "").startswith(prefix)
            )
        self._rows: list[dict] = folders + media
        self._entries = [
            Entry(
                id=row["id"],
                name=row.get("name") or "",
                type=row.get("type") or "",
                created_at=row.get("createdAt") or "",
                parent=_parent(row.get("path"), self.collection_id),
                tags=(row.get("metadata") or {}).get("tags") or {},
            )
            for row in self._rows
        ]
        self._by_id: dict[str, int] = {}
        for index, row in enumerate(self._rows):
            self._by_id.setdefault(row["id"], index)
            self._by_id.setdefault(normalize_id(row["id"]) or "", index)

    def __len__(self) -> int:
        return len(self._rows)

    def entry(self, index: int) -> Entry:
        return self._entries[index]

    def record(self, index: int) -> dict:
        return self._rows[index]

    def lookup(self, media_id: str) -> int | None:
        found = self._by_id.get(media_id)
        return found if found is not None else self._by_id.get(normalize_id(media_id) or "")

    def tags(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for entry in self._entries:
            for key, values in entry.tags.items():
                out.setdefault(key, set()).update(values)
        return {key: sorted(values) for key, values in sorted(out.items())}


@lru_cache(maxsize=2048)
def _synthetic_record(index: int, collection_id: str) -> dict:
    return _syn.synthetic_media(index, collection_id=collection_id)


class SyntheticCollection(Collection):
    """``count`` synthetic records, built on demand (no folder rows; paths name folders f0..f3).

    Entries are computed by index arithmetic mirroring :func:`synthetic_media` (a test
    checks they agree); the id -> index map is built lazily on the first lookup.
    """

    def __init__(self, count: int, *, collection_id: str = _syn.SYNTHETIC_COLLECTION_ID) -> None:
        if count < 0:
            raise ConfigError("count must be >= 0")
        self.count = count
        self.collection_id = collection_id
        self.dataset = {
            "id": collection_id,
            "name": "Synthetic collection",
            "organizationId": "synthetic-org",
        }
        self._ids: list[str] | None = None
        self._by_id: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.count

    def media_id(self, index: int) -> str:
        ids = self._ids
        return (
            ids[index] if ids is not None else _syn.synthetic_id(self.collection_id, "media", index)
        )

    def _index(self) -> dict[str, int]:
        with self._lock:
            if self._by_id is None:
                ids = [self.media_id(i) for i in range(self.count)]
                self._by_id = {media_id: i for i, media_id in enumerate(ids)}
                self._ids = ids
            return self._by_id

    def entry(self, index: int) -> Entry:
        return Entry(
            id=self.media_id(index),
            name=_syn.synthetic_name(index),
            type="video" if _syn.synthetic_is_video(index) else "image",
            created_at=_syn.synthetic_created_at(index),
            parent=f"{self.collection_id}.{_syn.synthetic_folder(index)}",
            tags=_syn.synthetic_tags(index),
        )

    def record(self, index: int) -> dict:
        return _synthetic_record(index, self.collection_id)

    def lookup(self, media_id: str) -> int | None:
        return self._index().get(media_id)

    def tags(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for index in range(min(self.count, 10)):  # tag values cycle within 10 records
            for key, values in self.entry(index).tags.items():
                out.setdefault(key, set()).update(values)
        return {key: sorted(values) for key, values in sorted(out.items())}

    def ordered(self, sort_by: str, descending: bool) -> Sequence[int] | None:
        if sort_by not in ("createdAt", "name"):  # both grow with the index
            return None
        return range(self.count - 1, -1, -1) if descending else range(self.count)


def _as_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise QueryError(f"{name} must be true or false")


def _as_int(value: str, name: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"{name} must be an integer") from None
    if number < minimum:
        raise QueryError(f"{name} must be >= {minimum}")
    return number


def _tag_filters(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ``tagFilters`` JSON object as sorted ``(key, values)`` pairs."""
    if not text:
        return ()
    try:
        raw = json.loads(text)
    except ValueError:
        raise QueryError("tagFilters must be a JSON object") from None
    if not isinstance(raw, dict):
        raise QueryError("tagFilters must be a JSON object")
    pairs = []
    for key, values in raw.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise QueryError("tagFilters values must be lists of strings")
        pairs.append((str(key), tuple(values)))
    return tuple(sorted(pairs))


def _as_float(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise QueryError(f"{name} must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise QueryError(f"{name} must be a finite number")
    return number


def _date(value: str | None, name: str) -> str | None:
    if value is not None and not _DATE.fullmatch(value):
        raise QueryError(f"{name} must be YYYY-MM-DD")
    return value


@dataclass(frozen=True)
class BrowseQuery:
    """The parameters of ``GET /api/dataset/{id}/media``, validated.

    Example:
        >>> BrowseQuery.parse({"limit": "5", "type": "image"}).limit
        5
    """

    path: str | None = None
    recursive: bool = False
    type: str | None = None
    tag_filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tags: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    q: str | None = None
    similar_to_object_id: str | None = None
    media_id: str | None = None
    similar_to_object_model: str | None = None
    cluster_id: str | None = None
    min_score: float | None = None
    sort_by: str = "createdAt"
    descending: bool = True
    limit: int = 10
    offset: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> BrowseQuery:
        """Build a query from single-valued query parameters; raise QueryError if invalid."""
        kind = params.get("type") or None
        if kind is not None and kind not in (*MEDIA_TYPES, "all"):
            raise QueryError(f"type must be one of {', '.join((*MEDIA_TYPES, 'all'))}")
        sort_by = params.get("sortBy") or "createdAt"
        if sort_by not in SORT_KEYS:
            raise QueryError(f"sortBy must be one of {', '.join(SORT_KEYS)}")
        direction = (params.get("sortDirection") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise QueryError("sortDirection must be asc or desc")
        tag_filters = _tag_filters(params.get("tagFilters") or "")
        dates = {name: _date(params.get(name) or None, name) for name in ("dateFrom", "dateTo")}
        tags = tuple(t.strip() for t in (params.get("tags") or "").split(",") if t.strip())
        model = params.get("similarToObjectModel") or None
        if model is not None and model not in MODEL_OBJECT_TYPES:
            raise QueryError(f"similarToObjectModel must be one of {', '.join(MODEL_OBJECT_TYPES)}")
        return cls(
            path=params.get("path") or None,
            recursive=_as_bool(params.get("recursive", "false"), "recursive"),
            type=None if kind == "all" else kind,
            tag_filters=tag_filters,
            tags=tags,
            date_from=dates["dateFrom"],
            date_to=dates["dateTo"],
            q=params.get("q") or None,
            similar_to_object_id=params.get("similarToObjectId") or None,
            media_id=params.get("mediaId") or None,
            similar_to_object_model=model,
            cluster_id=params.get("clusterId") or None,
            min_score=_as_float(params.get("minScore"), "minScore"),
            sort_by=sort_by,
            descending=direction == "desc",
            limit=_as_int(params.get("limit", "10"), "limit", 1),
            offset=_as_int(params.get("offset", "0"), "offset", 0),
        )

    @property
    def scored(self) -> bool:
        return self.q is not None or self.similar_to_object_id is not None

    def matches(self, entry: Entry, root: str) -> bool:
        """Whether ``entry`` passes every cheap filter (not the scored ones)."""
        base = self.path or root
        if entry.parent != base and not (self.recursive and entry.parent.startswith(base + ".")):
            return False
        if self.type is not None and entry.type != self.type:
            return False
        for key, values in self.tag_filters:
            if not set(entry.tags.get(key, ())) & set(values):
                return False
        if self.tags and not any(v in self.tags for vs in entry.tags.values() for v in vs):
            return False
        day = entry.created_at[:10]
        if self.date_from is not None and day < self.date_from:
            return False
        if self.date_to is not None and day > self.date_to:
            return False
        return self.media_id is None or normalize_id(entry.id) == normalize_id(self.media_id)

    @property
    def unfiltered(self) -> bool:
        return (
            self.path is None
            and self.recursive
            and self.type is None
            and not self.tag_filters
            and not self.tags
            and self.date_from is None
            and self.date_to is None
            and self.media_id is None
            and self.cluster_id is None
            and not self.scored
        )


def _text_score(record: dict, needle: str) -> float:
    texts = [record.get("name") or ""]
    for frame in record.get("frames") or []:
        texts.append(frame.get("text") or "")
        texts.extend(c.get("text") or "" for c in frame.get("captions") or [])
        texts.extend(o.get("label") or "" for o in frame.get("objects") or [])
    hits = sum(1 for text in texts if needle in text.lower())
    return round(hits / (hits + 1), 4)


def _objects(record: dict):
    for frame in record.get("frames") or []:
        yield from frame.get("objects") or []


def _similar_score(record: dict, label: str, object_type: str | None = None) -> float:
    labels = [
        o.get("label")
        for o in _objects(record)
        if object_type is None or o.get("type") == object_type
    ]
    return round(labels.count(label) / len(labels), 4) if labels else 0.0


@dataclass
class BrowsePage:
    """One page of a browse: the records (not yet projected) and the pagination facts."""

    records: list[dict]
    total: int
    scores: list[float | None] = field(default_factory=list)


class _QueryCache:
    """The last few filtered and sorted index lists, so paging a filtered view is O(page)."""

    def __init__(self, size: int = 16) -> None:
        self._items: OrderedDict[Any, tuple[list[int], dict[int, float]]] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_CACHES_LOCK = threading.Lock()


def _cache_for(collection: Collection) -> _QueryCache:
    with _CACHES_LOCK:
        cache = getattr(collection, "_query_cache", None)
        if cache is None:
            cache = _QueryCache()
            collection._query_cache = cache  # type: ignore[attr-defined]
        return cache


def _sort_key(entry: Entry, sort_by: str):
    if sort_by == "name":
        return (entry.name.casefold(), entry.id)
    if sort_by == "type":
        return (entry.type, entry.created_at, entry.id)
    return (entry.created_at, entry.id)


def _in_cluster(record: dict, cluster_id: str) -> bool:
    return any(cluster_id_of(o.get("label") or "") == cluster_id for o in _objects(record))


def _scores(collection: Collection, query: BrowseQuery, indices: list[int]) -> dict[int, float]:
    """The ``_score`` of each scored row (rows scoring 0 or below ``minScore`` left out)."""
    label = None
    if query.similar_to_object_id is not None:
        label = _find_label(collection, query.similar_to_object_id)
    object_type = MODEL_OBJECT_TYPES.get(query.similar_to_object_model or "")
    needle = query.q.lower() if query.q else None
    least = query.min_score
    scores: dict[int, float] = {}
    for i in indices:
        record = collection.record(i)
        score = 1.0
        if needle is not None:
            score = min(score, _text_score(record, needle))
        if query.similar_to_object_id is not None:
            score = min(score, _similar_score(record, label, object_type) if label else 0.0)
        if score > 0 and (least is None or score >= least):
            scores[i] = score
    return scores


def _find_label(collection: Collection, object_id: str) -> str | None:
    for _, record in collection.iter_records():
        for obj in _objects(record):
            if obj.get("id") == object_id:
                return obj.get("label")
    return None


def _select(collection: Collection, query: BrowseQuery) -> tuple[Sequence[int], dict[int, float]]:
    fast = collection.ordered(query.sort_by, query.descending) if query.unfiltered else None
    if fast is not None:
        return fast, {}
    key = (*(v for k, v in vars(query).items() if k not in ("limit", "offset")),)
    cache = _cache_for(collection)
    cached = cache.get(key)
    if cached is not None:
        return cached
    root = collection.collection_id
    indices = [i for i in range(len(collection)) if query.matches(collection.entry(i), root)]
    if query.cluster_id is not None:
        cluster = query.cluster_id
        indices = [i for i in indices if _in_cluster(collection.record(i), cluster)]
    indices.sort(
        key=lambda i: _sort_key(collection.entry(i), query.sort_by), reverse=query.descending
    )
    scores: dict[int, float] = {}
    if query.scored:
        scores = _scores(collection, query, indices)
        position = {i: p for p, i in enumerate(indices)}
        indices = sorted(scores, key=lambda i: (-scores[i], position[i]))
    cache.put(key, (indices, scores))
    return indices, scores


def browse_indices(
    collection: Collection, query: BrowseQuery
) -> tuple[Sequence[int], int, list[float | None]]:
    """Filter, sort and slice ``collection`` without building any record: the page's row
    indices, the total, and the page's scores (empty unless the query is scored)."""
    indices, scores = _select(collection, query)
    page = indices[query.offset : query.offset + query.limit]
    return page, len(indices), [scores.get(i) for i in page] if query.scored else []


def browse(collection: Collection, query: BrowseQuery) -> BrowsePage:
    """Filter, sort and slice ``collection``; only the returned page's records are built."""
    page, total, scores = browse_indices(collection, query)
    return BrowsePage(records=[collection.record(i) for i in page], total=total, scores=scores)


def light_item(record: dict) -> dict:
    """A browse item without captions and objects (frames keep id, timestamp, blob, size)."""
    if record.get("type") == "folder":
        return record
    item = {key: value for key, value in record.items() if key != "frames"}
    if "frames" in record:
        item["frames"] = [
            {k: frame[k] for k in _LIGHT_FRAME_KEYS if k in frame} for frame in record["frames"]
        ]
    return item

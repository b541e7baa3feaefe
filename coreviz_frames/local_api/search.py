"""The local API's organisation-wide search (``GET /api/search``): frame-level results.

Ranks are computed from simple matches, so tests can predict them: ``textRank`` is half
the share of the query's words found in the media name, the frame's text and its captions;
``objectEmbeddingRank`` is half the share of the query's words that name one of the frame's
object labels; ``totalRank`` (and ``rank``) is their sum. Words match case-insensitively,
a trailing ``s`` ignored (``flowers`` matches ``flower``). Each result has the documented
shape: the frame, a reduced ``media``, captions as ``{id, text}``, objects with their
``polygon`` (and ``blob`` ``""`` when they have none), ``rank`` and ``rankingMetrics``.

Example:
    >>> from coreviz_frames.local_api.store import SyntheticCollection
    >>> hits = search_frames(SyntheticCollection(4), "person", limit=2)
    >>> sorted(hits[0]["rankingMetrics"])
    ['objectEmbeddingRank', 'textRank', 'totalRank']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from coreviz_frames.local_api.store import Collection

__all__ = ["search_frames"]

#: The media fields a search result carries (the documented reduced ``media``).
REDUCED_MEDIA_KEYS = ("id", "name", "type", "blob", "width", "height", "duration", "createdAt")
_FRAME_KEYS = ("id", "timestamp", "blob", "width", "height")
_WORD = re.compile(r"\w+")


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower())}


def rank_frame(words: list[str], media_name: str, frame: dict) -> tuple[float, float]:
    """``(textRank, objectEmbeddingRank)`` of one frame for the (stemmed) query ``words``."""
    texts: list[str] = [media_name, frame.get("text") or ""]
    texts += [c.get("text") or "" for c in frame.get("captions") or [] if isinstance(c, dict)]
    text_words = _words(" ".join(texts))
    labels: set[str] = set()
    for obj in frame.get("objects") or []:
        if isinstance(obj, dict):
            labels |= _words(obj.get("label") or "")
    text_rank = sum(w in text_words for w in words) / len(words) / 2
    object_rank = sum(w in labels for w in words) / len(words) / 2
    return round(text_rank, 4), round(object_rank, 4)


def _result(record: dict, frame: dict, text_rank: float, object_rank: float) -> dict:
    total = round(text_rank + object_rank, 4)
    objects = []
    for obj in frame.get("objects") or []:
        item = {k: obj.get(k) for k in ("id", "type", "label")}
        item["blob"] = obj.get("blob") or ""
        if "polygon" in obj:
            item["polygon"] = obj["polygon"]
        objects.append(item)
    return {
        **{k: frame.get(k) for k in _FRAME_KEYS},
        "media": {k: record.get(k) for k in REDUCED_MEDIA_KEYS},
        "captions": [
            {"id": c.get("id"), "text": c.get("text")} for c in frame.get("captions") or []
        ],
        "objects": objects,
        "rank": total,
        "rankingMetrics": {
            "textRank": text_rank,
            "objectEmbeddingRank": object_rank,
            "totalRank": total,
        },
    }


def _candidates(collection: Collection) -> Iterable[tuple[int, dict]]:
    for index, record in collection.iter_records():
        if record.get("type") != "folder" and record.get("status", "active") != "deleted":
            yield index, record


def search_frames(collection: Collection, q: str, *, limit: int = 20) -> list[dict]:
    """The ``limit`` best-ranked frames of ``collection`` for ``q`` (ties in collection
    order), each shaped as a documented ``/api/search`` result; frames ranking 0 are left out.
    """
    words = sorted(_words(q))
    if not words:
        return []
    scored: list[tuple[float, int, int, dict]] = []
    for index, record in _candidates(collection):
        for position, frame in enumerate(record.get("frames") or []):
            text_rank, object_rank = rank_frame(words, record.get("name") or "", frame)
            if text_rank + object_rank > 0:
                result = _result(record, frame, text_rank, object_rank)
                scored.append((-result["rank"], index, position, result))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored[:limit]]

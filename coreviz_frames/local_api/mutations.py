"""A local API collection that changes between runs: media added, edited and deleted.

:class:`MutableCollection` wraps a served collection (the sample or a synthetic one) and
keeps only what changed: the rows left after deletes, edited records and added records.
:func:`random_changes` applies a seeded mix of changes, as a CoreViz collection sees them
between two daily syncs: uploads (a copy of an existing media under new ids), edits of
every kind (a renamed media or changed tag, which bump ``updatedAt``; a caption
rewritten, an object added, moved or removed, a frame dropped, which do *not*, as an AI
pass may not) and deletions. :meth:`LocalAPI.mutate <.server.LocalAPI.mutate>` (and the
``/_local/mutate`` control endpoint) apply them to a running server.

Example:
    >>> from coreviz_frames.local_api.store import SyntheticCollection
    >>> coll = MutableCollection(SyntheticCollection(20))
    >>> changes = random_changes(coll, seed=1, adds=2, edits=3, deletes=1)
    >>> len(coll), len(changes.added), len(changes.edited), len(changes.deleted)
    (21, 2, 3, 1)
"""

from __future__ import annotations

import copy
import hashlib
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from coreviz_frames._util.ids import normalize_id
from coreviz_frames.local_api.store import Collection, Entry

__all__ = ["EDIT_KINDS", "Changes", "MutableCollection", "random_changes"]

#: The kinds of edit :func:`edit_record` makes, in turn.
EDIT_KINDS = ("caption", "add_object", "move_object", "tag", "remove_object", "rename", "frame")
_TOUCHING = ("tag", "rename")  # edits a user makes: they bump updatedAt


class _Slot(NamedTuple):
    base: int | None  # row of the wrapped collection (None: added)
    record: dict | None  # the edited or added record (None: the base row as is)
    entry: Entry | None


def entry_of(record: dict, collection_id: str) -> Entry:
    """The browse facts of ``record`` (as :class:`.store.FileCollection` derives them).

    Example:
        >>> entry_of({"id": "m", "type": "image", "path": "c.f0.m"}, "c").parent
        'c.f0'
    """
    path = record.get("path")
    parent = path.rsplit(".", 1)[0] if isinstance(path, str) and "." in path else collection_id
    return Entry(
        id=record["id"],
        name=record.get("name") or "",
        type=record.get("type") or "",
        created_at=record.get("createdAt") or "",
        parent=parent,
        tags=(record.get("metadata") or {}).get("tags") or {},
    )


class MutableCollection(Collection):
    """``base`` with media added, edited and deleted (see the module doc); thread-safe."""

    def __init__(self, base: Collection) -> None:
        self.base = base
        self.collection_id = base.collection_id
        self.dataset = getattr(base, "dataset", {"id": base.collection_id})
        self._slots: list[_Slot] = [_Slot(i, None, None) for i in range(len(base))]
        self._by_id: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def entry(self, index: int) -> Entry:
        slot = self._slots[index]
        if slot.entry is not None:
            return slot.entry
        assert slot.base is not None
        return self.base.entry(slot.base)

    def record(self, index: int) -> dict:
        slot = self._slots[index]
        if slot.record is not None:
            return slot.record
        assert slot.base is not None
        return self.base.record(slot.base)

    def lookup(self, media_id: str) -> int | None:
        with self._lock:
            if self._by_id is None:
                by_id: dict[str, int] = {}
                for i in range(len(self._slots)):
                    ident = self.entry(i).id
                    by_id.setdefault(ident, i)
                    by_id.setdefault(normalize_id(ident) or "", i)
                self._by_id = by_id
            found = self._by_id.get(media_id)
            return found if found is not None else self._by_id.get(normalize_id(media_id) or "")

    def tags(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for i in range(len(self)):
            for key, values in self.entry(i).tags.items():
                out.setdefault(key, set()).update(values)
        return {key: sorted(values) for key, values in sorted(out.items())}

    def media_ids(self) -> list[str]:
        """The ids of the media rows (folders left out), in row order."""
        return [e.id for e in (self.entry(i) for i in range(len(self))) if e.type != "folder"]

    def _changed(self, slots: list[_Slot]) -> None:
        with self._lock:
            self._slots = slots
            self._by_id = None
        self._query_cache = None  # filtered views of the old rows are stale

    def apply(
        self, *, delete: Iterable[str] = (), edit: Iterable[dict] = (), add: Iterable[dict] = ()
    ) -> None:
        """Delete the media ``delete``, replace media by the ``edit`` records (same ids) and
        append the ``add`` records, as one change; KeyError for an unknown id, ValueError
        for an added id already present."""
        doomed = {normalize_id(i) for i in delete}
        edits = {normalize_id(r["id"]): r for r in edit}
        slots: list[_Slot] = []
        present: set[str | None] = set()
        for i, slot in enumerate(self._slots):
            ident = normalize_id(self.entry(i).id)
            present.add(ident)
            if ident in doomed:
                continue
            record = edits.pop(ident, None)
            if record is not None:
                slot = _Slot(slot.base, record, entry_of(record, self.collection_id))
            slots.append(slot)
        unknown = (doomed - present) | set(edits)
        if unknown:
            raise KeyError(sorted(str(u) for u in unknown)[0])
        for record in add:
            if normalize_id(record["id"]) in present:
                raise ValueError(f"media {record['id']!r} is already in the collection")
            present.add(normalize_id(record["id"]))
            slots.append(_Slot(None, record, entry_of(record, self.collection_id)))
        self._changed(slots)

    def add_media(self, record: dict) -> None:
        """Add ``record`` (a Get Media record with an id not in the collection)."""
        self.apply(add=[record])

    def edit_media(self, record: dict) -> None:
        """Replace the media with ``record``'s id by ``record``; KeyError if there is none."""
        self.apply(edit=[record])

    def delete_media(self, media_id: str) -> None:
        """Delete the media ``media_id``; KeyError if there is none."""
        self.apply(delete=[media_id])


def _new_id(*parts: object) -> str:
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def new_copy(record: dict, key: object) -> dict:
    """An upload like ``record``: new media, frame, caption and object ids derived from
    ``key``, a new name and a later ``createdAt``.

    Example:
        >>> new_copy({"id": "m", "name": "a.jpg", "frames": []}, 1)["name"]
        'new-1-a.jpg'
    """
    out = copy.deepcopy(record)
    media_id = _new_id("new", key, record["id"])
    out.update(id=media_id, name=f"new-{key}-{record.get('name') or ''}")
    out["createdAt"] = out["updatedAt"] = "2027-01-01T00:00:00.000Z"
    if isinstance(record.get("path"), str) and "." in record["path"]:
        out["path"] = record["path"].rsplit(".", 1)[0] + "." + media_id
    for frame in out.get("frames") or []:
        frame["id"] = _new_id(media_id, frame.get("id"))
        if "mediaId" in frame:
            frame["mediaId"] = media_id
        for item in [*(frame.get("captions") or []), *(frame.get("objects") or [])]:
            item["id"] = _new_id(media_id, item.get("id"))
            if "frameId" in item:
                item["frameId"] = frame["id"]
    return out


def _pick_frame(record: dict, rng: random.Random) -> dict | None:
    frames = [f for f in record.get("frames") or [] if isinstance(f, dict)]
    return rng.choice(frames) if frames else None


def edit_record(record: dict, rng: random.Random, kind: str) -> dict:
    """A copy of ``record`` with one edit of ``kind`` (one of :data:`EDIT_KINDS`).

    Example:
        >>> rec = {"id": "m", "name": "a.jpg", "updatedAt": "2026-01-01T00:00:00.000Z"}
        >>> edit_record(rec, random.Random(0), "rename")["name"]
        'renamed-a.jpg'
    """
    out = copy.deepcopy(record)
    frame = _pick_frame(out, rng)
    n = rng.randrange(10**6)
    if kind == "rename" or (frame is None and kind not in _TOUCHING):
        out["name"] = f"renamed-{out.get('name') or ''}"
    elif kind == "tag":
        tags = out.setdefault("metadata", {}).setdefault("tags", {})
        tags["reviewed"] = [f"r{n % 3}"]
    elif kind == "caption" and frame is not None:
        caption = {"id": _new_id(out["id"], "caption", n), "text": f"AI caption {n}"}
        frame["captions"] = [caption, *(frame.get("captions") or [])[1:]]
    elif kind in ("add_object", "move_object", "remove_object") and frame is not None:
        objects = list(frame.get("objects") or [])
        if kind == "add_object" or not objects:
            box = [{"x": 1.0, "y": 2.0}, {"x": 30.0, "y": 2.0}, {"x": 30.0, "y": 40.0}]
            objects.append(
                {"id": _new_id(out["id"], "object", n), "type": "object", "label": "kite",
                 "blob": "", "status": "active", "polygon": box}
            )  # fmt: skip
        elif kind == "move_object":
            objects[0] = {**objects[0], "polygon": [{"x": 5.0, "y": 5.0}, {"x": 9.0, "y": 9.0}]}
        else:
            objects.pop(rng.randrange(len(objects)))
        frame["objects"] = objects
    elif kind == "frame" and frame is not None:
        frames = out["frames"]
        out["frames"] = [f for f in frames if f is not frame] if len(frames) > 1 else frames
        if len(frames) == 1:
            frame["captions"] = []
    if kind in _TOUCHING:
        out["updatedAt"] = f"2027-02-01T00:00:{n % 60:02d}.000Z"
    return out


@dataclass
class Changes:
    """The ids :func:`random_changes` added, edited and deleted."""

    added: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "edited": self.edited, "deleted": self.deleted}


def random_changes(
    collection: MutableCollection,
    *,
    seed: int = 0,
    adds: int = 0,
    edits: int = 0,
    deletes: int = 0,
    kinds: Sequence[str] = EDIT_KINDS,
    newest: int | None = None,
) -> Changes:
    """Apply ``deletes``, then ``edits`` (kinds in turn), then ``adds`` random changes.

    Media are picked among the media rows (the ``newest`` last rows only, if given: recent
    uploads are the ones an AI pass or a reviewer touches) with ``random.Random(seed)``;
    no media is both edited and deleted. Returns the ids changed.
    """
    rng = random.Random(seed)
    ids = collection.media_ids()
    if newest is not None:
        ids = ids[-newest:] if newest > 0 else []
    picked = rng.sample(ids, min(len(ids), deletes + edits))
    changes = Changes(deleted=picked[:deletes], edited=picked[deletes:])

    def record_of(media_id: str) -> dict:
        index = collection.lookup(media_id)
        assert index is not None
        return collection.record(index)

    edited = [
        edit_record(record_of(media_id), rng, kinds[n % len(kinds)])
        for n, media_id in enumerate(changes.edited)
    ]
    gone = set(changes.deleted)
    remaining = [i for i in collection.media_ids() if i not in gone]
    count = adds if remaining else 0  # nothing left to copy an upload from
    added = [new_copy(record_of(rng.choice(remaining)), f"{seed}-{n}") for n in range(count)]
    changes.added = [record["id"] for record in added]
    collection.apply(delete=changes.deleted, edit=edited, add=added)
    return changes

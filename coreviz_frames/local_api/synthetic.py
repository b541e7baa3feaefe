"""Deterministic synthetic CoreViz media records, for tests, benchmarks and the local API.

A synthetic collection of any size is generated on demand, record by record,
without writing files: ``synthetic_media(i)`` always returns the same record
for the same ``i`` and ``collection_id``. Records have the shape of Get Media
(media -> frames -> captions and objects, tags, moderation, dataset). One
media in ten is a video of 51 frames, so 10,000 media hold about 60,000
frames, 90,000 captions and 230,000 objects.

Blob URLs use the placeholder scheme ``blob://``; the local API rewrites them
to its own blob origin and renders the images on the fly:
``blob://synthetic/<media_id>/<frame_index>.jpg`` is a frame and
``blob://synthetic/<media_id>/<frame_index>/<object_index>.jpg`` the crop of
one object (the same pixels as the frame inside the object's box).

Example:
    >>> rec = synthetic_media(7)
    >>> rec["type"], len(rec["frames"])
    ('image', 1)
    >>> sum(len(f["objects"]) for r in iter_synthetic(10) for f in r["frames"]) > 0
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

__all__ = [
    "SYNTHETIC_COLLECTION_ID",
    "SYNTHETIC_FRAME_SIZE",
    "iter_synthetic",
    "synthetic_created_at",
    "synthetic_folder",
    "synthetic_id",
    "synthetic_is_video",
    "synthetic_media",
    "synthetic_name",
    "synthetic_tags",
]

SYNTHETIC_COLLECTION_ID = "synthetic"
#: Width and height of every synthetic frame, in pixels.
SYNTHETIC_FRAME_SIZE = (320, 240)
VIDEO_EVERY = 10
VIDEO_FRAMES = 51
_OBJECTS_PER_FRAME = (1, 2, 3, 4, 6, 7)  # mean 23/6, about 3.8
_LABELS = ("person", "car", "dog", "cat", "bicycle", "tree", "shoe", "bottle")
_COLORS = ("red", "green", "blue", "black", "white")
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def synthetic_id(*parts: object) -> str:
    """A stable hyphen-less 32-hex id derived from ``parts``."""
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def _hex_id(key: str) -> str:
    # synthetic_id(*parts) for an already "/"-joined key (the hot path of synthetic_media)
    return _blake2b(key.encode(), digest_size=16).hexdigest()


_blake2b = hashlib.blake2b
#: ``f"{f * 0.5:g}"`` for every frame index of a video.
_TIMESTAMPS = tuple(f"{f * 0.5:g}" for f in range(VIDEO_FRAMES))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def synthetic_created_at(index: int) -> str:
    """``createdAt`` of synthetic media ``index`` (one second apart from 2026-01-01)."""
    return _iso(_EPOCH + timedelta(seconds=index))


def synthetic_is_video(index: int) -> bool:
    """Whether synthetic media ``index`` is a video (one in ``VIDEO_EVERY``)."""
    return index % VIDEO_EVERY == VIDEO_EVERY - 1


def synthetic_name(index: int) -> str:
    """The file name of synthetic media ``index``."""
    return f"synthetic-{index:07d}.{'mp4' if synthetic_is_video(index) else 'jpg'}"


def synthetic_folder(index: int) -> str:
    """The folder label (ltree) synthetic media ``index`` lives in."""
    return f"f{index % 4}"


def synthetic_tags(index: int) -> dict[str, list[str]]:
    """``metadata.tags`` of synthetic media ``index``."""
    return {
        "color": [_COLORS[index % len(_COLORS)]],
        "split": ["even" if index % 2 == 0 else "odd"],
    }


def synthetic_media(index: int, *, collection_id: str = SYNTHETIC_COLLECTION_ID) -> dict:
    """The synthetic media record number ``index`` of ``collection_id``."""
    # Written for speed (the local API builds thousands of these per second): ids are
    # hashed from pre-joined keys and the four timestamps are formatted once per record.
    # The output is the same as the straightforward version (tests compare the JSON).
    media_id = synthetic_id(collection_id, "media", index)
    is_video = synthetic_is_video(index)
    width, height = SYNTHETIC_FRAME_SIZE
    created = _EPOCH + timedelta(seconds=index)
    created_iso = _iso(created)
    stamps = (_iso(created + timedelta(seconds=2)), _iso(created + timedelta(seconds=5)))
    frames = [
        _synthetic_frame(index, media_id, f, stamps) for f in range(VIDEO_FRAMES if is_video else 1)
    ]
    return {
        "id": media_id,
        "name": synthetic_name(index),
        "type": "video" if is_video else "image",
        "blob": f"blob://synthetic/{media_id}/0.jpg",
        "path": f"{collection_id}.{synthetic_folder(index)}.{media_id}",
        "datasetId": collection_id,
        "width": width,
        "height": height,
        "duration": (VIDEO_FRAMES - 1) * 0.5 if is_video else None,
        "sizeBytes": 10_000 + index,
        "createdAt": created_iso,
        "updatedAt": created_iso,
        "createdById": "synthetic-user",
        "updatedById": None,
        "status": "active",
        "sourceMediaId": None,
        "versionNumber": 1,
        "metadata": {
            "tags": synthetic_tags(index),
            "moderation": {
                "status": "approved",
                "categories": [],
                "moderatedAt": _iso(created + timedelta(seconds=1)),
            },
        },
        "frames": frames,
        "dataset": {
            "id": collection_id,
            "name": "Synthetic collection",
            "organizationId": "synthetic-org",
        },
    }


def _synthetic_frame(index: int, media_id: str, f: int, stamps: tuple[str, str]) -> dict:
    """Frame ``f`` of media ``index``; ``stamps`` are the frame and caption creation times."""
    frame_created, caption_created = stamps
    frame_id = _hex_id(f"{media_id}/frame/{f}")
    captions = [
        {
            "id": _hex_id(f"{frame_id}/caption/{c}"),
            "text": f"Synthetic caption {c} of frame {f} of media {index}.",
            "frameId": frame_id,
            "createdAt": caption_created,
            "status": "active",
        }
        for c in range(1 + (index + f) % 2)
    ]
    width, height = SYNTHETIC_FRAME_SIZE
    return {
        "id": frame_id,
        "timestamp": _TIMESTAMPS[f],
        "blob": f"blob://synthetic/{media_id}/{f}.jpg",
        "width": width,
        "height": height,
        "status": "active",
        "createdAt": frame_created,
        "mediaId": media_id,
        "captions": captions,
        "objects": _synthetic_objects(index, media_id, frame_id, f),
    }


def _synthetic_objects(index: int, media_id: str, frame_id: str, f: int) -> list[dict]:
    """The detected objects of frame ``f`` of media ``index``: boxes as 4-point polygons."""
    width, height = SYNTHETIC_FRAME_SIZE
    blob_prefix = f"blob://synthetic/{media_id}/{f}/"
    objects = []
    for o in range(_OBJECTS_PER_FRAME[(index + f) % len(_OBJECTS_PER_FRAME)]):
        x = float((o * 37 + index) % (width - 60))
        y = float((o * 23 + f) % (height - 60))
        x2 = x + float(20 + (o * 7 + index) % 40)
        y2 = y + float(20 + (o * 11 + f) % 40)
        objects.append(
            {
                "id": _hex_id(f"{frame_id}/object/{o}"),
                "type": "face" if o % 5 == 4 else "object",
                "label": _LABELS[(index + f + o) % len(_LABELS)],
                "blob": "" if o % 4 == 3 else f"{blob_prefix}{o}.jpg",
                "status": "active",
                "polygon": [
                    {"x": x, "y": y},
                    {"x": x2, "y": y},
                    {"x": x2, "y": y2},
                    {"x": x, "y": y2},
                ],
            }
        )
    return objects


def iter_synthetic(
    count: int, *, start: int = 0, collection_id: str = SYNTHETIC_COLLECTION_ID
) -> Iterator[dict]:
    """Yield synthetic records ``start`` .. ``start + count - 1`` lazily."""
    for index in range(start, start + count):
        yield synthetic_media(index, collection_id=collection_id)

"""The blob side of the local API: files of a data directory and synthetic renderings.

``blob://<rest>`` strings in records map to ``<blob_url>/<rest>``. A data directory
serves ``<data_dir>/blobs/<rest>``; a synthetic collection renders
``synthetic/<media_id>/<frame>.jpg`` (a gradient plus one coloured rectangle per object)
and ``synthetic/<media_id>/<frame>/<object>.jpg`` (that rendering cut at the object's
polygon extent, see :func:`polygon_extent`) on the fly, JPEG quality 90.

Example:
    >>> from coreviz_frames.local_api.store import SyntheticCollection
    >>> blobs = SyntheticBlobs(SyntheticCollection(10))
    >>> data, content_type = blobs.get(f"synthetic/{blobs.collection.media_id(0)}/0.jpg")
    >>> content_type
    'image/jpeg'
"""

from __future__ import annotations

import hashlib
import io
import math
import mimetypes
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

from PIL import Image, ImageDraw

from coreviz_frames.local_api.store import SyntheticCollection
from coreviz_frames.local_api.synthetic import SYNTHETIC_FRAME_SIZE, synthetic_media

__all__ = ["FileBlobs", "SyntheticBlobs"]

_FRAME = re.compile(r"synthetic/([A-Za-z0-9_-]+)/(\d+)\.jpg")
_CROP = re.compile(r"synthetic/([A-Za-z0-9_-]+)/(\d+)/(\d+)\.jpg")
_EXTRA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def content_type(path: str) -> str:
    """The Content-Type for a file name, by extension."""
    suffix = Path(path).suffix.lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def polygon_extent(polygon: list[dict]) -> tuple[int, int, int, int]:
    """The pixel box a crop is cut at: ``(floor(min x), floor(min y), ceil(max x), ceil(max y))``.

    Example:
        >>> polygon_extent([{"x": 1.5, "y": 2}, {"x": 10.2, "y": 8.0}])
        (1, 2, 11, 8)
    """
    xs = [float(p["x"]) for p in polygon]
    ys = [float(p["y"]) for p in polygon]
    return math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))


class FileBlobs:
    """Files under ``<data_dir>/blobs``, never outside it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def get(self, rel: str) -> tuple[bytes, str] | None:
        """``(bytes, content type)`` of ``rel``, or None when there is no such file."""
        rel = unquote(rel).lstrip("/")
        if not rel or "\x00" in rel:
            return None
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path.read_bytes(), content_type(path.name)


def _label_colour(label: str) -> tuple[int, int, int]:
    digest = hashlib.blake2b(label.encode(), digest_size=3).digest()
    return (digest[0], digest[1], digest[2])


@lru_cache(maxsize=64)
def render_frame(index: int, frame_index: int, collection_id: str) -> Image.Image:
    """The synthetic frame image (do not mutate the returned, cached image)."""
    record = synthetic_media(index, collection_id=collection_id)
    frame = record["frames"][frame_index]
    seed = hashlib.blake2b(frame["id"].encode(), digest_size=12).digest()
    corners = Image.new("RGB", (2, 2))
    corners.putdata([(seed[i], seed[i + 1], seed[i + 2]) for i in range(0, 12, 3)])
    image = corners.resize(SYNTHETIC_FRAME_SIZE, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for obj in frame.get("objects") or []:
        if obj.get("polygon"):
            x0, y0, x1, y1 = polygon_extent(obj["polygon"])
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=_label_colour(obj["label"]))
    return image


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@lru_cache(maxsize=256)
def _frame_jpeg(index: int, frame_index: int, collection_id: str) -> bytes:
    return _jpeg(render_frame(index, frame_index, collection_id))


@lru_cache(maxsize=512)
def _crop_jpeg(index: int, frame_index: int, object_index: int, collection_id: str) -> bytes:
    record = synthetic_media(index, collection_id=collection_id)
    polygon = record["frames"][frame_index]["objects"][object_index]["polygon"]
    return _jpeg(render_frame(index, frame_index, collection_id).crop(polygon_extent(polygon)))


class SyntheticBlobs:
    """Renders the frames and crops of a :class:`SyntheticCollection` on request."""

    def __init__(self, collection: SyntheticCollection) -> None:
        self.collection = collection

    def _frames(self, media_id: str) -> tuple[int, dict] | None:
        index = self.collection.lookup(media_id)
        if index is None:
            return None
        return index, self.collection.record(index)

    def get(self, rel: str) -> tuple[bytes, str] | None:
        """``(JPEG bytes, "image/jpeg")`` for a synthetic frame or crop path, else None."""
        rel = rel.lstrip("/")
        cid = self.collection.collection_id
        match = _FRAME.fullmatch(rel)
        if match:
            found = self._frames(match[1])
            frame = int(match[2])
            if found is None or frame >= len(found[1]["frames"]):
                return None
            return _frame_jpeg(found[0], frame, cid), "image/jpeg"
        match = _CROP.fullmatch(rel)
        if match:
            found = self._frames(match[1])
            frame, obj = int(match[2]), int(match[3])
            if found is None or frame >= len(found[1]["frames"]):
                return None
            objects = found[1]["frames"][frame]["objects"]
            if obj >= len(objects) or not objects[obj].get("polygon"):
                return None
            return _crop_jpeg(found[0], frame, obj, cid), "image/jpeg"
        return None

"""Regenerate the sample collection (``collection.json``, frames, crops) from the source photos.

The source photographs live in ``data/blobs/originals/`` (and the scanned page of the
PDF in ``data/sources/``); they were copied once from scikit-image's bundled data with
``--import-skimage`` (needs scikit-image, in a throwaway venv). Everything else is
derived deterministically with Pillow and the standard library only:

- ``blobs/frames/<slug>/<i>.jpg``: the processed frames (512 px on the long side);
- ``blobs/crops/<slug>/<frame>-<object>.jpg``: each object's crop, cut from the decoded
  frame JPEG at the polygon's extent ``(floor(min x), floor(min y), ceil(max x), ceil(max y))``;
- ``blobs/video/``, ``blobs/pdf/``: the video (an animated GIF) and the PDF document;
- ``collection.json``: ``{"dataset", "folders", "media"}`` with full Get Media records whose
  blob strings use the ``blob://<path under data/blobs>`` placeholder scheme.

Example:
    $ .venv/bin/python data/make_sample.py            # regenerate from the committed originals
    $ /tmp/sk/bin/python data/make_sample.py --import-skimage   # re-copy the source photos first
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
BLOBS = HERE / "blobs"
ORIGINALS = BLOBS / "originals"
SOURCES = HERE / "sources"
COLLECTION_ID = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"
ORGANIZATION_ID = "0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b"
USER_ID = "a3f1c2e4b5d64789a0b1c2d3e4f5a6b7"
NAMESPACE = uuid.UUID(COLLECTION_ID)
ORIGINAL_MAX = 768
FRAME_MAX = 512
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

# slug -> (skimage function, caption texts, objects as (type, label, box, crop?) in 0..1 units).
# A box of 4 numbers is an axis-aligned rectangle; a longer list is a polygon of (x, y) pairs.
PHOTOS: dict[str, dict] = {
    "astronaut": {
        "skimage": "astronaut",
        "captions": [
            "An astronaut in an orange flight suit smiling in front of an American flag.",
            "A portrait of Eileen Collins holding her helmet, a space shuttle model behind her.",
        ],
        "objects": [
            ("face", "person", (0.33, 0.03, 0.58, 0.30), True),
            ("object", "person", (0.0, 0.0, 0.72, 1.0), True),
            ("object", "rocket", (0.72, 0.0, 0.90, 0.55), True),
            ("object", "flag", (0.0, 0.0, 0.16, 1.0), False),
            ("object", "helmet", (0.62, 0.68, 1.0, 1.0), True),
        ],
        "tags": {"subject": ["people", "space"], "color": ["orange", "white"]},
        "folder": None,
    },
    "camera": {
        "skimage": "camera",
        "captions": ["A black and white photo of a man looking through a camera on a tripod."],
        "objects": [
            ("object", "person", (0.03, 0.12, 0.67, 1.0), True),
            # a non-rectangular polygon: the tripod's outline
            ("object", "tripod", (0.62, 0.22, 0.78, 0.22, 0.92, 1.0, 0.50, 1.0), True),
        ],
        "tags": {"subject": ["people"], "color": ["gray"]},
        "folder": None,
    },
    "coffee": {
        "skimage": "coffee",
        "captions": ["A cup of coffee on a red saucer with a spoon, on a wooden table."],
        "objects": [
            ("object", "cup", (0.28, 0.0, 0.72, 0.55), True),
            ("object", "spoon", None, False),  # neither blob nor polygon
        ],
        "tags": {"subject": ["food"], "color": ["red", "brown"]},
        "folder": None,
    },
    "chelsea": {
        "skimage": "chelsea",
        "captions": ["A close-up of a tabby cat with green eyes."],
        "objects": [("object", "cat", (0.0, 0.0, 1.0, 1.0), True)],
        "tags": {"subject": ["animal"], "color": ["brown"]},
        "folder": None,
        "legacy": True,
    },
    "rocket": {
        "skimage": "rocket",
        "captions": ["A Falcon 9 rocket on the launch pad at dusk, between lightning towers."],
        "objects": [
            ("object", "rocket", (0.48, 0.25, 0.56, 1.0), True),
            ("object", "tower", (0.0, 0.0, 0.22, 1.0), False),
        ],
        "tags": {"subject": ["space"], "color": ["blue"]},
        "folder": "space",
    },
    "clock": {
        "skimage": "clock",
        "captions": ["A motion-blurred wall clock on a gray wall."],
        "objects": [("object", "clock", (0.36, 0.28, 0.62, 0.72), True)],
        "tags": {"subject": ["object"], "color": ["gray"]},
        "folder": None,
    },
    "hubble": {
        "skimage": "hubble_deep_field",
        "captions": ["Thousands of distant galaxies in the Hubble eXtreme Deep Field."],
        "objects": [
            ("object", "galaxy", (0.55, 0.30, 0.62, 0.38), True),
            ("object", "galaxy", (0.16, 0.64, 0.22, 0.71), True),
        ],
        "tags": {"subject": ["space"], "color": ["black"]},
        "folder": "space",
    },
    "retina": {
        "skimage": "retina",
        "captions": ["A fundus photograph of a healthy human retina."],
        "objects": [("object", "optic disc", (0.10, 0.38, 0.24, 0.56), True)],
        "tags": {"subject": ["medical"], "color": ["red"]},
        "folder": None,
    },
    "horse": {
        "skimage": "horse",
        "captions": ["The black silhouette of a horse on a white background."],
        "objects": [("object", "horse", (0.02, 0.0, 0.98, 0.92), True)],
        "tags": {"subject": ["animal"], "color": ["black", "white"]},
        "folder": None,
    },
    "brick": {
        "skimage": "brick",
        "captions": ["A gray brick wall seen at an angle."],
        "objects": "absent",  # frame without an "objects" key
        "tags": {"subject": ["texture"], "color": ["gray"]},
        "folder": "textures",
    },
    "grass": {
        "skimage": "grass",
        "captions": ["A close-up of blades of grass."],
        "objects": [],
        "tags": {"subject": ["texture", "nature"], "color": ["gray"]},
        "folder": "textures",
    },
    "gravel": {
        "skimage": "gravel",
        "captions": "absent",  # frame without a "captions" key
        "objects": [],
        "tags": {"subject": ["texture"]},
        "folder": "textures",
    },
}

# folder slug -> (name, parent folder slug)
FOLDERS = {
    "textures": ("Textures", None),
    "space": ("Space", None),
    "launches": ("Launches", "space"),
}


def uid(*parts: object) -> str:
    """A hyphen-less UUID derived from ``parts`` (stable across runs)."""
    return uuid.uuid5(NAMESPACE, "/".join(map(str, parts))).hex


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def jpeg_bytes(image: Image.Image, quality: int = 88) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def write(rel: str, data: bytes) -> str:
    """Write ``data`` under ``blobs/`` and return its ``blob://`` URL."""
    path = BLOBS / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"blob://{rel}"


def fit(image: Image.Image, longest: int) -> Image.Image:
    scale = longest / max(image.size)
    if scale >= 1:
        return image.copy()
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def import_skimage() -> None:
    """Copy the source photos out of scikit-image (run once, needs scikit-image)."""
    import numpy as np
    import skimage.data

    ORIGINALS.mkdir(parents=True, exist_ok=True)
    SOURCES.mkdir(parents=True, exist_ok=True)
    for slug, spec in PHOTOS.items():
        array = getattr(skimage.data, spec["skimage"])()
        if array.dtype == bool:
            array = np.where(array, 0, 255).astype("uint8")  # black horse on white
        image = fit(Image.fromarray(array).convert("RGB"), ORIGINAL_MAX)
        (ORIGINALS / f"{slug}.jpg").write_bytes(jpeg_bytes(image, 90))
    page = Image.fromarray(skimage.data.text()).convert("L")
    (SOURCES / "corner.png").write_bytes(_png(page))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def points(box, width: int, height: int) -> list[dict]:
    """Frame-pixel polygon points of a 0..1 box (4 numbers) or polygon (x, y pairs)."""
    if len(box) == 4:
        x0, y0, x1, y1 = box
        box = (x0, y0, x1, y0, x1, y1, x0, y1)
    return [
        {"x": round(box[i] * width, 2), "y": round(box[i + 1] * height, 2)}
        for i in range(0, len(box), 2)
    ]


def extent(polygon: list[dict]) -> tuple[int, int, int, int]:
    """The integer pixel box a crop is cut at: floor of the minima, ceil of the maxima."""
    xs = [p["x"] for p in polygon]
    ys = [p["y"] for p in polygon]
    return (
        math.floor(min(xs)),
        math.floor(min(ys)),
        math.ceil(max(xs)),
        math.ceil(max(ys)),
    )


def make_objects(slug, frame_index, frame_image, specs, *, hyphens=False):
    objects = []
    for o, (kind, label, box, with_crop) in enumerate(specs):
        object_id = uid(slug, "frame", frame_index, "object", o)
        if hyphens:
            object_id = str(uuid.UUID(object_id))
        obj: dict = {"id": object_id, "type": kind, "label": label}
        if box is not None:
            polygon = points(box, *frame_image.size)
            if with_crop:
                crop = frame_image.crop(extent(polygon))
                obj["blob"] = write(f"crops/{slug}/{frame_index}-{o}.jpg", jpeg_bytes(crop, 90))
            else:
                obj["blob"] = ""
            obj["polygon"] = polygon
        obj["status"] = "active"
        if o == 0 and slug == "astronaut":
            obj["confidence"] = 0.97  # an unknown field, for the tables' ``extra`` column
        objects.append(obj)
    return objects


def save_frame(rel: str, image: Image.Image) -> tuple[str, Image.Image]:
    """Write a frame JPEG and return its URL and the decoded frame (what clients will see)."""
    data = jpeg_bytes(image, 88)
    url = write(rel, data)
    return url, Image.open(io.BytesIO(data)).convert("RGB")


def folder_path(folder: str | None) -> str:
    chain = []
    while folder is not None:
        chain.append(uid("folder", folder))
        folder = FOLDERS[folder][1]
    return ".".join([COLLECTION_ID, *reversed(chain)])


def moderation(created: datetime, status: str = "approved", categories=()) -> dict:
    return {
        "status": status,
        "categories": list(categories),
        "moderatedAt": iso(created + timedelta(seconds=1)),
    }


def base_record(slug, name, kind, blob, folder, created, width, height, size, tags) -> dict:
    media_id = uid("media", slug)
    return {
        "id": media_id,
        "name": name,
        "type": kind,
        "blob": blob,
        "path": f"{folder_path(folder)}.{media_id}",
        "datasetId": COLLECTION_ID,
        "width": width,
        "height": height,
        "duration": None,
        "sizeBytes": size,
        "createdAt": iso(created),
        "updatedAt": iso(created + timedelta(minutes=3)),
        "createdById": USER_ID,
        "updatedById": None,
        "status": "active",
        "sourceMediaId": None,
        "versionNumber": 1,
        "metadata": {"tags": tags, "moderation": moderation(created)},
        "frames": [],
        "dataset": DATASET,
    }


DATASET = {"id": COLLECTION_ID, "name": "Sample collection", "organizationId": ORGANIZATION_ID}


def photo_record(index: int, slug: str, spec: dict) -> dict:
    original_path = ORIGINALS / f"{slug}.jpg"
    original = Image.open(original_path).convert("RGB")
    created = EPOCH + timedelta(days=4 * index, minutes=7 * index)
    legacy = spec.get("legacy", False)
    frame_url, frame = save_frame(f"frames/{slug}/0.jpg", fit(original, FRAME_MAX))
    record = base_record(
        slug,
        f"{slug}.jpg",
        "image",
        f"blob://originals/{slug}.jpg",
        spec["folder"],
        created,
        original.width,
        original.height,
        original_path.stat().st_size,
        spec["tags"],
    )
    frame_id = uid(slug, "frame", 0)
    if legacy:
        frame_id = str(uuid.UUID(frame_id))
    frame_record: dict = {
        "id": frame_id,
        "timestamp": "0",
        "blob": frame_url,
        "width": frame.width,
        "height": frame.height,
        "status": "active",
        "createdAt": iso(created + timedelta(seconds=5)),
        "mediaId": record["id"],
    }
    if spec["captions"] != "absent":
        frame_record["captions"] = [
            {
                "id": uid(slug, "caption", c) if not legacy else str(uuid.UUID(uid(slug, c))),
                "text": text,
                "frameId": frame_id,
                "createdAt": iso(created + timedelta(seconds=15)),
                "status": "active",
            }
            for c, text in enumerate(spec["captions"])
        ]
    if spec["objects"] != "absent":
        frame_record["objects"] = make_objects(slug, 0, frame, spec["objects"], hyphens=legacy)
    record["frames"] = [frame_record]
    if slug == "retina":
        record["rating"] = 4  # unknown media field
        frame_record["exposure"] = {"iso": 100}  # unknown frame field
        frame_record["captions"][0]["model"] = "caption-v2"  # unknown caption field
    if legacy:
        record = legacy_shape(record, slug)
    return record


def legacy_shape(record: dict, slug: str) -> dict:
    """The older API generation: hyphenated ids, entityId, exif, no path/datasetId/dataset."""
    media_id = str(uuid.UUID(record["id"]))
    entity_id = str(uuid.UUID(uid("entity", slug)))
    for frame in record["frames"]:
        frame["mediaId"] = media_id
    created = record["createdAt"].replace("2026", "2025")
    return {
        "id": media_id,
        "name": f"entities/{entity_id}/media/{slug}.jpg",
        "type": "image",
        "blob": record["blob"],
        "entityId": entity_id,
        "width": record["width"],
        "height": record["height"],
        "duration": None,
        "sizeBytes": record["sizeBytes"],
        "exif": {"tags": {}},
        "createdAt": created,
        "updatedAt": created,
        "metadata": {
            "tags": {"Tags": ["24"], **record["metadata"]["tags"]},
            "moderation": record["metadata"]["moderation"],
        },
        "createdById": str(uuid.UUID(USER_ID)),
        "updatedById": None,
        "status": "active",
        "frames": record["frames"],
    }


def video_record(index: int) -> dict:
    """A short video panned and zoomed out of the rocket photo: 5 frames, string timestamps."""
    slug = "rocket-launch"
    source = Image.open(ORIGINALS / "rocket.jpg").convert("RGB")
    created = EPOCH + timedelta(days=4 * index, minutes=7 * index)
    rocket_box = PHOTOS["rocket"]["objects"][0][2]
    frames, gif_frames = [], []
    record = base_record(
        slug,
        f"{slug}.gif",
        "video",
        "",
        "launches",
        created,
        480,
        320,
        0,
        {"subject": ["space"], "motion": ["zoom"]},
    )
    record["duration"] = 2.5
    n = 5
    for f in range(n):
        zoom = 1.0 - 0.12 * f  # the visible share of the source
        cw, ch = source.width * zoom, source.height * zoom
        cx, cy = source.width * 0.52, source.height * 0.55
        left = min(max(cx - cw / 2, 0), source.width - cw)
        top = min(max(cy - ch / 2, 0), source.height - ch)
        view = source.resize(
            (480, 320), Image.Resampling.LANCZOS, box=(left, top, left + cw, top + ch)
        )
        frame_url, frame = save_frame(f"frames/{slug}/{f}.jpg", view)
        gif_frames.append(fit(frame, 240))
        frame_id = uid(slug, "frame", f)
        x0, y0, x1, y1 = rocket_box
        box = (
            ((x0 * source.width - left) / cw),
            ((y0 * source.height - top) / ch),
            ((x1 * source.width - left) / cw),
            ((y1 * source.height - top) / ch),
        )
        box = tuple(min(max(v, 0.0), 1.0) for v in box)
        frame_record: dict = {
            "id": frame_id,
            "timestamp": f"{f * 0.5:g}",
            "endTimestamp": f"{(f + 1) * 0.5:g}",
            "blob": frame_url,
            "width": frame.width,
            "height": frame.height,
            "status": "active",
            "createdAt": iso(created + timedelta(seconds=20 + f)),
            "mediaId": record["id"],
        }
        if f % 2 == 0:  # odd frames carry neither captions nor objects keys
            frame_record["captions"] = [
                {
                    "id": uid(slug, "caption", f),
                    "text": f"A rocket on the launch pad, zooming in (frame {f}).",
                    "frameId": frame_id,
                    "createdAt": iso(created + timedelta(seconds=40 + f)),
                    "status": "active",
                }
            ]
            frame_record["objects"] = make_objects(
                slug, f, frame, [("object", "rocket", box, True)]
            )
        frames.append(frame_record)
    out = io.BytesIO()
    gif_frames[0].save(
        out, "GIF", save_all=True, append_images=gif_frames[1:], duration=500, loop=0
    )
    record["blob"] = write(f"video/{slug}.gif", out.getvalue())
    record["sizeBytes"] = len(out.getvalue())
    record["frames"] = frames
    return record


def page_image(number: int, lines: list[str]) -> Image.Image:
    page = Image.new("RGB", (400, 520), "white")
    draw = ImageDraw.Draw(page)
    y = 24
    if number == 1:
        scan = Image.open(SOURCES / "corner.png").convert("RGB")
        scan = fit(scan, 352)
        page.paste(scan, (24, y))
        y += scan.height + 16
    for line in lines:
        draw.text((24, y), line, fill="black")
        y += 16
    draw.text((190, 496), str(number), fill="gray")
    return page


PDF_PAGES = [
    [
        "Corner detection notes.",
        "",
        "A corner is where two edges meet.",
        "The scan above shows",
        "hand-drawn corners of several kinds.",
    ],
    [
        "Page two.",
        "",
        "Harris and Shi-Tomasi detectors score",
        "each pixel by the eigenvalues of",
        "the local structure tensor.",
        "",
        "Strong corners make good features",
        "for image matching.",
    ],
]


def pdf_record(index: int) -> dict:
    slug = "corner-notes"
    created = EPOCH + timedelta(days=4 * index, minutes=7 * index)
    pages = [page_image(n + 1, lines) for n, lines in enumerate(PDF_PAGES)]
    out = io.BytesIO()
    fixed = time.gmtime(datetime(2026, 2, 1, tzinfo=timezone.utc).timestamp())
    pages[0].save(
        out,
        "PDF",
        save_all=True,
        append_images=pages[1:],
        resolution=72.0,
        creationDate=fixed,
        modDate=fixed,
        producer="make_sample.py",
    )
    blob = write(f"pdf/{slug}.pdf", out.getvalue())
    record = base_record(
        slug,
        f"{slug}.pdf",
        "pdf",
        blob,
        None,
        created,
        400,
        520,
        len(out.getvalue()),
        {"subject": ["document"]},
    )
    frames = []
    for n, (page, lines) in enumerate(zip(pages, PDF_PAGES, strict=True)):
        frame_url, frame = save_frame(f"frames/{slug}/{n}.jpg", page)
        thumb = write(f"frames/{slug}/{n}-thumb.jpg", jpeg_bytes(fit(frame, 128), 85))
        frames.append(
            {
                "id": uid(slug, "frame", n),
                "timestamp": "0",
                "blob": frame_url,
                "thumbnailBlob": thumb,
                "pageNumber": n + 1,
                "text": "\n".join(lines),
                "width": frame.width,
                "height": frame.height,
                "status": "active",
                "createdAt": iso(created + timedelta(seconds=10 + n)),
                "mediaId": record["id"],
            }
        )
    record["frames"] = frames
    return record


def blocked_record(index: int) -> dict:
    """An upload blocked by content moderation: ``blob`` is null and there are no frames."""
    created = EPOCH + timedelta(days=4 * index, minutes=7 * index)
    record = base_record(
        "blocked", "blocked-upload.jpg", "image", None, None, created, 640, 480, 51234, {}
    )
    record["metadata"]["moderation"] = moderation(created, "rejected", ["violence"])
    record["status"] = "active"
    return record


def folder_rows() -> list[dict]:
    rows = []
    for i, (slug, (name, parent)) in enumerate(FOLDERS.items()):
        created = EPOCH - timedelta(days=2, hours=-i)
        folder_id = uid("folder", slug)
        rows.append(
            {
                "id": folder_id,
                "name": name,
                "type": "folder",
                "blob": "folder",
                "path": f"{folder_path(parent)}.{folder_id}",
                "datasetId": COLLECTION_ID,
                "status": "active",
                "createdAt": iso(created),
                "createdById": USER_ID,
            }
        )
    return rows


def build() -> dict:
    """Build every file under ``blobs/`` (except the originals) and return the collection."""
    for sub in ("frames", "crops", "video", "pdf"):
        for path in sorted((BLOBS / sub).glob("**/*"), reverse=True):
            if path.is_file():
                path.unlink()
            else:
                path.rmdir()
    media = [photo_record(i, slug, spec) for i, (slug, spec) in enumerate(PHOTOS.items())]
    media.append(video_record(len(media)))
    media.append(pdf_record(len(media)))
    media.append(blocked_record(len(media)))
    return {"dataset": DATASET, "folders": folder_rows(), "media": media}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--import-skimage", action="store_true", help="re-copy the source photos first"
    )
    args = parser.parse_args(argv)
    if args.import_skimage:
        import_skimage()
    collection = build()
    text = json.dumps(collection, indent=1, ensure_ascii=False) + "\n"
    (HERE / "collection.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(collection['media'])} media and {len(collection['folders'])} folders")


if __name__ == "__main__":
    main()

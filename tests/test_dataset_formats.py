"""Datasets as their readers expect them: claimed frame sizes, YOLO data.yaml, HF splits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from dataset_helpers import browse_tables, objects_with_geometry
from hypothesis import given, strategies as st

import coreviz_frames as cvf


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def claiming(tables, frame_id, width, height) -> cvf.MediaTables:
    """``tables`` whose frame ``frame_id`` (and its objects) claim ``width`` x ``height``."""
    frames, objects = tables.frames.copy(), tables.objects.copy()
    frames.loc[frames.frame_id == frame_id, ["width", "height"]] = (width, height)
    mine = objects.frame_id == frame_id
    objects.loc[mine, ["frame_width", "frame_height"]] = (width, height)
    return cvf.MediaTables(tables.media, frames, tables.captions, objects, tables.tags)


_CHILD = """
import json, resource, sys
from PIL import Image
import coreviz_frames as cvf
from coreviz_frames.coco import export_coco
from coreviz_frames.yolo import export_yolo
from coreviz_frames.detection import DetectionDataset

src, out, victim = sys.argv[1:4]
tables = cvf.read_parquet(src)
Image.MAX_IMAGE_PIXELS = None  # only the address-space limit stops a 60000 x 60000 image
with open("/proc/self/status") as fh:
    vm = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmSize:"))
limit = vm + 3 * 2**30  # a 60000 x 60000 RGB image needs 10.8 GB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
coco = export_coco(tables, out + "/coco", progress=False, workers=2)
yolo = export_yolo(tables, out + "/yolo", progress=False, workers=2)
ds = DetectionDataset(tables, target_format="numpy", cache_dir=False)
pos = next(i for i, it in enumerate(ds.items) if it.frame_id == victim)
image, target = ds[pos]
print(json.dumps({"coco": coco.failed_frames, "yolo": yolo.failed_frames,
                  "coco_images": coco.total_images, "size": list(image.size),
                  "box": target["boxes"].tolist()}))
"""


def test_a_60000_pixel_claim_is_reported_not_allocated(tables, tmp_path):
    victim = tables.frames.frame_id[0]
    real = tables.frames.set_index("frame_id").loc[victim]
    big = claiming(tables, victim, 60000, 60000)
    big.to_parquet(tmp_path / "src")
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "src"), str(tmp_path), victim],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for fmt in ("coco", "yolo"):
        assert list(result[fmt]) == [victim]
        assert "claims 60000x60000" in result[fmt][victim]
    assert result["coco_images"] == len(tables.frames) - 1
    assert result["size"] == [int(real.width), int(real.height)]
    for x1, y1, x2, y2 in result["box"]:
        assert 0 <= x1 <= x2 <= real.width + 1e-3 and 0 <= y1 <= y2 <= real.height + 1e-3


# --------------------------------------------------------------------------- YOLO data.yaml

_TRICKY = st.sampled_from(
    ["null", "yes", "no", "1", "0x1f", "~", "true", "- a", "a: b", "#x", "&a", "*a", "!tag", "%"]
)
_NAMES = st.lists(
    st.one_of(_TRICKY, st.text(min_size=1, max_size=12), st.sampled_from(["🚀", "😀 face"])),
    min_size=1,
    max_size=8,
    unique=True,
)


@given(names=_NAMES)
def test_data_yaml_names_read_back_exactly_with_pyyaml(names):
    from coreviz_frames.yolo import data_yaml

    text = data_yaml(["train", "val"], names)
    text.encode("utf-8")  # written as UTF-8: no lone surrogate left raw
    doc = yaml.safe_load(text)
    assert doc["names"] == dict(enumerate(names))
    assert (doc["train"], doc["val"], doc["test"]) == ("images/train", "images/val", None)


def test_data_yaml_emoji_and_lone_surrogate_names():
    from coreviz_frames.yolo import data_yaml

    names = ["😀", "a\U0001f680b", "\ud83d", 'q"\\:', "line\u2028sep", "nbsp\xa0", "\x85"]
    assert yaml.safe_load(data_yaml(["all"], names))["names"] == dict(enumerate(names))


def test_yolo_export_works_after_the_folder_is_moved(tables, tmp_path):
    from coreviz_frames.yolo import export_yolo

    first = tmp_path / "first"
    export_yolo(tables, first, splits=(0.6, 0.2, 0.2), seed=1, progress=False)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(first), str(moved))
    doc = yaml.safe_load((moved / "data.yaml").read_text(encoding="utf-8"))
    assert "path" not in doc  # Ultralytics then takes the yaml's folder as the root
    for key, split in (("train", "train"), ("val", "val"), ("test", "test")):
        folder = moved / doc[key]
        assert folder == moved / "images" / split and any(folder.iterdir())
    assert doc["names"] == dict(enumerate(sorted(objects_with_geometry(tables).label.unique())))

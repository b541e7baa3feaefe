"""Datasets as their readers expect them: claimed frame sizes, YOLO data.yaml, HF splits."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from dataset_helpers import browse_tables, claiming, objects_with_geometry
from hypothesis import given, strategies as st

import coreviz_frames as cvf


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


_CHILD = """
import json, resource, sys
from PIL import Image
import coreviz_frames as cvf
from coreviz_frames.training.coco import export_coco
from coreviz_frames.training.yolo import export_yolo
from coreviz_frames.training.detection import DetectionDataset

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
    from coreviz_frames.training.yolo import data_yaml

    text = data_yaml(["train", "val"], names)
    text.encode("utf-8")  # written as UTF-8: no lone surrogate left raw
    doc = yaml.safe_load(text)
    assert doc["names"] == dict(enumerate(names))
    assert (doc["train"], doc["val"], doc["test"]) == ("images/train", "images/val", None)


def test_data_yaml_emoji_and_lone_surrogate_names():
    from coreviz_frames.training.yolo import data_yaml

    names = ["😀", "a\U0001f680b", "\ud83d", 'q"\\:', "line\u2028sep", "nbsp\xa0", "\x85"]
    assert yaml.safe_load(data_yaml(["all"], names))["names"] == dict(enumerate(names))


def test_yolo_export_works_after_the_folder_is_moved(tables, tmp_path):
    from coreviz_frames.training.yolo import export_yolo

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


# --------------------------------------------------------------------------- Hugging Face

datasets = pytest.importorskip("datasets", reason="Hugging Face datasets (hf or dev extra)")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return str(tmp_path / "hf-cache")


def test_hf_without_splits_loads_as_train(tables, tmp_path, offline):
    from coreviz_frames.training.huggingface import export_hf

    report = export_hf(tables, tmp_path / "hf", images=False, progress=False)
    assert report.images == {"train": 19}
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=offline)
    assert list(loaded) == ["train"] and len(loaded["train"]) == 19


def test_hf_val_is_validation_and_odd_valid_names_load(tables, tmp_path, offline):
    from coreviz_frames.training.huggingface import export_hf

    media = sorted(tables.media.media_id)
    splits = {"train": media[:4], "val": media[4:7], "null": media[7:9], "1": media[9:]}
    report = export_hf(tables, tmp_path / "hf", splits=splits, images=False, progress=False)
    assert sorted(report.images) == ["1", "null", "train", "validation"]
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=offline)
    assert sorted(loaded) == ["1", "null", "train", "validation"]
    for name, ids in (("validation", media[4:7]), ("null", media[7:9]), ("1", media[9:])):
        assert set(loaded[name]["media_id"]) <= set(ids)
        assert len(loaded[name]) == report.images[name]


@pytest.mark.parametrize(
    "names",
    [
        ["train", "all"],
        ["train", "train-2"],
        ["my split", "train"],
        ["val", "validation"],
        ["Train", "train"],
        ["", "x"],
        ["a..b", "train"],
    ],
)
def test_hf_split_names_datasets_refuses_are_refused_before_writing(tables, tmp_path, names):
    from coreviz_frames.errors import ConfigError
    from coreviz_frames.training.huggingface import export_hf

    media = sorted(tables.media.media_id)
    splits = {names[0]: media[:5], names[1]: media[5:]}
    with pytest.raises(ConfigError, match="split"):
        export_hf(tables, tmp_path / "hf", splits=splits, progress=False)
    assert not (tmp_path / "hf").exists()


def test_hf_card_escapes_every_name(tables, tmp_path):
    from coreviz_frames.training.huggingface import export_hf

    evil = ['<img src=x onerror="alert(1)">', "[x](javascript:alert(1))", "a|b\n# head"]
    objects = tables.objects.copy()
    labelled = objects.label.notna()
    objects.loc[labelled, "label"] = [evil[i % 3] for i in range(int(labelled.sum()))]
    hostile = cvf.MediaTables(tables.media, tables.frames, tables.captions, objects, tables.tags)
    export_hf(hostile, tmp_path / "hf", images=False, progress=False)
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    body = card.split("---", 2)[2]
    assert "<img" not in body and "](javascript" not in body and "\n# head" not in body
    assert "&lt;img src=x onerror=&quot;alert\\(1\\)&quot;&gt;" in body
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in body


def _caption_texts(tables) -> dict[str, str]:
    caps = tables.captions[tables.captions.text.notna() & (tables.captions.text != "")]
    return dict(zip(caps.caption_id, caps.text, strict=True))


def test_captions_grain_in_memory_same_splits_as_frames(tables):
    from coreviz_frames.training.huggingface import to_hf_dataset

    expected = _caption_texts(tables)
    assert expected, "the sample collection has captions"
    ds = to_hf_dataset(tables, grain="captions", progress=False)
    assert len(ds) == len(expected)
    assert dict(zip(ds["caption_id"], ds["text"], strict=True)) == expected
    row = ds[0]
    assert row["image"].size == (row["width"], row["height"])
    assert {"frame_id", "media_id", "caption_index", "image_id"} <= set(ds.features)
    caps = to_hf_dataset(tables, grain="captions", splits=(0.6, 0.2, 0.2), seed=3, images=False)
    frames = to_hf_dataset(tables, splits=(0.6, 0.2, 0.2), seed=3, images=False)
    assert sorted(caps) == sorted(frames) == ["test", "train", "validation"]
    for split in caps:
        assert set(caps[split]["media_id"]) <= set(frames[split]["media_id"])


def test_captions_export_loads_offline(tables, tmp_path, offline):
    from coreviz_frames.training.huggingface import export_hf

    report = export_hf(
        tables, tmp_path / "caps", grain="captions", splits=(0.6, 0.2, 0.2), progress=False
    )
    loaded = datasets.load_dataset(str(tmp_path / "caps"), cache_dir=offline)
    assert sorted(loaded) == ["test", "train", "validation"]
    assert {s: len(loaded[s]) for s in loaded} == report.images
    texts = {
        cid: text
        for split in loaded.values()
        for cid, text in zip(split["caption_id"], split["text"], strict=True)
    }
    assert texts == _caption_texts(tables)
    first = loaded["train"][0]
    assert first["image"].size == (first["width"], first["height"])


_CHECK = """
import json, sys
from ultralytics.data.utils import check_det_dataset
data = check_det_dataset(sys.argv[1], autodownload=False)
print(json.dumps({k: str(data[k]) for k in ("path", "train", "val", "test")} |
                 {"nc": data["nc"], "names": data["names"]}))
"""


@pytest.mark.slow
def test_ultralytics_check_det_dataset_resolves_a_moved_export(tables, tmp_path):
    """Ultralytics' own resolver, in a child with no network and fonts in place."""
    from coreviz_frames.training.yolo import export_yolo

    # Not importorskip: importing ultralytics patches PIL.Image.open for the whole process
    # (an unidentified image then tries to install pi-heif), which would change what every
    # later image test in this process sees.
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("ultralytics is installed by make test")
    first = tmp_path / "first"
    export_yolo(tables, first, splits=(0.6, 0.2, 0.2), seed=1, progress=False)
    moved = tmp_path / "work" / "moved"
    moved.parent.mkdir()
    shutil.move(str(first), str(moved))
    config = tmp_path / "yolo-config"
    config.mkdir()
    for font in ("Arial.ttf", "Arial.Unicode.ttf"):  # check_font would download them
        (config / font).write_bytes(b"")
    env = {**os.environ, "YOLO_OFFLINE": "true", "YOLO_CONFIG_DIR": str(config)}
    names = dict(enumerate(sorted(objects_with_geometry(tables).label.unique())))
    for yaml_arg, cwd in ((str(moved / "data.yaml"), tmp_path), ("moved/data.yaml", moved.parent)):
        done = subprocess.run(
            [sys.executable, "-c", _CHECK, yaml_arg],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=cwd,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        data = json.loads(done.stdout.strip().splitlines()[-1])
        for key in ("train", "val", "test"):
            assert data[key] == str((moved / "images" / key).resolve())
        assert {int(k): v for k, v in data["names"].items()} == names
        assert data["nc"] == len(names)


def test_export_hf_writes_a_row_group_per_batch(tables, tmp_path, monkeypatch, offline):
    import pyarrow.parquet as pq

    from coreviz_frames.training import huggingface as hf

    monkeypatch.setattr(hf, "_BATCH", 4)  # 19 frames: shards of 10 rows, batches of 4
    hf.export_hf(tables, tmp_path / "hf", rows_per_shard=10, progress=False)
    shards = sorted((tmp_path / "hf" / "data").glob("*.parquet"))
    assert [p.name for p in shards] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    groups = [pq.ParquetFile(p).metadata.num_row_groups for p in shards]
    rows = [pq.ParquetFile(p).metadata.num_rows for p in shards]
    assert rows == [10, 9] and groups == [3, 3]  # written as the batches came
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=offline)["train"]
    assert len(loaded) == 19 and loaded[0]["image"].size == (
        loaded[0]["width"],
        loaded[0]["height"],
    )

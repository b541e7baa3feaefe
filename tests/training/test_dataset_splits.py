"""Training data you can trust: one split owner for every writer, stable as media come and go.

A 300-media synthetic collection grows by 10% and loses 5%; COCO, YOLO, HF, crops and
DetectionDataset are exported before and after with the same seed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, EmptySplitWarning
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.training.coco import export_coco
from coreviz_frames.training.crop_dataset import CropDataset, export_crops
from coreviz_frames.training.detection import DetectionDataset
from coreviz_frames.training.huggingface import export_hf
from coreviz_frames.training.names import safe_name
from coreviz_frames.training.splits import (
    assign_splits,
    media_point,
    read_splits,
    split_by_media,
    split_of,
)
from coreviz_frames.training.yolo import export_yolo

FRACTIONS = (0.7, 0.2, 0.1)


def _tables(indexes) -> cvf.MediaTables:
    """Synthetic media as tables; frame blobs are https URLs never fetched (images="none"),
    object crops have no blob and frames cannot be cut (the crop export fails fast, its
    manifest still says each object's split)."""
    tables = cvf.to_tables([synthetic_media(i) for i in indexes])
    frames = tables.frames.copy()
    frames["blob"] = "https://blob.invalid/" + frames["frame_id"].astype(str) + ".jpg"
    return cvf.MediaTables(tables.media, frames, tables.captions, tables.objects, tables.tags)


def _crop_tables(tables: cvf.MediaTables) -> cvf.MediaTables:
    frames = tables.frames.copy()
    frames["blob"] = "blob://never-fetched"
    objects = tables.objects.assign(blob=None)
    return cvf.MediaTables(tables.media, frames, tables.captions, objects, tables.tags)


def _by_media(pairs) -> dict[str, str]:
    out: dict[str, str] = {}
    for media, split in pairs:
        assert out.setdefault(str(media), split) == split, f"media {media} in two splits"
    return out


def _coco(tables, out: Path) -> dict[str, str]:
    export_coco(tables, out, splits=FRACTIONS, seed=7, images="none")
    pairs = []
    for split in ("train", "val", "test"):
        doc = json.loads((out / f"annotations/instances_{split}.json").read_text())
        pairs += [(im["coreviz_media_id"], split) for im in doc["images"]]
    return _by_media(pairs)


def _yolo(tables, out: Path) -> dict[str, str]:
    export_yolo(tables, out, splits=FRACTIONS, seed=7, images="none")
    media_of = {
        safe_name(f): m for f, m in zip(tables.frames.frame_id, tables.frames.media_id, strict=True)
    }
    return _by_media(
        (media_of[label.stem], label.parent.name) for label in (out / "labels").rglob("*.txt")
    )


def _hf(tables, out: Path) -> dict[str, str]:
    export_hf(tables, out, splits=FRACTIONS, seed=7, images=False, progress=False)
    pairs = []
    for shard in (out / "data").glob("*.parquet"):
        split = shard.name.split("-")[0]
        pairs += [
            (m, split) for m in pq.read_table(shard, columns=["media_id"]).column(0).to_pylist()
        ]
    return {m: ("val" if s == "validation" else s) for m, s in _by_media(pairs).items()}


def _crops(tables, out: Path) -> dict[str, str]:
    manifest = export_crops(_crop_tables(tables), out, splits=FRACTIONS, seed=7, progress=False)
    return _by_media(zip(manifest.media_id, manifest.split, strict=True))


def _detection(tables, out: Path) -> dict[str, str]:
    parts = DetectionDataset.from_splits(tables, FRACTIONS, seed=7)
    return _by_media((it.media_id, name) for name, ds in parts.items() for it in ds.items)


def _crop_dataset(tables, out: Path) -> dict[str, str]:
    """CropDataset per split: which media's objects each one serves."""
    boxed = tables.objects.dropna(subset=["bbox_x"])
    pairs = []
    for split in ("train", "val", "test"):
        ds = CropDataset(
            boxed, frames=tables.frames, splits=FRACTIONS, split=split, seed=7, source="frame"
        )
        pairs += [(m, split) for m in ds.objects.media_id]
    return _by_media(pairs)


WRITERS = {
    "coco": _coco,
    "yolo": _yolo,
    "hf": _hf,
    "crops": _crops,
    "detection": _detection,
    "crop_dataset": _crop_dataset,
}


@pytest.mark.slow
def test_adding_and_removing_media_moves_no_other_media_and_all_writers_agree(tmp_path):
    pytest.importorskip("datasets")
    before_ids = list(range(300))
    after_ids = [i for i in range(330) if i % 20 != 3]  # +30 media, -15 media
    runs = {}
    for run, ids in (("before", before_ids), ("after", after_ids)):
        tables = _tables(ids)
        runs[run] = {name: fn(tables, tmp_path / run / name) for name, fn in WRITERS.items()}
        media = set(tables.media.media_id)
        for name, owner in runs[run].items():
            assert set(owner) == media, name  # every media in a split, in every writer
        first = runs[run]["coco"]
        for name, owner in runs[run].items():
            assert owner == first, f"{name} disagrees with coco"
        assert (
            read_splits(tmp_path / run / "coco") == first == read_splits(tmp_path / run / "crops")
        )
        n = len(media)
        for split, frac in zip(("train", "val", "test"), FRACTIONS, strict=True):
            count = sum(1 for s in first.values() if s == split)
            assert abs(count - n * frac) <= 4 * (n * frac * (1 - frac)) ** 0.5, (split, count)
    both = set(runs["before"]["coco"]) & set(runs["after"]["coco"])
    assert len(both) == 285
    for name in WRITERS:
        moved = [m for m in both if runs["before"][name][m] != runs["after"][name][m]]
        assert moved == [], f"{name}: {len(moved)} media changed split"


def test_fractions_are_of_media_not_frames():
    # 30 videos of 51 frames and 270 stills (the synthetic mix): frames weigh nothing
    tables = _tables(range(300))
    parts = split_by_media(tables.frames, FRACTIONS, seed=1)
    media_counts = {k: p.media_id.nunique() for k, p in parts.items()}
    for split, frac in zip(("train", "val", "test"), FRACTIONS, strict=True):
        assert abs(media_counts[split] - 300 * frac) <= 4 * (300 * frac * (1 - frac)) ** 0.5


def test_split_of_is_a_keyed_hash_of_the_normalised_id():
    hyphened = "0A1B2C3D-0000-4000-8000-00000000000F"
    assert media_point(hyphened, 3) == media_point("0a1b2c3d000040008000" + "00000000000f", 3)
    assert media_point("m", 1) != media_point("m", 2)
    fractions = {"train": 0.5, "val": 0.5}
    assert split_of("m", fractions, 1) == assign_splits(["x", "m", "y"], (0.5, 0.5), 1)[1]["m"]
    with pytest.raises(ConfigError, match="add up to 1"):
        assign_splits(["m"], (0.5, 0.4))
    with pytest.raises(ConfigError, match="plain folder name"):
        assign_splits(["m"], {"a b ": 1.0})


def test_a_splits_file_or_folder_pins_the_assignment(tmp_path):
    tables = _tables(range(40))
    report = export_coco(tables, tmp_path / "first", splits=(0.5, 0.5), seed=2, images="none")
    assert "splits.csv" in report.files
    pinned = read_splits(tmp_path / "first")
    assert set(pinned.values()) == {"train", "val"}
    # another seed, more media: the listed media keep their split, new ones are reported
    grown = _tables(range(45))
    with pytest.warns(EmptySplitWarning, match="5 media are not in"):
        again = export_coco(grown, tmp_path / "again", splits=tmp_path / "first", images="none")
    assert read_splits(tmp_path / "again") == pinned
    assert sum(again.images.values()) == sum(report.images.values())
    assert all("in no split" in why for why in again.skipped_frames.values())
    # the .csv file itself, and the same assignment read by every writer
    manifest = export_crops(
        _crop_tables(tables),
        tmp_path / "crops",
        splits=tmp_path / "first" / "splits.csv",
        progress=False,
    )
    assert dict(zip(manifest.media_id, manifest.split, strict=True)) == pinned
    with pytest.raises(ConfigError, match=r"holds no splits\.csv"):
        assign_splits(["m"], tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("media,split\nm,train\n")
    with pytest.raises(ConfigError, match="media_id and split"):
        assign_splits(["m"], bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("media_id,split\nm,train\nm,val\n")
    with pytest.raises(ConfigError, match="two splits"):
        assign_splits(["m"], twice)


def test_an_empty_split_is_reported():
    with pytest.warns(EmptySplitWarning, match="'test' has no media"):
        names, owner = assign_splits(["a"], FRACTIONS, seed=0)
    assert names == ["train", "val", "test"] and len(owner) == 1
    with pytest.warns(EmptySplitWarning, match="'b' has no media"):
        assign_splits(["a"], {"a": ["a"], "b": ["zzz"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assign_splits(["a"], (1.0, 0.0, 0.0))  # a split asked empty is not reported


def test_two_way_splits_in_every_writer(tmp_path):
    tables = _tables(range(30))
    report = export_yolo(tables, tmp_path / "y", splits=(0.8, 0.2), seed=1, images="none")
    assert sorted(report.images) == ["train", "val"]
    parts = DetectionDataset.from_splits(tables, (0.8, 0.2), seed=1)
    assert sorted(parts) == ["train", "val"]
    assert set(read_splits(tmp_path / "y").values()) == {"train", "val"}


def test_crop_dataset_split_checks_its_arguments():
    tables = _tables(range(20))
    with pytest.raises(ConfigError, match="split= needs splits="):
        CropDataset(tables, split="train")
    with pytest.raises(ConfigError, match="split must be one of"):
        CropDataset(tables, splits=(0.5, 0.5), split="test")

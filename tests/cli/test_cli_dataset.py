"""The ``coreviz-frames dataset coco|yolo|hf`` command over a Parquet export."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from dataset_helpers import browse_tables, with_frame_blob

import coreviz_frames as cvf
from coreviz_frames.cli.main import main


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


@pytest.fixture(scope="module")
def export_dir(tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-dataset") / "export"
    tables.to_parquet(out)
    return out


def _run(*args: str):
    return CliRunner().invoke(main, ["dataset", *args], catch_exceptions=False)


def test_coco_with_split_and_seed(export_dir, tmp_path):
    out = tmp_path / "coco"
    result = _run("coco", str(export_dir), "--out", str(out), "--split", "0.8,0.1,0.1")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"coco: 19 images, 19 annotations, 12 categories, 0 failures (1 objects skipped) -> {out}\n"
    )
    docs = [
        json.loads((out / f"annotations/instances_{s}.json").read_text())
        for s in ("train", "val", "test")
    ]
    assert sum(len(d["images"]) for d in docs) == 19
    again = _run("coco", str(export_dir), "--out", str(tmp_path / "c2"), "--split", "0.8,0.1,0.1")
    assert again.exit_code == 0
    for split in ("train", "val", "test"):
        name = f"annotations/instances_{split}.json"
        assert (out / name).read_bytes() == (tmp_path / "c2" / name).read_bytes()


def test_yolo_segment_without_images(export_dir, tmp_path):
    out = tmp_path / "yolo"
    result = _run("yolo", str(export_dir), "--out", str(out), "--task", "segment", "--no-images")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("yolo: 19 images, 19 annotations, 12 categories, 0 failures")
    assert not (out / "images").exists()
    lines = [ln for p in (out / "labels" / "all").iterdir() for ln in p.read_text().splitlines()]
    assert len(lines) == 19 and all(len(ln.split()) >= 7 for ln in lines)


def test_hf_without_images(export_dir, tmp_path):
    out = tmp_path / "hf"
    result = _run("hf", str(export_dir), "--out", str(out), "--no-images", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("hf: 19 images")
    assert (out / "README.md").is_file() and list((out / "data").glob("train-*.parquet"))


def test_hf_captions_grain(export_dir, tables, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "caps"
    result = _run(
        "hf", str(export_dir), "--out", str(out), "--grain", "captions", "--split", "0.6,0.2,0.2"
    )
    assert result.exit_code == 0, result.output
    shards = sorted((out / "data").glob("*.parquet"))
    rows = sum(pq.read_metadata(p).num_rows for p in shards)
    texts = tables.captions.text
    assert rows == int((texts.notna() & (texts != "")).sum())
    assert {p.name.split("-")[0] for p in shards} == {"train", "validation", "test"}
    assert "text" in pq.read_schema(shards[0]).names
    wrong = _run("coco", str(export_dir), "--out", str(tmp_path / "c"), "--grain", "captions")
    assert wrong.exit_code == 2 and "hf only" in wrong.output


def test_bad_options_exit_2(export_dir, tmp_path):
    bad = CliRunner().invoke(
        main, ["dataset", "coco", str(export_dir), "--out", str(tmp_path), "--split", "0.8"]
    )
    assert bad.exit_code == 2 and "two or three fractions" in bad.output
    sums = CliRunner().invoke(
        main, ["dataset", "coco", str(export_dir), "--out", str(tmp_path), "--split", "1,1,1"]
    )
    assert sums.exit_code == 1 and "add up to 1" in sums.output and "Traceback" not in sums.output
    task = CliRunner().invoke(
        main, ["dataset", "coco", str(export_dir), "--out", str(tmp_path), "--task", "segment"]
    )
    assert task.exit_code == 2 and "yolo only" in task.output
    fmt = CliRunner().invoke(main, ["dataset", "voc", str(export_dir), "--out", str(tmp_path)])
    assert fmt.exit_code == 2


def test_failed_frames_exit_1_unless_allowed(tables, sample_api, tmp_path):
    victim = tables.frames.frame_id[2]
    broken = with_frame_blob(tables, victim, f"{sample_api.blob_url}/frames/absent/0.jpg")
    broken.to_parquet(tmp_path / "export")
    result = _run("yolo", str(tmp_path / "export"), "--out", str(tmp_path / "y"))
    assert result.exit_code == 1
    assert "18 images" in result.output and "1 failures" in result.output
    assert f"  failed {victim}: frame {victim}:" in result.output
    allowed = _run(
        "yolo", str(tmp_path / "export"), "--out", str(tmp_path / "y2"), "--allow-failures"
    )
    assert allowed.exit_code == 0


def test_overwrite_splits_reuse_and_selection(export_dir, tmp_path):
    out = tmp_path / "y"
    first = _run("yolo", str(export_dir), "--out", str(out), "--split", "0.5,0.5", "--seed", "3")
    assert first.exit_code == 0, first.output
    assigned = (out / "splits.csv").read_text()
    again = CliRunner().invoke(main, ["dataset", "yolo", str(export_dir), "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert "Traceback" not in again.output and (out / "splits.csv").read_text() == assigned
    # the assignment reused from the dataset folder itself, whatever the seed
    pinned = _run(
        "coco",
        str(export_dir),
        "--out",
        str(tmp_path / "c"),
        "--splits",
        str(out),
        "--classes",
        "rocket,person",
        "--label-map",
        "astronaut=person",
        "--min-size",
        "2",
    )
    assert pinned.exit_code == 0, pinned.output
    assert (tmp_path / "c" / "splits.csv").read_text() == assigned
    labels = json.loads((tmp_path / "c" / "labels.json").read_text())
    assert labels["classes"] == ["rocket", "person"]
    assert labels["label_map"] == {"astronaut": "person"}
    replaced = _run("yolo", str(export_dir), "--out", str(out), "--overwrite", "--no-empty")
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "images" / "train").exists() and (out / "images" / "all").is_dir()
    both = CliRunner().invoke(
        main,
        [
            "dataset",
            "coco",
            str(export_dir),
            "--out",
            str(tmp_path / "d"),
            "--split",
            "0.5,0.5",
            "--splits",
            str(out),
        ],
    )
    assert both.exit_code == 2 and "not both" in both.output


def test_crops_command_one_class_list_and_overwrite(export_dir, tmp_path):
    out = tmp_path / "crops"
    args = ["crops", str(export_dir), "--out", str(out), "--split", "0.6,0.2,0.2", "--seed", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output  # the object with no geometry is left out
    assert "0 failed, 1 left out" in result.output
    assert "left out: 1 (no crop blob and no geometry)" in result.output
    classes = (out / "classes.txt").read_text().splitlines()
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (out / split).iterdir() if p.is_dir()) == classes
    assert CliRunner().invoke(main, args).exit_code == 1  # refused: not empty
    assert "--overwrite" in CliRunner().invoke(main, args).output
    replaced = CliRunner().invoke(main, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output


def test_label_column_or_tag_and_the_older_labels_option(export_dir, tmp_path):
    by_type = _run("coco", str(export_dir), "--out", str(tmp_path / "t"), "--label", "type")
    assert by_type.exit_code == 0, by_type.output
    labels = json.loads((tmp_path / "t" / "labels.json").read_text())
    assert labels["options"]["label"] == "type" and "object" in labels["classes"]
    old = _run("coco", str(export_dir), "--out", str(tmp_path / "o"), "--labels", "rocket")
    assert old.exit_code == 0, old.output
    assert "warning: --labels is deprecated: pass --classes" in old.output
    assert json.loads((tmp_path / "o" / "labels.json").read_text())["classes"] == ["rocket"]
    args = ["dataset", "coco", str(export_dir), "--out", str(tmp_path / "b")]
    both = CliRunner().invoke(main, [*args, "--labels", "a", "--classes", "a"])
    assert both.exit_code == 2 and "--classes alone" in both.output


def test_crops_and_dataset_leave_out_objects_without_geometry_alike(export_dir, tmp_path):
    """Neither fails on an object with no box (and no crop image): both skip it, exit 0,
    and say so."""
    crops = CliRunner().invoke(main, ["crops", str(export_dir), "--out", str(tmp_path / "c")])
    coco = CliRunner().invoke(
        main, ["dataset", "coco", str(export_dir), "--out", str(tmp_path / "d")]
    )
    assert (crops.exit_code, coco.exit_code) == (0, 0), crops.output + coco.output
    assert "1 left out" in crops.output and "no geometry" in crops.output
    assert "(1 objects skipped)" in coco.output
    manifest = pd.read_parquet(tmp_path / "c" / "manifest.parquet")
    left_out = manifest.loc[manifest.status == "skipped", "object_id"].tolist()
    objects = cvf.read_parquet(export_dir).objects
    assert left_out == objects.object_id[objects.bbox_x.isna() & objects.blob.isna()].tolist()
    report = cvf.export_coco(cvf.read_parquet(export_dir), tmp_path / "e", images="none")
    assert list(report.skipped_objects) == left_out

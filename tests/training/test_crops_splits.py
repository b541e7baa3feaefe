"""export_crops with splits=, label="tag:KEY" and metadata.parquet (read by imagefolder)."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dataset_helpers import browse_tables

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.training.crop_dataset import METADATA_NAME, export_crops


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def test_splits_write_one_imagefolder_per_split(tables, tmp_path):
    manifest = export_crops(tables, tmp_path, splits=(0.6, 0.2, 0.2), seed=3, progress=False)
    written = manifest[manifest.status == "written"]
    assert len(written) == len(tables.objects) - 1
    assert {p.split("/")[0] for p in written.path} == {"train", "val", "test"}
    split_of_media: dict[str, str] = {}
    for row in written.itertuples():
        split, label_dir, _ = row.path.split("/")
        assert (tmp_path / row.path).is_file() and label_dir == row.label
        assert split_of_media.setdefault(row.media_id, split) == split
    meta = pq.read_table(tmp_path / METADATA_NAME).to_pandas()
    assert meta.columns.tolist() == [
        "file_name",
        "label",
        "object_id",
        "frame_id",
        "media_id",
        "split",
    ]
    assert sorted(meta.file_name) == sorted(written.path)
    assert (meta.file_name.str.split("/").str[0] == meta.split).all()
    frames = tables.objects.set_index("object_id").frame_id
    assert (meta.frame_id == meta.object_id.map(frames)).all()


def test_metadata_is_read_by_hugging_face_imagefolder(tables, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    export_crops(tables, tmp_path / "crops", splits=(0.6, 0.2, 0.2), seed=3, progress=False)
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(tmp_path / "crops"), cache_dir=str(tmp_path / "cache")
    )
    assert sorted(loaded) == ["test", "train", "validation"]
    assert sum(len(loaded[s]) for s in loaded) == len(tables.objects) - 1
    row = loaded["train"][0]
    assert {"image", "object_id", "frame_id", "media_id"} <= set(row)
    assert row["object_id"] in set(tables.objects.object_id)


def test_label_from_a_tag_key(tables, tmp_path):
    manifest = export_crops(tables, tmp_path, label="tag:color", progress=False)
    tags = tables.tags[tables.tags.key == "color"]
    n_values = tags.groupby("media_id").value.nunique()
    single = tags[tags.media_id.map(n_values) == 1].set_index("media_id").value
    for row in manifest[manifest.status == "written"].itertuples():
        if row.media_id in single.index:
            assert row.label == single[row.media_id]
            assert row.path.startswith(f"{row.label}/")
        else:  # several colors, or none: no single label
            assert pd.isna(row.label)
            assert row.path.startswith("_unlabeled/")
    assert "orange" not in set(manifest.label.dropna())  # the astronaut has orange and white


def test_dict_splits_leave_other_media_skipped(tables, tmp_path):
    mid = tables.objects.media_id[1]
    manifest = export_crops(tables, tmp_path, splits={"train": [mid]}, progress=False)
    mine = manifest.media_id == mid
    assert (manifest[mine].status == "written").all()
    assert (manifest[~mine].status == "skipped").all()
    assert manifest[~mine].reason.str.contains("no split").all()
    assert {p.parent.parent.name for p in tmp_path.rglob("*.jpg")} == {"train"}


def test_bad_label_options(tables, tmp_path):
    with pytest.raises(ConfigError, match="tags table"):
        export_crops(tables.objects, tmp_path, frames=tables.frames, label="tag:color")
    with pytest.raises(ConfigError, match="tag key"):
        export_crops(tables, tmp_path, label="tag:")
    with pytest.raises(TypeError):  # label_column= is spelled label= everywhere now
        export_crops(tables, tmp_path, label_column="status")
    with pytest.raises(ConfigError, match="no column"):
        export_crops(tables, tmp_path, label="nope")
    with pytest.raises(ConfigError, match="two splits"):
        mid = tables.objects.media_id[0]
        export_crops(tables, tmp_path, splits={"a": [mid], "b": [mid]})
    assert cvf.export_crops is export_crops

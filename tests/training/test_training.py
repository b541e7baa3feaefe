"""CropDataset, split_by_media and export_crops."""

from __future__ import annotations

import pickle
import sys
import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, EmptySplitWarning, ExportError, SkippedRecordWarning
from coreviz_frames.training.crop_dataset import (
    CROP_MANIFEST_NAME,
    CropDataset,
    export_crops,
    export_crops_from_parquet,
)
from coreviz_frames.training.names import safe_name
from coreviz_frames.training.splits import split_by_media


@pytest.fixture(scope="module")
def tables(sample_api):
    with cvf.Client(api_key="k", base_url=sample_api.base_url) as client:
        return cvf.to_tables(client.browse(sample_api.collection_id, progress=False))


# --------------------------------------------------------------------------- dataset


def _dataset(tables, **kwargs):
    """A CropDataset of the sample collection: its one object without geometry is reported."""
    with pytest.warns(SkippedRecordWarning, match="1 of 20 objects are left out"):
        return CropDataset(tables, **kwargs)


def test_crop_dataset_items_and_classes(tables):
    ds = _dataset(tables)
    objs = tables.objects
    croppable = objs[objs.blob.notna() | objs.bbox_x.notna()]
    assert len(ds) == len(croppable)
    assert ds.classes == sorted(croppable.label.unique())
    assert ds.class_to_idx == {c: i for i, c in enumerate(ds.classes)}
    assert len(ds.skipped) == len(objs) - len(croppable)
    assert all("no crop blob and no geometry" in why for why in ds.skipped.values())
    image, target = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    assert ds.classes[target] == ds.objects.label.iloc[0]
    assert ds[-1][1] == ds.targets[-1]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_crop_dataset_options_and_transform(tables):
    with pytest.warns(SkippedRecordWarning, match="not among classes="):
        ds = CropDataset(
            tables,
            classes=["rocket", "person"],
            transform=lambda im: im.size,
            square=True,
            max_size=32,
        )
    assert ds.classes == ["rocket", "person"]
    assert set(ds.objects.label) == {"rocket", "person"}
    sizes = [ds[i][0] for i in range(len(ds))]
    assert all(max(s) == 32 for s in sizes)
    with pytest.raises(TypeError):
        CropDataset(tables, bogus=1)
    with pytest.raises(ConfigError, match="no column 'nope'"):
        CropDataset(tables, label="nope")


def test_crop_dataset_pickles_without_session_or_lock(tables):
    ds = _dataset(tables)
    ds[0]
    state = ds.__getstate__()
    assert "_lock" not in state and "_frames_lru" not in state
    blob = pickle.dumps(ds)
    assert b"requests" not in blob
    clone = pickle.loads(blob)
    assert len(clone) == len(ds) and clone[0][1] == ds[0][1]
    assert "torch" not in sys.modules or "torch" in sys.modules  # never imported by us


def test_package_never_imports_torch():
    import subprocess

    code = (
        "import sys, coreviz_frames as c, coreviz_frames.training.crop_dataset,"
        " coreviz_frames.images.crops;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _to_tensor(image):
    import torch

    return torch.from_numpy(np.asarray(image.resize((32, 32)), dtype=np.uint8).copy()).permute(
        2, 0, 1
    )


@pytest.mark.slow
def test_dataloader_with_worker_processes(tables):
    torch = pytest.importorskip(
        "torch",
        reason="torch is not installed (pip install 'coreviz-frames[torch]')",
        exc_type=ImportError,  # a broken install (missing shared library) skips too
    )
    ds = _dataset(tables, transform=_to_tensor)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    seen, targets = 0, []
    for images, labels in loader:
        assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.uint8
        seen += len(labels)
        targets += labels.tolist()
    assert seen == len(ds) and targets == ds.targets


# --------------------------------------------------------------------------- splits


@settings(max_examples=40, deadline=None)
@given(
    media=st.lists(st.integers(0, 30), min_size=1, max_size=120),
    labels=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=120, max_size=120),
    weights=st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 10)).filter(
        lambda w: sum(w) > 0
    ),
    seed=st.integers(0, 2**32 - 1),
    stratify=st.sampled_from([None, "label"]),
)
def test_split_by_media_never_shares_a_media(media, labels, weights, seed, stratify):
    df = pd.DataFrame(
        {"media_id": [f"m{m}" for m in media], "label": labels[: len(media)]},
        index=np.arange(len(media)) * 3,
    )
    fractions = tuple(w / sum(weights) for w in weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptySplitWarning)  # a few media: splits may be empty
        parts = split_by_media(df, fractions, seed=seed, stratify=stratify)
        again = split_by_media(df, fractions, seed=seed, stratify=stratify)
    assert list(parts) == ["train", "val", "test"]
    ids = [set(p.media_id) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sorted(i for p in parts.values() for i in p.index) == sorted(df.index)
    for name, frac in zip(parts, fractions, strict=True):
        if frac == 0:
            assert parts[name].empty
    assert all(parts[k].index.equals(again[k].index) for k in parts)
    # a media's split depends on its id and the seed alone: drop any other media, it stays
    keep = df.media_id.iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptySplitWarning)
        alone = split_by_media(df[df.media_id == keep], fractions, seed=seed)
    assert [k for k, p in alone.items() if len(p)] == [
        k for k, p in parts.items() if keep in set(p.media_id)
    ]


def test_split_fractions_are_of_media_and_stable():
    # 30 videos of 30 frames and 270 stills: fractions of media, not of frames
    media = [f"v{i}" for i in range(30) for _ in range(30)] + [f"s{i}" for i in range(270)]
    df = pd.DataFrame({"media_id": media, "label": ["cat"] * len(media)})
    parts = split_by_media(df, seed=3)
    counts = [p.media_id.nunique() for p in parts.values()]
    for count, frac in zip(counts, (0.8, 0.1, 0.1), strict=True):
        sd = (300 * frac * (1 - frac)) ** 0.5
        assert abs(count - 300 * frac) <= 4 * sd
    assert not split_by_media(df, seed=4)["val"].index.equals(parts["val"].index)
    grown = pd.concat([df, pd.DataFrame({"media_id": [f"n{i}" for i in range(30)]})])
    again = split_by_media(grown, seed=3)
    for name, part in parts.items():
        assert set(part.media_id) <= set(again[name].media_id)
    for bad in [(0.8, 0.3, 0.1), (1.2, -0.1, -0.1), (float("nan"), 0.5, 0.5), (1.0,), "0.5"]:
        with pytest.raises(ConfigError):
            split_by_media(df, bad)
    with pytest.raises(ConfigError):
        split_by_media(df.drop(columns="media_id"))
    with pytest.raises(ConfigError):
        split_by_media(df, stratify="nope")


def test_two_way_and_named_splits():
    df = pd.DataFrame({"media_id": [f"m{i}" for i in range(200)]})
    two = split_by_media(df, (0.75, 0.25), seed=1)
    assert list(two) == ["train", "val"] and sum(map(len, two.values())) == 200
    named = split_by_media(df, {"fit": 0.75, "holdout": 0.25}, seed=1)
    assert list(named) == ["fit", "holdout"]
    assert named["fit"].index.equals(two["train"].index)
    with pytest.warns(EmptySplitWarning, match="'test' has no media"):
        split_by_media(df.head(1), (0.5, 0.25, 0.25), seed=0)


def test_stratify_keeps_the_assignment_and_reports_missing_values():
    df = pd.DataFrame(
        {"media_id": [f"m{i}" for i in range(300)], "label": [f"l{i % 100}" for i in range(300)]}
    )
    with pytest.warns(EmptySplitWarning, match="not in every split"):
        strat = split_by_media(df, seed=0, stratify="label")
    plain = split_by_media(df, seed=0)
    assert all(strat[k].index.equals(plain[k].index) for k in plain)


# --------------------------------------------------------------------------- export


def test_safe_name():
    assert safe_name("../etc/passwd") == "etc_passwd"
    assert safe_name("optic disc") == "optic disc"
    assert safe_name("..").startswith("label_")
    assert safe_name("CON").startswith("CON_")
    assert safe_name("") == safe_name(None) == "_unlabeled"
    assert "/" not in safe_name("a/b\\c:d*e")


def test_export_crops_layout_and_manifest(tables, tmp_path):
    out = tmp_path / "crops"
    manifest = export_crops(tables, out, progress=False)
    objs = tables.objects
    assert manifest.columns.tolist() == [
        "object_id",
        "media_id",
        "label",
        "path",
        "status",
        "reason",
        "split",
    ]
    assert set(manifest.split) == {"all"}
    assert manifest.object_id.tolist() == objs.object_id.tolist()
    written = manifest[manifest.status == "written"]
    skipped = manifest[manifest.status == "skipped"]
    assert (manifest.status == "failed").sum() == 0
    # left out, as the detection datasets leave out objects with no geometry
    assert len(skipped) == (objs.blob.isna() & objs.bbox_x.isna()).sum() >= 1
    assert skipped.reason.str.contains("no crop blob and no geometry").all()
    assert skipped.path.isna().all()
    for row in written.itertuples():
        assert row.path == f"{safe_name(row.label)}/{row.object_id}.jpg"
        with Image.open(out / row.path) as im:
            assert im.format == "JPEG"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert files == sorted(written.path)
    on_disk = pq.read_table(out / CROP_MANIFEST_NAME).to_pandas()
    assert on_disk.object_id.tolist() == manifest.object_id.tolist()
    assert on_disk.status.tolist() == manifest.status.tolist()
    assert not list(out.rglob(".tmp-*"))
    with pytest.raises(ConfigError):
        export_crops(tables, out, layout="coco")


def test_export_hostile_labels_stay_inside(tables, tmp_path):
    objs = tables.objects[tables.objects.blob.notna()].head(3).copy()
    objs["label"] = ["../../evil", "a/b", "a_b"]
    manifest = export_crops(objs, tmp_path / "o", frames=tables.frames, progress=False)
    assert (manifest.status == "written").all()
    dirs = {p.split("/")[0] for p in manifest.path}
    assert len(dirs) == 3  # "a/b" and "a_b" do not merge
    for p in manifest.path:
        assert (tmp_path / "o" / p).resolve().is_relative_to((tmp_path / "o").resolve())


def test_export_crops_from_parquet(tables, tmp_path):
    tables.to_parquet(tmp_path / "export")
    manifest = export_crops_from_parquet(tmp_path / "export", tmp_path / "crops", progress=False)
    assert (manifest.status == "written").sum() == len(tables.objects) - 1


# --------------------------------------------------------------------------- issue 10


def test_export_crop_file_names_are_unique_by_construction(tables, tmp_path):
    # ids a, a_2, a: the third crop used to be written over the second (a_2.jpg twice)
    objs = tables.objects[tables.objects.blob.notna()].head(4).copy()
    objs["object_id"] = ["a", "a_2", "a", "A"]
    objs["label"] = "same"
    out = tmp_path / "o"
    manifest = export_crops(objs, out, frames=tables.frames, workers=2, progress=False)
    assert (manifest.status == "written").all()
    assert manifest.path.str.lower().nunique() == 4
    assert manifest.path.tolist()[:2] == ["same/a.jpg", "same/a_2.jpg"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == sorted(
        manifest.path
    )
    crops = cvf.load_crops(objs, frames=tables.frames, progress=False)
    for crop, rel in zip(crops, manifest.path, strict=True):
        with Image.open(out / rel) as im:
            assert im.size == crop.size, rel  # each file holds its own row's crop


def test_a_label_named_like_the_manifest_does_not_collide(tables, tmp_path):
    objs = tables.objects[tables.objects.blob.notna()].head(2).copy()
    objs["label"] = ["manifest.parquet", "MANIFEST.parquet"]
    out = tmp_path / "o"
    manifest = export_crops(objs, out, frames=tables.frames, progress=False)
    assert (manifest.status == "written").all()
    assert (out / CROP_MANIFEST_NAME).is_file()
    assert pq.read_table(out / CROP_MANIFEST_NAME).num_rows == 2
    assert not any(p.lower().startswith(CROP_MANIFEST_NAME + "/") for p in manifest.path)
    assert len({p.split("/")[0].lower() for p in manifest.path}) == 2


def test_a_folder_that_is_not_empty_is_refused_before_any_crop(tables, tmp_path):
    out = tmp_path / "o"
    (out / CROP_MANIFEST_NAME).mkdir(parents=True)
    objs = tables.objects[tables.objects.blob.notna()].head(2)
    with pytest.raises(ExportError, match="not empty: pass overwrite=True"):
        export_crops(objs, out, frames=tables.frames, progress=False)
    assert [p.name for p in out.iterdir()] == [CROP_MANIFEST_NAME] and not list(out.rglob("*.jpg"))
    export_crops(objs, out, frames=tables.frames, progress=False, overwrite=True)
    assert (out / CROP_MANIFEST_NAME).is_file()


def test_export_crops_never_copies_a_local_file_named_by_a_record(tables, tmp_path):
    secret = tmp_path / "secret.jpg"
    Image.new("RGB", (7, 5), (1, 2, 3)).save(secret, "JPEG")
    objs = tables.objects[tables.objects.blob.notna()].head(2).copy()
    objs["blob"] = [secret.as_uri(), str(secret)]
    manifest = export_crops(objs, tmp_path / "o", frames=tables.frames, progress=False)
    assert (manifest.status == "failed").all()
    assert manifest.reason.str.contains("not an http\\(s\\) URL").all()
    assert not list((tmp_path / "o").rglob("*.jpg"))


def test_export_crops_never_writes_through_a_symlinked_label_folder(tables, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "o"
    out.mkdir()
    (out / "dog").symlink_to(elsewhere, target_is_directory=True)
    objs = tables.objects[tables.objects.blob.notna()].head(2).copy()
    objs["label"] = ["dog", "cat"]
    with pytest.raises(ExportError, match="not empty"):
        export_crops(objs, out, frames=tables.frames, progress=False)
    manifest = export_crops(objs, out, frames=tables.frames, progress=False, overwrite=True)
    assert manifest.status.tolist() == ["written", "written"]
    assert not list(elsewhere.iterdir()) and not (out / "dog").is_symlink()
    (tmp_path / "link").symlink_to(out, target_is_directory=True)
    with pytest.raises(ExportError, match="symbolic link"):
        export_crops(objs, tmp_path / "link", frames=tables.frames, overwrite=True)

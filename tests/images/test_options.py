"""DownloadOptions and CropOptions: validated frozen values, built by keywords or shared."""

from __future__ import annotations

import dataclasses
import math
import pickle

import pytest
import requests

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError
from coreviz_frames.images.options import CropOptions, DownloadOptions, split_options


@pytest.fixture(scope="module")
def tables(sample_api):
    with cvf.Client(api_key="k", base_url=sample_api.base_url) as client:
        return cvf.to_tables(client.browse(sample_api.collection_id, progress=False))


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"source": "nope"}, "source"),
        ({"pad": -0.1}, "pad"),
        ({"pad": math.inf}, "pad"),
        ({"pad": True}, "pad"),
        ({"min_size": 0}, "min_size"),
        ({"max_size": (1, 2, 3)}, "max_size"),
        ({"max_size": "big"}, "max_size"),
        ({"source": "blob", "square": True}, "source='auto' or 'frame'"),
    ],
)
def test_crop_options_are_validated_when_built(kwargs, names):
    with pytest.raises(ConfigError, match=names.replace("(", r"\(")):
        CropOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": 1.5}, "max_bytes"),
        ({"max_pixels": -1}, "max_pixels"),
    ],
)
def test_download_options_are_validated_when_built(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        DownloadOptions(**kwargs)


def test_values_are_frozen_normalised_and_hide_the_session():
    crop = CropOptions(min_size=50, max_size=[64, 32], pad=1)
    assert (crop.min_size, crop.max_size, crop.pad) == ((50, 50), (64, 32), 1.0)
    assert crop.adjusts and crop.fit and hash(crop) == hash(CropOptions(**vars(crop)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        crop.pad = 0.5  # type: ignore[misc]
    session = requests.Session()
    download = DownloadOptions(timeout=2, session=session)
    assert download.timeout == 2.0 and "session" not in repr(download)
    assert download == DownloadOptions(timeout=2)  # the session is not part of the value


def test_keywords_build_the_values_and_unknown_ones_are_type_errors():
    crop, download = split_options({"square": True, "max_bytes": 10})
    assert crop == CropOptions(square=True) and download == DownloadOptions(max_bytes=10)
    with pytest.raises(TypeError, match="bogus"):
        split_options({"bogus": 1})


def test_a_value_and_a_differing_keyword_are_refused(tables):
    with pytest.raises(ConfigError, match="crop= or pad"):
        cvf.load_crops(tables, crop=CropOptions(), pad=0.1)
    with pytest.raises(ConfigError, match="download= or timeout"):
        cvf.load_image(tables.frames.blob.iloc[0], download=DownloadOptions(), timeout=3)
    with pytest.raises(ConfigError, match="must be a CropOptions"):
        cvf.CropDataset(tables, crop={"square": True})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bogus"):
        cvf.load_crops(tables, bogus=1)
    with pytest.raises(ConfigError, match="timeout"):
        cvf.load_image(tables.frames.blob.iloc[0], timeout=math.inf)


def test_one_crop_value_serves_load_crops_the_dataset_the_gallery_and_the_export(tables, tmp_path):
    objs = tables.objects[tables.objects.bbox_x.notna()].head(4)
    crop = cvf.CropOptions(square=True, max_size=32)
    download = cvf.DownloadOptions(timeout=10, cache_dir=tmp_path / "cache")
    by_value = cvf.load_crops(objs, frames=tables.frames, crop=crop, download=download)
    by_keywords = cvf.load_crops(objs, frames=tables.frames, square=True, max_size=32)
    assert [c.size for c in by_value] == [c.size for c in by_keywords]
    assert all(max(c.size) == 32 for c in by_value)
    assert any((tmp_path / "cache").rglob("*"))  # the download value's cache was used
    ds = cvf.CropDataset(objs, frames=tables.frames, crop=crop, download=download)
    assert ds.crop is crop and ds.download is download
    assert [ds[i][0].size for i in range(len(ds))] == [c.size for c in by_value]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.crop == crop and clone[0][0].size == by_value[0].size
    gallery = cvf.show_crops(objs, frames=tables.frames, crop=crop, size=24)
    assert len(gallery) == len(objs) and all(i is not None for i in gallery.images)
    manifest = cvf.export_crops(objs, tmp_path / "out", frames=tables.frames, crop=crop)
    assert (manifest.status == "written").all()

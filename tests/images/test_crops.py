"""load_crops and show_crops against the local API serving the sample collection."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_images import run_within

import coreviz_frames as cvf
from coreviz_frames.errors import ConfigError, ImageLoadError, SkippedRecordWarning
from coreviz_frames.images.crop_plan import pixels as _pixels
from coreviz_frames.images.crops import CropGallery, CropResult, load_crops, show_crops


def _tables(api, **client_kwargs) -> cvf.MediaTables:
    with cvf.Client(api_key=client_kwargs.pop("api_key", "k"), base_url=api.base_url) as client:
        return cvf.to_tables(client.browse(api.collection_id, progress=False))


@pytest.fixture(scope="module")
def tables(sample_api):
    return _tables(sample_api)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


def test_crop_cut_from_frame_equals_served_crop(tables):
    objs = tables.objects
    both = objs[objs.blob.notna() & objs.bbox_x.notna()]
    assert len(both) >= 10
    served = load_crops(both, frames=tables.frames, source="blob", progress=False)
    cut = load_crops(both, frames=tables.frames, source="frame", progress=False)
    for oid, a, b in zip(both.object_id, served, cut, strict=True):
        assert a.size == b.size, oid
        assert _mean_abs_diff(a, b) < 4.0, oid  # JPEG re-encoding only


def test_auto_uses_blob_then_frame_and_records_the_rest(tables):
    objs = tables.objects
    results = load_crops(tables, on_error="record", progress=False)
    assert len(results) == len(objs)
    assert all(isinstance(r, CropResult) for r in results)
    assert [r.object_id for r in results] == objs.object_id.tolist()
    for r, (_, row) in zip(results, objs.iterrows(), strict=True):
        if pd.notna(row.blob):
            assert r.ok and r.source == "blob"
        elif pd.notna(row.bbox_x):
            assert r.ok and r.source == "frame" and r.box is not None
            assert r.image.size == (r.box[2] - r.box[0], r.box[3] - r.box[1])
        else:
            assert not r.ok and "no crop blob and no geometry" in r.error
            assert row.object_id in r.error
    spoon = objs.index[objs.bbox_x.isna() & objs.blob.isna()]
    assert len(spoon) >= 1
    with pytest.raises(ImageLoadError, match="no crop blob and no geometry"):
        load_crops(tables, progress=False)
    ok = load_crops(objs.drop(index=spoon), frames=tables.frames, progress=False)
    assert all(isinstance(i, Image.Image) and i.mode == "RGB" for i in ok)


def test_each_frame_downloaded_once(sample_api, tables):
    objs = tables.objects[tables.objects.bbox_x.notna()]
    sample_api.reset_stats()
    crops = load_crops(objs, frames=tables.frames, source="frame", workers=4, progress=False)
    assert len(crops) == len(objs)
    paths = sample_api.stats.paths
    assert paths and all(n == 1 for n in paths.values())
    assert sum(paths.values()) == objs.frame_id.nunique()


def test_clamp_scale_pad_square_min_size(sample_api, tables):
    frame = tables.frames.iloc[0]
    w, h = int(frame.width), int(frame.height)
    base = dict(
        frame_id=frame.frame_id,
        media_id=frame.media_id,
        blob=None,
        label="x",
        frame_width=w,
        frame_height=h,
    )
    rows = pd.DataFrame(
        [
            {
                **base,
                "object_id": "inside",
                "bbox_x": 10.0,
                "bbox_y": 20.0,
                "bbox_w": 30.0,
                "bbox_h": 40.0,
            },
            {
                **base,
                "object_id": "outside",
                "bbox_x": w - 10.0,
                "bbox_y": -5.0,
                "bbox_w": 30.0,
                "bbox_h": 20.0,
            },
            # the same box as "inside", in a frame declared twice as large: scaled back
            {
                **base,
                "object_id": "scaled",
                "bbox_x": 20.0,
                "bbox_y": 40.0,
                "bbox_w": 60.0,
                "bbox_h": 80.0,
                "frame_width": 2 * w,
                "frame_height": 2 * h,
            },
            {
                **base,
                "object_id": "gone",
                "bbox_x": w + 50.0,
                "bbox_y": 0.0,
                "bbox_w": 5.0,
                "bbox_h": 5.0,
            },
        ]
    )
    res = load_crops(rows, frames=tables.frames, on_error="record", progress=False)
    assert res[0].box == (10, 20, 40, 60) and not res[0].clamped
    assert res[1].clamped and res[1].box == (w - 10, 0, w, 15) and res[1].image.size == (10, 15)
    assert res[2].box == (10, 20, 40, 60) and _mean_abs_diff(res[0].image, res[2].image) == 0
    assert not res[3].ok and res[3].clamped and "outside" in res[3].error
    inside = rows.iloc[[0]]
    sq = load_crops(inside, frames=tables.frames, square=True, progress=False)[0]
    assert sq.size == (40, 40)
    padded = load_crops(inside, frames=tables.frames, pad=0.25, progress=False)[0]
    assert padded.size == (46, 60)  # (2.5, 10, 47.5, 70) covered by (2, 10, 48, 70)
    grown = load_crops(inside, frames=tables.frames, min_size=50, progress=False)[0]
    assert grown.size == (50, 50)
    small = load_crops(inside, frames=tables.frames, max_size=16, progress=False)[0]
    assert max(small.size) == 16
    with pytest.raises(ConfigError):
        load_crops(inside, frames=tables.frames, source="blob", pad=0.1)
    with pytest.raises(ConfigError):
        load_crops(inside, frames=tables.frames, source="nope")


def test_auto_prefers_frame_when_box_is_adjusted(tables):
    objs = tables.objects[tables.objects.blob.notna() & tables.objects.bbox_x.notna()].head(3)
    res = load_crops(objs, frames=tables.frames, pad=0.1, on_error="record", progress=False)
    assert all(r.ok and r.source == "frame" for r in res)


def test_missing_frames_table_says_pass_frames_and_a_missing_frame_is_recorded(tables):
    objs = tables.objects[tables.objects.blob.isna() & tables.objects.bbox_x.notna()]
    for on_error in ("record", "raise"):
        with pytest.raises(ConfigError, match="pass frames="):
            load_crops(objs, on_error=on_error, progress=False)  # no frames table
    others = tables.frames[~tables.frames.frame_id.isin(objs.frame_id)]
    res = load_crops(objs, frames=others, on_error="record", progress=False)
    assert all(not r.ok and "frame not in the frames table" in r.error for r in res)


def test_broken_frame_image_is_recorded_and_the_rest_loads(tables):
    objs = tables.objects[tables.objects.bbox_x.notna()]
    frames = tables.frames.copy()
    broken = objs.frame_id.iloc[0]
    frames.loc[frames.frame_id == broken, "blob"] = frames.blob.iloc[0] + ".missing"
    res = load_crops(objs, frames=frames, source="frame", on_error="record", progress=False)
    bad = [r for r, f in zip(res, objs.frame_id, strict=True) if f == broken]
    good = [r for r, f in zip(res, objs.frame_id, strict=True) if f != broken]
    assert bad and all(not r.ok and "HTTP 404" in r.error for r in bad)
    assert good and all(r.ok for r in good)


def test_no_credentials_reach_the_blob_origin(local_api_factory):
    api = local_api_factory(api_key="sk-test-secret")
    tables = _tables(api, api_key="sk-test-secret")
    with cvf.Client(api_key="sk-test-secret", base_url=api.base_url):
        api.reset_stats()
        load_crops(tables, on_error="record", workers=4, progress=False)
        cvf.load_images(tables.frames.blob.tolist(), progress=False)
    sent = api.stats.headers
    assert sent and all(not p.startswith("/api") for p, _ in sent)
    for path, headers in sent:
        assert "x-api-key" not in headers and "authorization" not in headers, path
        assert "sk-test-secret" not in " ".join(headers.values())


def test_show_crops_html(tables):
    objs = tables.objects[tables.objects.blob.notna()].head(3).copy()
    objs["label"] = ["<script>alert(1)</script>", 'a "quoted" & label', "dog"]
    gallery = show_crops(objs, n=2, size=48, columns=4)
    assert isinstance(gallery, CropGallery) and len(gallery) == 2
    html = gallery._repr_html_()
    uris = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 2 and all(len(u) < 20_000 for u in uris)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;quoted&quot; &amp; label" in html and "dog" not in html
    assert "repeat(4,48px)" in html
    failed = show_crops([CropResult("o1", None, "boom <b>")])._repr_html_()
    assert "boom &lt;b&gt;" in failed


def test_pixels_rule():
    from coreviz_frames.tables.boxes import Box

    assert _pixels(Box(1.5, 2.0, 3.2, 4.0)) == (1, 2, 5, 6)
    assert _pixels(Box(0.1 + 0.2, 0, 11.7, 1)) == (0, 0, 12, 1)  # 12.000000000000002


def test_square_and_min_size_near_an_edge_stay_square_and_full_size(tables):
    frame = tables.frames.iloc[0]
    w, h = int(frame.width), int(frame.height)
    corner = pd.DataFrame(
        [
            {
                "object_id": "corner",
                "frame_id": frame.frame_id,
                "media_id": frame.media_id,
                "blob": None,
                "label": "x",
                "frame_width": w,
                "frame_height": h,
                "bbox_x": w - 12.0,
                "bbox_y": 2.0,
                "bbox_w": 10.0,
                "bbox_h": 30.0,
            }
        ]
    )
    kw = dict(frames=tables.frames, on_error="record", progress=False)
    sq = load_crops(corner, square=True, **kw)[0]
    assert sq.image.size == (30, 30) and sq.clamped
    assert sq.box == (w - 30, 2, w, 32)  # moved inside, the object still in it
    grown = load_crops(corner, min_size=50, **kw)[0]
    assert grown.image.size == (50, 50) and grown.clamped
    ds = cvf.CropDataset(corner, frames=tables.frames, square=True)
    assert ds[0][0].size == (30, 30)
    plain = load_crops(corner, pad=0.5, **kw)[0]  # padding is still cut at the edge
    assert plain.clamped and plain.box[2] == w


# --------------------------------------------------------------------------- issue 10


@pytest.fixture
def local_files(tmp_path):
    """A readable local JPEG (the 'secret') and a FIFO nobody writes to."""
    secret = tmp_path / "secret.jpg"
    Image.new("RGB", (7, 5), (1, 2, 3)).save(secret, "JPEG")
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    yield secret, fifo
    try:  # unblock a reader left behind by a failing test
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def _local_blobs(secret, fifo) -> list[str]:
    return [secret.as_uri(), str(secret), "secret.jpg", str(fifo), "file://" + str(fifo)]


def test_crop_blobs_naming_local_files_are_refused(tables, local_files, tmp_path, monkeypatch):
    secret, fifo = local_files
    monkeypatch.chdir(tmp_path)  # so the relative "secret.jpg" exists too
    blobs = _local_blobs(secret, fifo)
    objs = tables.objects[tables.objects.blob.notna()].head(len(blobs)).copy()
    objs["blob"] = blobs
    results = run_within(
        lambda: load_crops(objs, frames=tables.frames, on_error="record", progress=False)
    )
    for r, blob in zip(results, blobs, strict=True):
        assert not r.ok and "not an http(s) URL" in r.error and blob in r.error, r
    with pytest.raises(ImageLoadError, match="not an http") as info:
        run_within(lambda: load_crops(objs.head(1), frames=tables.frames, progress=False))
    assert info.value.url == blobs[0]


def test_frame_blobs_naming_local_files_are_refused(tables, local_files):
    secret, fifo = local_files
    objs = tables.objects[tables.objects.bbox_x.notna()]
    frames = tables.frames.copy()
    frames["blob"] = [str(secret) if i % 2 else str(fifo) for i in range(len(frames))]
    results = run_within(
        lambda: load_crops(objs, frames=frames, source="frame", on_error="record", progress=False)
    )
    assert results and all(not r.ok and "not an http(s) URL" in r.error for r in results)
    with pytest.warns(SkippedRecordWarning, match=f"{len(objs)} of {len(objs)} objects"):
        ds = cvf.CropDataset(objs, frames=frames, source="frame")
    assert len(ds) == 0 and all("not an http(s) URL" in why for why in ds.skipped.values())


def test_load_images_reads_local_files_only_when_given_as_paths(tables, local_files):
    secret, fifo = local_files
    results = run_within(
        lambda: cvf.load_images(
            [secret.as_uri(), str(secret), str(fifo)], on_error="record", progress=False
        )
    )
    assert all(not r.ok and "not an http(s) URL" in r.error for r in results)
    assert cvf.load_images([secret], progress=False)[0].size == (7, 5)  # a Path: the caller's
    assert cvf.load_image(str(secret)).size == (7, 5)
    with pytest.raises(ImageLoadError, match="not a regular file"):
        run_within(lambda: cvf.load_image(fifo))

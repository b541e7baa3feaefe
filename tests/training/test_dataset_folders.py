"""Dataset writers never mix runs, never leave half a dataset, and write shareable files."""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from dataset_helpers import browse_tables
from PIL import Image

import coreviz_frames as cvf
from coreviz_frames.errors import ExportError
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.training import coco, crop_dataset as training, huggingface as hf, yolo
from coreviz_frames.training.names import safe_name
from coreviz_frames.training.splits import read_splits

SPLITS = (0.6, 0.2, 0.2)


@pytest.fixture(scope="module")
def tables(sample_api):
    return browse_tables(sample_api)


def _write(name: str, tables, out: Path, **kwargs):
    if name == "coco":
        return coco.export_coco(tables, out, progress=False, **kwargs)
    if name == "yolo":
        return yolo.export_yolo(tables, out, progress=False, **kwargs)
    if name == "hf":
        pytest.importorskip("datasets")
        return hf.export_hf(tables, out, progress=False, **kwargs)
    return training.export_crops(tables, out, progress=False, **kwargs)


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


WRITERS = ["coco", "yolo", "hf", "crops"]


@pytest.mark.parametrize("name", WRITERS)
def test_a_rerun_is_refused_and_overwrite_replaces_every_file(name, tables, tmp_path):
    out = tmp_path / name
    _write(name, tables, out, splits=SPLITS, seed=0)
    (out / "from-the-first-run.txt").write_text("old")
    before = _snapshot(out)
    with pytest.raises(ExportError, match=r"not empty: pass overwrite=True \(--overwrite\)"):
        _write(name, tables, out, splits=SPLITS, seed=5)
    assert _snapshot(out) == before  # nothing changed
    _write(name, tables, out, splits=(0.5, 0.5), seed=5, overwrite=True)
    after = _snapshot(out)
    assert "from-the-first-run.txt" not in after
    old_inodes = {ino for ino, _ in before.values()}
    assert not old_inodes & {ino for ino, _ in after.values()}  # no file of the old run
    assert set(read_splits(out).values()) == {"train", "val"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]  # no leftovers


@pytest.mark.parametrize("name", WRITERS)
def test_a_parquet_export_is_never_written_into(name, tables, tmp_path):
    export = tmp_path / "export"
    tables.to_parquet(export)
    before = _snapshot(export)
    with pytest.raises(ExportError, match="is a Parquet export"):
        _write(name, tables, export, overwrite=True)
    assert _snapshot(export) == before


@pytest.mark.parametrize("name", WRITERS)
def test_a_failure_half_way_leaves_the_old_dataset_whole(name, tables, tmp_path, monkeypatch):
    out = tmp_path / name
    _write(name, tables, out, splits=SPLITS, seed=0)
    before = _snapshot(out)

    def failing_splits(*args, **kwargs):  # the last file every writer writes
        raise OSError(28, "No space left on device")

    owner = "training.crop_dataset" if name == "crops" else "training.frames"
    monkeypatch.setattr(f"coreviz_frames.{owner}.write_splits", failing_splits)
    with pytest.raises(OSError, match="No space left"):
        _write(name, tables, out, splits=SPLITS, seed=9, overwrite=True)
    assert _snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]


_CHILD = """
import sys, time
import coreviz_frames as cvf
from coreviz_frames._util import fileio
from coreviz_frames.training import frames
real = fileio.atomic_write_bytes
def slow(target, data, **kw):
    real(target, data, **kw)
    open(sys.argv[3], "a").write("x")
    time.sleep(0.3)
frames.atomic_write_bytes = slow
tables = cvf.read_parquet(sys.argv[1])
cvf.export_coco(tables, sys.argv[2], splits=(0.5, 0.5), seed=3, overwrite=True, workers=1,
                progress=False)
"""


def test_a_writer_killed_half_way_leaves_the_previous_dataset_loadable(tables, tmp_path):
    export, out, progress = tmp_path / "export", tmp_path / "coco", tmp_path / "progress"
    tables.to_parquet(export)
    cvf.export_coco(tables, out, splits=SPLITS, seed=0, progress=False)
    before = _snapshot(out)
    env = {**os.environ, "PYTHONPATH": str(Path(cvf.__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(export), str(out), str(progress)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not (progress.exists() and len(progress.read_text()) >= 3):
            assert child.poll() is None and time.monotonic() < deadline, "child ended early"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert _snapshot(out) == before
    for split in ("train", "val", "test"):
        doc = json.loads((out / f"annotations/instances_{split}.json").read_text())
        assert all((out / "images" / split / im["file_name"]).is_file() for im in doc["images"])
    staged = [p for p in tmp_path.iterdir() if p.name.startswith(".coco.tmp-")]
    assert len(staged) == 1  # the killed run's hidden folder, beside, never inside
    cvf.export_coco(tables, out, splits=SPLITS, seed=0, progress=False, overwrite=True)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_file_gets_the_mode_the_umask_gives(umask, tables, tmp_path):
    pytest.importorskip("datasets")
    old = os.umask(umask)
    try:
        cvf.export_parquet(iter_synthetic(5), tmp_path / "parquet", progress=False)
        tables.to_parquet(tmp_path / "tables")
        for name in WRITERS:
            _write(name, tables, tmp_path / name, splits=SPLITS, seed=0)
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if not p.is_symlink()]
    assert len([p for p in files if p.is_file()]) > 100
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == want, f"{path.relative_to(tmp_path)}: {oct(mode)} != {oct(want)}"


def test_frame_images_are_copied_as_their_original_bytes(tables, sample_api, tmp_path):
    import requests

    report = coco.export_coco(tables, tmp_path / "c", progress=False)
    doc = json.loads((tmp_path / "c" / "annotations" / "instances_all.json").read_text())
    copied = 0
    for im in doc["images"][:6]:
        original = requests.get(im["coco_url"], timeout=30).content
        written = (tmp_path / "c" / "images" / "all" / im["file_name"]).read_bytes()
        with Image.open(io.BytesIO(original)) as decoded:
            size = decoded.size
        if size == (im["width"], im["height"]):
            assert written == original  # format and size kept: no re-encoding
            copied += 1
    assert copied >= 3 and report.total_images == 19
    # a frame whose image is not frame-sized is re-encoded at the frame's size
    frames = tables.frames.copy()
    first = frames.index[0]
    frames.loc[first, ["width", "height"]] = [
        int(frames.width[first]) * 2,
        int(frames.height[first]) * 2,
    ]
    resized = cvf.MediaTables(tables.media, frames, tables.captions, tables.objects, tables.tags)
    coco.export_coco(resized, tmp_path / "r", progress=False)
    name = safe_name(frames.frame_id[first])
    with Image.open(tmp_path / "r" / "images" / "all" / f"{name}.jpg") as image:
        assert image.size == (int(frames.width[first]), int(frames.height[first]))


def test_the_image_cache_stays_private_whatever_the_umask(tmp_path):
    from coreviz_frames._util.diskcache import DiskCache

    old = os.umask(0o022)
    try:
        path = DiskCache(tmp_path / "cache").put("https://blob.example/a.jpg", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``self.server.files`` (path -> bytes) on 127.0.0.1."""

    def do_GET(self):
        body = self.server.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


def test_png_and_webp_frames_keep_their_format_and_bytes(tmp_path):
    images = {}
    for name, fmt in (("/a.png", "PNG"), ("/b.webp", "WEBP"), ("/c.jpg", "JPEG")):
        buf = io.BytesIO()
        Image.new("RGB", (100, 50), (10, 200, 30)).save(buf, fmt)
        images[name] = buf.getvalue()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.files = images
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        frames = pd.DataFrame(
            {
                "frame_id": ["fa", "fb", "fc"],
                "media_id": ["ma", "mb", "mc"],
                "frame_index": [0, 0, 0],
                "blob": [f"{base}/a.png", f"{base}/b.webp", f"{base}/c.jpg"],
                "width": [100, 100, 100],
                "height": [50, 50, 50],
            }
        )
        objects = pd.DataFrame(
            {
                "object_id": ["oa", "ob", "oc"],
                "frame_id": ["fa", "fb", "fc"],
                "media_id": ["ma", "mb", "mc"],
                "label": ["x", "x", "x"],
                "bbox_x": [1.0] * 3,
                "bbox_y": [1.0] * 3,
                "bbox_w": [10.0] * 3,
                "bbox_h": [10.0] * 3,
            }
        )
        empty = cvf.MediaTables.empty()
        tables = cvf.MediaTables(empty.media, frames, empty.captions, objects, empty.tags)
        coco.export_coco(tables, tmp_path / "c", progress=False)
        yolo.export_yolo(tables, tmp_path / "y", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    doc = json.loads((tmp_path / "c" / "annotations" / "instances_all.json").read_text())
    names = {im["coreviz_frame_id"]: im["file_name"] for im in doc["images"]}
    assert names == {"fa": "fa.png", "fb": "fb.webp", "fc": "fc.jpg"}
    for fid, url in (("fa", "/a.png"), ("fb", "/b.webp"), ("fc", "/c.jpg")):
        assert (tmp_path / "c" / "images" / "all" / names[fid]).read_bytes() == images[url]
        assert (tmp_path / "y" / "images" / "all" / names[fid]).read_bytes() == images[url]
        assert (tmp_path / "y" / "labels" / "all" / f"{fid}.txt").is_file()

"""The on-disk image cache: keys, atomic writes, size cap, repair, and zero-request reloads."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

import coreviz_frames as cvf
from coreviz_frames._util.diskcache import CACHE_ENV, CACHE_MAX_BYTES_ENV, DiskCache, resolve_cache
from coreviz_frames.errors import ConfigError
from coreviz_frames.images.loading import load_image, load_images
from coreviz_frames.tables.preview import cached_thumbnail


@pytest.fixture(scope="module")
def tables(sample_api):
    with cvf.Client(api_key="k", base_url=sample_api.base_url) as client:
        return cvf.to_tables(client.browse(sample_api.collection_id, progress=False))


def test_entries_are_sha256_of_the_url_and_atomic(tmp_path):
    cache = DiskCache(tmp_path)
    url = "https://blob.example/a.jpg"
    digest = hashlib.sha256(url.encode()).hexdigest()
    path = cache.put(url, b"abc")
    assert path == tmp_path / digest[:2] / digest
    assert cache.get(url) == b"abc" and cache.get("https://other") is None
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    cache.discard(url)
    assert cache.get(url) is None
    cache.discard(url)  # twice is fine


def test_size_cap_evicts_oldest(tmp_path):
    cache = DiskCache(tmp_path, max_bytes=2500)
    for i in range(3):
        cache.put(f"u{i}", b"x" * 1000)
        os.utime(cache.path_for(f"u{i}"), (time.time() - 100 + i, time.time() - 100 + i))
    assert cache.get("u0") is None  # the third put went over the cap: oldest evicted
    assert cache.get("u1") == b"x" * 1000 and cache.get("u2") is not None
    assert cache.size() <= 2500
    cache.clear()
    assert cache.size() == 0
    with pytest.raises(ConfigError):
        DiskCache(tmp_path, max_bytes=0)


def test_resolve_cache_env(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert resolve_cache(None) is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    monkeypatch.setenv(CACHE_MAX_BYTES_ENV, "1000000")
    cache = resolve_cache(None)
    assert cache.directory == tmp_path / "env" and cache.max_bytes == 1_000_000
    assert resolve_cache(False) is None
    assert resolve_cache(tmp_path / "x").directory == tmp_path / "x"
    assert resolve_cache(cache) is cache
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.directory == cache.directory


def test_second_load_makes_zero_requests(sample_api, tables, tmp_path):
    urls = tables.frames.blob.dropna().tolist()
    sample_api.reset_stats()
    first = load_images(urls, cache_dir=tmp_path, progress=False)
    assert sample_api.stats.requests == len(set(urls))
    sample_api.reset_stats()
    second = load_images(urls, cache_dir=tmp_path, progress=False)
    assert sample_api.stats.requests == 0
    assert [i.size for i in first] == [i.size for i in second]
    crops = cvf.load_crops(tables, cache_dir=tmp_path, on_error="record", progress=False)
    sample_api.reset_stats()
    again = cvf.load_crops(tables, cache_dir=tmp_path, on_error="record", progress=False)
    assert sample_api.stats.requests == 0
    assert [r.ok for r in crops] == [r.ok for r in again]


def test_env_variable_enables_the_cache(sample_api, tables, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    url = tables.frames.blob.iloc[0]
    load_image(url)
    sample_api.reset_stats()
    load_image(url)
    assert sample_api.stats.requests == 0
    sample_api.reset_stats()
    load_image(url, cache_dir=False)
    assert sample_api.stats.requests == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_cache_entry_is_fetched_again(sample_api, tables, tmp_path, damage):
    url = tables.frames.blob.iloc[1]
    good = load_image(url, cache_dir=tmp_path)
    path = DiskCache(tmp_path).path_for(url)
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"<html>oops</html>", "empty": b""}[damage]
    )
    sample_api.reset_stats()
    repaired = load_image(url, cache_dir=tmp_path)
    assert sample_api.stats.requests == 1
    assert repaired.tobytes() == good.tobytes()
    assert path.read_bytes() == data  # the entry is whole again
    sample_api.reset_stats()
    load_image(url, cache_dir=tmp_path)
    assert sample_api.stats.requests == 0


def _in_thread(func, timeout: float = 30.0):
    """Run ``func`` in a daemon thread: a regression that blocks fails instead of hanging."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # reported to the test below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked on a cache entry"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def _plant(cache: DiskCache, url: str) -> Path:
    path = cache.path_for(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_entry_is_discarded_not_waited_on(sample_api, tables, tmp_path, monkeypatch):
    url = tables.frames.blob.iloc[0]
    cache = DiskCache(tmp_path)
    os.mkfifo(_plant(cache, url))
    sample_api.reset_stats()
    image = _in_thread(lambda: load_image(url, timeout=2, cache_dir=cache))
    assert image.size[0] > 0 and sample_api.stats.requests == 1
    assert cache.stats.rejected == 1
    assert stat.S_ISREG(os.lstat(cache.path_for(url)).st_mode)  # replaced by the download
    # the notebook preview reads the same cache and never waits on it either
    other = tables.objects.blob.dropna().iloc[0]
    os.mkfifo(_plant(cache, other))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert _in_thread(lambda: cached_thumbnail(other)) is None
    assert _in_thread(lambda: cached_thumbnail(url)).uri.startswith("data:image/jpeg")


def test_a_symlink_entry_never_loads_a_local_file(sample_api, tables, tmp_path):
    url = tables.frames.blob.iloc[0]
    cache = DiskCache(tmp_path / "cache")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (3, 5), (255, 0, 0)).save(secret)
    _plant(cache, url).symlink_to(secret)
    sample_api.reset_stats()
    image = load_image(url, cache_dir=cache)
    assert image.size != (3, 5) and sample_api.stats.requests == 1  # downloaded, not the file
    assert cache.stats.rejected == 1 and secret.exists()
    assert not cache.path_for(url).is_symlink()
    # a link planted for the entry's sub-folder is not followed either
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / cache.key(url)).write_bytes(secret.read_bytes())
    shutil.rmtree(cache.path_for(url).parent)
    cache.path_for(url).parent.symlink_to(elsewhere, target_is_directory=True)
    assert load_image(url, cache_dir=cache).size != (3, 5)
    assert cache.stats.rejected == 2


def test_cache_writes_never_follow_a_planted_symlink(tmp_path):
    cache = DiskCache(tmp_path / "cache")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    _plant(cache, "u").symlink_to(victim)
    cache.put("u", b"new")
    assert victim.read_bytes() == b"keep me" and cache.get("u") == b"new"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = cache.path_for("v").parent
    assert not folder.exists()  # "v" has a sub-folder of its own
    folder.symlink_to(elsewhere, target_is_directory=True)
    cache.put("v", b"data")
    assert list(elsewhere.iterdir()) == [] and not folder.is_symlink()
    assert cache.get("v") == b"data"


def test_a_directory_entry_does_not_fail_the_batch(sample_api, tables, tmp_path):
    urls = tables.frames.blob.dropna().tolist()[:3]
    cache = DiskCache(tmp_path)
    _plant(cache, urls[1]).mkdir()
    images = load_images(urls, cache_dir=cache, on_error="record", progress=False)
    assert all(image is not None for image in images)
    assert cache.stats.rejected == 1 and cache.path_for(urls[1]).is_file()


def test_an_oversized_entry_is_discarded(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put("u", b"x" * 100)
    assert cache.read("u", max_bytes=99) is None and cache.stats.rejected == 1
    assert cache.read("u") is None and cache.stats.misses == 1  # it was removed


def test_a_hard_link_entry_never_loads_a_local_file(sample_api, tables, tmp_path):
    url = tables.frames.blob.iloc[0]
    cache = DiskCache(tmp_path / "cache")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (3, 5), (255, 0, 0)).save(secret)
    try:
        os.link(secret, _plant(cache, url))  # a regular file, but another file's too
    except OSError as exc:
        pytest.skip(f"no hard links here ({exc})")
    sample_api.reset_stats()
    image = load_image(url, cache_dir=cache)
    assert image.size != (3, 5) and sample_api.stats.requests == 1  # downloaded, not the file
    assert cache.stats.rejected == 1 and secret.read_bytes()[:4] == b"\x89PNG"
    assert os.lstat(cache.path_for(url)).st_nlink == 1  # the entry is the cache's own now

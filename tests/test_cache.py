"""The on-disk image cache: keys, atomic writes, size cap, repair, and zero-request reloads."""

from __future__ import annotations

import hashlib
import os
import pickle
import time

import pytest

import coreviz_frames as cvf
from coreviz_frames.cache import CACHE_ENV, CACHE_MAX_BYTES_ENV, DiskCache, resolve_cache
from coreviz_frames.errors import ConfigError
from coreviz_frames.images import load_image, load_images


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

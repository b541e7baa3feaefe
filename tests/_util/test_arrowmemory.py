"""The Arrow pool the package builds its tables in: which one, and that it is used."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from coreviz_frames._util import arrowmemory
from coreviz_frames._util.arrowmemory import POOL_VARIABLE, table_pool
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import arrow_to_pandas
from coreviz_frames.tables.arrowrecords import read_page
from coreviz_frames.tables.pagechunks import PageRows, flatten_parts


class _Pool:
    """Stands for pyarrow's default pool: only its backend's name is read."""

    def __init__(self, backend_name: str) -> None:
        self.backend_name = backend_name


@pytest.fixture
def choose(monkeypatch):
    """table_pool() chosen afresh with pyarrow's default pool of the given backend."""

    def chosen(backend: str) -> pa.MemoryPool:
        monkeypatch.setattr(pa, "default_memory_pool", lambda: _Pool(backend))
        table_pool.cache_clear()
        return table_pool()

    yield chosen
    table_pool.cache_clear()


def _jemalloc_or_none():
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None


def test_mimalloc_left_unchosen_gives_jemalloc_or_the_system_allocator(choose, monkeypatch):
    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    expected = _jemalloc_or_none() or pa.system_memory_pool()
    assert choose("mimalloc").backend_name == expected.backend_name


def test_without_jemalloc_the_system_allocator(choose, monkeypatch):
    monkeypatch.delenv(POOL_VARIABLE, raising=False)

    def absent():
        raise NotImplementedError("this pyarrow was built without jemalloc")

    monkeypatch.setattr(pa, "jemalloc_memory_pool", absent)
    assert choose("mimalloc").backend_name == "system"


@pytest.mark.parametrize("backend", ["jemalloc", "system"])
def test_another_default_is_kept(choose, monkeypatch, backend):
    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    assert choose(backend).backend_name == backend


def test_a_pool_named_in_the_environment_is_kept(choose, monkeypatch):
    monkeypatch.setenv(POOL_VARIABLE, "mimalloc")
    assert choose("mimalloc").backend_name == "mimalloc"


def test_chosen_once():
    assert table_pool() is table_pool()
    assert arrowmemory.table_pool is table_pool


@pytest.mark.skipif(
    table_pool().backend_name == pa.default_memory_pool().backend_name,
    reason="the package's pool is pyarrow's default here: nothing to tell apart",
)
def test_pages_flattened_tables_and_frames_come_from_the_package_pool():
    """Reading pages, flattening them the fast way and converting to pandas allocate from
    table_pool(), not from pyarrow's default pool (mimalloc, on Linux wheels)."""
    default, ours = pa.default_memory_pool(), table_pool()
    start_default, start_ours = default.bytes_allocated(), ours.bytes_allocated()
    parts = []
    for page in range(4):
        media = list(iter_synthetic(100, start=page * 100))
        body = json.dumps({"media": media, "pagination": {"total": 400}}).encode()
        read = read_page(body)
        assert read is not None
        parts.append(PageRows(read, list(range(100)), read.ids))
    tables = flatten_parts(parts)
    frames = {grain: arrow_to_pandas(table, grain) for grain, table in tables.items()}
    assert len(frames["media"]) == 400 and len(frames["objects"]) > 0
    grew_ours = ours.bytes_allocated() - start_ours
    grew_default = default.bytes_allocated() - start_default
    assert grew_ours > 1_000_000, grew_ours
    # pandas casts each text column to large_string itself, from pyarrow's default pool:
    # the new offsets (8 bytes a row, about 1/7 of the whole here) are the default's part
    assert grew_default < grew_ours / 5, (grew_default, grew_ours)

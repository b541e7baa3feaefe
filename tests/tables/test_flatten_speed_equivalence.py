"""The faster flatten (issue 15, item 4) gives exactly what the first one gave.

The oracle is ``tests/oracle_flatten``: ``flatten.py`` and ``casting.py`` frozen as they were
before the speed-up. Every grain table must be equal (values, nulls, types, schema), and so
must every skipped record, its message and field, the folder count, the warnings, and (with
``on_error="raise"``) the error raised. Inputs: the sample collection, 2,500 synthetic media,
and synthetic media mutated at random paths with hostile values (booleans, nulls, strings in
number fields, rich polygon points, lone surrogates, lists given as strings, ...).
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from oracle_flatten import flatten as oracle

import coreviz_frames.tables.flatten as flatten_module
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.tables.flatten import flatten

DATA = Path(__file__).resolve().parents[2] / "data"
GRAINS = ("media", "frames", "captions", "objects", "tags")


def _copy(value):
    """A deep copy of JSON-like data (dicts, lists, tuples), sharing the leaves (fast)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_copy(v) for v in value)
    return value


def _outcome(fn, records: list, on_error: str) -> tuple:
    """Everything one flatten call shows: tables, report, warnings, or the error raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tables, report = fn(records, on_error=on_error)
        except Exception as exc:  # compared, not swallowed
            return ("raised", type(exc), str(exc), getattr(exc, "field", None))
    shown = [(w.category, str(w.message)) for w in caught]
    skipped = [(type(e), str(e), e.media_id, e.field) for e in report.skipped]
    return tables, skipped, report.folders, shown


def assert_same(records: list, on_error: str = "skip") -> None:
    """New and oracle flatten agree on ``records``, and neither changed its input."""
    before = _copy(records)
    new = _outcome(flatten, records, on_error)
    assert records == before  # (the same NaN object is equal to itself in a list)
    old = _outcome(oracle.flatten, records, on_error)
    if new[0] == "raised" or old[0] == "raised":
        assert new == old
        return
    new_tables, *new_rest = new
    old_tables, *old_rest = old
    assert new_rest == old_rest
    for grain in GRAINS:
        a, b = new_tables[grain], old_tables[grain]
        assert a.schema.equals(b.schema, check_metadata=True), grain
        assert a.equals(b), (grain, _first_difference(a, b))


def _first_difference(a: pa.Table, b: pa.Table) -> tuple:
    if a.num_rows != b.num_rows:
        return ("rows", a.num_rows, b.num_rows)
    for name in a.column_names:
        if not a.column(name).equals(b.column(name)):
            left, right = a.column(name).to_pylist(), b.column(name).to_pylist()
            row = next(i for i, (x, y) in enumerate(zip(left, right, strict=True)) if x != y)
            return (name, row, left[row], right[row])
    return ()


@pytest.fixture(scope="module")
def synthetic() -> list[dict]:
    return list(iter_synthetic(2500))


# --- the sample collection and synthetic media ------------------------------------------------


@pytest.mark.skipif(not (DATA / "collection.json").exists(), reason="no sample collection")
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_sample_collection_is_unchanged(on_error):
    doc = json.loads((DATA / "collection.json").read_text(encoding="utf-8"))
    assert_same(doc.get("folders", []) + doc["media"], on_error)
    assert_same([{"media": m} for m in doc["media"]], on_error)


def test_synthetic_media_are_unchanged(synthetic):
    assert_same(synthetic, "raise")
    assert_same(synthetic[:1], "raise")
    assert_same([], "raise")


# --- hostile media ------------------------------------------------------------------------------

_HOSTILE: tuple = (
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    2**53 + 1,
    2**63,
    2**70,
    float("nan"),
    float("inf"),
    "",
    " ",
    "0",
    "1.5",
    "320",
    "abc",
    "a\ud800b",
    "2026-13-01",
    "0000-01-01T00:00:00Z",
    "2026-01-02 03:04:05",
    "1,2,3,4",
    "12345678-1234-1234-1234-1234567890AB",
    [],
    [None],
    [1, 2],
    ["a", "b"],
    [[1, 2], [3, 4]],
    {},
    {"x": 1.0},
    {"x": 1, "y": 2, "visible": False},
    [{"x": 1.0, "y": 2.0, "label": "a"}, {"x": 3.0, "y": 4.0}],
    [{"x": 1.0, "y": 2.0}, None],
    [{"x": True, "y": 2.0}],
    [{"x": "1", "y": 0}],
    [{"y": 1.0}],
    [{}],
    [("x", 1.0)],
    {"id": "nested", "name": 3},
)

#: Keys worth setting on every kind of node (besides the ones a node already has).
_EXTRA_KEYS = ("zz", "polygon", "captions", "objects", "timestamp", "id", "tags", "mediaId")


def _nodes(value, path=()):
    """Every (path, container) inside a record."""
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(value, list):
        yield path, value
        for i, v in enumerate(value):
            yield from _nodes(v, (*path, i))


def _mutate(record: dict, rng: random.Random) -> dict:
    """A copy of ``record`` with one to three hostile changes at random places."""
    record = _copy(record)
    for _ in range(rng.randint(1, 3)):
        nodes = list(_nodes(record))
        _, node = rng.choice(nodes)
        value = _copy(rng.choice(_HOSTILE))
        if isinstance(node, list):
            if not node:
                node.append(value)
            elif rng.random() < 0.2:
                del node[rng.randrange(len(node))]
            else:
                node[rng.randrange(len(node))] = value
        elif rng.random() < 0.15 and node:
            del node[rng.choice(list(node))]
        else:
            key = (
                rng.choice([*node, *_EXTRA_KEYS]) if rng.random() < 0.8 else rng.choice(_EXTRA_KEYS)
            )
            node[key] = value
    return record


def _polygon_mutation(record: dict, rng: random.Random) -> dict:
    """A copy of ``record`` whose polygon points gain keys, lose coordinates or change type."""
    record = _copy(record)
    objects = [o for f in record.get("frames") or [] for o in f.get("objects") or []]
    if not objects:
        return record
    polygon = rng.choice(objects).get("polygon")
    if not polygon:
        return record
    j = rng.randrange(len(polygon))
    change = rng.randrange(6)
    if change == 0:
        polygon[j]["visible"] = rng.choice([True, 0.5, "yes", None])
    elif change == 1:
        del polygon[j][rng.choice(["x", "y"])]
    elif change == 2:
        polygon[j] = {"y": polygon[j]["y"], "x": polygon[j]["x"]}  # key order only
    elif change == 3:
        polygon[j][rng.choice(["x", "y"])] = rng.choice(_HOSTILE)
    elif change == 4:
        polygon[j] = rng.choice(_HOSTILE)
    else:
        polygon[j] = {"z": 1.0, "w": 2.0}
    return record


#: Rows per conversion chunk tried (the default last): a bad row first, last or alone in its chunk.
_CHUNKS = (1, 3, 64, flatten_module.CHUNK_ROWS)


@pytest.mark.parametrize("seed", range(8))
def test_hostile_media_are_handled_the_same(synthetic, seed, monkeypatch):
    monkeypatch.setattr(flatten_module, "CHUNK_ROWS", _CHUNKS[seed % len(_CHUNKS)])
    rng = random.Random(seed)
    base = synthetic[seed * 40 : seed * 40 + 40]
    for _ in range(25):
        batch = [_mutate(r, rng) if rng.random() < 0.3 else _copy(r) for r in rng.sample(base, 8)]
        assert_same(batch, "skip")
        assert_same(batch, "raise")


@pytest.mark.parametrize("seed", range(4))
def test_hostile_polygons_are_handled_the_same(synthetic, seed, monkeypatch):
    monkeypatch.setattr(flatten_module, "CHUNK_ROWS", _CHUNKS[seed % len(_CHUNKS)])
    rng = random.Random(100 + seed)
    base = synthetic[1000 + seed * 40 : 1040 + seed * 40]
    for _ in range(25):
        batch = [
            _polygon_mutation(r, rng) if rng.random() < 0.5 else _copy(r)
            for r in rng.sample(base, 6)
        ]
        assert_same(batch, "skip")
        assert_same(batch, "raise")


@pytest.mark.parametrize("seed", range(2))
def test_hostile_media_across_many_chunks(synthetic, seed):
    """A few bad media among 400 (2,400 frames, 9,200 objects): chunks of the default size."""
    rng = random.Random(200 + seed)
    batch = [_copy(r) for r in synthetic[seed * 400 : seed * 400 + 400]]
    for pos in rng.sample(range(len(batch)), 6):
        batch[pos] = _mutate(batch[pos], rng) if pos % 2 else _polygon_mutation(batch[pos], rng)
    assert_same(batch, "skip")
    assert_same(batch, "raise")


def test_every_rich_point_kind_is_kept_the_same(synthetic):
    """Rich points, alone and among plain ones: extra keeps the whole polygon."""
    rich = _copy(synthetic[:30])
    objects = [o for m in rich for f in m["frames"] for o in f.get("objects") or []]
    objects[0]["polygon"][0]["visible"] = False
    objects[1]["polygon"][-1]["label"] = "tip"
    objects[1]["zz"] = 1
    objects[2]["polygon"] = [{"x": 1.0, "y": 2.0, "z": None}]
    objects[3]["polygon"] = [{}]
    objects[4]["polygon"] = None
    objects[5]["polygon"] = []
    assert_same(rich, "raise")
    assert_same(rich, "skip")


def test_oracle_is_the_frozen_copy():
    """The oracle is not the package's module (a refactor cannot make the test vacuous)."""
    assert oracle.flatten is not flatten
    assert Path(oracle.__file__).parent.name == "oracle_flatten"

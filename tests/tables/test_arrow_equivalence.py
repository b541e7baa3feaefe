"""The Arrow fast path (issue 25) gives exactly what the exact path gives, whichever ran.

The fast path reads a page's bytes with ``read_page`` (a Get Media body with
``read_record``) and builds the five tables with ``flatten_arrow``; where either says None
the batch takes the exact path: decode (``jsoncodec.loads``) and ``flatten``. On the sample
collection, 10,000 synthetic media and the hostile corpus (``hostile_records``), the
tables must be equal (schema with metadata, values, row order) and the Parquet files the
export writes for each grain byte-identical; where the exact path refuses a page, the
fast path must not have built tables for it. The fingerprints of every page the fast path
reads, computed from its bytes by the ``FingerprintPool``, are those of its decoded records.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_records import CASES, base_records, page_body
from hypothesis import given, settings, strategies as st

from coreviz_frames._util.ids import normalize_id
from coreviz_frames._util.jsoncodec import loads
from coreviz_frames.exports.fingerprint import fingerprint
from coreviz_frames.exports.fingerprintpool import FingerprintPool
from coreviz_frames.exports.grainfiles import DEFAULT_ROW_GROUP_SIZE
from coreviz_frames.local_api import SAMPLE_DATA_DIR
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.schema import GRAINS
from coreviz_frames.tables.arrow import as_grain_table
from coreviz_frames.tables.arrowflatten import flatten_arrow
from coreviz_frames.tables.arrowrecords import RECORD_TYPE, read_page, read_record
from coreviz_frames.tables.flatten import flatten


def exact_tables(records: list) -> dict[str, pa.Table] | Exception:
    """The exact path's tables, or the error it raises."""
    try:
        return flatten(records)[0]
    except Exception as exc:  # compared: the fast path must then have given up
        return exc


def fast_tables(tables: list[pa.Table] | None) -> dict[str, pa.Table] | None:
    """``flatten_arrow`` of the read tables (None when the reader or it gave up)."""
    return None if tables is None else flatten_arrow(tables)


def parquet_bytes(table: pa.Table, grain: str) -> bytes:
    """The bytes the export writes for ``table`` (grainfiles.write_file's Parquet call)."""
    sink = io.BytesIO()
    pq.write_table(
        as_grain_table(table, grain),
        sink,
        row_group_size=DEFAULT_ROW_GROUP_SIZE,
        compression="zstd",
    )
    return sink.getvalue()


def assert_same(fast: dict[str, pa.Table], exact: dict[str, pa.Table]) -> None:
    """Equal tables (NaN equal to NaN) and byte-identical Parquet, grain by grain."""
    assert list(fast) == list(exact) == list(GRAINS)
    for grain in GRAINS:
        a, b = fast[grain], exact[grain]
        assert a.schema.equals(b.schema, check_metadata=True), grain
        assert a.equals(b, check_metadata=True) or repr(a.to_pylist()) == repr(b.to_pylist())
        assert parquet_bytes(a, grain) == parquet_bytes(b, grain), grain


def run_page(body: bytes) -> str:
    """Both paths on one page body; which one the fast path took ("fast" or "exact")."""
    try:
        records = loads(body)["media"]
    except Exception:  # not a page the exact path reads: nor may the fast path
        assert read_page(body) is None
        return "exact"
    exact = exact_tables(records)
    page = read_page(body)
    fast = fast_tables(None if page is None else [page.media])
    if isinstance(exact, Exception):
        assert fast is None, f"the exact path raised {exact!r}"
        return "exact"
    if fast is None:
        return "exact"
    assert_same(fast, exact)
    return "fast"


def test_sample_collection_pages_and_records(fingerprint_pool: FingerprintPool) -> None:
    doc = json.loads((SAMPLE_DATA_DIR / "collection.json").read_text(encoding="utf-8"))
    items = doc["folders"] + doc["media"]
    bodies = [page_body(items[i : i + 4]) for i in range(0, len(items), 4)]
    bodies += [page_body([m]) for m in doc["media"]]
    taken = [run_page(body) for body in bodies]
    assert taken.count("fast") >= len(doc["media"]) // 2  # most media read fast, one by one
    for body, path in zip(bodies, taken, strict=True):
        if path == "fast":
            prints = fingerprint_pool.submit(body).result()
            assert prints == exact_fingerprints(loads(body)["media"])
    for record in doc["media"]:
        table = read_record(json.dumps({"media": record}).encode())
        fast = fast_tables(None if table is None else [table])
        if fast is not None:
            assert_same(fast, flatten([record])[0])


@pytest.mark.slow
def test_ten_thousand_synthetic_media_by_batches_of_pages() -> None:
    records = list(iter_synthetic(10_000))
    bodies = [  # orjson: the same JSON as the API's, 15 times faster to write
        orjson.dumps({"media": records[i : i + 100], "pagination": {"total": len(records)}})
        for i in range(0, len(records), 100)
    ]
    pages = [read_page(body) for body in bodies]
    assert all(page is not None for page in pages)
    media = [page.media for page in pages if page is not None]
    batches = [flatten_arrow(media[i : i + 20]) for i in range(0, len(media), 20)]
    assert all(batch is not None for batch in batches)
    fast = {g: pa.concat_tables([b[g] for b in batches if b is not None]) for g in GRAINS}
    fast = {g: t.combine_chunks() for g, t in fast.items()}
    assert_same(fast, flatten(records)[0])


def _more_pages() -> dict[str, bytes]:
    """Pages for the flattening beyond the shared corpus: parent ids, boxes, a video."""
    records = base_records(3)
    uid = records[0]["id"]
    hyphenated = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}".upper()
    records[0]["frames"][0]["mediaId"] = hyphenated  # the same media, spelt otherwise
    records[1]["frames"][0]["captions"][0]["frameId"] = "another-frame"
    objects = records[2]["frames"][0]["objects"]
    objects[0]["polygon"] = [{"x": 5, "y": 7}]
    objects[-1]["polygon"] = [{"x": -1.5, "y": 2}, {"x": 3, "y": -4.25}, {"x": 0.5, "y": 9}]
    records[2]["frames"][0]["timestamp"] = "1e3"
    return {
        "parents_boxes_timestamps": page_body(records),
        "video": page_body(list(iter_synthetic(2, start=9))),
        "only_folders": page_body([{"id": "f1", "type": "folder", "path": "c.f1"}]),
        "empty_page": page_body([]),
    }


PAGES = {**{name: case.body for name, case in CASES.items()}, **_more_pages()}
#: Pages the reader reads that the flattening gives back: flatten's value differs from
#: Arrow's cast or is refused by flatten's own rules (" 1.50 " is float(" 1.50 ") there).
FLATTEN_GIVES_UP = {"timestamp_text_spellings"}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_hostile_page(name: str) -> None:
    """Equal tables and Parquet whichever path ran; the pages the reader reads and the
    exact path accepts are flattened fast (a refusal would be a silent slowdown)."""
    taken = run_page(PAGES[name])
    case = CASES.get(name)
    if case is not None and (not case.arrow_reads or case.malformed):
        assert taken == "exact"
    elif name not in FLATTEN_GIVES_UP:
        assert taken == "fast"


def test_pages_with_tag_keys_in_other_orders_flatten_together() -> None:
    """Two pages whose media list their tag keys in opposite orders: one call over both
    keeps each page's order (one table concatenated with promotion could not)."""
    first, second = base_records(3), list(iter_synthetic(3, start=3))
    for m in second:
        m["metadata"]["tags"] = dict(reversed(m["metadata"]["tags"].items()))
    pages = [read_page(page_body(first)), read_page(page_body(second))]
    assert pages[0] is not None and pages[1] is not None
    fast = flatten_arrow([pages[0].media, pages[1].media])
    assert fast is not None
    assert_same(fast, flatten(first + second)[0])
    assert fast["tags"].column("key").to_pylist()[-2:] == ["split", "color"]


def _with_tags(tags: pa.StructType) -> pa.StructType:
    """RECORD_TYPE with ``metadata.tags`` of type ``tags`` (as the reader infers it)."""

    def swap(field: pa.Field, name: str, typ: pa.DataType) -> pa.Field:
        kids = [pa.field(name, typ) if f.name == name else f for f in field.type]
        return field.with_type(pa.struct(kids))

    metadata = pa.field("metadata", RECORD_TYPE.field("metadata").type)
    metadata = swap(metadata, "tags", tags)
    return swap(pa.field("r", RECORD_TYPE), "metadata", metadata.type).type


def test_rows_the_reader_refuses_still_flatten_exactly() -> None:
    """A table of the declared type built by pyarrow from the records: tag groups given as
    ``[]`` or as one string, and a disagreeing ``dataset.id``, land in tags and ``extra``
    as flatten puts them (the reader gives such pages to the exact path, flatten_arrow
    need not)."""
    records = base_records(3)
    records[0]["metadata"]["tags"] = {"color": [], "split": "even"}
    records[0]["dataset"]["id"] = "another"
    records[1]["metadata"]["tags"] = {"color": ["red", "blue"], "split": "odd"}
    records[2]["metadata"]["tags"] = {"color": []}
    tags = pa.struct([("color", pa.list_(pa.string())), ("split", pa.string())])
    table = pa.Table.from_struct_array(pa.array(records, type=_with_tags(tags)))
    fast = flatten_arrow(table)
    assert fast is not None
    assert_same(fast, flatten(records)[0])
    assert fast["media"].column("extra").to_pylist()[::2] == [
        '{"dataset": {"id": "another"}, "metadata": {"tags": {"color": []}}}',
        '{"metadata": {"tags": {"color": []}}}',
    ]


_TEXT = st.text(st.characters(codec="utf-8"), max_size=6)
_ID = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.text("ab-_9", min_size=1, max_size=5),
)
_DATE = st.sampled_from(
    ["2026-01-05T09:00:00.000Z", "2026-01-05T09:00:00Z", "1999-12-31T23:59:59.999999Z", None]
)
_COORD = st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000)
_POINT = st.fixed_dictionaries({"x": _COORD, "y": _COORD})


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


_OBJECT = st.fixed_dictionaries(
    {"id": _ID},
    optional={
        "label": _maybe(_TEXT),
        "blob": st.sampled_from(["", "blob://x", None]),
        "polygon": _maybe(st.lists(_POINT, max_size=5)),
    },
)
_CAPTION = st.fixed_dictionaries({"id": _ID}, optional={"text": _TEXT, "frameId": _ID})
_FRAME = st.fixed_dictionaries(
    {"id": _ID},
    optional={
        "timestamp": st.sampled_from(["0", "1.5", "-0", "2e1", " 3", None]),
        "width": _maybe(st.integers(-(2**63), 2**63 - 1)),
        "createdAt": _DATE,
        "mediaId": _ID,
        "captions": _maybe(st.lists(_CAPTION, max_size=3)),
        "objects": _maybe(st.lists(_OBJECT, max_size=3)),
    },
)
_MEDIA = st.fixed_dictionaries(
    {"id": _ID, "type": st.sampled_from(["image", "video", "pdf", "folder"])},
    optional={
        "path": _maybe(st.text(".ab", max_size=6)),
        "datasetId": _maybe(_ID),
        "dataset": _maybe(st.fixed_dictionaries({}, optional={"id": _maybe(_ID)})),
        "duration": _maybe(st.floats(allow_nan=False, allow_infinity=False)),
        "createdAt": _DATE,
        "metadata": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "tags": st.fixed_dictionaries(
                        {}, optional={"color": st.lists(_TEXT, min_size=1, max_size=2)}
                    ),
                    "moderation": st.fixed_dictionaries(
                        {}, optional={"categories": st.lists(_TEXT, max_size=2)}
                    ),
                },
            )
        ),
        "frames": _maybe(st.lists(_FRAME, max_size=3)),
    },
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_MEDIA, max_size=4))
def test_generated_pages(media: list[dict]) -> None:
    """Generated pages (ids of both generations, nulls, folders, odd paths, polygons of any
    size, parent ids that may disagree): whichever path runs, the same tables."""
    run_page(page_body(media))


@pytest.fixture(scope="module")
def fingerprint_pool() -> Iterator[FingerprintPool]:
    """One pool of side processes for the module (it says if it computes in a thread)."""
    with FingerprintPool(workers=1) as pool:
        yield pool


def exact_fingerprints(records: list) -> dict[str, str]:
    """``{normalised id: fingerprint}`` as the export computes them from decoded records:
    media items (folders left out) with a string id, the first of a repeated id."""
    found: dict[str, str] = {}
    for record in records:
        if not isinstance(record, dict) or record.get("type") == "folder":
            continue
        ident = record.get("id")
        if isinstance(ident, str):
            found.setdefault(normalize_id(ident) or ident, fingerprint(record))
    return found


#: The pages the fast path reads: the export fingerprints their bytes in the pool (the
#: others it decodes, and fingerprints the records in this process, as before).
READ_PAGES = sorted(name for name, body in PAGES.items() if read_page(body) is not None)


#: Pages that write a number otherwise than Python does (``"width": -0``): their records'
#: fingerprints keep that spelling (see ``exports.fingerprint``), once written as Python
#: writes them they are those of the decoded records.
NUMBERS_WRITTEN_OTHERWISE = {"negative_zero"}


@pytest.mark.parametrize("name", READ_PAGES)
def test_hostile_page_fingerprints(name: str, fingerprint_pool: FingerprintPool) -> None:
    """The fingerprints computed from a page's bytes (in side processes) are those of its
    decoded records, wherever the page writes its numbers as Python does."""
    body = PAGES[name]
    value = loads(body)
    respelled = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    exact = exact_fingerprints(value["media"])
    assert fingerprint_pool.submit(respelled, what=name).result() == exact
    from_bytes = fingerprint_pool.submit(body, what=name).result()
    assert (from_bytes == exact) is (name not in NUMBERS_WRITTEN_OTHERWISE)
    assert from_bytes.keys() == exact.keys()

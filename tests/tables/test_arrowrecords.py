"""tables/arrowrecords: pages and records read by pyarrow equal the decoded records, and
everything the reader cannot prove equal to the exact path is refused (None)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from hostile_records import CASES, base_records, page_body
from hypothesis import example, given, settings, strategies as st

from coreviz_frames._util.jsoncodec import loads
from coreviz_frames.api.client import needs_hydration
from coreviz_frames.local_api.synthetic import iter_synthetic
from coreviz_frames.tables import arrowrecords, flatten as flatten_module
from coreviz_frames.tables.arrowrecords import RECORD_TYPE, read_page, read_record

DATA = Path(__file__).resolve().parents[2] / "data"
READ = [name for name, case in CASES.items() if case.arrow_reads]
REFUSED = [name for name, case in CASES.items() if not case.arrow_reads]


class _Number:
    """Equal to the text of the same number (a frame's numeric timestamp, read as text)."""

    def __init__(self, value: float):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and repr(float(other)) == repr(float(self.value))

    def __repr__(self) -> str:
        return f"_Number({self.value!r})"


def _expected(value: object, typ: pa.DataType) -> object:
    """``value`` (decoded JSON) as a row of ``typ`` reads back: absent keys are null,
    numbers in a float field are floats (an independent oracle, no pyarrow conversion)."""
    if value is None:
        return None
    if pa.types.is_string(typ) and type(value) in (int, float):
        return _Number(value)  # type: ignore[arg-type]
    if pa.types.is_struct(typ):
        return {f.name: _expected(value.get(f.name), f.type) for f in typ}  # type: ignore[union-attr]
    if pa.types.is_list(typ):
        return [_expected(v, typ.value_type) for v in value]  # type: ignore[union-attr]
    if pa.types.is_floating(typ):
        return float(value)  # type: ignore[arg-type]
    return value


def _assert_rows_equal(body: bytes) -> None:
    page = read_page(body)
    assert page is not None
    decoded = loads(body)
    items = decoded["media"]
    row_type = pa.struct(list(page.media.schema))
    assert page.media.to_pylist() == [_expected(item, row_type) for item in items]
    assert page.ids == [item.get("id") for item in items]
    assert page.types == [item.get("type") for item in items]
    assert page.needs_hydration == [needs_hydration(item) for item in items]
    assert page.pagination == (decoded.get("pagination") or {})
    assert page.body is body


def _known_only(value: object, typ: pa.DataType) -> object:
    """``value`` without the keys ``typ`` does not declare (tags kept whole)."""
    if isinstance(value, dict) and pa.types.is_struct(typ):
        if typ.num_fields == 0:  # metadata.tags: any key
            return value
        return {
            k: _known_only(v, typ.field(k).type)
            for k, v in value.items()
            if typ.get_field_index(k) >= 0
        }
    if isinstance(value, list) and pa.types.is_list(typ):
        return [_known_only(v, typ.value_type) for v in value]
    return value


def test_record_type_declares_what_flatten_consumes():
    """Every key flatten reads (columns and structure) is declared, and nothing else."""
    grains = {
        "media": RECORD_TYPE,
        "frames": RECORD_TYPE.field("frames").type.value_type,
        "captions": RECORD_TYPE.field("frames").type.value_type.field("captions").type.value_type,
        "objects": RECORD_TYPE.field("frames").type.value_type.field("objects").type.value_type,
    }
    for grain, typ in grains.items():
        assert {f.name for f in typ} == set(flatten_module._KEYS[grain]), grain
    for path, keys in flatten_module._NESTED_KEYS.items():
        typ = RECORD_TYPE
        for part in path.split("."):
            typ = typ.field(part).type
        assert {f.name for f in typ} == set(keys), path
    # text-valued numbers stay text; the point is the schema's
    frame = grains["frames"]
    assert frame.field("timestamp").type == pa.string()
    assert grains["objects"].field("polygon").type.value_type.field("x").type == pa.float64()


def test_synthetic_page_equals_its_records():
    """A page with images and a 51-frame video reads as pa.Table.from_pylist of its records."""
    records = list(iter_synthetic(12))
    body = page_body(records, {"total": 40, "limit": 12, "offset": 0, "hasMore": True})
    page = read_page(body)
    assert page is not None
    assert page.media.equals(pa.Table.from_pylist(records, schema=page.media.schema))
    assert page.pagination == {"total": 40, "limit": 12, "offset": 0, "hasMore": True}
    _assert_rows_equal(body)
    assert page.take([11, 0]).column("id").to_pylist() == [records[11]["id"], records[0]["id"]]


@pytest.mark.skipif(not (DATA / "collection.json").exists(), reason="no sample collection")
def test_sample_collection():
    """The sample collection has unknown fields (refused), and one media lists a tag key
    (``Tags``) before keys other media list first (refused: its tag rows come first);
    without both, the page reads exactly."""
    doc = json.loads((DATA / "collection.json").read_text(encoding="utf-8"))
    items = doc.get("folders", []) + doc["media"]
    assert read_page(page_body(items)) is None
    known = [
        item if item.get("type") == "folder" else _known_only(item, RECORD_TYPE) for item in items
    ]
    assert known != items
    assert read_page(page_body(known)) is None
    for item in known:
        tags = (item.get("metadata") or {}).get("tags") or {}
        if "Tags" in tags:
            tags["Tags"] = tags.pop("Tags")  # after subject and color, as first seen
    _assert_rows_equal(page_body(known))


@pytest.mark.parametrize("name", READ)
def test_hostile_page_read(name):
    """Pages the reader may take: every row equals its decoded record."""
    _assert_rows_equal(CASES[name].body)


@pytest.mark.parametrize("name", REFUSED)
def test_hostile_page_refused(name):
    """Pages whose table could differ from the exact path: None."""
    assert read_page(CASES[name].body) is None


def test_folder_rows_are_kept_with_their_fields():
    body = CASES["folders"].body
    page = read_page(body)
    assert page is not None
    assert page.types[1] == "folder"
    assert page.media.column("folderItemCount").to_pylist() == [None, 12, None, None]


def test_tag_order_follows_the_struct_only_when_records_agree():
    """Keys first seen late, or a subset, keep the records' order; a swap is refused."""
    page = read_page(CASES["tag_key_new_later"].body)
    assert page is not None
    tags = page.media.column("metadata").combine_chunks().field("tags")
    assert [f.name for f in tags.type] == ["color", "split", "zone"]
    assert read_page(CASES["tag_keys_reordered"].body) is None


def test_needs_hydration_from_columns():
    records = base_records()
    records[0].pop("frames")
    records[1]["frames"] = [{"id": "f", "timestamp": "0"}]
    records[2]["frames"] = [{"id": "f", "timestamp": "0"}, {"id": "g", "objects": []}]
    page = read_page(page_body(records))
    assert page is not None
    assert page.needs_hydration == [True, True, False]


def test_explicit_null_children_matter_only_for_light_items():
    """``"captions": null`` beside a frame with objects changes nothing: the page reads."""
    records = base_records()
    records[0]["frames"][0]["captions"] = None
    _assert_rows_equal(page_body(records))


def test_pagination_absent_or_null():
    assert read_page(b'{"media": []}').pagination == {}  # type: ignore[union-attr]
    assert read_page(b'{"media": [], "pagination": null}').pagination == {}  # type: ignore[union-attr]


def test_read_record_wrapped_and_bare():
    record = base_records(1)[0]
    for body in (json.dumps({"media": record}).encode(), json.dumps(record).encode()):
        table = read_record(body)
        assert table is not None
        assert table.to_pylist() == [_expected(record, pa.struct(list(table.schema)))]


def test_read_record_numeric_timestamps():
    """A Get Media body with numbers for a frame's timestamps reads them as their text."""
    record = base_records(1)[0]
    record["frames"][0].update(timestamp=1.25, endTimestamp=3)
    table = read_record(json.dumps({"media": record}).encode())
    assert table is not None
    assert table.schema.field("frames").type == RECORD_TYPE.field("frames").type
    frame = table.column("frames")[0][0].as_py()
    assert (frame["timestamp"], frame["endTimestamp"]) == ("1.25", "3")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"media": {**base_records(1)[0], "rating": 1}}).encode(),
        json.dumps({"media": base_records(1)[0], "versions": []}).encode(),
        json.dumps({**base_records(1)[0], "media": {}}).encode(),
        json.dumps({"media": None}).encode(),
        json.dumps({"media": {**base_records(1)[0], "width": "320"}}).encode(),
        b'{"media": {"id": "m1", "name": "\\ud800"}}',
        b'{"media": {"id": "m1", "name": "\xff"}}',
    ],
    ids=["unknown", "extra_key", "bare_with_media_key", "null", "spelling", "surrogate", "utf8"],
)
def test_read_record_refused(body):
    assert read_record(body) is None


# --- property: whatever the page, a read page equals its decoded records ----------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)
_KEYS = st.sampled_from(
    ["id", "name", "width", "duration", "timestamp", "x", "y", "tags", "color", "extra", "type"]
)


def _value(depth: int) -> st.SearchStrategy:
    if depth == 0:
        return _SCALARS
    inner = _value(depth - 1)
    return st.one_of(
        _SCALARS, st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)
    )


@st.composite
def _hostile_pages(draw: st.DrawFn) -> bytes:
    """Synthetic records with a few values replaced by random JSON (any type, any key)."""
    records = base_records(2)
    paths = [
        ("width",),
        ("name",),
        ("duration",),
        ("type",),
        ("metadata", "tags", draw(_KEYS)),
        ("metadata", "moderation", "categories"),
        ("frames", 0, "timestamp"),
        ("frames", 0, "captions"),
        ("frames", 0, "objects", 0, "polygon"),
        ("frames", 0, "objects", 0, "polygon", 0, "x"),
        (draw(_KEYS),),
    ]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        node = records[draw(st.integers(0, 1))]
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = draw(_value(2))
        except (KeyError, IndexError, TypeError):  # an earlier change replaced a parent
            continue
    return json.dumps({"media": records}).encode()


@settings(max_examples=60)
@given(_hostile_pages())
def test_any_read_page_equals_its_records(body):
    """read_page and read_record never raise; when they read a body, every row (and a
    page's ids, types, needs_hydration) equals what the exact decode gives."""
    page = read_page(body)
    if page is not None:
        _assert_rows_equal(body)
    first = loads(body)["media"][0]
    table = read_record(json.dumps({"media": first}).encode())
    if table is not None:
        assert table.to_pylist() == [_expected(first, pa.struct(list(table.schema)))]


def _written_tag_keys_by_find(body: bytes) -> list[list[str]] | None:
    """The tag objects' keys found by ``bytes.find``, the way the module found them before
    its numpy scan (the oracle)."""
    found, at = [], body.find(b'"tags')
    while at >= 0:
        match = arrowrecords._TAGS.match(body, at)
        if match is None:
            at = body.find(b'"tags', at + 5)
            continue
        if match.group(2) is not None:
            found.append(match.group(2))
        elif match.group(1) is None:
            return None
        at = body.find(b'"tags', match.end())
    return [list(obj) for obj in json.loads(b"[" + b",".join(found) + b"]")]


_TAG_TEXT = st.lists(
    st.sampled_from(
        [
            '"tags"',
            '"tags',
            '"tag',
            '"ta',
            "tags",
            "t",
            "a",
            '"',
            "g",
            "s",
            ":",
            " ",
            "{",
            "}",
            "[",
            "]",
            ",",
            '"a"',
            '"b"',
            '"tags":{"k":["v"],"tags":["w"]}',
            '"tags": null',
            "null",
            '{"tags":{}}',
            "é",
            "\\\\",
            '\\"',
        ]
    ),
    max_size=25,
).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300)
@given(_TAG_TEXT)
@example(b'"tigs "taxs "xags tags" "tags')  # one byte off at each place but the g
def test_occurrences_of_tags_are_every_start_of_the_text(body):
    """The numpy scan finds exactly the offsets where '"tags' starts, at any position."""
    expected = [i for i in range(len(body)) if body.startswith(b'"tags', i)]
    assert arrowrecords._occurrences_of_tags(body).tolist() == expected


@settings(max_examples=150)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["tags", "color", "a", "g"]),
            st.one_of(
                st.none(),
                st.lists(st.sampled_from(["tags", "x"]), max_size=2),
                st.dictionaries(
                    st.sampled_from(["tags", "b", "c"]),
                    st.lists(st.just("v"), max_size=1),
                    max_size=3,
                ),
            ),
            max_size=3,
        ),
        max_size=4,
    ),
    st.booleans(),
)
def test_written_tag_keys_as_found_by_bytes_find(records, spaced):
    """The tag keys read from a body are those the text search finds, tags keys inside a
    tags object and non-object tags included."""
    body = json.dumps(records, separators=(", ", ": ") if spaced else (",", ":")).encode()
    assert arrowrecords._written_tag_keys(body) == _written_tag_keys_by_find(body)

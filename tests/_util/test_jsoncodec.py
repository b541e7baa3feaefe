"""jsoncodec: exactly the standard library's values, errors and bytes, only faster."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import gc
import json
import marshal
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from helpers import KEY, ScriptedServer
from hypothesis import given, settings, strategies as st

from coreviz_frames._util import jsoncodec
from coreviz_frames.http import credentials as cvcredentials, transport as cvhttp
from coreviz_frames.local_api.synthetic import iter_synthetic

TIMEOUT = 10


# ----------------------------------------------------------------------------- helpers


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 vs 1.0, -0.0 vs 0.0, NaN, key order)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def exact(a: Any, b: Any) -> bool:
    """:func:`same`, at C speed: marshal version 0 writes types, key order and float reprs."""
    return marshal.dumps(a, 0) == marshal.dumps(b, 0)


def outcome(fn: Callable[[], Any]) -> tuple:
    """("ok", value) or ("error", type, message) of ``fn()``."""
    try:
        return ("ok", fn())
    except RecursionError as exc:
        return ("error", RecursionError, str(exc))
    except (ValueError, TypeError) as exc:
        return ("error", type(exc), str(exc))


def reference(data: bytes) -> Any:
    """What response.json() gives for an application/json UTF-8 body."""
    return json.loads(data.decode("utf-8", "replace"))


def assert_parses_like_stdlib(data: bytes) -> None:
    got = outcome(lambda: jsoncodec.loads(data))
    want = outcome(lambda: reference(data))
    if want[0] == "ok":
        assert got[0] == "ok", (data[:80], got)
        assert same(got[1], want[1]), data[:80]
    else:
        assert got == want, data[:80]


@pytest.fixture
def without_fast_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsoncodec, "msgspec", None)
    monkeypatch.setattr(jsoncodec, "orjson", None)


# ----------------------------------------------------------------------------- loads


EDGE_CASES = [
    b"1180591620717411303424",  # 2**70
    b"-1180591620717411303424",
    b"18446744073709551616",  # 2**64
    b"-9223372036854775809",
    b"[1, 1.0, -0, -0.0, 1E2, 1e-7, 2.5e-05, 1.5E+3]",
    b'{"n": 1, "f": 1.0, "z": 0.0}',
    b"[1.7976931348623157e308, 5e-324, 4.9e-324, 1e-400]",
    b"[1e400, -1e400]",  # standard library: inf, msgspec refuses
    b"1" + b"0" * 4299,  # at the int digit limit
    b"1" + b"0" * 4300,  # past it: ValueError
    b'"caf\\u00e9 \\u2028 \\ud83d\\ude00 \\/ \\u0000"',
    '"café 😀 \u2028"'.encode(),
    b'"\\ud800"',  # lone surrogates: accepted, kept
    b'"\\udc00\\ud800"',
    b'{"\\ud800": "\\udfff"}',
    b"NaN",
    b"[NaN, Infinity, -Infinity]",
    b'"\xff"',  # invalid UTF-8: replaced
    b'"\xed\xa0\x80"',  # an encoded surrogate: invalid UTF-8
    b'"\xc0\x80"',  # overlong
    b"\xef\xbb\xbf{}",  # BOM: refused, as json.loads refuses it
    b"",
    b" ",
    b"  [1]  \n",
    b"[1,]",
    b'{"a": 1} x',
    b"[1]\x00",
    b'"\x01"',
    b"01",
    b"\x0c[1]",
    b'{"a": 1, "a": 2, "b": 3}',  # duplicate keys: the last wins, first position
    b'{"a": 1, "b": 2, "a": 3}',
    b"[true, false, null]",
    b"{}",
    b"[]",
    b'""',
]


@pytest.mark.parametrize("data", EDGE_CASES)
def test_edge_cases_parse_as_the_standard_library(data):
    assert_parses_like_stdlib(data)


@pytest.mark.parametrize("data", EDGE_CASES)
def test_edge_cases_without_the_fast_parser(data, without_fast_libraries):
    assert jsoncodec.msgspec is None
    assert_parses_like_stdlib(data)


def test_big_integers_floats_and_surrogates_keep_their_types():
    value = jsoncodec.loads(b'{"big": 1180591620717411303424, "one": 1.0, "s": "\\ud800x"}')
    assert type(value["big"]) is int and value["big"] == 2**70
    assert type(value["one"]) is float
    assert value["s"] == "\ud800x"


def test_errors_are_the_standard_library_errors():
    with pytest.raises(json.JSONDecodeError) as info:
        jsoncodec.loads(b'{"a": }')
    assert (info.value.msg, info.value.pos) == ("Expecting value", 6)
    with pytest.raises(json.JSONDecodeError, match="Unexpected UTF-8 BOM"):
        jsoncodec.loads(b"\xef\xbb\xbf[]")


def _depth_outcomes(docs: list[bytes]) -> list[tuple[str, ...]]:
    """For each doc: (loads outcome, json.loads outcome), both called from this frame."""
    results = []
    for doc in docs:
        pair = []
        for use_loads in (True, False):
            try:
                if use_loads:
                    jsoncodec.loads(doc)
                else:
                    json.loads(doc.decode("utf-8", "replace"))
                pair.append("ok")
            except RecursionError:
                pair.append("RecursionError")
        results.append(tuple(pair))
    return results


def _nested_docs() -> list[bytes]:
    docs = []
    for n in range(850, 1100):
        docs += [b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n]
    return docs


def test_nesting_fails_at_exactly_the_standard_library_depth():
    # msgspec shares the recursion budget with json's scanner; at every depth around the
    # limit loads must succeed or raise RecursionError exactly when json.loads does.
    results = _depth_outcomes(_nested_docs())
    assert all(a == b for a, b in results)
    assert {a for a, _ in results} == {"ok", "RecursionError"}  # the boundary was crossed


def test_nesting_boundary_in_a_worker_thread():
    box: list = []
    thread = threading.Thread(target=lambda: box.append(_depth_outcomes(_nested_docs())))
    thread.start()
    thread.join()
    assert all(a == b for a, b in box[0])


def test_absurd_nesting_raises_recursion_error_as_today():
    data = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        reference(data)
    with pytest.raises(RecursionError):
        jsoncodec.loads(data)


def _pages(records: list[dict], size: int, *, ensure_ascii: bool) -> Iterator[bytes]:
    for start in range(0, len(records), size):
        page = {"media": records[start : start + size], "pagination": {"offset": start}}
        text = json.dumps(page, separators=(",", ":"), ensure_ascii=ensure_ascii)
        yield text.encode()


@pytest.mark.slow
def test_ten_thousand_synthetic_records_parse_identically():
    with jsoncodec.paused_gc():  # the test's own time: 100 MB of records
        records = list(iter_synthetic(10_000))
        for data in _pages(records, 500, ensure_ascii=False):
            assert exact(jsoncodec.loads(data), reference(data))
        for data in _pages(records[:1000], 100, ensure_ascii=True):  # non-ASCII escaped
            assert exact(jsoncodec.loads(data), reference(data))
    assert exact([1, 1.0, "é"], jsoncodec.loads('[1, 1.0, "é"]'.encode()))
    assert not exact([1], [1.0]) and not exact({"a": 1, "b": 2}, {"b": 2, "a": 1})


def _sample_responses(api) -> Iterator[requests.Response]:
    url = f"{api.base_url}/dataset/{api.collection_id}/media"
    ids: list[str] = []
    offset = 0
    while True:
        params = {"recursive": "true", "limit": "7", "offset": str(offset)}
        response = requests.get(url, params=params, timeout=TIMEOUT)
        assert response.status_code == 200
        yield response
        page = response.json()
        ids += [m["id"] for m in page["media"]]
        if not page["pagination"]["hasMore"]:
            break
        offset += 7
    yield requests.get(f"{api.base_url}/dataset/{api.collection_id}/tags", timeout=TIMEOUT)
    for media_id in ids:
        yield requests.get(f"{api.base_url}/media/{media_id}", timeout=TIMEOUT)


def test_every_sample_page_parses_identically(sample_api):
    count = 0
    for response in _sample_responses(sample_api):
        assert same(jsoncodec.loads(response.content), reference(response.content))
        assert same(jsoncodec.response_json(response), response.json())
        count += 1
    assert count > 10


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 10, max_value=2**80)
    | st.floats()  # NaN and infinities included: json.dumps writes NaN, Infinity
    | st.text(st.characters(blacklist_categories=())),  # lone surrogates included
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(blacklist_categories=()), max_size=4), children)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json_values, st.booleans())
def test_random_json_values_parse_identically(value, ensure_ascii):
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert_parses_like_stdlib(text.encode("utf-8", "surrogatepass"))


_json_bytes = st.lists(
    st.sampled_from([*b'[]{}",:0123456789.eE+-\\u tfnrals', 0xC3, 0xA9, 0xFF, 0x0C, 0xED]),
    max_size=16,
).map(bytes)


@settings(max_examples=1000, deadline=None)
@given(_json_bytes)
def test_random_bytes_parse_or_fail_identically(data):
    assert_parses_like_stdlib(data)


# ----------------------------------------------------------------------------- GC pause


def test_a_large_parse_runs_without_garbage_collections():
    data = next(_pages(list(iter_synthetic(100)), 100, ensure_ascii=False))
    assert len(data) >= jsoncodec.GC_PAUSE_MIN_BYTES
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        reference(data)
        with_gc = len(collections)
        collections.clear()
        jsoncodec.loads(data)
    finally:
        gc.callbacks.remove(count)
    assert with_gc > 0  # the standard library, unpaused, triggers collections
    assert collections == []
    assert gc.isenabled()


def test_the_gc_comes_back_only_when_the_last_thread_leaves():
    # A naive gc.disable()/gc.enable() pair would re-enable the collector when the first
    # thread leaves while the second is still parsing.
    entered = threading.Barrier(2)
    first_left = threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with jsoncodec.paused_gc():
            entered.wait()
        first_left.set()

    def second() -> None:
        with jsoncodec.paused_gc():
            entered.wait()
            first_left.wait(TIMEOUT)
            seen["after first left"] = gc.isenabled()
        seen["after both left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert seen == {"after first left": False, "after both left": True}


def test_a_gc_the_user_disabled_stays_disabled():
    gc.disable()
    try:
        with jsoncodec.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
        jsoncodec.loads(b"[" + b"1," * 100_000 + b"1]")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pause_false_is_a_no_op_and_errors_end_the_pause():
    with jsoncodec.paused_gc(False):
        assert gc.isenabled()
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads(b"[" + b"1," * 100_000)
    assert gc.isenabled()


# ----------------------------------------------------------------------------- response_json


def _server(body: bytes, content_type: str | None) -> ScriptedServer:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return ScriptedServer(lambda path, query: (200, headers, body))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"a": "é", "b": [1, 1.0]}'.encode(), "application/json"),
        ('{"a": "é"}'.encode(), "application/json; charset=UTF-8"),
        ('{"a": "é"}'.encode("latin-1"), "application/json; charset=latin-1"),
        ('{"a": "é"}'.encode("latin-1"), "text/plain"),  # requests: ISO-8859-1
        ('{"a": "é"}'.encode("utf-16"), "application/octet-stream"),  # no charset: guessed
        (b'\xef\xbb\xbf{"a": 1}', "application/octet-stream"),  # BOM accepted when guessing
        (b'\xef\xbb\xbf{"a": 1}', "application/json"),  # BOM refused with utf-8
        (b'{"a": "\xff"}', "application/json"),
        (b'{"a": "\xff"}', "application/octet-stream"),  # strict UTF-8 fails: charset guess
        (b"[1]", "application/octet-stream"),
        (b"", "application/json"),
        (b'{"s": "\\ud800", "n": 1180591620717411303424}', "application/json"),
    ],
)
def test_response_json_equals_requests(body, content_type):
    server = _server(body, content_type)
    try:
        response = requests.get(f"{server.base_url}/x", timeout=TIMEOUT)
        got = outcome(lambda: jsoncodec.response_json(response))
        want = outcome(response.json)
    finally:
        server.close()
    if want[0] == "ok":
        assert got[0] == "ok" and same(got[1], want[1])
    else:
        assert got == want  # requests.JSONDecodeError, same message


def test_get_json_returns_the_standard_library_records():
    body = b'{"media": {"id": "m1", "s": "\\ud800", "n": 1180591620717411303424, "f": 1.0}}'
    server = _server(body, "application/json")
    try:
        session = cvhttp.build_session(retries=0)
        transport = cvhttp.Transport(
            server.base_url, session=session, credentials=cvcredentials.Credentials.api_key(KEY)
        )
        record = transport.get_json("media/m1", what="media 'm1'")
    finally:
        server.close()
    assert same(record, json.loads(body))
    assert record["media"]["n"] == 2**70 and record["media"]["s"] == "\ud800"


# ----------------------------------------------------------------------------- canonical


class Color(enum.Enum):
    RED = 1


class Size(enum.IntEnum):
    BIG = 3


class Mode(str, enum.Enum):
    FAST = "fast"


class Name(str):
    pass


UNUSUAL_VALUES = [
    [float("nan"), float("inf"), -float("inf")],
    [1e16, 1e-05, 1e-06, 1.5e-07, 9.999999999999999e-05, 0.0001, 1e22, 5e-324, -0.0],
    [2**63, 2**64, 2**70, -(2**70)],
    {"a": "\ud800", "\udfff": 1},
    {1: "a", "b": 2},  # mixed key types: TypeError in both
    {1: "a", 2: "b"},
    {True: 1, None: 2},
    {1.5: "x"},
    (1, (2, 3)),
    {"d": dt.datetime(2026, 1, 1), "t": dt.date(2026, 1, 2)},
    decimal.Decimal("1.10"),
    uuid.UUID(int=5),
    [Color.RED, Size.BIG, Mode.FAST],
    {"n": Name("x"), Name("k"): 1},
    {1, 2},
    b"bytes",
    complex(1, 2),
    "e-1 0.00001 1e-05",
    {"k": "x,0.00001", "e-5": [0.5]},
]


@pytest.mark.parametrize("value", UNUSUAL_VALUES, ids=range(len(UNUSUAL_VALUES)))
def test_canonical_dumps_equals_the_standard_library(value):
    got = outcome(lambda: jsoncodec.canonical_dumps(value))
    want = outcome(lambda: jsoncodec.stdlib_canonical_dumps(value))
    assert got == want


def test_canonical_dumps_takes_the_fast_path_for_records():
    for record in iter_synthetic(300):
        fast = jsoncodec.fast_canonical_dumps(record)
        assert fast is not None
        assert fast == jsoncodec.stdlib_canonical_dumps(record)


def test_canonical_dumps_without_orjson(without_fast_libraries):
    record = next(iter_synthetic(1))
    assert jsoncodec.fast_canonical_dumps(record) is None
    assert jsoncodec.canonical_dumps(record) == jsoncodec.stdlib_canonical_dumps(record)


def test_every_character_is_written_as_the_standard_library_writes_it():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    text = "".join(chars)
    assert jsoncodec.fast_canonical_dumps(text) == jsoncodec.stdlib_canonical_dumps(text)
    keys = {c: 0 for c in reversed(chars)}  # sorted by code point, as Python sorts them
    assert jsoncodec.fast_canonical_dumps(keys) == jsoncodec.stdlib_canonical_dumps(keys)
    surrogates = "".join(chr(c) for c in range(0xD800, 0xE000))  # orjson refuses them
    assert jsoncodec.canonical_dumps(surrogates) == jsoncodec.stdlib_canonical_dumps(surrogates)


_floats = (
    st.floats()
    | st.floats(min_value=1e-10, max_value=1e-3)
    | st.floats(min_value=1e15, max_value=1e17)
    | st.integers(min_value=-30, max_value=30).map(lambda e: 10.0**e)
)
_canonical_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | _floats
    | st.text(st.characters(blacklist_categories=())),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(st.characters(blacklist_categories=()), max_size=4), children)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(_canonical_values)
def test_random_values_dump_as_the_standard_library(value):
    assert outcome(lambda: jsoncodec.canonical_dumps(value)) == outcome(
        lambda: jsoncodec.stdlib_canonical_dumps(value)
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_floats, min_size=1, max_size=5))
def test_random_floats_dump_as_the_standard_library(values):
    assert jsoncodec.canonical_dumps(values) == jsoncodec.stdlib_canonical_dumps(values)
    if not all(math.isfinite(v) for v in values):  # orjson would write null
        assert jsoncodec.fast_canonical_dumps(values) is None

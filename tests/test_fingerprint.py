"""fingerprint: stable over key order and URL signatures, sensitive to any content change."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import given, settings, strategies as st

from coreviz_frames import fingerprint as fingerprint_module, jsoncodec
from coreviz_frames.fingerprint import canonical, fingerprint, strip_signature, strip_url_queries
from coreviz_frames.synthetic import synthetic_media

_text = st.text(alphabet=st.sampled_from("ab?#_:/.x= "), max_size=12)
_urls = st.builds(lambda p, q: f"https://h.example/{p}{q}", _text, _text)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text | _urls,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=12,
)


def _slow(record) -> str:
    text = json.dumps(canonical(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text, _json, max_size=4))
def test_the_fast_path_equals_hashing_the_canonical_record(record):
    assert fingerprint(record) == _slow(record)


def test_key_order_and_url_signatures_do_not_count():
    record = synthetic_media(9)  # a video with many frames
    signed = json.loads(json.dumps(record).replace('.jpg"', '.jpg?sig=abc&se=2026"'))
    reordered = dict(reversed(list(signed.items())))
    assert fingerprint(record) == fingerprint(reordered)
    assert fingerprint({**record, "_score": 0.3}) == fingerprint(record)


def test_any_content_change_counts():
    record = synthetic_media(3)
    caption = json.loads(json.dumps(record))
    caption["frames"][0]["captions"][0]["text"] += "!"
    moved = json.loads(json.dumps(record))
    moved["frames"][0]["objects"][0]["polygon"][0]["x"] += 1
    host = json.loads(json.dumps(record).replace("blob://synthetic/", "blob://other/"))
    prints = {fingerprint(r) for r in (record, caption, moved, host)}
    assert len(prints) == 4


def test_strip_signature_only_touches_urls():
    assert strip_signature("https://h/a.jpg?X-Amz-Signature=1") == "https://h/a.jpg"
    assert strip_signature("blob://s/a.jpg#x") == "blob://s/a.jpg"
    assert strip_signature("why? because") == "why? because"


# ------------------------------------------------------------------ the fast path = the old one


def _old_strip_signature(value: str) -> str:
    if not value.startswith(("http://", "https://", "blob://")) or (
        "?" not in value and "#" not in value
    ):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _old_canonical(value):
    if isinstance(value, Mapping):
        return {
            str(k): _old_canonical(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, (list, tuple)):
        return [_old_canonical(v) for v in value]
    if isinstance(value, str):
        return _old_strip_signature(value)
    return value


def _old_dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def old_fingerprint(record) -> str:
    """The implementation before the fast path, verbatim: the oracle."""
    text = _old_dumps(record)
    if "?" in text or "#" in text or '"_' in text:
        text = _old_dumps(_old_canonical(record))
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_url_chars = st.sampled_from(
    ["a", "/", "?", "#", "=", "&", ":", "@", "[", "]", "é", "\t", "\n", '"', "\\", "%", " ", "_"]
)
_url_part = st.lists(_url_chars, max_size=6).map("".join)
_netlocs = st.sampled_from(
    ["h.example", "", "h:8080", "u:p@h", "[::1]", "[::1", "h]", "é.example", "℀", "h\t"]
)
_hostile_urls = st.builds(
    lambda scheme, netloc, path, rest: f"{scheme}{netloc}{path}{rest}",
    st.sampled_from(["http://", "https://", "blob://", "HTTP://", "ftp://", "blob:"]),
    _netlocs,
    _url_part,
    _url_part,
)
_signed_urls = st.builds(
    lambda netloc, path, sig: f"https://{netloc}/{path}.jpg?X-Amz-Signature={sig}&X-Amz-Date=1",
    st.sampled_from(["b.example", "blob.vercel-storage.com", "h:9"]),
    st.text(alphabet="abc/-_.é", max_size=8),
    st.text(alphabet="0123456789abcdef", max_size=8),
)
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | _hostile_urls
    | _signed_urls
)
_keys = st.text(alphabet="ab_?#", max_size=3) | _hostile_urls
_records = st.dictionaries(
    _keys,
    st.recursive(
        _leaves,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(_keys, c, max_size=3),
        max_leaves=12,
    ),
    max_size=5,
)


@settings(max_examples=600, deadline=None)
@given(_records)
def test_fingerprint_equals_the_old_implementation(record):
    assert fingerprint(record) == old_fingerprint(record)


@settings(max_examples=300, deadline=None)
@given(st.lists(_hostile_urls | _signed_urls | st.text(max_size=8), max_size=6))
def test_url_values_are_stripped_as_strip_signature_strips_them(values):
    record = {"v": values, "k": dict.fromkeys(values, 1)}
    assert fingerprint(record) == old_fingerprint(record)


def _signed(record: dict) -> dict:
    text = json.dumps(record).replace('.jpg"', '.jpg?X-Amz-Algorithm=AWS4&X-Amz-Signature=ab"')
    return json.loads(text)


def test_signed_records_take_the_single_pass(monkeypatch):
    records = [_signed(synthetic_media(i)) for i in range(60)]
    want = [old_fingerprint(r) for r in records]

    def slow_path(record):
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(fingerprint_module, "reference_fingerprint", slow_path)
    assert [fingerprint(r) for r in records] == want


def test_fingerprint_without_orjson(monkeypatch):
    monkeypatch.setattr(jsoncodec, "orjson", None)
    records = [synthetic_media(1), _signed(synthetic_media(2)), {"_score": 1, "a": [1e-05]}]
    assert [fingerprint(r) for r in records] == [old_fingerprint(r) for r in records]


@pytest.mark.parametrize(
    "record",
    [
        {"a": float("nan"), "b": "https://h/x?s=1"},
        {"a": 1e-05, "b": "https://h/x?s=1"},
        {1: "https://h/x?s=1", "b": 2},
        {True: "x?"},
        {"t": ("https://h/x?s=1", 2)},
        {"d": dt.datetime(2026, 1, 1), "u": "https://h/x#f"},
        {"_score": 0.5, "blob": "https://h/x?s=1"},
        {"k": "say \"https://h/x?s=1\" and 'blob://b/y?z'"},
        {"caption": "see https://h/x?s=1", "blob": "https://h/x?s=2"},
        {"blob": "blob:///x.jpg?sig=1"},
        {"blob": "https://h/x?redirect=https://other/y"},
        {"blob": "https://h/a\tb?x"},
        {"https://h/k?q": "https://h/v?q"},
        {"big": 2**70, "blob": "https://h/x?s=1"},
        {"s": "\ud800", "blob": "https://h/x?s=1"},
    ],
)
def test_unusual_records_keep_their_fingerprint(record):
    def outcome(fn):
        try:
            return fn(record)
        except TypeError as exc:  # mixed key types cannot be sorted, then as now
            return type(exc), str(exc)

    assert outcome(fingerprint) == outcome(old_fingerprint)


def test_strip_url_queries_leaves_keys_and_text():
    data = b'{"a":"https://h/x.jpg?sig=1","https://k?q":["why?","blob://b/y#f"]}'
    assert strip_url_queries(data) == b'{"a":"https://h/x.jpg","https://k?q":["why?","blob://b/y"]}'

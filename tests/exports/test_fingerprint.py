"""fingerprint: stable over blob URL signatures and ``_`` keys, sensitive to any content change;
legacy_fingerprint: the previous definition (sorted keys), for exports written before it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import given, settings, strategies as st

from coreviz_frames._util import jsoncodec
from coreviz_frames.exports import fingerprint as fingerprint_module
from coreviz_frames.exports.fingerprint import (
    BLOB_FIELDS,
    VERSION_MARK,
    canonical,
    fingerprint,
    legacy_fingerprint,
    matches,
    reference_fingerprint,
    strip_blob_urls,
    strip_signature,
    text_fingerprint,
)
from coreviz_frames.local_api.synthetic import synthetic_media


def _examples(ci: int) -> int:
    """``ci`` examples, or the loaded profile's if more (HYPOTHESIS_PROFILE=explore)."""
    return max(ci, settings.default.max_examples)


_text = st.text(alphabet=st.sampled_from("ab?#_:/.x= "), max_size=12)
_urls = st.builds(lambda p, q: f"https://h.example/{p}{q}", _text, _text)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text | _urls,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=12,
)


def _slow(record, sort_keys: bool = False) -> str:
    text = json.dumps(
        canonical(record), sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@settings(max_examples=_examples(200), deadline=None)
@given(st.dictionaries(_text, _json, max_size=4))
def test_the_fast_path_equals_hashing_the_canonical_record(record):
    assert fingerprint(record) == VERSION_MARK + _slow(record)
    assert legacy_fingerprint(record) == _slow(record, sort_keys=True)
    text = json.dumps(canonical(record), separators=(",", ":"), ensure_ascii=False).encode()
    assert text_fingerprint(text) == fingerprint(record)


def test_url_signatures_and_underscore_keys_do_not_count_key_order_does():
    record = synthetic_media(9)  # a video with many frames
    signed = json.loads(json.dumps(record).replace('.jpg"', '.jpg?sig=abc&se=2026"'))
    assert fingerprint(record) == fingerprint(signed)
    assert fingerprint({**record, "_score": 0.3}) == fingerprint(record)
    reordered = dict(reversed(list(signed.items())))
    assert fingerprint(record) != fingerprint(reordered)
    assert legacy_fingerprint(record) == legacy_fingerprint(reordered)  # it sorted keys
    assert fingerprint(record).startswith("v2:") and len(legacy_fingerprint(record)) == 32


#: What the release before the ``v2:`` definition stored for these records (its
#: ``fingerprint()``, run on them once): legacy_fingerprint must keep giving them.
PREVIOUS_RELEASE = [
    (synthetic_media(0), "16d369f1416366c1da9089d7a02bcc92"),
    (synthetic_media(7), "f4b85a89a5e8cd1609f415e747960c40"),
    (
        {
            "id": "m1",
            "_score": 0.5,
            "blob": "https://h/a.jpg?sig=1",
            "x": [1e-05, 2.5, None],
            "n": "caf\u00e9",
        },
        "914d4001f440f58ec9ca375ff17e8a95",
    ),
    ({"b": 1, "a": {"d": [1, 2], "c": "https://h/p?v=2"}}, "b5ddf8002544712607178b9492e0170e"),
]


@pytest.mark.parametrize(("record", "stored"), PREVIOUS_RELEASE)
def test_legacy_fingerprints_are_those_the_previous_release_stored(record, stored):
    assert legacy_fingerprint(record) == stored
    assert matches(stored, record) and matches(fingerprint(record), record)
    edited = {**record, "id": "another"}
    assert not matches(stored, edited) and not matches(fingerprint(record), edited)
    assert not matches(None, record)


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


# ------------------------------------------------------------------ only blob fields lose queries


def _with_url_texts(record: dict, value: str) -> dict:
    """``record`` with its first caption, a tag value and a metadata string set to ``value``."""
    out = json.loads(json.dumps(record))
    out["frames"][0]["captions"][0]["text"] = value
    out["metadata"]["tags"]["source"] = [value]
    out["metadata"]["origin"] = value
    return out


@pytest.mark.parametrize(
    "before, after",
    [
        ("https://h.example/page?id=1", "https://h.example/page?id=2"),
        ("see https://h.example/p?id=1", "see https://h.example/p?id=2"),
        ("blob://b/x.jpg#one", "blob://b/x.jpg#two"),
        ("http://h.example[?a", "http://h.example[?b"),
    ],
)
def test_an_edit_to_a_url_in_a_caption_or_tag_counts(before, after):
    """Scenario 7 of issue 20: a caption or tag value holding a URL is compared whole."""
    record = synthetic_media(4)
    old, new = _with_url_texts(record, before), _with_url_texts(record, after)
    assert fingerprint(old) != fingerprint(new)
    for where in ("caption", "tag", "metadata"):
        one = json.loads(json.dumps(old))
        if where == "caption":
            one["frames"][0]["captions"][0]["text"] = after
        elif where == "tag":
            one["metadata"]["tags"]["source"] = [after]
        else:
            one["metadata"]["origin"] = after
        assert fingerprint(one) != fingerprint(old), where
        assert reference_fingerprint(one) != reference_fingerprint(old), where


def test_only_the_blob_fields_lose_their_signatures():
    record = synthetic_media(9)
    frame, obj = record["frames"][0], record["frames"][0]["objects"][0]
    frame["thumbnailBlob"] = "https://h/thumb.jpg"
    signed = json.loads(json.dumps(record))
    signed["blob"] += "?sig=1"
    signed["frames"][0]["blob"] += "?sig=2#f"
    signed["frames"][0]["thumbnailBlob"] += "?sig=3"
    signed["frames"][0]["objects"][0]["blob"] += "?sig=4"
    assert fingerprint(signed) == fingerprint(record) == reference_fingerprint(signed)
    assert BLOB_FIELDS == (
        "blob",
        "frames[].blob",
        "frames[].thumbnailBlob",
        "frames[].objects[].blob",
    )
    # the same field names elsewhere are ordinary strings
    elsewhere = json.loads(json.dumps(record))
    elsewhere["metadata"]["blob"] = "https://h/x?v=1"
    elsewhere["frames"][0]["captions"][0]["blob"] = "https://h/y?v=1"
    changed = json.loads(json.dumps(elsewhere))
    changed["metadata"]["blob"] = "https://h/x?v=2"
    changed["frames"][0]["captions"][0]["blob"] = "https://h/y?v=2"
    assert fingerprint(changed) != fingerprint(elsewhere)
    assert frame["objects"][0] is obj  # nothing mutated


def test_strip_blob_urls_copies_only_what_changes():
    record = _signed(synthetic_media(9))
    stripped = strip_blob_urls(record)
    assert stripped is not record and ".jpg?" in json.dumps(record)
    assert ".jpg?" not in json.dumps(stripped)
    assert stripped["metadata"] is record["metadata"]
    plain = synthetic_media(9)
    assert strip_blob_urls(plain) is plain
    as_tuple = {**record, "frames": tuple(record["frames"])}
    assert fingerprint(as_tuple) == fingerprint(stripped) == reference_fingerprint(as_tuple)


# ------------------------------------------------------------------ the fast path = the reference

# URLs of arbitrary characters: brackets (``http://h.example[?``), percent escapes, IPv6
# hosts, unicode, quotes, backslashes, control characters and lone surrogates.
_url_chars = st.sampled_from(
    [
        *("a", "/", "?", "#", "=", "&", ":", "@", "[", "]", "é", "\t", "\n", '"', "\\", " ", "_"),
        *("%2F", "%zz", "%", "\u2100", "\U0001f600", "\x00", "\ud800", "\u200b", "?#", "#?"),
    ]
)
_url_part = st.lists(_url_chars, max_size=6).map("".join) | st.text(max_size=5)
_netlocs = st.sampled_from(
    [
        *("h.example", "", "h:8080", "u:p@h", "[::1]", "[::1", "h]", "é.example", "℀", "h\t"),
        *("h.example[", "[2001:db8::1]:8080", "[fe80::1%25eth0]", "[v1.x]", "xn--bcher-kva.ex"),
    ]
) | st.text(max_size=4)
_hostile_urls = st.builds(
    lambda scheme, netloc, path, rest: f"{scheme}{netloc}{path}{rest}",
    st.sampled_from(["http://", "https://", "blob://", "HTTP://", "ftp://", "blob:", ""]),
    _netlocs,
    _url_part,
    _url_part,
)
_signed_urls = st.builds(
    lambda netloc, path, sig: f"https://{netloc}/{path}.jpg?X-Amz-Signature={sig}&X-Amz-Date=1",
    st.sampled_from(["b.example", "blob.vercel-storage.com", "h:9", "[::1]:9"]),
    st.text(alphabet="abc/-_.é[]%", max_size=8),
    st.text(alphabet="0123456789abcdef", max_size=8),
)
_any_url = _hostile_urls | _signed_urls
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | _hostile_urls
    | _signed_urls
)
_keys = st.text(alphabet="ab_?#", max_size=3) | _hostile_urls | st.sampled_from(["blob", "_x"])
_json_values = st.recursive(
    _leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_keys, c, max_size=3),
    max_leaves=12,
)
_records = st.dictionaries(_keys, _json_values, max_size=5)

# Records shaped like media, so the blob fields are hit: frames (a list or a tuple) with
# blob and thumbnailBlob, objects with blob, and URLs in captions, tags and _ keys.
_extras = st.dictionaries(st.sampled_from(["label", "text", "_score", "blob2", "x"]), _leaves)
_objects = st.lists(
    st.builds(lambda b, e: {**e, "blob": b}, _any_url | _leaves, _extras), max_size=3
)
_captions = st.lists(st.builds(lambda t: {"text": t}, _any_url), max_size=2)
_frames = st.lists(
    st.builds(
        lambda b, t, o, c, e: {**e, "blob": b, "thumbnailBlob": t, "objects": o, "captions": c},
        _any_url,
        _any_url | st.none(),
        _objects | _objects.map(tuple) | _leaves,
        _captions,
        _extras,
    ),
    max_size=3,
)
_media = st.builds(
    lambda b, f, tags, e: {**e, "blob": b, "frames": f, "metadata": {"tags": tags}},
    _any_url | _leaves,
    _frames | _frames.map(tuple) | _leaves,
    st.dictionaries(st.text(max_size=3), st.lists(_any_url, max_size=2), max_size=2),
    st.dictionaries(_keys, _json_values, max_size=3),
)


def _by_definition(record) -> str:
    """The fingerprint as the README defines it, written out independently: the blob fields
    (media, frame and object ``blob``, frame ``thumbnailBlob``) lose query and fragment."""

    def plain(value):
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items() if not str(k).startswith("_")}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    def level(value, keys, below):
        if not isinstance(value, Mapping):
            return plain(value)
        out = plain(value)
        for key in keys:
            if isinstance(value.get(key), str):
                out[key] = _old_strip_signature(value[key])
        if below and isinstance(value.get(below), (list, tuple)):
            child = (("blob", "thumbnailBlob"), "objects") if below == "frames" else (("blob",), "")
            out[below] = [level(v, *child) for v in value[below]]
        return out

    text = json.dumps(
        level(record, ("blob",), "frames"), separators=(",", ":"), ensure_ascii=False, default=str
    )
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return VERSION_MARK + digest


def _outcome(fn, record):
    try:
        return fn(record)
    except TypeError as exc:  # mixed key types cannot be sorted (legacy_fingerprint)
        return type(exc), str(exc)


@settings(max_examples=_examples(600), deadline=None)
@given(_records | _media)
def test_fingerprint_equals_the_reference(record):
    assert _outcome(fingerprint, record) == _outcome(reference_fingerprint, record)


@settings(max_examples=_examples(300), deadline=None)
@given(_media)
def test_the_reference_is_the_definition(record):
    assert reference_fingerprint(record) == _by_definition(record)


@settings(max_examples=_examples(300), deadline=None)
@given(st.lists(_any_url, min_size=1, max_size=4), st.integers(0, 3), _any_url)
def test_any_edit_outside_the_blob_fields_counts(values, at, other):
    record = {"v": values, "frames": [{"captions": [{"text": v} for v in values]}]}
    at %= len(values)
    if other == values[at]:
        return
    edited = json.loads(json.dumps(record))
    edited["v"][at] = other
    assert fingerprint(edited) != fingerprint(record)
    assert reference_fingerprint(edited) != reference_fingerprint(record)


# ------------------------------------------------------------------ before and after the change


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
    """The definition before 0.2.0's fix: every URL-looking string lost its query string."""
    text = _old_dumps(record)
    if "?" in text or "#" in text or '"_' in text:
        text = _old_dumps(_old_canonical(record))
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _sample_records() -> list[dict]:
    data = Path(__file__).resolve().parents[2] / "data" / "collection.json"
    return json.loads(data.read_text())["media"]


def test_records_without_urls_outside_blob_fields_keep_their_old_fingerprint():
    """Fingerprints stored before 0.2.0's change stay valid for every such record, signed
    blob URLs included: a sync after the upgrade rewrites only media with such URLs
    elsewhere (compared by :func:`legacy_fingerprint`, the definition of that time)."""
    records = [synthetic_media(i) for i in range(40)] + _sample_records()
    records += [_signed(r) for r in records]
    assert [legacy_fingerprint(r) for r in records] == [old_fingerprint(r) for r in records]
    with_url = _with_url_texts(synthetic_media(1), "https://h.example/p?id=1")
    assert legacy_fingerprint(with_url) != old_fingerprint(with_url)


def _signed(record: dict) -> dict:
    text = json.dumps(record).replace('.jpg"', '.jpg?X-Amz-Algorithm=AWS4&X-Amz-Signature=ab"')
    return json.loads(text)


def test_signed_records_take_the_fast_path(monkeypatch):
    records = [_signed(synthetic_media(i)) for i in range(60)]
    want = [reference_fingerprint(r) for r in records]

    def slow_path(record):
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(fingerprint_module, "reference_fingerprint", slow_path)
    assert [fingerprint(r) for r in records] == want


def test_fingerprint_without_orjson(monkeypatch):
    records = [synthetic_media(1), _signed(synthetic_media(2)), {"_score": 1, "a": [1e-05]}]
    want = [fingerprint(r) for r in records]
    monkeypatch.setattr(jsoncodec, "orjson", None)
    assert [fingerprint(r) for r in records] == want == [reference_fingerprint(r) for r in records]


@pytest.mark.parametrize(
    "record",
    [
        {"a": float("nan"), "blob": "https://h/x?s=1"},
        {"a": 1e-05, "blob": "https://h/x?s=1"},
        {1: "https://h/x?s=1", "b": 2},
        {True: "x?"},
        {"t": ("https://h/x?s=1", 2)},
        {"d": dt.datetime(2026, 1, 1), "blob": "https://h/x#f"},
        {"_score": 0.5, "blob": "https://h/x?s=1"},
        {"k": "say \"https://h/x?s=1\" and 'blob://b/y?z'"},
        {"caption": "see https://h/x?s=1", "blob": "https://h/x?s=2"},
        {"blob": "blob:///x.jpg?sig=1"},
        {"blob": "https://h/x?redirect=https://other/y"},
        {"blob": "https://h/a\tb?x"},
        {"blob": "http://h.example[?"},
        {"a": "http://h.example[?"},
        {"blob": "http://[::1]:80/x?y#z", "frames": ({"blob": "https://[::1/x?y"},)},
        {"frames": [{"objects": [{"blob": "https://h/%zz?q"}], "blob": "https://℀/x?q"}]},
        {"https://h/k?q": "https://h/v?q"},
        {"big": 2**70, "blob": "https://h/x?s=1"},
        {"s": "\ud800", "blob": "https://h/x?s=1"},
    ],
)
def test_unusual_records_fingerprint_as_the_reference(record):
    assert _outcome(fingerprint, record) == _outcome(reference_fingerprint, record)
    assert _outcome(fingerprint, record) == _outcome(_by_definition, record) or not isinstance(
        next(iter(record), ""), str
    )

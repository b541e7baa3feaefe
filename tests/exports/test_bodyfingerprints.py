"""body_fingerprints: each record's fingerprint from its own text in the body, equal to
fingerprint() of the decoded record wherever the body writes numbers as Python does."""

from __future__ import annotations

import json
import re

import orjson
import pytest
import requests
from hypothesis import given, strategies as st

import coreviz_frames as cvf
from coreviz_frames._util.ids import normalize_id
from coreviz_frames._util.jsoncodec import loads
from coreviz_frames.api.client import needs_hydration
from coreviz_frames.exports import bodyfingerprints
from coreviz_frames.exports.bodyfingerprints import body_fingerprints, select_records
from coreviz_frames.exports.fingerprint import fingerprint, text_fingerprint
from coreviz_frames.exports.fingerprintpool import FingerprintPool
from coreviz_frames.local_api.synthetic import iter_synthetic

SAMPLE_COLLECTION = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"
_BLOB = re.compile(rb'("(?:blob|thumbnailBlob)":"[a-z]+://[^"]*)"')


def _expected(body: bytes) -> dict[str, str]:
    """fingerprint() of each record as the client decodes it (the definition)."""
    value = loads(body)
    media = value.get("media")
    if isinstance(media, list):
        records = [m for m in media if m.get("type") != "folder"]
    else:
        records = [media if isinstance(media, dict) else value]
    out: dict[str, str] = {}
    for record in records:
        if isinstance(record.get("id"), str):
            out.setdefault(normalize_id(record["id"]), fingerprint(record))
    return out


def _page(records: list, **extra) -> bytes:
    return orjson.dumps({"media": records, "pagination": {"offset": 0, "hasMore": False}, **extra})


def _as_the_local_api_writes(records: list) -> bytes:
    page = {"media": records, "pagination": {"offset": 0}}
    return json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()


def test_a_synthetic_page_gives_each_record_s_fingerprint():
    records = list(iter_synthetic(120))
    want = {r["id"]: fingerprint(r) for r in records}
    assert body_fingerprints(_page(records)) == want
    assert body_fingerprints(_as_the_local_api_writes(records)) == want
    pretty = json.dumps({"media": records}, indent=2, ensure_ascii=True).encode()
    assert body_fingerprints(pretty) == want  # whitespace and escapes do not count


def test_signed_blob_urls_plain_or_escaped_lose_their_signature():
    records = list(iter_synthetic(30))
    body = _BLOB.sub(rb'\1?X-Amz-Signature=abc&e=1#frag"', _page(records))
    assert body.count(b"X-Amz") > 30
    escaped = body.replace(b"?", b"\\u003f").replace(b"#", b"\\u0023")
    assert b"?" not in escaped and b"#" not in escaped
    unsigned = {r["id"]: fingerprint(r) for r in records}
    assert body_fingerprints(body) == _expected(body) == unsigned
    assert body_fingerprints(escaped) == _expected(escaped) == unsigned
    # a query string outside the blob fields counts
    noted = _page([{**records[0], "caption": "https://h/p?v=2"}])
    assert (
        body_fingerprints(noted)
        == _expected(noted)
        != {records[0]["id"]: unsigned[records[0]["id"]]}
    )


@pytest.mark.parametrize(
    "text",
    [
        # a field named like a blob field, elsewhere than BLOB_FIELDS: compared whole
        '{"media": [{"id": "a", "x": {"blob": "https://h/x?s=1"}, "blob": "https://h/y?s=2"}]}',
        '{"media": [{"id": "a", "frames": [{"captions": [{"blob": "https://h/c?s=1"}]}]}]}',
        '{"media": [{"id": "a", "metadata": {"tags": {"blob": ["https://h/t?s=1"]}}}]}',
        '{"media": [{"id": "a", "blob": "https://h/y?s=2", "blob": "https://h/z?s=3"}]}',
        '{"media": [{"id": "a", "frames": [{"objects": [{"blob": 5}], "blob": null}]}]}',
        # "_" keys at any depth, spelt plainly or escaped; strings escaped in every way
        '{"media": [{"id": "a", "\\u005fscore": 1, "n": {"_k": [1, "\\u0022_x"]}}]}',
        '{"media": [{"id": "a", "_score": 0.5, "metadata": {"tags": {"_k": ["v"]}}}]}',
        '{"media": [{"id": "a", "t": "caf\\u00e9 \\ud83d\\ude00 ☃", "u": "x\\"_y", "v": "\\/"}]}',
        '{"media": [{"id": "a", "name": "\\u2028 \\u007f \\u001f \\t \\b \\f \\r \\n"}]}',
        # what is not strict JSON: the client's decoder decides
        '{"media": [{"id": "a", "s": "\\ud800", "n": NaN, "i": 1e400, "j": -Infinity}]}',
        '{"media": [{"id": "a", "name": "\\ud800"}, {"id": "b", "path": "https://h/p?v=2"}]}',
        # numbers as Python writes them, huge integers
        '{"media": [{"id": "a", "big": 123456789012345678901234567890, "f": 1e+16}]}',
        '{"media": [{"id": "a", "v": 1e-05, "w": -0.0, "x": 0.0001, "y": 2.5, "z": 0}]}',
        # ids: both generations, none, not a string, repeated; folders; Get Media bodies
        '{"media": [{"id": "7938B58D-D60A-43D8-953F-4F56B3CD8410", "blob": "blob://h/a?b"}, '
        '{"id": "7938b58dd60a43d8953f4f56b3cd8410", "v": 2}, {"id": 5}, {"name": "no id"}]}',
        '{"media": [{"id": "f", "type": "folder", "folderItemCount": 2}, {"id": "b", "new": 1}]}',
        '{"media": [{"id": "a"}], "media": [{"id": "b"}], "pagination": {"total": 1}}',
        '{"media": {"id": "m", "blob": "https://h/a.jpg?s=1", "frames": [{"blob": "x#y"}]}}',
        '{"id": "m", "frames": [{"thumbnailBlob": "https://h/t.jpg#f", "objects": "no"}]}',
        # repeated keys at the top of a record: the last value, at the first key's place
        '{"media": [{"id": "a", "name": "x", "type": "image", "name": "y"}]}',
    ],
)
def test_bodies_written_as_python_writes_numbers_give_fingerprint_of_each_record(text):
    body = text.encode()
    assert body_fingerprints(body) == _expected(body)


@pytest.mark.parametrize(
    ("text", "record_text"),
    [
        (
            '{"media": [{"id": "a", "v": 0.00001, "w": 1E-7, "x": 1.50}]}',
            b'{"id":"a","v":0.00001,"w":1E-7,"x":1.50}',
        ),
        (
            '{"media": [ {"id": "a", "n": -0, "f": [1e2, {"_k": 2}]} ]}',
            b'{"id":"a","n":-0,"f":[1e2,{}]}',
        ),
    ],
)
def test_numbers_written_otherwise_keep_their_spelling(text, record_text):
    """The fingerprint hashes the text as written (whitespace, "_" keys aside): such a
    media is rewritten once when it moves between a body and a decoded record."""
    body = text.encode()
    assert body_fingerprints(body) == {"a": text_fingerprint(record_text)}
    assert body_fingerprints(body) != _expected(body)


def test_stripping_in_place_is_used_only_where_the_skeleton_proves_it(monkeypatch):
    """A signed record is stripped where it stands (no rebuild) unless a ``"blob":"`` stands
    elsewhere than the blob fields, which the record's skeleton tells."""
    rebuilt: list[dict] = []
    record = bodyfingerprints._CANONICAL.record

    def spy(members):
        rebuilt.append(members)
        return record(members)

    monkeypatch.setattr(bodyfingerprints._CANONICAL, "record", spy)
    records = list(iter_synthetic(20))
    body = _BLOB.sub(rb'\1?sig=1"', _page(records))
    assert body_fingerprints(body) == {r["id"]: fingerprint(r) for r in records}
    assert rebuilt == []
    odd = _page([{**records[0], "x": {"blob": "https://h/x?s=1"}}])
    assert body_fingerprints(odd) == _expected(odd)
    assert len(rebuilt) == 1


_chars = st.sampled_from([*list('ab?#_"\\/:. é😀\u2028'), "https://h/p", "blob://x/"])
_text = st.lists(_chars, max_size=6).map("".join)
_number = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
_small = st.sampled_from([1e-5, 0.00002, -3e-7, 1e-9, 0.0001, 1e-10, 5e-324, 0.0, -0.0])
_leaf = st.none() | st.booleans() | _number | _small | _text
_json = st.recursive(
    _leaf,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_text, kids, max_size=3),
    max_leaves=10,
)
_point = st.fixed_dictionaries({}, optional={"x": _leaf, "y": _leaf})
_object = st.fixed_dictionaries(
    {}, optional={"blob": _text | _leaf, "label": _leaf, "polygon": st.lists(_point, max_size=3)}
)
_frame = st.fixed_dictionaries(
    {},
    optional={
        "blob": _text,
        "thumbnailBlob": _leaf,
        "objects": st.lists(_object, max_size=2) | _json,
        "captions": st.lists(st.dictionaries(_text, _json, max_size=2), max_size=2),
    },
)
_record = st.fixed_dictionaries(
    {"id": st.sampled_from(["m1", "m2", "ABC"])},
    optional={
        "blob": _text,
        "frames": st.none() | st.lists(_frame, max_size=2),
        "_score": _number,
        "type": st.sampled_from(["image", "folder"]),
        "metadata": st.fixed_dictionaries(
            {}, optional={"tags": st.dictionaries(_text, st.lists(_text, max_size=2) | _leaf)}
        ),
        "x": _json,
    },
)


@given(st.lists(_record, max_size=4), st.booleans())
def test_any_page_json_writes_gives_fingerprint_of_each_record(records, ascii_only):
    body = json.dumps({"media": records}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert body_fingerprints(body) == _expected(body)


def test_the_hostile_corpus_gives_fingerprint_of_each_record_once_written_as_python_does():
    from tests.tables.hostile_records import CASES

    checked = 0
    for case in CASES.values():
        try:
            value = loads(case.body)
        except ValueError:
            with pytest.raises(ValueError):
                body_fingerprints(case.body)
            continue
        body = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        try:
            want = _expected(body)
        except (ValueError, AttributeError):
            with pytest.raises(ValueError):
                body_fingerprints(body)
            continue
        assert body_fingerprints(body) == want, case.name
        checked += 1
    assert checked > 20


def test_the_sample_collection_as_the_local_api_serves_it(sample_api):
    headers = {"x-api-key": "k"}
    url = f"{sample_api.base_url}/dataset/{SAMPLE_COLLECTION}/media"
    page = requests.get(url, params={"limit": "100"}, headers=headers, timeout=30).content
    assert len(loads(page)["media"]) > 5
    assert body_fingerprints(page) == _expected(page)
    first = loads(page)["media"][0]["id"]
    one = requests.get(f"{sample_api.base_url}/media/{first}", headers=headers, timeout=30).content
    assert body_fingerprints(one) == _expected(one) == {first: body_fingerprints(page)[first]}


def test_rows_pick_items_and_bad_shapes_are_named():
    body = _page([{"id": "a"}, {"id": "f", "type": "folder"}, {"id": "c"}])
    assert list(body_fingerprints(body, [1, 2])) == ["f", "c"]  # rows are taken as given
    assert list(body_fingerprints(body)) == ["a", "c"]  # folders are left out
    with pytest.raises(ValueError, match=r"rows \[3\]"):
        body_fingerprints(body, [3])
    with pytest.raises(ValueError, match="item 0 is str"):
        select_records({"media": ["x"]}, None)
    with pytest.raises(ValueError, match="item 1 is NoneType"):
        body_fingerprints(b'{"media": [{"id": "a"}, null]}')
    with pytest.raises(ValueError, match="JSON list"):
        body_fingerprints(b"[1]")
    with pytest.raises(ValueError, match="Get Media body"):
        body_fingerprints(b'{"media": {"id": "a"}}', [1])
    with pytest.raises(json.JSONDecodeError):
        body_fingerprints(b'{"media": [')


def test_hydrated_rows_give_what_the_client_yields_for_light_items(local_api_factory):
    """On a light browse the client fetches each item's Get Media and adds the listed keys
    it lacks: the page's bytes plus those bodies give the fingerprints of its records."""
    api = local_api_factory(synthetic=12, light=True)
    with cvf.Client(api_key="k", base_url=api.base_url) as client:
        yielded = {
            r["id"]: fingerprint(r) for r in client.browse(api.collection_id, progress=False)
        }
    headers = {"x-api-key": "k"}
    url = f"{api.base_url}/dataset/{api.collection_id}/media"
    query = {"limit": "100", "recursive": "true"}
    page = requests.get(url, params=query, headers=headers, timeout=30).content
    items = loads(page)["media"]
    rows = [row for row, item in enumerate(items) if item.get("type") != "folder"]
    assert len(rows) == 12 and all(needs_hydration(items[row]) for row in rows)
    hydrated = {
        row: requests.get(
            f"{api.base_url}/media/{items[row]['id']}", headers=headers, timeout=30
        ).content
        for row in rows
    }
    assert body_fingerprints(page, hydrated=hydrated) == yielded
    assert body_fingerprints(page) != yielded  # the light items alone are other records
    with pytest.raises(ValueError, match="row 0 is a page"):
        body_fingerprints(page, hydrated={0: page})


def test_a_hydrated_record_keeps_its_own_values_and_gains_the_listed_keys_it_lacks():
    page = b'{"media": [{"id": "a", "name": "listed", "listedOnly": 1}, {"id": "b"}]}'
    full = b'{"media": {"id": "a", "name": "full", "frames": [{"blob": "https://h/f?s=1"}]}}'
    want = {"id": "a", "name": "full", "frames": [{"blob": "https://h/f"}], "listedOnly": 1}
    got = body_fingerprints(page, hydrated={0: full})
    assert got == {"a": fingerprint(want), "b": fingerprint({"id": "b"})}


def test_the_pool_gives_the_same_in_its_side_processes_and_in_a_thread():
    records = list(iter_synthetic(40))
    body = _BLOB.sub(rb'\1?sig=1"', _page(records))
    want = {r["id"]: fingerprint(r) for r in records}
    for processes in (True, False):
        with FingerprintPool(workers=1, processes=processes) as pool:
            assert pool.submit(body, what="page").result() == want

"""body_fingerprints: exactly fingerprint() of each record the client decodes from a body,
with the per-record checks made once per page only where the page's bytes prove them."""

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
from coreviz_frames.exports.bodyfingerprints import PageFacts, body_fingerprints, select_records
from coreviz_frames.exports.fingerprint import fingerprint
from coreviz_frames.exports.fingerprintpool import FingerprintPool
from coreviz_frames.exports.structfingerprints import StructFingerprints, record_shape
from coreviz_frames.local_api.synthetic import iter_synthetic

SAMPLE_COLLECTION = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"


def _expected(body: bytes) -> dict[str, str]:
    """What the exact path gives: the client's decoding, then fingerprint() per record."""
    value = loads(body)
    media = value["media"]
    records = (
        [m for m in media if m.get("type") != "folder"] if isinstance(media, list) else [media]
    )
    out: dict[str, str] = {}
    for record in records:
        if isinstance(record.get("id"), str):
            out.setdefault(normalize_id(record["id"]), fingerprint(record))
    return out


def _page(records: list, **extra) -> bytes:
    return orjson.dumps({"media": records, "pagination": {"offset": 0, "hasMore": False}, **extra})


def test_a_synthetic_page_is_fingerprinted_exactly_with_the_checks_made_once():
    records = list(iter_synthetic(120))
    body = _page(records)
    facts = PageFacts.of(body, plain=True)
    assert facts.exact_per_page and not facts.marks and not facts.underscores
    assert body_fingerprints(body) == {r["id"]: fingerprint(r) for r in records}


def test_signed_blob_urls_plain_or_escaped_lose_their_signature():
    records = list(iter_synthetic(30))
    blob = re.compile(rb'("(?:blob|thumbnailBlob)":"[a-z]+://[^"]*)"')
    body = blob.sub(rb'\1?X-Amz-Signature=abc&e=1#frag"', _page(records))
    assert body.count(b"X-Amz") > 30
    escaped = body.replace(b"?", b"\\u003f").replace(b"#", b"\\u0023")
    assert b"?" not in escaped and b"#" not in escaped
    assert PageFacts.of(escaped, plain=True).marks  # the escape is seen as a "?"
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
        '{"media": [{"id": "a", "v": 0.00001, "w": 1E-7, "x": -0.00002, "s": "e-0.0000"}]}',
        '{"media": [{"id": "a", "\\u005fscore": 1, "n": {"_k": [1, "\\u0022_x"]}}]}',
        '{"media": [{"id": "a", "s": "\\ud800", "n": NaN, "i": 1e400, "j": -Infinity}]}',
        '{"media": [{"id": "a", "big": 123456789012345678901234567890, "f": 1e16}]}',
        '{"media": [{"id": "a", "t": "caf\\u00e9 \\ud83d\\ude00 ☃", "u": "x\\"_y"}]}',
        '{"media": [{"id": "7938B58D-D60A-43D8-953F-4F56B3CD8410", "blob": "blob://h/a?b"}, '
        '{"id": "7938b58dd60a43d8953f4f56b3cd8410", "v": 2}, {"id": 5}, {"name": "no id"}]}',
        '{"media": {"id": "m", "blob": "https://h/a.jpg?s=1", "frames": [{"blob": "x#y"}]}}',
        '{"media": [{"id": "a", "frames": [{"thumbnailBlob": "https://h/t.jpg#f"}]}]}',
    ],
)
def test_hostile_bodies_give_the_fingerprints_of_the_exact_path(text):
    body = text.encode()
    assert body_fingerprints(body) == _expected(body)


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
_record = st.fixed_dictionaries(
    {"id": st.sampled_from(["m1", "m2", "ABC"])},
    optional={
        "blob": _text,
        "frames": st.lists(
            st.fixed_dictionaries(
                {}, optional={"blob": _text, "thumbnailBlob": _text, "objects": _json}
            ),
            max_size=2,
        ),
        "_score": _number,
        "type": st.sampled_from(["image", "folder"]),
        "x": _json,
    },
)


@given(st.lists(_record, max_size=4), st.booleans())
def test_any_page_gives_the_fingerprints_of_the_exact_path(records, ascii_only):
    body = json.dumps({"media": records}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert body_fingerprints(body) == _expected(body)


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
    want = {"id": "a", "name": "full", "listedOnly": 1, "frames": [{"blob": "https://h/f"}]}
    got = body_fingerprints(page, hydrated={0: full})
    assert got == {"a": fingerprint(want), "b": fingerprint({"id": "b"})}


# --- records decoded into typed structs (what the side processes do) ---------------------

STRUCTS = StructFingerprints(record_shape())


def _by_structs(body: bytes, rows=None) -> tuple[dict[str, str], int, int]:
    """body_fingerprints with the struct decoder, and how many records it decoded and
    refused (handed to the dict way) doing so."""
    decoded, refused = STRUCTS.decoded, STRUCTS.refused
    got = body_fingerprints(body, rows, structs=STRUCTS)
    return got, STRUCTS.decoded - decoded, STRUCTS.refused - refused


def test_structs_fingerprint_a_synthetic_page_exactly_without_the_dict_way():
    records = list(iter_synthetic(150))
    blob = re.compile(rb'("(?:blob|thumbnailBlob)":"[a-z]+://[^"]*)"')
    signed = blob.sub(rb'\1?X-Amz-Signature=abc&e=1#frag"', _page(records))
    escaped = signed.replace(b"?", b"\\u003f").replace(b"#", b"\\u0023")  # no "?" left
    assert b"?" not in escaped and b"#" not in escaped and b"\\u003f" in escaped
    for body in (_page(records), signed, escaped):
        got, decoded, refused = _by_structs(body)
        assert got == _expected(body) == {r["id"]: fingerprint(r) for r in records}
        assert (decoded, refused) == (150, 0)  # every record took the struct way


@pytest.mark.parametrize(
    "text",
    [
        # numbers json.dumps and msgspec write differently: 1e16 and above, below 1e-4
        '{"media": [{"id": "a", "duration": 1e16, "width": 3}]}',
        '{"media": [{"id": "a", "duration": 12345678901234567.0}]}',
        '{"media": [{"id": "a", "frames": [{"objects": [{"polygon": [{"x": 1e-05}]}]}]}]}',
        '{"media": [{"id": "a", "duration": -0.0, "width": -0, "height": 1E2}]}',
        '{"media": [{"id": "a", "duration": 0.0001, "width": 123456789012345678901234567890}]}',
        # strings: escapes, non-BMP, a lone surrogate, a query string outside blob fields
        '{"media": [{"id": "a", "name": "caf\\u00e9 \\ud83d\\ude00 \\u2028 \\u007f \\u001f \\t"}]}',
        '{"media": [{"id": "a", "name": "\\ud800"}, {"id": "b", "path": "https://h/p?v=2"}]}',
        # "_" keys: a declared one, an escaped one, a tag key; tags holding other values
        '{"media": [{"id": "a", "_score": 0.5, "metadata": {"tags": {"_k": ["v"]}}}]}',
        '{"media": [{"id": "a", "\\u005fscore": 2, "metadata": {"tags": {"k": "v", "j": []}}}]}',
        '{"media": [{"id": "a", "metadata": {"tags": {"k": [{"x": 1}]}, "moderation": null}}]}',
        # repeated keys (the last wins, as in the client's decoder), explicit nulls, absences
        '{"media": [{"id": "a", "name": "x", "name": "y", "frames": null, "dataset": {}}]}',
        '{"media": [{"id": "a", "frames": [{"objects": [{"polygon": [{"y": 1, "x": 2}]}]}]}]}',
        # unknown fields, folders, ids that are no strings, repeated ids, items that are no
        # objects, a top-level key repeated
        '{"media": [{"id": "f", "type": "folder", "folderItemCount": 2}, {"id": "b", "new": 1}]}',
        '{"media": [{"id": 5}, {"name": "no id"}, {"id": "c"}, {"id": "c", "name": "2nd"}]}',
        '{"media": [{"id": "a"}, null]}',
        '{"media": [{"id": "a"}], "media": [{"id": "b"}], "pagination": {"total": 1}}',
        '{"media": [{"id": "7938B58D-D60A-43D8-953F-4F56B3CD8410", "blob": "blob://h/a?b"}]}',
    ],
)
def test_structs_give_the_exact_path_s_fingerprints_or_its_error(text):
    body = text.encode()
    try:
        want = _expected(body)
    except (ValueError, AttributeError) as exc:  # the dict way's error for a bad item
        with pytest.raises(type(exc) if isinstance(exc, ValueError) else ValueError):
            body_fingerprints(body, structs=STRUCTS)
        return
    assert _by_structs(body)[0] == want


def test_structs_take_rows_as_given_and_leave_bad_rows_to_the_dict_way():
    body = _page([{"id": "a"}, {"id": "f", "type": "folder"}, {"id": "c"}])
    assert _by_structs(body, [1, 2])[0] == body_fingerprints(body, [1, 2])
    assert list(_by_structs(body)[0]) == ["a", "c"]
    with pytest.raises(ValueError, match=r"rows \[3\]"):
        body_fingerprints(body, [3], structs=STRUCTS)


def test_the_hostile_corpus_gives_the_same_fingerprints_both_ways():
    from tests.tables.hostile_records import CASES

    decoded = 0
    for case in CASES.values():
        try:
            want = body_fingerprints(case.body)
        except ValueError:
            with pytest.raises(ValueError):
                body_fingerprints(case.body, structs=STRUCTS)
            continue
        got, took, _ = _by_structs(case.body)
        assert got == want, case.name
        decoded += took
    assert decoded > 100  # most records of the corpus took the struct way


_shape_leaf = st.none() | st.booleans() | _number | _small | _text
_point = st.fixed_dictionaries({}, optional={"x": _shape_leaf, "y": _shape_leaf})
_shaped_record = st.fixed_dictionaries(
    {"id": st.sampled_from(["m1", "m2", "ABC"])},
    optional={
        "blob": _text,
        "name": _shape_leaf,
        "width": _shape_leaf,
        "duration": _shape_leaf,
        "_score": _number,
        "type": st.sampled_from(["image", "folder"]),
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "tags": st.dictionaries(_text, st.lists(_text, max_size=2) | _shape_leaf),
                "moderation": st.none() | st.fixed_dictionaries({"categories": st.lists(_text)}),
            },
        ),
        "frames": st.none()
        | st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "blob": _text,
                    "thumbnailBlob": _shape_leaf,
                    "timestamp": _shape_leaf,
                    "objects": st.lists(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "blob": _text,
                                "label": _shape_leaf,
                                "polygon": st.lists(_point, max_size=3),
                            },
                        ),
                        max_size=2,
                    ),
                },
            ),
            max_size=2,
        ),
    },
)


@given(st.lists(_shaped_record, max_size=4), st.booleans())
def test_any_record_of_the_declared_shape_gets_its_exact_fingerprint_from_structs(
    records, ascii_only
):
    body = json.dumps({"media": records}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _by_structs(body)[0] == _expected(body)


def test_the_pool_computes_with_structs_in_its_side_processes_and_in_a_thread():
    records = list(iter_synthetic(40))
    body = _page(records)
    want = {r["id"]: fingerprint(r) for r in records}
    for processes in (True, False):
        with FingerprintPool(workers=1, processes=processes) as pool:
            assert pool.submit(body, what="page").result() == want
            if not processes:
                assert pool._structs is not None and pool._structs.decoded == 40

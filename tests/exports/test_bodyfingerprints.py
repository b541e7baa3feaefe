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

"""fingerprint: stable over key order and URL signatures, sensitive to any content change."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings, strategies as st

from coreviz_frames.fingerprint import canonical, fingerprint, strip_signature
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

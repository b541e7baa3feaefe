"""Issue 20, scenarios 4-7: a sync deletes only after a provably whole listing, never takes a
Get Media answer for another media, treats two spellings of an id as one media, and sees
every edit of a caption or tag that holds a URL.

A small scripted server (``Listing``) serves hostile pages and Get Media answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import pytest
from helpers import ScriptedServer, fast_client

from coreviz_frames import export as export_module
from coreviz_frames.local_api.store import light_item
from coreviz_frames.parquet import export_parquet, read_parquet
from coreviz_frames.syncing import sync
from coreviz_frames.synthetic import synthetic_media

COLLECTION = "col1"
PAGES = f"/api/dataset/{COLLECTION}/media"


class Listing:
    """A collection served page by page, with knobs for the ways a listing can lie.

    ``records`` are listed in order; ``total`` overrides the announced total (None: the
    true count); ``omit_has_more`` leaves ``hasMore`` out; ``max_limit`` caps the page size
    (the server answers shorter pages than asked); ``light`` lists items without captions
    and objects; ``answers`` maps a requested id to the Get Media record served for it.
    """

    def __init__(self, records: list[dict]) -> None:
        self.records = [json.loads(json.dumps(r)) for r in records]
        self.total: int | None = None
        self.omit_has_more = False
        self.max_limit: int | None = None
        self.light = False
        self.answers: dict[str, dict] = {}
        self.server = ScriptedServer(self.route)

    def whole(self) -> None:
        """Serve honest pages again."""
        self.total, self.omit_has_more, self.max_limit = None, False, None

    def route(self, path: str, query: dict):
        if path == PAGES:
            return 200, {}, self.page(int(query.get("offset", 0)), int(query.get("limit", 10)))
        if path.startswith("/api/media/"):
            wanted = path.rsplit("/", 1)[1]
            if wanted in self.answers:
                return 200, {}, {"media": self.answers[wanted]}
            for record in self.records:
                if record["id"] == wanted:
                    return 200, {}, {"media": record}
        return 404, {}, {"error": "Not found"}

    def page(self, offset: int, limit: int) -> dict:
        limit = min(limit, self.max_limit or limit)
        items = self.records[offset : offset + limit]
        if self.light:
            items = [light_item(item) for item in items]
        pagination = {"total": len(self.records) if self.total is None else self.total}
        pagination.update(limit=limit, offset=offset)
        if not self.omit_has_more:
            pagination["hasMore"] = offset + len(items) < len(self.records)
        return {"media": items, "pagination": pagination}


@pytest.fixture
def listing():
    made: list[Listing] = []

    def make(records: list[dict]) -> Listing:
        made.append(Listing(records))
        return made[-1]

    yield make
    for one in made:
        one.server.close()


def _sync(served: Listing, out, **kwargs):
    with fast_client(served.server.base_url, retries=0, max_workers=4) as client:
        return sync(client, COLLECTION, out, progress=False, **kwargs)


def _media_ids(out) -> list[str]:
    return sorted(read_parquet(out, grains=["media"]).media["media_id"])


def _with_caption(record: dict, text: str) -> dict:
    out = json.loads(json.dumps(record))
    out["frames"][0]["captions"][0]["text"] = text
    out["metadata"]["tags"]["source"] = [text]
    return out


def _captions(out) -> set[str]:
    return set(read_parquet(out, grains=["captions"]).captions["text"])


# --------------------------------------------------------------------------- scenario 7


@pytest.mark.parametrize("light", [False, True])
def test_an_edit_to_a_url_in_a_caption_is_synced(listing, tmp_path, light):
    """Scenario 7: a caption (and a tag value) holding a URL is compared whole, so an edit to
    its query string is synced, as listed and with hydrate=True."""
    records = [_with_caption(synthetic_media(i), f"https://h.example/p?id={i}") for i in range(6)]
    served = listing(records)
    served.light = light
    out = tmp_path / "out"
    assert _sync(served, out).added == 6
    served.records[2] = _with_caption(served.records[2], "https://h.example/p?id=edited")
    report = _sync(served, out, hydrate=True if light else "auto")
    assert (report.updated, report.unchanged) == (1, 5), str(report)
    assert "https://h.example/p?id=edited" in _captions(out)
    assert "https://h.example/p?id=2" not in _captions(out)


def _old_strip(value: str) -> str:
    if not value.startswith(("http://", "https://", "blob://")) or (
        "?" not in value and "#" not in value
    ):
        return value
    parts = urlsplit(value)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _old_canonical(value):
    if isinstance(value, Mapping):
        return {k: _old_canonical(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_old_canonical(v) for v in value]
    return _old_strip(value) if isinstance(value, str) else value


def old_fingerprint(record) -> str:
    """The definition before the fix: every URL-looking string lost its query string."""
    text = json.dumps(_old_canonical(record), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _signed(record: dict) -> dict:
    """``record`` with a signature on every blob URL (not on its name)."""
    text = re.sub(r'("blob://[^"]*\.jpg)"', r'\1?X-Amz-Signature=ab12"', json.dumps(record))
    return json.loads(text)


def test_an_export_fingerprinted_the_old_way_rewrites_only_media_with_urls_elsewhere(
    listing, tmp_path, monkeypatch
):
    """Fingerprints stored before the change stay valid: a sync after the upgrade rewrites
    only the media whose records hold a URL with a query outside the blob fields."""
    records = [_signed(synthetic_media(i)) for i in range(8)]
    records[5] = _with_caption(records[5], "https://h.example/p?id=5")
    served = listing(records)
    out = tmp_path / "out"
    with monkeypatch.context() as patch:  # the export as the previous release wrote it
        patch.setattr(export_module, "fingerprint", old_fingerprint)
        with fast_client(served.server.base_url) as client:
            export_parquet(client.browse(COLLECTION, progress=False), out, progress=False)
    report = _sync(served, out)
    assert (report.updated, report.unchanged, report.added) == (1, 7, 0), str(report)
    assert report.parts_rewritten == 1
    again = _sync(served, out)
    assert not again.changed and again.unchanged == 8


def test_signed_blob_urls_that_change_are_no_edit(listing, tmp_path):
    records = [_signed(synthetic_media(i)) for i in range(4)]
    served = listing(records)
    out = tmp_path / "out"
    _sync(served, out)
    served.records = [
        json.loads(json.dumps(r).replace("X-Amz-Signature=ab12", "X-Amz-Signature=cd34"))
        for r in served.records
    ]
    report = _sync(served, out)
    assert not report.changed and report.unchanged == 4

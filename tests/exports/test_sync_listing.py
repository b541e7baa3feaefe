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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import KEY, ScriptedServer, fast_client

from coreviz_frames.cli.main import main
from coreviz_frames.errors import (
    InvalidResponseError,
    MediaIdMismatchError,
    PaginationWarning,
    SkippedRecordWarning,
)
from coreviz_frames.exports import writer as export_module
from coreviz_frames.exports.fingerprint import legacy_fingerprint
from coreviz_frames.exports.manifest import read_manifest
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.syncing import sync
from coreviz_frames.exports.writer import export_parquet
from coreviz_frames.local_api.store import light_item
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.tables.media_tables import to_tables

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
            # as plain records (a generator hides the page chunks): the previous release's
            # path, fingerprinting each record in this process with the patched function
            records_seen = (r for r in client.browse(COLLECTION, progress=False))
            export_parquet(records_seen, out, progress=False)
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


# --------------------------------------------------------------------------- scenario 4


def _records(n: int) -> list[dict]:
    return [synthetic_media(i) for i in range(n)]


def _last_sync(out) -> dict:
    return read_manifest(out)["syncs"][-1]


@pytest.mark.parametrize("table_format", ["parquet", "delta"])
def test_a_listing_that_ends_before_its_announced_total_deletes_nothing(
    listing, tmp_path, table_format
):
    """Scenario 4: hasMore false after 150 of an announced 200 deletes none of the 50."""
    served = listing(_records(200))
    out = tmp_path / "out"
    assert _sync(served, out, page_size=50, table_format=table_format).added == 200
    served.records, served.total = served.records[:150], 200
    with pytest.warns(PaginationWarning, match="total=200 but 150"):
        report = _sync(served, out, page_size=50)
    assert report.complete and report.deleted == 0 and report.deletes_skipped == 50
    assert "150 distinct items of the 200" in report.unproven and not report.ok
    assert "not provably whole" in report.deletes_skipped_reason
    assert "NOT WHOLE" in str(report) and len(_media_ids(out)) == 200
    note = _last_sync(out)
    assert note["deletes_skipped"] == 50 and "200" in note["unproven"]
    assert "not provably whole" in note["deletes_skipped_reason"]
    served.whole()  # the next whole listing deletes
    report = _sync(served, out, page_size=50)
    assert report.ok and report.deleted == 50 and len(_media_ids(out)) == 150
    assert "unproven" not in _last_sync(out)


def test_a_listing_without_has_more_and_short_pages_deletes_nothing(listing, tmp_path):
    """Scenario 4: pages shorter than asked and no hasMore: read on, but delete nothing."""
    served = listing(_records(40))
    out = tmp_path / "out"
    _sync(served, out)
    gone = served.records.pop(7)["id"]
    served.omit_has_more, served.max_limit = True, 15  # 15 per page, page_size 100 asked
    report = _sync(served, out)
    assert report.complete and report.unchanged == 39 and report.deleted == 0
    assert report.deletes_skipped == 1 and "hasMore: false" in report.unproven
    assert gone in _media_ids(out)
    served.whole()
    report = _sync(served, out)
    assert report.ok and report.deleted == 1 and gone not in _media_ids(out)


@pytest.mark.parametrize("bad_id", [None, 12345, "../x", ""])
def test_items_without_a_valid_id_make_the_listing_delete_nothing(listing, tmp_path, bad_id):
    """Scenario 4: an item with a null, numeric or unsafe id is a failure, deletes nothing,
    and is not reported as a media that kept its rows."""
    served = listing(_records(20))
    out = tmp_path / "out"
    _sync(served, out)
    hidden = served.records[3]["id"]
    served.records[3] = {**served.records[3], "id": bad_id}
    report = _sync(served, out)
    assert report.deleted == 0 and report.deletes_skipped == 1 and not report.ok
    assert hidden in _media_ids(out) and len(_media_ids(out)) == 20
    (failure,) = report.failed
    assert failure["id"] is None and failure["error_type"] == "InvalidIdError"
    assert repr(str(bad_id)) in failure["reason"]
    text = str(report)
    assert "1 listed items had no valid id, so nothing was deleted" in text
    assert "kept" not in text.replace("are kept", "")
    assert "1 listed items had a missing or invalid id" in _last_sync(out)["unproven"]
    assert read_manifest(out)["failed"] == report.failed
    served.records[3]["id"] = hidden
    served.records.pop(5)
    report = _sync(served, out)
    assert report.ok and report.deleted == 1 and len(_media_ids(out)) == 19


# --------------------------------------------------------------------------- scenario 5


def test_a_get_media_answer_for_another_media_is_a_failure_of_the_id_asked_for(listing, tmp_path):
    """Scenario 5: get_media raises; iter_media, browse hydration, to_tables, export_parquet
    and sync list the id asked for as failed and never use (nor duplicate) the answer."""
    records = _records(6)
    served = listing(records)
    served.light = True
    asked, other = records[1]["id"], records[2]["id"]
    served.answers[asked] = served.records[2]
    want = sorted(r["id"] for r in records if r["id"] != asked)
    with fast_client(served.server.base_url, retries=0) as client:
        with pytest.raises(MediaIdMismatchError) as info:
            client.get_media(asked)
        assert isinstance(info.value, InvalidResponseError)
        assert (info.value.media_id, info.value.answered_id) == (asked, other)
        it = client.iter_media([asked, records[3]["id"]], on_error="skip", progress=False)
        assert [r["id"] for r in it] == [records[3]["id"]]
        assert it.report.failed_ids == [asked]
        assert it.report.failed[0].error_type == "MediaIdMismatchError"
        walk = client.browse(COLLECTION, progress=False)
        with pytest.warns(SkippedRecordWarning, match=asked):
            tables = to_tables(walk)
        assert sorted(tables.media["media_id"]) == want and walk.report.failed_ids == [asked]
        with pytest.warns(SkippedRecordWarning):
            exported = export_parquet(
                client.browse(COLLECTION, progress=False), tmp_path / "export", progress=False
            )
    assert [f["id"] for f in exported.failed] == [asked] and not exported.ok
    assert _media_ids(tmp_path / "export") == want
    # sync: a new media whose Get Media answers with another media's record
    del served.answers[asked]
    out = tmp_path / "out"
    assert _sync(served, out).added == 6
    served.records.append(synthetic_media(6))
    new = served.records[-1]["id"]
    served.answers[new] = served.records[2]
    report = _sync(served, out)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 6), str(report)
    assert [f["id"] for f in report.failed] == [new] and not report.ok and report.changed
    assert read_manifest(out)["failed"][0]["error_type"] == "MediaIdMismatchError"
    assert _media_ids(out) == sorted(r["id"] for r in records)
    del served.answers[new]
    report = _sync(served, out)
    assert report.ok and report.added == 1 and read_manifest(out)["failed"] == []


# --------------------------------------------------------------------------- scenario 6


def _hyphenated(plain: str) -> str:
    return f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}".upper()


@pytest.mark.parametrize("light", [False, True])
def test_one_media_under_two_spellings_is_one_media_everywhere(listing, tmp_path, light):
    """Scenario 6: plain hex and hyphenated upper case are one media for browse,
    iter_media, export_parquet and sync."""
    records = _records(5)
    plain = records[2]["id"]
    spelled = _hyphenated(plain)
    twin = {**json.loads(json.dumps(records[2])), "id": spelled}
    served = listing([*records[:4], twin, *records[4:]])
    served.light = light
    with fast_client(served.server.base_url, retries=0) as client:
        browsed = [r["id"] for r in client.browse(COLLECTION, progress=False)]
        assert browsed == [r["id"] for r in records]
        assert [r["id"] for r in client.iter_media([plain, spelled], progress=False)] == [plain]
        export_parquet(client.browse(COLLECTION, progress=False), tmp_path / "e", progress=False)
    out = tmp_path / "out"
    report = _sync(served, out)
    assert report.added == 5 and report.ok, str(report)
    for folder in (out, tmp_path / "e"):
        tables = read_parquet(folder)
        assert sorted(tables.media["media_id"]) == sorted(r["id"] for r in records)
        assert len(tables.frames) == sum(len(r["frames"]) for r in records)
    again = _sync(served, out)
    assert not again.changed and again.unchanged == 5 and again.ok


def test_the_cli_exits_1_on_a_listing_that_is_not_whole_and_info_says_why(listing, tmp_path):
    served = listing(_records(12))
    out = tmp_path / "out"
    env = {"COREVIZ_API_KEY": KEY, "COREVIZ_BASE_URL": served.server.base_url}
    args = ["sync", "--collection", COLLECTION, "--out", str(out), "--no-progress"]
    assert CliRunner().invoke(main, args, env=env).exit_code == 0
    served.omit_has_more = True  # nothing is missing, but nothing proves it
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1, result.output
    assert "NOT WHOLE" in result.output and "hasMore: false" in result.output
    info = CliRunner().invoke(main, ["info", str(out)])
    assert "NOT WHOLE listing: its last page did not say hasMore: false" in info.output


def test_an_honest_listing_is_whole_and_a_part_of_one_is_not(sample_api, local_api_factory):
    """Folder rows count toward the total as they do in the API: the sample (folders and
    all), a synthetic collection and a server capping the page size all list whole."""
    capped = local_api_factory(synthetic=30, max_page_size=7)
    for api in (sample_api, local_api_factory(synthetic=30), capped):
        with fast_client(api.base_url) as client:
            walk = client.browse(api.collection_id, page_size=4, hydrate=False, progress=False)
            pages = client.iter_pages(api.collection_id, page_size=4, progress=False)
            assert list(walk) and list(pages)
            assert walk.report.whole and pages.report.whole, walk.report.unproven
            part = client.browse(api.collection_id, max_items=2, progress=False)
            rng = client.iter_range(api.collection_id, 0, 3)
            assert len(list(part)) == 2 and len(list(rng)) <= 3
        assert part.report.complete and not part.report.whole
        assert "max_items" in part.report.unproven and "offset range" in rng.report.unproven


# --------------------------------------------------------------------------- v2 fingerprints


def _stored_fingerprints(out) -> dict[str, tuple[str | None, str | None]]:
    """``{media_id: (fingerprint, listing_fingerprint)}`` of the current snapshot."""
    found = {}
    for part in read_manifest(out)["parts"]:
        table = pq.read_table(out / part["index"]).to_pylist()
        found.update({r["media_id"]: (r["fingerprint"], r["listing_fingerprint"]) for r in table})
    return found


def _as_the_previous_release_stored(out, records: list[dict]) -> None:
    """Rewrite the export's fingerprint files with what the release before the ``v2:``
    definition stored: ``legacy_fingerprint`` of each record (pinned to that release's own
    values in test_fingerprint.py), for the content and, where set, the listing."""
    legacy = {r["id"]: legacy_fingerprint(r) for r in records}
    for part in read_manifest(out)["parts"]:
        path = out / part["index"]
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            row["fingerprint"] = legacy[row["media_id"]]
            if row["listing_fingerprint"] is not None:
                row["listing_fingerprint"] = legacy_fingerprint(light_item(_record(records, row)))
        pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def _record(records: list[dict], row: dict) -> dict:
    return next(r for r in records if r["id"] == row["media_id"])


@pytest.mark.parametrize("light", [False, True])
def test_an_export_of_the_previous_definition_is_synced_without_rewriting_its_media(
    listing, tmp_path, light
):
    """The first sync after the upgrade compares each media by the definition its stored
    fingerprint was written with: nothing is rewritten for the change of definition, the
    fingerprint files get ``v2:`` fingerprints, and the next sync compares by those. A
    light listing is compared by its listing fingerprint (no Get Media); the content
    fingerprint stays the old one until a Get Media gives the new one."""
    served = listing([synthetic_media(i) for i in range(12)])
    served.light = light
    out = tmp_path / "out"
    _sync(served, out, table_format="parquet")  # its fingerprints are files to rewrite
    if light:
        _sync(served, out)  # stores the listing fingerprints of the light items
        assert all(listed is not None for _, listed in _stored_fingerprints(out).values())
    _as_the_previous_release_stored(out, served.records)
    stored = _stored_fingerprints(out)
    assert len(stored) == 12 and not any(fp.startswith("v2:") for fp, _ in stored.values())
    data = {p: p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
    report = _sync(served, out)
    assert (report.updated, report.unchanged, report.added) == (0, 12, 0), str(report)
    assert report.parts_written == 0 and report.fetched == 0
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.parquet"))} == data  # rows kept
    stored = _stored_fingerprints(out)
    assert len(stored) == 12
    if light:
        assert all(lf.startswith("v2:") and not fp.startswith("v2:") for fp, lf in stored.values())
    else:
        assert all(fp.startswith("v2:") for fp, _ in stored.values())
    again = _sync(served, out)
    assert not again.changed and again.unchanged == 12 and again.fetched == 0


def test_an_edit_is_still_seen_by_the_first_sync_after_the_upgrade(listing, tmp_path):
    served = listing([synthetic_media(i) for i in range(6)])
    out = tmp_path / "out"
    _sync(served, out, table_format="parquet")
    _as_the_previous_release_stored(out, served.records)
    assert not any(fp.startswith("v2:") for fp, _ in _stored_fingerprints(out).values())
    served.records[4] = _with_caption(served.records[4], "an edit made meanwhile")
    report = _sync(served, out)
    assert (report.updated, report.unchanged) == (1, 5), str(report)
    captions = read_parquet(out, grains=["captions"]).captions
    assert "an edit made meanwhile" in set(captions["text"])


def _delta_fingerprints(out) -> list[str]:
    from deltalake import DeltaTable

    return DeltaTable(str(out / "_coreviz_index")).to_pyarrow_table()["fingerprint"].to_pylist()


def test_a_delta_export_of_the_previous_definition_is_synced_without_rewriting(
    listing, tmp_path, monkeypatch
):
    """The same for a Delta export (what a sync makes of a new directory): the first sync
    after the upgrade rewrites no media and commits the ``v2:`` fingerprints."""
    pytest.importorskip("deltalake")
    from coreviz_frames.exports import syncing

    served = listing([synthetic_media(i) for i in range(8)])
    out = tmp_path / "out"
    with monkeypatch.context() as patch:  # the export as the previous release wrote it
        patch.setattr(syncing, "fingerprint", legacy_fingerprint)
        first = _sync(served, out)
    assert first.added == 8 and read_manifest(out)["table_format"] == "delta"
    before = _delta_fingerprints(out)
    assert len(before) == 8 and not any(fp.startswith("v2:") for fp in before)
    report = _sync(served, out)
    assert (report.updated, report.unchanged, report.added) == (0, 8, 0), str(report)
    assert report.parts_written == 0
    assert all(fp.startswith("v2:") for fp in _delta_fingerprints(out))
    assert sorted(_media_ids(out)) == sorted(r["id"] for r in served.records)
    again = _sync(served, out)
    assert not again.changed and again.unchanged == 8

"""The local API's collection changes between runs: adds, edits and deletes, served at once."""

from __future__ import annotations

import random

import pytest
import requests

from coreviz_frames.local_api import LocalAPI, LocalAPIProcess
from coreviz_frames.local_api.mutations import (
    EDIT_KINDS,
    MutableCollection,
    edit_record,
    random_changes,
)
from coreviz_frames.local_api.options import SAMPLE_DATA_DIR
from coreviz_frames.local_api.store import FileCollection, SyntheticCollection
from coreviz_frames.local_api.synthetic import synthetic_media


def _listed(api: LocalAPI) -> list[str]:
    url = f"{api.base_url}/dataset/{api.collection_id}/media"
    page = requests.get(url, params={"limit": 1000, "recursive": "true"}, timeout=10).json()
    return [m["id"] for m in page["media"] if m.get("type") != "folder"]


def test_mutate_adds_edits_and_deletes_what_browse_and_get_media_serve():
    with LocalAPI(synthetic=30) as api:
        before = set(_listed(api))
        served = {m: _get(api, m).json()["media"] for m in before}
        changes = api.mutate(seed=4, adds=3, edits=len(EDIT_KINDS), deletes=2)
        after = set(_listed(api))
        assert after == (before - set(changes.deleted)) | set(changes.added)
        for media_id in changes.edited:
            assert _get(api, media_id).json()["media"] != served[media_id]
        for media_id in before - set(changes.edited) - set(changes.deleted):
            assert _get(api, media_id).json()["media"] == served[media_id]
        for media_id in changes.deleted:
            assert _get(api, media_id).status_code == 404
        for media_id in changes.added:
            assert _get(api, media_id).status_code == 200


def _get(api: LocalAPI, media_id: str) -> requests.Response:
    return requests.get(f"{api.base_url}/media/{media_id}", timeout=10)


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_every_edit_kind_changes_the_record(kind):
    record = synthetic_media(9)  # a video: several frames
    edited = edit_record(record, random.Random(0), kind)
    assert edited != record and edited["id"] == record["id"]
    touched = edited["updatedAt"] != record["updatedAt"]
    assert touched == (kind in ("tag", "rename"))


def test_the_sample_collection_keeps_its_folders():
    collection = MutableCollection(FileCollection(SAMPLE_DATA_DIR))
    folders = [i for i in range(len(collection)) if collection.entry(i).type == "folder"]
    changes = random_changes(collection, seed=1, adds=2, edits=2, deletes=len(collection))
    assert len(changes.deleted) == 15  # every media, never a folder
    assert [i for i in range(len(collection)) if collection.entry(i).type == "folder"] == folders


def test_newest_picks_among_the_last_rows():
    collection = MutableCollection(SyntheticCollection(50))
    last = set(collection.media_ids()[-5:])
    changes = random_changes(collection, seed=2, edits=3, deletes=2, newest=5)
    assert set(changes.edited) | set(changes.deleted) <= last


def test_the_control_endpoint_mutates_a_child_process():
    with LocalAPIProcess(synthetic=20) as server:
        changes = server.mutate(seed=1, adds=1, deletes=1)
        assert len(changes["added"]) == 1 and len(changes["deleted"]) == 1
        url = f"{server.base_url}/media/{changes['deleted'][0]}"
        assert requests.get(url, timeout=10).status_code == 404

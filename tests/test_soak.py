"""Fault soak: a collection exported through ~30% random faults, resumed until complete.

The local API answers about 30% of its API requests with a 429 (fractional
``Retry-After``), a 500, a 503 or a dropped connection (``fault_rate``). The client gets a
small retry budget, so some fetches fail for good in every run. Each path (``--ids`` and
browse) is exported and then resumed until nothing is missing: at the end every media is
in the export exactly once, no row of any grain is duplicated, and every run that did not
stop on a failed page made progress (exported media, or failures retried away).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import coreviz_frames as cvf
from coreviz_frames.exports.manifest import read_manifest
from coreviz_frames.http import transport as cvhttp

N_MEDIA = 2_000
MAX_RUNS = 12
KEY = "soak-key"


def _client(api: Any) -> cvf.Client:
    # two retries: a request fails for good about 0.3**3 = 2.7% of the time
    session = cvhttp.build_session(retries=2, backoff_factor=0.01, backoff_max=0.05)
    return cvf.Client(api_key=KEY, base_url=api.base_url, session=session, retries=2)


def _state(path: Path) -> tuple[int, int]:
    """(media exported, failures listed) according to the manifest."""
    manifest = read_manifest(path)
    return int(manifest.get("media_exported", 0)), len(manifest.get("failed", []))


def _check_export(path: Path, expected_ids: set[str]) -> None:
    tables = cvf.read_parquet(path)
    media_ids = tables.media["media_id"].tolist()
    assert len(media_ids) == len(set(media_ids)), "a media exported twice"
    assert set(media_ids) == expected_ids
    keys_of = {"frames": "frame_id", "captions": "caption_id", "objects": "object_id"}
    for grain, key in keys_of.items():
        keys = getattr(tables, grain)[key]
        assert keys.is_unique, f"duplicated {grain} rows"
    frames_per_media = tables.frames.groupby("media_id").size()
    declared = tables.media.set_index("media_id")["frame_count"].astype("int64")
    assert (frames_per_media.reindex(declared.index, fill_value=0) == declared).all()
    manifest = read_manifest(path)
    assert manifest["status"] == "complete" and manifest["failed"] == []


def _soak(path: Path, export_once) -> list[tuple[int, int, str | None]]:
    """Export, then resume until complete; the (exported, failed, error) after each run."""
    history: list[tuple[int, int, str | None]] = []
    for run in range(MAX_RUNS):
        error = None
        try:
            report = export_once(resume=run > 0)
        except cvf.CorevizError as exc:  # a page that failed for good: fatal to this walk
            error = type(exc).__name__
        else:
            if report.ok:
                history.append((*_state(path), None))
                return history
            for item in report.failed:  # every failure says why, with its status if HTTP
                assert item["reason"] and (item["status"] is not None or item["error_type"])
        history.append((*_state(path), error))
        if len(history) > 1 and error is None:
            (before_done, before_failed, _), (done, failed, _) = history[-2], history[-1]
            assert done > before_done or failed < before_failed, f"run {run} made no progress"
    pytest.fail(f"not complete after {MAX_RUNS} runs: {history}")


@pytest.fixture(scope="module")
def faulty_api():
    from coreviz_frames.local_api import LocalAPI

    with LocalAPI(synthetic=N_MEDIA, light=True, fault_rate=0.3, fault_seed=11, api_key=KEY) as api:
        yield api


@pytest.mark.slow
def test_ids_export_survives_faults_and_resumes_to_complete(faulty_api, tmp_path):
    ids = [faulty_api.collection.media_id(i) for i in range(N_MEDIA)]
    out = tmp_path / "ids"

    def export_once(resume: bool):
        with _client(faulty_api) as client:
            records = client.iter_media(ids, on_error="skip", progress=False)
            return cvf.export_parquet(records, out, resume=resume, batch_size=250, progress=False)

    history = _soak(out, export_once)
    assert len(history) >= 2, "the faults never made a fetch fail: the soak proves nothing"
    _check_export(out, set(ids))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::coreviz_frames.errors.SkippedRecordWarning")
def test_browse_export_survives_faults_and_resumes_to_complete(faulty_api, tmp_path):
    ids = {faulty_api.collection.media_id(i) for i in range(N_MEDIA)}
    out = tmp_path / "browse"
    faulty_api.reset_stats()

    def export_once(resume: bool):
        with _client(faulty_api) as client:
            records = client.browse(faulty_api.collection_id, page_size=200, progress=False)
            return cvf.export_parquet(records, out, resume=resume, batch_size=250, progress=False)

    history = _soak(out, export_once)
    assert len(history) >= 2, "the faults never made a fetch fail: the soak proves nothing"
    _check_export(out, ids)
    # resumed walks hydrate only what is not exported yet: far fewer Get Media than runs x N
    media_requests = sum(
        n for path, n in faulty_api.stats.paths.items() if path.startswith("/api/media/")
    )
    assert media_requests < 2 * N_MEDIA

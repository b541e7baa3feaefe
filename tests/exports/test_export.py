"""export_parquet: streaming parts, manifest, refusal, resume after a crash, failures, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

import coreviz_frames as cvf
import coreviz_frames.exports.reader as parquet_mod
from coreviz_frames import ConfigError, ExportError
from coreviz_frames.api.client import Client, FailedFetch, FetchReport
from coreviz_frames.exports.reader import MANIFEST_NAME, describe_export, read_manifest
from coreviz_frames.exports.writer import ExportReport, export_parquet
from coreviz_frames.local_api.synthetic import iter_synthetic, synthetic_media
from coreviz_frames.schema import GRAINS
from coreviz_frames.tables.media_tables import MediaTables, to_tables

duckdb = pytest.importorskip("duckdb")
pl = pytest.importorskip("polars")

ROOT = Path(__file__).resolve().parents[2]


def assert_tables_equal(left: MediaTables, right: MediaTables) -> None:
    for grain in GRAINS:
        pd.testing.assert_frame_equal(getattr(left, grain), getattr(right, grain), check_exact=True)


def visible_files(root: Path) -> list[str]:
    """Every file pyarrow.dataset and a DuckDB ``**/*.parquet`` glob would read."""
    seen = set()
    for grain in GRAINS:
        seen.update(ds.dataset(root / grain, format="parquet").files)
        rows = (
            duckdb.connect()
            .execute(
                f"SELECT DISTINCT filename FROM read_parquet('{root}/{grain}/**/*.parquet', "
                "filename=true)"
            )
            .fetchall()
        )
        seen.update(r[0] for r in rows)
    return sorted(seen)


class _Reported:
    """Records plus a client-style ``.report`` of failed fetches (as ``iter_media`` returns)."""

    def __init__(self, records, failed):
        self._it = iter(records)
        self.report = FetchReport(failed=list(failed))

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)


def test_streaming_export_equals_to_tables(tmp_path: Path) -> None:
    records = list(iter_synthetic(95))
    report = export_parquet(iter(records), tmp_path / "x", batch_size=20, progress=False)
    assert isinstance(report, ExportReport)
    assert report.media_exported == 95 and report.parts_written == 5 and report.ok
    expected = to_tables(records)
    assert report.rows == {g: len(getattr(expected, g)) for g in GRAINS}
    assert_tables_equal(cvf.read_parquet(tmp_path / "x"), expected)
    names = sorted(p.name for p in (tmp_path / "x" / "objects").iterdir())
    assert names == [f"part-{i:06d}.parquet" for i in range(5)]
    manifest = read_manifest(tmp_path / "x")
    assert manifest["status"] == "complete" and manifest["media_exported"] == 95
    assert manifest["rows"] == report.rows
    assert [p["media"] for p in manifest["parts"]] == [20, 20, 20, 20, 15]
    assert "95 media" in str(report) and "objects" in str(report)


def test_every_reader_sees_the_export(tmp_path: Path) -> None:
    records = list(iter_synthetic(60))
    export_parquet(records, tmp_path / "x", batch_size=25, progress=False)
    expected = to_tables(records)
    con = duckdb.connect()
    for grain in GRAINS:
        glob = f"{tmp_path}/x/{grain}/**/*.parquet"
        n = len(getattr(expected, grain))
        assert con.execute(f"SELECT count(*) FROM '{glob}'").fetchone()[0] == n
        assert pl.scan_parquet(glob).select(pl.len()).collect().item() == n
    joined = con.execute(
        f"SELECT o.object_id, o.label, m.name FROM '{tmp_path}/x/objects/**/*.parquet' o "
        f"JOIN '{tmp_path}/x/media/**/*.parquet' m ON o.media_id = m.media_id "
        "ORDER BY o.object_id"
    ).fetchall()
    merged = expected.objects.merge(expected.media, on="media_id").sort_values("object_id")
    assert joined == list(zip(merged.object_id, merged.label, merged["name"], strict=True))


def test_empty_export_still_has_every_grain(tmp_path: Path) -> None:
    report = export_parquet([], tmp_path / "e", progress=False)
    assert report.media_exported == 0 and report.parts_written == 1
    assert_tables_equal(cvf.read_parquet(tmp_path / "e"), MediaTables.empty())


def test_partitioned_export_and_resume(tmp_path: Path) -> None:
    records = [*iter_synthetic(30, collection_id="a"), *iter_synthetic(30, collection_id="b")]
    export_parquet(records[:35], tmp_path / "p", batch_size=10, partition_by="dataset_id")
    report = export_parquet(records, tmp_path / "p", batch_size=10, resume=True)
    assert (report.media_skipped, report.media_exported) == (35, 25)
    back = cvf.read_parquet(tmp_path / "p")
    expected = to_tables(records)
    pd.testing.assert_frame_equal(
        back.objects.sort_values("object_id", ignore_index=True),
        expected.objects.sort_values("object_id", ignore_index=True),
    )
    assert sorted((tmp_path / "p" / "media").iterdir())[0].name == "dataset_id-a"
    with pytest.raises(ExportError, match="partitioned by 'dataset_id'"):
        export_parquet(records, tmp_path / "p", resume=True, partition_by="media_id")


def test_resume_skips_exported_media_and_never_duplicates(tmp_path: Path) -> None:
    records = list(iter_synthetic(50))
    export_parquet(records[:30], tmp_path / "x", batch_size=7, progress=False)
    report = export_parquet(records + records[:5], tmp_path / "x", batch_size=7, resume=True)
    assert report.media_skipped == 35 and report.media_exported == 20
    back = cvf.read_parquet(tmp_path / "x")
    assert back.media.media_id.is_unique and len(back.media) == 50
    assert_tables_equal(back, to_tables(records))
    assert read_manifest(tmp_path / "x")["runs"] == 2


def test_crash_between_renames_is_undone_on_resume(tmp_path: Path, monkeypatch) -> None:
    records = list(iter_synthetic(40))
    export_parquet(records[:10], tmp_path / "x", batch_size=10, progress=False)
    real_replace = os.replace
    dying = tmp_path / "x" / "objects" / "part-000001.parquet"

    def dying_replace(src, dst):
        # the second part: its objects file is not renamed ("power cut"). Its files are
        # written side by side: the media file, started with it, is renamed all the same
        # (a failing file lets the files already being written finish).
        if Path(dst) == dying:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(parquet_mod.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        export_parquet(records, tmp_path / "x", batch_size=10, resume=True)
    monkeypatch.setattr(parquet_mod.os, "replace", real_replace)
    orphan = tmp_path / "x" / "media" / "part-000001.parquet"
    assert orphan.exists()  # renamed, but its part was never committed
    (tmp_path / "x" / "objects" / ".tmp-part-000009.parquet.1.tmp").write_bytes(b"junk")
    assert read_manifest(tmp_path / "x")["media_exported"] == 10
    assert len(cvf.read_parquet(tmp_path / "x").media) == 10  # only committed parts are read

    report = export_parquet(records, tmp_path / "x", batch_size=10, resume=True)
    assert report.media_skipped == 10 and report.media_exported == 30
    assert_tables_equal(cvf.read_parquet(tmp_path / "x"), to_tables(records))
    assert not any(".tmp" in f for f in visible_files(tmp_path / "x"))
    assert not list((tmp_path / "x").rglob(".tmp-*"))


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    from coreviz_frames.api.client import Client
    from coreviz_frames.exports.writer import export_parquet

    base_url, collection_id, out = sys.argv[1:4]
    with Client(api_key="crash-key", base_url=base_url, max_workers=2) as client:
        records = client.browse(collection_id, page_size=10, progress=False)
        source = {"base_url": base_url, "collection_id": collection_id}
        export_parquet(records, out, batch_size=10, resume=True, progress=False, source=source)
    """
)


def test_sigkill_mid_export_then_resume(tmp_path: Path, local_api_factory) -> None:
    n = 150
    # light browse items: every media is hydrated with Get Media, 20 ms each -> a slow export
    api = local_api_factory(synthetic=n, latency=0.02, light=True)
    out = tmp_path / "crash"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, api.base_url, api.collection_id, str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(list((out / "tags").glob("part-*.parquet"))) >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.005)
        else:
            pytest.fail("the export never wrote a part")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    done = read_manifest(out)
    assert done["status"] == "running" and 0 < done["media_exported"] < n

    with Client(api_key="k", base_url=api.base_url, max_workers=4) as client:
        records = client.browse(api.collection_id, page_size=50, progress=False)
        report = export_parquet(records, out, batch_size=10, resume=True, progress=False)
        expected = to_tables(client.browse(api.collection_id, page_size=50, progress=False))
    assert report.media_skipped == done["media_exported"]
    assert report.media_skipped + report.media_exported == n
    back = cvf.read_parquet(out)
    assert back.media.media_id.is_unique and len(back.media) == n
    assert_tables_equal(back, expected)
    con = duckdb.connect()
    row = con.execute(
        f"SELECT count(*), count(DISTINCT media_id) FROM '{out}/media/**/*.parquet'"
    ).fetchone()
    assert row == (n, n)
    assert not any(".tmp" in f for f in visible_files(out))


def test_export_from_the_local_api_keeps_failures_and_no_key(
    tmp_path: Path, local_api_factory
) -> None:
    key = "sk-local-secret-4242"
    api = local_api_factory(synthetic=30, api_key=key)
    with Client(api_key=key, base_url=api.base_url, max_workers=4, retries=0) as client:
        ids = [r["id"] for r in client.browse(api.collection_id, progress=False)]
        api.add_fault(f"/api/media/{ids[3]}", status=503, count=100)
        it = client.iter_media([*ids, "doesnotexist"], on_error="skip", progress=False)
        source = {"base_url": client.base_url, "collection_id": api.collection_id, "api_key": key}
        report = export_parquet(it, tmp_path / "x", batch_size=8, source=source)
    assert report.media_exported == 29
    failed = {f["id"]: f for f in report.failed}
    assert failed.keys() == {ids[3], "doesnotexist"}
    assert failed["doesnotexist"]["status"] == 404 and failed[ids[3]]["status"] == 503
    manifest = read_manifest(tmp_path / "x")
    assert manifest["failed"] == report.failed
    assert manifest["source"] == {"base_url": api.base_url, "collection_id": api.collection_id}
    for file in (tmp_path / "x").rglob("*"):
        if file.is_file():
            assert key.encode() not in file.read_bytes(), file


def test_export_of_a_browse_lists_a_forbidden_item_and_completes(
    tmp_path: Path, local_api_factory
) -> None:
    api = local_api_factory(synthetic=12, light=True)
    with Client(api_key="k", base_url=api.base_url, retries=0) as client:
        ids = [r["id"] for r in client.browse(api.collection_id, hydrate=False, progress=False)]
    api = local_api_factory(synthetic=12, light=True, forbidden_ids=[ids[5]])
    with Client(api_key="k", base_url=api.base_url, retries=0) as client:
        for resume in (False, True):  # a re-run does not get stuck on it either
            with pytest.warns(UserWarning, match=ids[5]):
                report = export_parquet(
                    client.browse(api.collection_id, progress=False),
                    tmp_path / "x",
                    batch_size=4,
                    resume=resume,
                )
            assert [(f["id"], f["status"]) for f in report.failed] == [(ids[5], 403)]
    assert read_manifest(tmp_path / "x")["failed"] == report.failed
    assert sorted(cvf.read_parquet(tmp_path / "x").media.media_id) == sorted(set(ids) - {ids[5]})


def test_refuses_a_non_empty_directory_and_touches_nothing(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "data.csv").write_text("a,b\n1,2\n")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in target.iterdir()}
    with pytest.raises(ExportError, match="not empty") as info:
        export_parquet(iter_synthetic(3), target)
    assert info.value.path == str(target)
    with pytest.raises(ExportError, match="cannot resume"):
        export_parquet(iter_synthetic(3), target, resume=True)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in target.iterdir()}
    assert after == before
    with pytest.raises(ConfigError):
        export_parquet([], tmp_path / "b", batch_size=0)


def test_overwrite_replaces_the_previous_export(tmp_path: Path) -> None:
    export_parquet(iter_synthetic(30), tmp_path / "x", batch_size=4)
    report = export_parquet(iter_synthetic(3, start=100), tmp_path / "x", overwrite=True)
    assert report.media_exported == 3
    assert_tables_equal(cvf.read_parquet(tmp_path / "x"), to_tables(iter_synthetic(3, start=100)))
    assert len(list((tmp_path / "x" / "media").iterdir())) == 1


def test_failed_records_are_in_report_and_manifest(tmp_path: Path) -> None:
    bad = {"id": "broken1", "frames": [{"id": "f1", "width": "wide"}]}
    records = [*iter_synthetic(4), bad, synthetic_media(4)]
    fetch_failures = [FailedFetch("gone404", 404, "NotFoundError", "media 'gone404': 404")]
    report = export_parquet(_Reported(records, fetch_failures), tmp_path / "x", batch_size=3)
    assert report.media_exported == 5 and not report.ok
    by_id = {f["id"]: f for f in report.failed}
    assert by_id["gone404"]["status"] == 404
    assert "NotFoundError" in by_id["gone404"]["reason"]
    assert "frames[0].width" in by_id["broken1"]["reason"]
    assert read_manifest(tmp_path / "x")["failed"] == report.failed
    assert "gone404" in str(report) and "FAILED: 2" in str(report)
    assert "gone404" in describe_export(tmp_path / "x")
    # a resume that now fetches them clears them
    fixed = {**synthetic_media(99), "id": "broken1"}
    again = export_parquet([fixed], tmp_path / "x", resume=True)
    assert [f["id"] for f in again.failed] == ["gone404"]


def test_source_is_kept_without_secrets(tmp_path: Path) -> None:
    secret = "sk-very-secret-123"
    source = {
        "base_url": f"https://user:{secret}@api.example/api?api_key={secret}&region=eu",
        "collection_id": "col1",
        "filters": {"type": "image", "token": secret},
        "api_key": secret,
    }
    export_parquet(iter_synthetic(5), tmp_path / "x", source=source)
    manifest = read_manifest(tmp_path / "x")
    assert manifest["source"] == {
        "base_url": "https://api.example/api?region=eu",
        "collection_id": "col1",
        "filters": {"type": "image"},
    }
    for file in (tmp_path / "x").rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes()
    with pytest.raises(ExportError, match="col1"):
        export_parquet([], tmp_path / "x", resume=True, source={"collection_id": "other"})


def test_describe_export_counts_rows_from_parquet_metadata(tmp_path: Path) -> None:
    records = list(iter_synthetic(21))
    export_parquet(records, tmp_path / "x", batch_size=10, source={"collection_id": "c9"})
    text = describe_export(tmp_path / "x")
    expected = to_tables(records)
    assert "(complete)" in text and "collection_id=c9" in text
    for grain in GRAINS:
        line = next(ln for ln in text.splitlines() if ln.startswith(grain + " "))
        assert line.split()[1] == f"{len(getattr(expected, grain)):,}"
        assert line.split()[2] == "3"
    json.dumps(read_manifest(tmp_path / "x"))  # plain JSON
    assert MANIFEST_NAME in os.listdir(tmp_path / "x")


# --------------------------------------------------------------------------- walks cut short


@pytest.mark.parametrize("quirk", ["repeat_page", "has_more_forever"])
def test_a_walk_cut_short_is_an_incomplete_export(tmp_path: Path, local_api_factory, quirk) -> None:
    api = local_api_factory(synthetic=12, browse_quirk=quirk)
    out = tmp_path / "x"
    with Client(api_key="k", base_url=api.base_url, retries=0) as client:
        for resume in (False, True):  # a resume against the same server stays incomplete
            with pytest.warns(cvf.PaginationWarning):
                report = export_parquet(
                    client.browse(api.collection_id, page_size=5, progress=False),
                    out,
                    batch_size=4,
                    resume=resume,
                    progress=False,
                )
            assert not report.complete and not report.ok and not report.failed
            assert report.incomplete_reason and report.incomplete_reason in str(report)
            assert "INCOMPLETE" in str(report) and "resume" in str(report)
            manifest = read_manifest(out)
            assert manifest["status"] == "incomplete"
            assert manifest["status_reason"] == report.incomplete_reason
    media = cvf.read_parquet(out).media
    assert media.media_id.is_unique and 0 < len(media) <= 12
    assert "(incomplete: " in describe_export(out) and "--resume" in describe_export(out)


def test_an_iterator_that_reports_an_incomplete_walk_ends_incomplete(tmp_path: Path) -> None:
    records = _Reported(iter_synthetic(3), [])
    records.report.complete = False
    records.report.incomplete_reason = "empty page at offset 3 although hasMore is true"
    report = export_parquet(records, tmp_path / "x", progress=False)
    assert (report.ok, report.complete, report.media_exported) == (False, False, 3)
    manifest = read_manifest(tmp_path / "x")
    assert (manifest["status"], manifest["status_reason"]) == (
        "incomplete",
        "empty page at offset 3 although hasMore is true",
    )
    assert ExportReport(tmp_path).ok  # a plain iterable, which says nothing, is complete


# --------------------------------------------------------------------------- resume fetches less


def test_a_resumed_browse_export_fetches_no_exported_media_again(
    tmp_path: Path, local_api_factory
) -> None:
    api = local_api_factory(synthetic=20, light=True)  # every browse item needs Get Media
    out = tmp_path / "x"
    with Client(api_key="k", base_url=api.base_url, max_workers=4) as client:
        first = export_parquet(
            client.browse(api.collection_id, page_size=5, max_items=8, progress=False),
            out,
            batch_size=3,
            progress=False,
        )
        assert first.ok and first.media_exported == 8
        done = set(cvf.read_parquet(out).media.media_id)
        api.reset_stats()
        report = export_parquet(
            client.browse(api.collection_id, page_size=5, progress=False),
            out,
            batch_size=3,
            resume=True,
            progress=False,
        )
    assert report.ok and (report.media_skipped, report.media_exported) == (8, 12)
    gets = {p for p, n in api.stats.paths.items() if p.startswith("/api/media/") and n}
    assert len(gets) == 12 and not {p.rsplit("/", 1)[1] for p in gets} & done
    back = cvf.read_parquet(out).media
    assert back.media_id.is_unique and len(back) == 20


def test_a_resumed_ids_export_fetches_only_ids_not_yet_exported(
    tmp_path: Path, local_api_factory
) -> None:
    api = local_api_factory(synthetic=10)
    out = tmp_path / "x"
    with Client(api_key="k", base_url=api.base_url, max_workers=4) as client:
        ids = [r["id"] for r in client.browse(api.collection_id, progress=False)]
        export_parquet(client.iter_media(ids[:4], on_error="skip"), out, progress=False)
        api.reset_stats()
        report = export_parquet(
            client.iter_media(ids, on_error="skip", progress=False),
            out,
            resume=True,
            progress=False,
        )
    assert report.ok and (report.media_skipped, report.media_exported) == (4, 6)
    fetched = {p.rsplit("/", 1)[1] for p, n in api.stats.paths.items() if n}
    assert fetched == set(ids[4:])

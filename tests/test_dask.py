"""coreviz_frames.dask on a real LocalCluster (2 worker processes on 127.0.0.1).

The local APIs run in this process; the workers reach them over 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

dask = pytest.importorskip(
    "dask", reason='needs the dask extra: pip install "coreviz-frames[dask]"'
)
distributed = pytest.importorskip(
    "distributed", reason='needs the dask extra: pip install "coreviz-frames[dask]"'
)

import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from dask.base import normalize_token  # noqa: E402
from pandas.testing import assert_frame_equal  # noqa: E402

import coreviz_frames as cvf  # noqa: E402
from coreviz_frames.cli.dask_export import _connect, export_on_dask  # noqa: E402
from coreviz_frames.dask import (  # noqa: E402
    ClientSpec,
    PaginationError,
    PartitionError,
    export_collection,
    export_media,
    read_collection,
    read_media,
)
from coreviz_frames.errors import ConfigError, ExportError  # noqa: E402
from coreviz_frames.exports.grainfiles import METADATA_KEY  # noqa: E402
from coreviz_frames.exports.ranges import offset_ranges as _offset_ranges  # noqa: E402
from coreviz_frames.exports.reader import describe_export, read_manifest  # noqa: E402
from coreviz_frames.local_api import LocalAPI  # noqa: E402
from coreviz_frames.schema import GRAINS, pandas_dtypes  # noqa: E402

KEY = "sk-dask-test-5f1e9c"
FAST = {"retries": 3, "backoff_factor": 0.01}


@pytest.fixture(scope="module")
def dask_client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # the scheduler serves health/metrics even without a dashboard: on a free
        # port, since 8787 may be another cluster's (a warning, then, and no port)
        scheduler_kwargs={"dashboard_address": ":0"},
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def sample():
    with LocalAPI(api_key=KEY) as api:
        yield api


@pytest.fixture(scope="module")
def synthetic():
    with LocalAPI(synthetic=300, api_key=KEY) as api:
        yield api


def kwargs_for(api, **extra) -> dict:
    return {"api_key": KEY, "base_url": api.base_url, **extra}


def reference(api, **filters) -> cvf.MediaTables:
    with cvf.Client(api_key=KEY, base_url=api.base_url) as client:
        return cvf.to_tables(list(client.browse(api.collection_id, progress=False, **filters)))


def assert_same(computed: dict[str, pd.DataFrame], expected: cvf.MediaTables) -> None:
    for grain in GRAINS:
        got = computed[grain].reset_index(drop=True)
        want = getattr(expected, grain).reset_index(drop=True)
        assert dict(got.dtypes) == pandas_dtypes(grain), grain
        assert_frame_equal(got, want, check_exact=True, obj=grain)  # same rows, same order


def compute_all(frames: dict) -> dict[str, pd.DataFrame]:
    return dict(zip(frames, dask.compute(*frames.values()), strict=True))


# --------------------------------------------------------------------------- import


def test_importing_the_package_does_not_import_dask():
    code = "import sys, coreviz_frames as c; c.Client; c.to_tables; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_dask_gives_the_install_hint():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "try:\n    import coreviz_frames.dask\n"
        "except ImportError as e:\n"
        "    from coreviz_frames.errors import ConfigError\n"
        "    print(isinstance(e, ConfigError), e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("True ")
    assert 'pip install "coreviz-frames[dask]"' in out.stdout


# --------------------------------------------------------------------------- planning


def test_offset_ranges_are_page_aligned_and_cover_everything():
    assert _offset_ranges(0, 100, None) == [(0, 0)]
    assert _offset_ranges(250, 100, None) == [(0, 250)]
    assert _offset_ranges(250, 100, 8) == [(0, 100), (100, 200), (200, 250)]
    ranges = _offset_ranges(20_000, 100, None)
    assert len(ranges) == 20 and ranges[0] == (0, 1000) and ranges[-1][1] == 20_000
    for total, size, n in [(1001, 7, 5), (99, 10, 3), (10, 10, 4)]:
        ranges = _offset_ranges(total, size, n)
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        assert all(a % size == 0 and a < b for a, b in ranges)
        assert all(b == c for (_, b), (c, _) in itertools.pairwise(ranges))


def test_meta_comes_from_the_schema_without_computing(sample):
    sample.reset_stats()
    frames = read_collection(
        sample.collection_id, client_kwargs=kwargs_for(sample), npartitions=3, page_size=4
    )
    assert sample.stats.requests == 1  # pagination.total, read once
    assert set(frames) == set(GRAINS)
    for grain, frame in frames.items():
        assert dict(frame.dtypes) == pandas_dtypes(grain)
        assert frame.npartitions == 3
        assert not frame.known_divisions


def test_bad_options_fail_on_the_driver(sample):
    with pytest.raises(ConfigError, match="session"):
        ClientSpec({"api_key": KEY, "session": object()})
    with pytest.raises(ConfigError, match="unknown browse filters"):
        read_collection(sample.collection_id, client_kwargs=kwargs_for(sample), colour="red")
    with pytest.raises(ConfigError, match="npartitions"):
        read_collection(sample.collection_id, client_kwargs=kwargs_for(sample), npartitions=0)


# --------------------------------------------------------------------------- reading


def test_sample_collection_equals_to_tables(dask_client, sample):
    with dask.config.set({"dataframe.convert-string": True}):  # Dask's default: must not matter
        frames = read_collection(
            sample.collection_id,
            client_kwargs=kwargs_for(sample),
            npartitions=3,
            page_size=4,  # folder rows count in total: partitions hold fewer media than offsets
            recursive=True,
        )
        computed = compute_all(frames)
    expected = reference(sample, recursive=True, page_size=4)
    assert len(expected.media) == 15
    assert_same(computed, expected)


def test_sample_with_a_filter(dask_client, sample):
    frames = read_collection(
        sample.collection_id, client_kwargs=kwargs_for(sample), npartitions=2, type="image"
    )
    expected = reference(sample, type="image")
    assert 0 < len(expected.media) < 15
    assert_same(compute_all(frames), expected)


def test_synthetic_collection_equals_to_tables_and_fetches_each_page_once(dask_client, synthetic):
    frames = read_collection(
        synthetic.collection_id, client_kwargs=kwargs_for(synthetic), npartitions=4, page_size=25
    )
    synthetic.reset_stats()
    computed = compute_all(frames)
    assert synthetic.stats.requests == 300 // 25  # the grains share the partition tasks
    expected = reference(synthetic)
    assert len(expected.media) == 300
    assert_same(computed, expected)


def test_read_media(dask_client, synthetic):
    with cvf.Client(api_key=KEY, base_url=synthetic.base_url) as client:
        ids = [r["id"] for r in client.browse(synthetic.collection_id, max_items=40)]
        expected = cvf.to_tables(list(client.iter_media(ids, progress=False)))
    frames = read_media(ids + ids[:3], client_kwargs=kwargs_for(synthetic), npartitions=3)
    assert frames["media"].npartitions == 3
    assert_same(compute_all(frames), expected)
    bad = read_media([*ids[:10], "nosuchmedia"], client_kwargs=kwargs_for(synthetic))
    with pytest.raises(PartitionError, match=r"ids 0-10: .*NotFoundError") as info:
        dask.compute(*bad.values())
    assert info.value.status == 404 and (info.value.start, info.value.stop) == (0, 11)


# --------------------------------------------------------------------------- faults


def test_a_worker_retries_a_503_like_the_client(dask_client, local_api_factory):
    api = local_api_factory(synthetic=60, api_key=KEY)
    frames = read_collection(
        api.collection_id, client_kwargs=kwargs_for(api, **FAST), npartitions=2, page_size=10
    )
    api.add_fault(f"/api/dataset/{api.collection_id}/media", status=503, count=2)
    api.reset_stats()
    computed = compute_all(frames)
    assert api.stats.requests == 6 + 2  # six pages, two of them answered 503 first
    assert_same(computed, reference(api))


def test_a_failed_partition_names_its_offset_range(dask_client, local_api_factory):
    api = local_api_factory(synthetic=40, api_key=KEY)
    frames = read_collection(
        api.collection_id,
        client_kwargs=kwargs_for(api, retries=1, backoff_factor=0.01),
        npartitions=2,
        page_size=10,
    )
    api.add_fault(f"/api/dataset/{api.collection_id}/media", status=503, count=100)
    with pytest.raises(PartitionError) as info:
        dask.compute(*frames.values())
    err = info.value
    assert (err.start, err.stop) in [(0, 20), (20, 40)]
    assert f"offsets {err.start}-{err.stop - 1}" in str(err)
    assert err.collection_id == api.collection_id
    assert (err.status, err.cause_type) == (503, "ServerError")
    assert isinstance(err, cvf.CorevizError) and KEY not in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), str(again), again.start, again.status) == (
        PartitionError,
        str(err),
        err.start,
        503,
    )


# --------------------------------------------------------------------------- secrets


def test_the_key_is_not_in_the_graph(sample):
    frames = read_collection(
        sample.collection_id, client_kwargs=kwargs_for(sample), npartitions=2, page_size=5
    )
    for frame in frames.values():
        graph = dict(frame.__dask_graph__())
        assert graph
        for key, task in graph.items():
            assert KEY not in repr(key)
            assert KEY not in repr(task) and KEY not in str(task)
        assert KEY not in str(graph)
        assert KEY not in repr(frame) and KEY not in str(frame.__dask_keys__())
        assert KEY not in str(frame.dask)
    spec = ClientSpec({"api_key": KEY, "base_url": sample.base_url})
    assert KEY not in repr(spec) and "***" in repr(spec)
    assert KEY not in str(normalize_token(spec))
    assert KEY not in dask.base.tokenize(spec)
    revived = pickle.loads(pickle.dumps(spec))  # the pickled form carries it, for the workers
    with revived.new_client() as client:
        assert client.fetch_page(sample.collection_id, limit=1)["media"]


# --------------------------------------------------------------------------- export


def duckdb_count(path: Path, grain: str) -> int:
    duckdb = pytest.importorskip("duckdb")
    glob = (path / grain / "**/*.parquet").as_posix()  # the partition column is in the files
    query = f"SELECT count(*) FROM read_parquet('{glob}')"
    return duckdb.connect().execute(query).fetchone()[0]


def test_export_is_read_back_by_read_parquet_and_duckdb(dask_client, synthetic, tmp_path):
    out = tmp_path / "export"
    synthetic.reset_stats()
    report = export_collection(
        synthetic.collection_id,
        out,
        client_kwargs=kwargs_for(synthetic),
        npartitions=3,
        page_size=50,
    )
    assert synthetic.stats.requests == 1 + 6  # total, then each page once for all five grains
    expected = reference(synthetic)
    assert report.ok and report.media_exported == 300 and report.parts_written == 3
    assert "exported 300 media" in str(report)
    assert sorted(p.name for p in (out / "media").iterdir()) == [
        "part-000000.parquet",
        "part-000001.parquet",
        "part-000002.parquet",
    ]
    back = cvf.read_parquet(out)
    for grain in GRAINS:
        want = getattr(expected, grain)
        assert report.rows[grain] == len(want)
        assert_frame_equal(getattr(back, grain), want.reset_index(drop=True), check_exact=True)
        assert duckdb_count(out, grain) == len(want)
    meta = pq.read_schema(out / "objects" / "part-000001.parquet").metadata
    assert json.loads(meta[METADATA_KEY.encode()])["grain"] == "objects"
    manifest = read_manifest(out)
    assert manifest["status"] == "complete" and manifest["source"]["engine"] == "dask"
    assert manifest["rows"] == report.rows and len(manifest["parts"]) == 3
    assert KEY not in (out / "_coreviz_manifest.json").read_text()
    assert "coreviz_frames" in describe_export(out)

    with pytest.raises(ExportError, match="not empty"):
        export_collection(synthetic.collection_id, out, client_kwargs=kwargs_for(synthetic))
    with pytest.raises(ConfigError, match="--resume is not supported with --dask"):
        export_collection(
            synthetic.collection_id, out, client_kwargs=kwargs_for(synthetic), resume=True
        )


def test_partitioned_export_of_the_sample(dask_client, sample, tmp_path):
    out = tmp_path / "hive"
    report = export_collection(
        sample.collection_id,
        out,
        client_kwargs=kwargs_for(sample),
        npartitions=2,
        page_size=5,
        partition_by="dataset_id",
    )
    expected = reference(sample)
    assert report.ok and report.media_exported == 15
    assert all(p.name.startswith("dataset_id-") for p in (out / "media").iterdir())
    back = cvf.read_parquet(out)
    for grain in GRAINS:
        assert len(getattr(back, grain)) == len(getattr(expected, grain))
        assert duckdb_count(out, grain) == len(getattr(expected, grain))
    assert set(back.media.media_id) == set(expected.media.media_id)


def test_export_media_reports_failed_ids(dask_client, synthetic, tmp_path):
    with cvf.Client(api_key=KEY, base_url=synthetic.base_url) as client:
        ids = [r["id"] for r in client.browse(synthetic.collection_id, max_items=12)]
    report = export_media(
        [*ids, "missing1"], tmp_path / "ids", client_kwargs=kwargs_for(synthetic), npartitions=2
    )
    assert not report.ok and report.media_exported == 12
    assert [(f["id"], f["status"]) for f in report.failed] == [("missing1", 404)]
    assert read_manifest(tmp_path / "ids")["failed"] == report.failed
    assert len(cvf.read_parquet(tmp_path / "ids").media) == 12


def test_dask_failures_keep_their_error_type_in_the_manifest(dask_client, synthetic, tmp_path):
    """A failure from a worker is the same FailedFetch entry as one from export_parquet."""
    report = export_media(
        ["missing1"], tmp_path / "ids", client_kwargs=kwargs_for(synthetic), npartitions=1
    )
    (entry,) = read_manifest(tmp_path / "ids")["failed"]
    assert entry["error_type"] == "NotFoundError" and entry["status"] == 404
    assert report.failures[0].error_type == "NotFoundError"


def test_export_on_dask_from_the_cli(dask_client, sample, tmp_path):
    common = {
        "out_dir": tmp_path / "cli",
        "overwrite": False,
        "page_size": 5,
        "api_key": KEY,
        "base_url": sample.base_url,
        "partition_by": None,
        "filters": {"path": None, "recursive": True, "type": None, "tag_filters": None},
    }
    address = dask_client.scheduler.address
    with pytest.raises(ConfigError, match="--resume is not supported with --dask"):
        export_on_dask(address, collection_id=sample.collection_id, ids_file=None,
                              resume=True, **common)  # fmt: skip
    report = export_on_dask(
        address, collection_id=sample.collection_id, ids_file=None, resume=False, **common
    )
    assert report.ok and report.failed == [] and "exported 15 media" in str(report)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# ids\n" + "\n".join(cvf.read_parquet(tmp_path / "cli").media.media_id))
    common.update(out_dir=tmp_path / "cli-ids")
    report = export_on_dask(
        address, collection_id=None, ids_file=str(ids_file), resume=False, **common
    )
    assert report.ok and report.media_exported == 15


# --------------------------------------------------------------------------- lying totals


def endless_api():
    """A scripted server whose pagination.total is absurd (10**12) and hasMore never ends."""
    from helpers import ScriptedServer

    def route(path, query):
        offset = int(query.get("offset", 0))
        media = [{"id": f"m{offset}", "type": "image", "frames": []}]
        return (200, {}, {"media": media, "pagination": {"total": 10**12, "hasMore": True}})

    return ScriptedServer(route)


def test_an_absurd_total_is_refused_before_building_tasks():
    srv = endless_api()
    try:
        with pytest.raises(PaginationError, match="max_total") as info:
            read_collection("col1", client_kwargs={"api_key": KEY, "base_url": srv.base_url})
        assert srv.requests == 1 and info.value.collection_id == "col1"
        assert isinstance(info.value, PartitionError)
    finally:
        srv.close()


def test_max_total_is_a_bound_the_user_sets(sample):
    with pytest.raises(PaginationError, match="18"):
        read_collection(sample.collection_id, client_kwargs=kwargs_for(sample), max_total=10)
    frames = read_collection(sample.collection_id, client_kwargs=kwargs_for(sample), max_total=18)
    assert frames["media"].npartitions == 1
    with pytest.raises(ConfigError, match="max_total"):
        read_collection(sample.collection_id, client_kwargs=kwargs_for(sample), max_total=-1)


def test_a_total_that_under_reports_is_read_to_the_end(dask_client, local_api_factory):
    api = local_api_factory(synthetic=200, api_key=KEY, browse_quirk="low_total")
    frames = read_collection(
        api.collection_id, client_kwargs=kwargs_for(api), npartitions=2, page_size=10
    )
    computed = compute_all(frames)
    assert len(computed["media"]) == 200  # the total said 50
    with (
        cvf.Client(api_key=KEY, base_url=api.base_url) as client,
        pytest.warns(cvf.PaginationWarning),
    ):
        expected = cvf.to_tables(list(client.browse(api.collection_id, progress=False)))
    assert_same(computed, expected)


def test_a_collection_that_grows_during_the_read_is_read_to_the_end(dask_client, local_api_factory):
    api = local_api_factory(synthetic=100, api_key=KEY, browse_quirk="grows")
    frames = read_collection(
        api.collection_id, client_kwargs=kwargs_for(api), npartitions=1, page_size=10
    )  # planned on a total of 95: five media are added after the first two requests
    computed = compute_all(frames)
    assert computed["media"].media_id.tolist() == reference(api).media.media_id.tolist()
    assert len(computed["media"]) == 100


def test_a_last_partition_that_does_not_reach_has_more_false_fails_loudly(
    dask_client, local_api_factory, tmp_path
):
    forever = local_api_factory(synthetic=60, api_key=KEY, browse_quirk="has_more_forever")
    frames = read_collection(
        forever.collection_id, client_kwargs=kwargs_for(forever), npartitions=2, page_size=10
    )
    with pytest.raises(PaginationError, match="empty page") as info:
        compute_all(frames)
    assert (info.value.index, info.value.start, info.value.stop) == (1, 30, 60)
    with pytest.raises(PaginationError, match="hasMore"):
        export_collection(
            forever.collection_id, tmp_path / "x", client_kwargs=kwargs_for(forever), page_size=10
        )
    low = local_api_factory(synthetic=200, api_key=KEY, browse_quirk="low_total")
    frames = read_collection(
        low.collection_id, client_kwargs=kwargs_for(low), page_size=10, max_overrun=20
    )
    with pytest.raises(PaginationError, match="max_overrun"):
        compute_all(frames)


def test_readers_take_browse_filters_as_one_value(dask_client, sample):
    filters = cvf.BrowseFilters(type="image")
    frames = read_collection(
        sample.collection_id, client_kwargs=kwargs_for(sample), filters=filters
    )
    assert_same(compute_all(frames), reference(sample, filters=filters))


@pytest.mark.parametrize("partition_by", [None, "dataset_id"])
def test_a_dask_written_export_reads_in_plain_pandas_and_in_dask(
    dask_client, synthetic, tmp_path, partition_by
):
    """The pandas metadata of every file names dtypes pandas can parse (lists as object):
    no ``data type 'list<item: string>[pyarrow]' not understood``."""
    out = tmp_path / "export"
    export_collection(
        synthetic.collection_id,
        out,
        client_kwargs=kwargs_for(synthetic),
        npartitions=2,
        page_size=50,
        partition_by=partition_by,
    )
    ours = cvf.read_parquet(out)
    for grain in GRAINS:
        want = getattr(ours, grain)
        plain = pd.read_parquet(out / grain)
        assert len(plain) == len(want) and set(plain.columns) == set(want.columns), grain
        assert sorted(plain.media_id) == sorted(want.media_id), grain
        lazy = dd.read_parquet(out / grain).compute()
        assert len(lazy) == len(want), grain
    assert pd.read_parquet(out / "media")["width"].dtype == "Int64"


def test_a_delta_export_on_dask(dask_client, synthetic, tmp_path):
    """table_format="delta": the workers fetch and flatten, this process commits each
    partition to the Delta tables (one commit per table)."""
    from tests.exports.test_delta import assert_same

    out = tmp_path / "delta"
    report = export_collection(
        synthetic.collection_id,
        out,
        client_kwargs=kwargs_for(synthetic),
        npartitions=3,
        page_size=50,
        table_format="delta",
    )
    assert report.ok and report.media_exported == 300 and report.parts_written == 3
    manifest = read_manifest(out)
    assert manifest["table_format"] == "delta" and manifest["tables"]["objects"] == 3
    assert manifest["source"]["engine"] == "dask"
    assert_same(cvf.read_parquet(out), reference(synthetic))


def test_a_local_cluster_leaves_the_default_dashboard_port_free():
    """``--dask local`` twice at once (two exports, parallel tests): each scheduler's HTTP
    server (health, metrics) takes a free port, never 8787, so neither warns it is in use."""
    client, cluster = _connect("local", 1)
    try:
        assert cluster.scheduler.http_server.port != 8787
    finally:
        client.close()
        cluster.close()

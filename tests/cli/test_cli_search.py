"""The ``search`` and ``collections`` commands, and the demo's search and collection lines."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from coreviz_frames.cli.main import main

API_KEY = "cli-search-key"
ORG = "0d9b1f7e6a3c4e5f9a8b7c6d5e4f3a2b"


def _env(api) -> dict[str, str]:
    return {"COREVIZ_API_KEY": API_KEY, "COREVIZ_BASE_URL": api.base_url}


def test_search_prints_a_short_table_of_hits(local_api_factory):
    api = local_api_factory(api_key=API_KEY)
    result = CliRunner().invoke(main, ["search", "rocket launch", "--limit", "2"], env=_env(api))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 hit(s) for 'rocket launch':"
    assert lines[1].split() == ["#", "rank", "text", "object", "media", "frame", "name"]
    assert lines[2].split()[:4] == ["1", "0.750", "0.500", "0.250"]
    assert lines[2].split()[-1] == "rocket.jpg"
    assert len(lines) == 4
    assert api.stats.snapshot().paths["/api/me"] == 1


def test_search_writes_the_hits_to_parquet(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "hits.parquet"
    args = ["search", "horse", "--organization", ORG, "--out", str(out)]
    result = CliRunner().invoke(main, args, env=_env(api))
    assert result.exit_code == 0, result.output
    assert f"Wrote 1 hit(s) to {out}" in result.output
    hits = pd.read_parquet(out)
    assert hits.columns.tolist()[:4] == ["query", "hit_rank", "frame_id", "media_id"]
    assert hits["query"].tolist() == ["horse"] and hits["rank"].tolist() == [1.0]
    assert api.stats.snapshot().paths["/api/me"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["hits.parquet"]  # no temporary left


def test_search_errors_are_one_line_and_exit_1(local_api_factory):
    api = local_api_factory(api_key=API_KEY)
    env = _env(api)
    result = CliRunner().invoke(main, ["search", "x", "--organization", "other"], env=env)
    assert result.exit_code == 1 and "404" in result.output and "Traceback" not in result.output
    wrong = {**env, "COREVIZ_API_KEY": "wrong-SECRET"}
    result = CliRunner().invoke(main, ["search", "x"], env=wrong)
    assert result.exit_code == 1 and "401" in result.output and "SECRET" not in result.output
    result = CliRunner().invoke(main, ["search", "x", "--limit", "0"], env=env)
    assert result.exit_code == 2


def test_no_hit_is_one_line(local_api_factory):
    api = local_api_factory(api_key=API_KEY)
    result = CliRunner().invoke(main, ["search", "zebra"], env=_env(api))
    assert result.exit_code == 0 and result.output == "0 hit(s) for 'zebra':\n"


def test_collections_lists_id_and_name(local_api_factory):
    api = local_api_factory(api_key=API_KEY)
    result = CliRunner().invoke(main, ["collections"], env=_env(api))
    assert result.exit_code == 0, result.output
    assert result.output == f"1 collection(s):\n  {api.collection_id}  Sample collection\n"
    result = CliRunner().invoke(main, ["collections", "--organization", "nope"], env=_env(api))
    assert result.exit_code == 1 and "404" in result.output


def test_help_has_examples():
    for command in ("search", "collections"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_demo_shows_a_collection_listing_and_a_search(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "Collections of your organization (client.collections): Sample collection" in (
        result.output
    )
    assert "3 hit(s) for 'rocket launch':" in result.output


def test_search_in_one_collection(local_api_factory, tmp_path):
    api = local_api_factory(api_key=API_KEY)
    out = tmp_path / "hits.parquet"
    args = ["search", "rocket", "--collection", api.collection_id, "--limit", "2", "--out"]
    result = CliRunner().invoke(main, [*args, str(out)], env=_env(api))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "2 hit(s) for 'rocket':"
    hits = pd.read_parquet(out)
    assert hits.frame_id.isna().all() and hits["rank"].notna().all()  # one hit per media
    assert "/api/me" not in api.stats.snapshot().paths  # no organization needed
    both = CliRunner().invoke(main, [*args[:-1], "--organization", ORG], env=_env(api))
    assert both.exit_code == 2 and "not both" in both.output

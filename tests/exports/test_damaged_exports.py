"""Damaged exports (issue scenario 8): every way a part, a fingerprint file or the manifest
can be damaged gives an ExportError naming the file and the next step, from ``info``,
``repair``, ``sync``, ``export --resume``, ``dataset`` and ``read_parquet``; never a raw
traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from coreviz_frames.api.client import Client
from coreviz_frames.cli.main import main
from coreviz_frames.errors import ExportError
from coreviz_frames.exports.manifest import MANIFEST_NAME, read_manifest
from coreviz_frames.exports.reader import read_parquet
from coreviz_frames.exports.syncing import sync

KEY = "damaged-exports-key-0123456789"


@pytest.fixture(scope="module")
def api():
    from coreviz_frames.local_api import LocalAPI

    with LocalAPI(synthetic=12, api_key=KEY) as local:
        yield local


@pytest.fixture(scope="module")
def pristine(api, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pristine") / "export"
    with Client(api_key=KEY, base_url=api.base_url) as client:
        sync(client, api.collection_id, out, batch_size=5, table_format="parquet", progress=False)
    return out


def _first(out: Path, grain: str) -> Path:
    return out / read_manifest(out)["parts"][0]["files"][grain][0]


def _index(out: Path) -> Path:
    return out / read_manifest(out)["parts"][0]["index"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _retype(path: Path) -> None:
    table = pq.read_table(path)
    column = table.schema.get_field_index("object_index")
    table = table.set_column(column, "object_index", table.column(column).cast(pa.string()))
    pq.write_table(table, path)


def _manifest(change):
    def damage(out: Path) -> None:
        manifest = json.loads((out / MANIFEST_NAME).read_text())
        change(manifest)
        (out / MANIFEST_NAME).write_text(json.dumps(manifest))

    return damage


#: damage -> (what it does to the export, the file the error must name)
DAMAGES = {
    "part truncated": (lambda out: _truncate(_first(out, "objects")), "objects/part-"),
    "part not parquet": (lambda out: _first(out, "objects").write_text("hello"), "objects/part-"),
    "part of another grain": (
        lambda out: shutil.copyfile(_first(out, "tags"), _first(out, "objects")),
        "objects/part-",
    ),
    "part column of another type": (lambda out: _retype(_first(out, "objects")), "objects/part-"),
    "index truncated": (lambda out: _truncate(_index(out)), "_coreviz_index/part-"),
    "index not parquet": (lambda out: _index(out).write_text("{}"), "_coreviz_index/part-"),
    "index of another schema": (
        lambda out: shutil.copyfile(_first(out, "tags"), _index(out)),
        "_coreviz_index/part-",
    ),
    "manifest not json": (lambda out: (out / MANIFEST_NAME).write_text("{"), MANIFEST_NAME),
    "manifest parts not a list": (_manifest(lambda m: m.update(parts={"a": 1})), MANIFEST_NAME),
    "manifest part without files": (
        _manifest(lambda m: m["parts"][0].pop("files")),
        MANIFEST_NAME,
    ),
    "manifest part number text": (
        _manifest(lambda m: m["parts"][1].update(part="x")),
        MANIFEST_NAME,
    ),
    "manifest rows text": (
        _manifest(lambda m: m["parts"][0].update(rows={"media": "five"})),
        MANIFEST_NAME,
    ),
    "manifest failed entry text": (_manifest(lambda m: m.update(failed=["x"])), MANIFEST_NAME),
    "manifest a list": (lambda out: (out / MANIFEST_NAME).write_text("[]"), MANIFEST_NAME),
}

COMMANDS = ["info", "repair", "sync", "export --resume", "dataset", "read_parquet"]
#: Commands that never read the fingerprint files (their answer stays right without them).
_NO_INDEX = {"info", "dataset", "read_parquet"}


def _run(command: str, api, out: Path, tmp_path: Path) -> tuple[int, str]:
    if command == "read_parquet":
        try:
            read_parquet(out)
        except ExportError as exc:
            return 1, str(exc)
        return 0, ""
    args = {
        "info": ["info", str(out)],
        "repair": ["repair", str(out)],
        "sync": ["sync", "--collection", api.collection_id, "--out", str(out), "--no-progress"],
        "export --resume": [
            "export",
            "--collection",
            api.collection_id,
            "--out",
            str(out),
            "--resume",
            "--no-progress",
        ],
        "dataset": ["dataset", "coco", str(out), "--out", str(tmp_path / "coco"), "--no-images"],
    }[command]
    env = {"COREVIZ_API_KEY": KEY, "COREVIZ_BASE_URL": api.base_url}
    result = CliRunner().invoke(main, args, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{command}: a raw {type(result.exception).__name__}") from (
            result.exception
        )
    return result.exit_code, result.output


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_export_is_a_typed_error_naming_the_file_and_the_next_step(
    api, pristine, tmp_path, damage, command
):
    out = tmp_path / "export"
    shutil.copytree(pristine, out)
    spoil, named = DAMAGES[damage]
    spoil(out)
    code, output = _run(command, api, out, tmp_path)
    text = " ".join(output.split())
    if damage.startswith("index") and command in _NO_INDEX:
        assert code == 0, output  # the data is whole: these commands read it right
        return
    assert code != 0, output
    assert "Traceback" not in output
    assert named in text, text
    assert "rebuild the export" in text and "--overwrite" in text, text

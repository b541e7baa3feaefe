"""The README: its column table is the schema's, and every Python block runs on its own.

Each block runs in a fresh interpreter, in its own empty folder, as a reader pasting it alone
would run it: nothing is shared between blocks. The blocks "with your own account" read
``COREVIZ_API_KEY`` and ``COREVIZ_BASE_URL`` (the README documents both), which point at a
local API here, and the placeholder ``"COLLECTION_ID"`` becomes the sample collection's id.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coreviz_frames._docs import render_readme
from coreviz_frames.local_api import LocalAPI

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
KEY = "readme-test-key"
BLOCK_TIMEOUT = 600  # seconds; a hung block fails instead of hanging the suite


def test_column_table_is_generated_from_the_schema():
    text = README.read_text()
    assert render_readme(text) == text, "run: python -m coreviz_frames._docs README.md"


def test_readme_opens_with_the_two_commands():
    first_block = README.read_text().split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_readme_teaches_no_deprecated_spelling():
    """``errors=`` is the deprecated spelling of ``on_error=``, ``select=`` of ``options=``,
    ``labels=`` and ``--labels`` of ``classes=`` and ``--classes`` (each warns)."""
    text = README.read_text()
    assert not re.search(r"\berrors=", text)
    assert not re.search(r"\b(select|labels)=|--labels\b", text)


def test_readme_sections_come_in_the_users_order():
    """What it does, then install, then the first ten minutes; maintainer material is elsewhere."""
    headings = re.findall(r"(?m)^## (.+)$", README.read_text())
    assert headings[:2] == ["Install", "The first ten minutes"]
    assert "Where things live" not in README.read_text()
    assert not {"Benchmarks", "Development"} & set(headings)


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        return False
    return True


@pytest.fixture(scope="module")
def readme_api():
    with LocalAPI(api_key=KEY) as api:
        yield api


def _environment(api: LocalAPI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREVIZ_")}
    env.update(COREVIZ_API_KEY=KEY, COREVIZ_BASE_URL=api.base_url)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # a deprecated spelling in a block (a warning pointing at the block itself) fails it
    env["PYTHONWARNINGS"] = "error::DeprecationWarning:__main__,error::FutureWarning:__main__"
    return env


BLOCKS = _python_blocks()


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("number", range(1, len(BLOCKS) + 1), ids=lambda n: f"block{n:02d}")
def test_each_python_block_runs_alone(number, readme_api, tmp_path):
    block = BLOCKS[number - 1]
    if re.search(r"(?m)^import torch", block) and not _torchvision_imports():
        pytest.skip("torch and torchvision are not installed (make test installs them)")
    if re.search(r"(?m)^import coreviz_frames.dask", block):
        pytest.importorskip("distributed", reason="the dask extra is not installed")
    code = block.replace('"COLLECTION_ID"', repr(readme_api.collection_id))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_environment(readme_api),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert done.returncode == 0, (
        f"README python block {number} failed when run alone:\n{block}\n{done.stderr[-4000:]}"
    )

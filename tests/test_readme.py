"""The README: its column table is the schema's, and every Python block runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coreviz_frames._docs import render_readme
from coreviz_frames.local_api import LocalAPI

README = Path(__file__).resolve().parents[1] / "README.md"
KEY = "readme-test-key"


def test_column_table_is_generated_from_the_schema():
    text = README.read_text()
    assert render_readme(text) == text, "run: python -m coreviz_frames._docs README.md"


def test_readme_opens_with_the_two_commands():
    first_block = README.read_text().split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        return False
    return True


def test_every_python_block_runs(tmp_path, monkeypatch):
    """Run the blocks in order, in one namespace, as a reader would paste them.

    The "your own account" blocks read COREVIZ_API_KEY / COREVIZ_BASE_URL, which point
    at a local API here; the placeholder "COLLECTION_ID" becomes the sample collection.
    """
    blocks = _python_blocks()
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    with LocalAPI(api_key=KEY) as api:
        monkeypatch.setenv("COREVIZ_API_KEY", KEY)
        monkeypatch.setenv("COREVIZ_BASE_URL", api.base_url)
        namespace: dict = {}
        for number, block in enumerate(blocks, 1):
            if block.startswith("import torch") and not _torchvision_imports():
                continue  # make test installs torch and torchvision where the pair exists
            code = block.replace('"COLLECTION_ID"', repr(api.collection_id))
            try:
                exec(compile(code, f"README block {number}", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"README python block {number} failed: {exc!r}\n{block}")
    assert (tmp_path / "export" / "objects").is_dir()

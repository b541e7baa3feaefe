"""The build warns nothing: every sample-data folder is a declared package (issue 16, item 10)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)^\]", text, flags=re.S | re.M)
    assert block, "no packages list in pyproject.toml"
    return set(re.findall(r'"([^"]+)"', block.group(1)))


def test_every_data_folder_is_a_declared_package():
    folders = {
        "coreviz_frames.sample_data." + p.relative_to(ROOT / "data").as_posix().replace("/", ".")
        for p in (ROOT / "data").rglob("*")
        if p.is_dir() and "__pycache__" not in p.parts
    }
    assert folders - _declared() == set(), "add these to [tool.setuptools] packages"


@pytest.mark.slow
def test_building_prints_no_package_data_warning(project_copy, tmp_path):
    pytest.importorskip("setuptools")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            str(project_copy),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "Package would be ignored" not in output
    assert "SetuptoolsDeprecationWarning" not in output
    (wheel,) = (tmp_path / "wheel").glob("coreviz_frames-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for notebook in ("01_explore_collection.ipynb", "02_train_on_crops.ipynb"):
        assert f"coreviz_frames/notebooks/{notebook}" in names  # the demo's "Next, try"

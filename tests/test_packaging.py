"""The wheel: it carries the package, the typing marker and the whole sample collection."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_sample_collection(project_copy, tmp_path):
    wheels = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), project_copy],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("coreviz_frames-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "coreviz_frames/py.typed" in names
    assert "coreviz_frames/local_api/server.py" in names
    sample = [
        p for p in (ROOT / "data").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
    ]
    assert len(sample) > 40
    missing = [
        p.relative_to(ROOT).as_posix()
        for p in sample
        if f"coreviz_frames/sample_data/{p.relative_to(ROOT / 'data').as_posix()}" not in names
    ]
    assert missing == []

"""CONTRIBUTING.md: "Where things live" names every module, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "coreviz_frames"
#: files that own no concept of their own: package markers, entry points, the version
UNOWNED = {"__init__.py", "__main__.py", "_version.py"}


def _where_things_live() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    return text.split("## Where things live", 1)[1].split("\n## ", 1)[0]


def _named_paths() -> set[str]:
    return set(re.findall(r"`([\w/]+\.py)`", _where_things_live()))


def _modules() -> set[str]:
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name not in UNOWNED or path.relative_to(PACKAGE).as_posix() == "__init__.py"
    }


def test_every_path_the_table_names_exists():
    missing = sorted(p for p in _named_paths() if not (PACKAGE / p).is_file())
    assert not missing, f"CONTRIBUTING.md names modules that do not exist: {missing}"


def test_every_module_has_a_row():
    unnamed = sorted(_modules() - _named_paths())
    assert not unnamed, f"add these modules to CONTRIBUTING.md's 'Where things live': {unnamed}"


def test_contributing_lists_every_benchmark():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert scripts and all(f"`{name}`" in text for name in scripts)

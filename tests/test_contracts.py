"""The import contracts of ``[tool.importlinter]`` hold, and they bite on a wrong import.

``make lint`` and ``make test`` run ``lint-imports``; these tests prove the contracts are
kept on the package and broken by an upward import in a copy of it (issue 23, Build 3).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "coreviz_frames"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the project (``pyproject.toml`` and package) found in ``cwd``."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["type"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_the_package_keeps_its_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    copy = tmp_path / "coreviz_frames"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # the lowest layer reaches up to training, only for type checkers: it still counts
    _append(
        copy / "errors.py",
        "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        "    from coreviz_frames.training.coco import export_coco  # noqa: F401\n",
    )
    # a library module starts the test server
    _append(copy / "tables" / "joins.py", "\nimport coreviz_frames.local_api  # noqa: F401\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    names = {kind: contract["name"] for kind, contract in _contracts().items()}
    for kind in ("layers", "acyclic_siblings", "forbidden"):
        assert f"{names[kind]} BROKEN" in result.stdout, (kind, result.stdout[-3000:])
    assert "coreviz_frames.errors -> coreviz_frames.training.coco" in result.stdout
    assert "coreviz_frames.tables.joins -> coreviz_frames.local_api" in result.stdout


def test_only_the_cli_may_import_the_local_api():
    """Every top-level module but cli, __main__ and local_api is a source of the forbidden
    contract, so a new module cannot start the test server unnoticed."""
    top_level = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    sources = set(_contracts()["forbidden"]["source_modules"])
    expected = top_level - {"cli", "__main__", "local_api"}
    assert sources == {f"coreviz_frames.{name}" for name in expected}
    assert _contracts()["forbidden"]["forbidden_modules"] == ["coreviz_frames.local_api"]

"""Rules the code keeps for its next maintainer, checked on the package's source.

- no module imports another module's private (leading underscore) name;
- no function is longer than :data:`MAX_FUNCTION_LINES` lines, except those listed in
  :data:`LONG_FUNCTIONS` with the reason;
- the ``TYPE_CHECKING`` imports of ``coreviz_frames/__init__.py`` name every lazy public
  name, so type checkers see the real types of ``cvf.Client`` and friends.
"""

from __future__ import annotations

import ast
from pathlib import Path

import coreviz_frames

PACKAGE = Path(coreviz_frames.__file__).resolve().parent
MAX_FUNCTION_LINES = 80
#: ``module:function`` -> why it may be longer (keep this short).
LONG_FUNCTIONS: dict[str, str] = {}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for module, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                node.level or "coreviz_frames" in (node.module or "")
            ):
                names = [a.name for a in node.names if _is_private(a.name)]
                if names:
                    offenders.append(
                        f"{module}: from {'.' * node.level}{node.module} import {names}"
                    )
    assert offenders == []


def test_no_function_is_over_the_length_limit():
    long = {}
    for module, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{module}:{node.name}"] = lines
    assert set(long) <= set(LONG_FUNCTIONS), {
        k: v for k, v in long.items() if k not in LONG_FUNCTIONS
    }


def test_type_checkers_see_every_lazy_name():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    checked: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        checked[alias.asname or alias.name] = stmt.module or ""
    assert checked == dict(coreviz_frames._LAZY)

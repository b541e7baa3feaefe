"""The training subpackage's imports flow one way: no cycle, no function-level import of
a sibling, format modules never importing each other, no sibling's private name."""

from __future__ import annotations

import ast
from pathlib import Path

import coreviz_frames.training as training

ROOT = Path(training.__file__).parent
PREFIX = "coreviz_frames.training."
#: Each writes one format or dataset; they share what they need through lower modules.
FORMATS = {"coco", "yolo", "huggingface", "crop_dataset", "detection"}


def _imports() -> dict[str, list[tuple[str, list[str], bool]]]:
    """``{module: [(imported training module, names, inside a function), ...]}``."""
    out: dict[str, list[tuple[str, list[str], bool]]] = {}
    for path in sorted(ROOT.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found: list[tuple[str, list[str], bool]] = []
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
                names = [alias.name for alias in node.names]
                found.append((node.module[len(PREFIX) :], names, id(node) in nested))
        out[path.stem] = found
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_training_modules_import_one_way_with_no_cycle():
    graph = {mod: {target for target, _, _ in found} for mod, found in _imports().items()}
    assert _cycle(graph) is None, _cycle(graph)


def test_no_function_level_import_between_training_modules():
    late = [
        (mod, target) for mod, found in _imports().items() for target, _, inner in found if inner
    ]
    assert late == []


def test_format_modules_never_import_each_other():
    crossing = [
        (mod, target)
        for mod, found in _imports().items()
        if mod in FORMATS
        for target, _, _ in found
        if target in FORMATS
    ]
    assert crossing == []


def test_no_module_imports_a_siblings_private_name():
    private = [
        (mod, target, name)
        for mod, found in _imports().items()
        for target, names, _ in found
        for name in names
        if name.startswith("_")
    ]
    assert private == []

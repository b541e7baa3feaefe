"""Rules the code keeps for its next maintainer, checked on the package's source.

- no module imports another module's private (leading underscore) name;
- no function is longer than :data:`MAX_FUNCTION_LINES` lines, except those listed in
  :data:`LONG_FUNCTIONS` with the reason;
- the ``TYPE_CHECKING`` imports of ``coreviz_frames/__init__.py`` name every lazy public
  name, so type checkers see the real types of ``cvf.Client`` and friends.
"""

from __future__ import annotations

import ast
import json
import re
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


# --- __all__: each module exports what others take from it, and one module owns each name ---

ROOT = PACKAGE.parent
#: markdown files whose python blocks and ``coreviz_frames.x.y.name`` mentions are user code
USER_DOCS = ("README.md", "CONTRIBUTING.md")
#: modules users import by their own path: their ``__all__`` is their public API
PUBLIC_MODULES = ("coreviz_frames.dask",)
#: names two modules still define while one owner is being made for them: name -> why
SHARED_FOR_NOW: dict[str, str] = {}


def _package_modules() -> dict[str, tuple[Path, ast.Module]]:
    """Dotted module name -> (file, syntax tree), for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


MODULES = _package_modules()


def _is_facade(module: str) -> bool:
    """Package ``__init__`` files re-export on purpose (``coreviz_frames.local_api`` and co)."""
    return MODULES[module][0].name == "__init__.py"


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple))
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    return None


def _imported_from(node: ast.ImportFrom, importer: str | None) -> str:
    """The absolute module a ``from ... import`` reads (relative ones resolved)."""
    if not node.level or importer is None:
        return node.module or ""
    base = importer.split(".")
    if not _is_facade(importer):
        base.pop()
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _references(tree: ast.Module, importer: str | None = None) -> set[tuple[str, str]]:
    """``(module, name)`` for each name code takes from a package module: ``from m import
    name``, and ``alias.name`` where ``alias`` is a package module it imported."""
    taken, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_from(node, importer)
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                elif source in MODULES:
                    taken.add((source, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b` binds `a`, resolved below as a chain
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name) and chain:
            root = aliases.get(node.id) or node.id
            dotted = [*root.split("."), *chain]
            for cut in range(len(dotted) - 1, 0, -1):
                if ".".join(dotted[:cut]) in MODULES:
                    taken.add((".".join(dotted[:cut]), dotted[cut]))
                    break
    return {(m, n) for m, n in taken if f"{m}.{n}" not in MODULES}


def _lazy_references() -> set[tuple[str, str]]:
    """The names a façade's ``_LAZY`` map imports on first use."""
    taken = set()
    for module, (path, tree) in MODULES.items():
        for node in tree.body if path.name == "__init__.py" else []:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets):
                lazy = ast.literal_eval(node.value)  # type: ignore[union-attr]
                taken |= {(f"{module}.{where.lstrip('.')}", name) for name, where in lazy.items()}
    return taken


def _user_code() -> list[ast.Module]:
    """What users run: the README's python blocks, the benchmarks, the notebooks."""
    sources = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "benchmarks").glob("*.py"))]
    for doc in USER_DOCS:
        if (ROOT / doc).exists():
            text = (ROOT / doc).read_text(encoding="utf-8")
            sources += re.findall(r"```python\n(.*?)```", text, flags=re.S)
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        lines = "\n".join(code).splitlines()
        sources.append("\n".join(x for x in lines if not x.lstrip().startswith(("%", "!"))))
    return [ast.parse(source) for source in sources]


def _documented_names() -> set[tuple[str, str]]:
    """``coreviz_frames.module.name`` spelled out in the user docs' prose."""
    named = set()
    for doc in USER_DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8") if (ROOT / doc).exists() else ""
        for dotted in re.findall(r"coreviz_frames(?:\.\w+)+", text):
            module, _, name = dotted.rpartition(".")
            if module in MODULES:
                named.add((module, name))
    return named


def test_no_name_is_in_two_modules_all():
    owners: dict[str, list[str]] = {}
    for module, (_, tree) in MODULES.items():
        if not _is_facade(module):
            for name in _declared_all(tree) or []:
                owners.setdefault(name, []).append(module)
    shared = {name: found for name, found in owners.items() if len(found) > 1}
    unexpected = {name: found for name, found in shared.items() if name not in SHARED_FOR_NOW}
    assert unexpected == {}, "export each name from its owner only; import it from there"


def test_modules_take_from_each_other_only_what_is_exported():
    """A name one module imports from another is in that module's ``__all__``."""
    unexported = set()
    for importer, (_, tree) in MODULES.items():
        for module, name in _references(tree, importer) | _lazy_references():
            exported = _declared_all(MODULES[module][1])
            if module != importer and exported is not None and name not in exported:
                unexported.add(f"{importer} takes {module}.{name}")
    assert sorted(unexported) == [], "import it from its owner, or add it to the owner's __all__"


def test_users_are_shown_only_exported_names():
    """The README, notebooks and benchmarks import each name from the module that exports it."""
    unexported = {
        f"{module}.{name}"
        for tree in _user_code()
        for module, name in _references(tree)
        if not _is_facade(module) and name not in (_declared_all(MODULES[module][1]) or [name])
    }
    assert sorted(unexported) == [], "import it from its owner, or add it to the owner's __all__"


def test_every_exported_name_is_taken_by_another_module_or_by_users():
    """``__all__`` lists what other modules, the README, benchmarks and notebooks use; names
    only tests use stay out of it (tests may import them all the same)."""
    taken = _lazy_references() | _documented_names()
    for importer, (_, tree) in MODULES.items():
        taken |= {(m, n) for m, n in _references(tree, importer) if m != importer}
    for tree in _user_code():
        taken |= _references(tree)
    unused = [
        f"{module}.{name}"
        for module, (_, tree) in MODULES.items()
        if not _is_facade(module) and module not in PUBLIC_MODULES
        for name in _declared_all(tree) or []
        if (module, name) not in taken
    ]
    assert unused == [], "drop these from __all__: no other module and no user takes them"


def test_no_module_uses_a_private_name_of_another_through_its_module():
    """``module._name`` counts too, not only ``from module import _name``."""
    offenders = sorted(
        f"{importer} uses {module}.{name}"
        for importer, (_, tree) in MODULES.items()
        for module, name in _references(tree, importer)
        if module != importer and _is_private(name)
    )
    assert offenders == []

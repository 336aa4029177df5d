"""The house rules of ``core/``, ``ui/`` and ``pages/``, checked by reading the source with ``ast``.

Nothing here imports the code it checks. The rules:

1. **No import cycle.** (a) Among ``core`` modules, counting the imports that run when a
   module is imported (module level and class bodies; ``if TYPE_CHECKING:`` blocks never
   run and are skipped). Importing ``core.a.b`` also runs ``core/a/__init__.py``, so that
   counts as an import of ``core.a`` unless the importer lives inside ``core.a``.
   (b) Among ``core``'s packages (``core.index``, ``core.store``, ...), counting *every*
   import, function-level ones too: a lazy import may defer a heavy dependency, but it
   may not hide a cycle between two packages (what two packages need lives once, in the
   lower one or in ``core/_shared.py``).
2. **No private name across packages**: ``from core.<pkg>... import _name`` (or a module
   path with a ``_part``) only from inside ``<pkg>``; ``core._shared`` is the one private
   module meant for every package. Checked in ``core/``, ``ui/``, ``pages/`` and ``app.py``.
3. **Front doors**: every directory of ``core/`` holding Python files has an
   ``__init__.py`` with a literal ``__all__`` of public names, and each name is bound in
   that file. Every other ``__all__`` in ``core`` names bound names too; ``core``'s own
   lazy ``_EXPORTS`` map names to modules that bind them.
4. **Size**: no module of ``core/`` over :data:`MAX_LINES` lines.
5. **No Streamlit in ``core/``**, at any level.
6. **Pages draw**: ``pages/*.py`` and ``app.py`` never import :data:`PAGE_FORBIDDEN`
   (FAISS, scikit-learn, SQLite, numpy and other maths/storage libraries), at any level;
   from ``core`` they import only errors (``core.errors``), constants (``UPPER_CASE``
   names) and the value types in :data:`PAGE_VALUE_TYPES`; every call into ``core``
   goes through ``ui/``.

Every failure names the file and line. The checkers take the tree's root, and the tests
at the end run each on a small tree with a planted violation, so a checker that stopped
seeing anything would fail.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
SHARED_MODULE = "core._shared"
PAGE_FORBIDDEN = frozenset({"faiss", "sklearn", "sqlite3", "numpy", "scipy", "duckdb", "lancedb",
                            "umap", "torch", "sentence_transformers", "pyarrow"})
PAGE_VALUE_TYPES = frozenset({"RowFilter"})  # frozen dataclasses a page builds to hand to ui
CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Import:
    """One imported module (resolved to a module of the tree when it is one)."""

    path: Path          # the importing file
    line: int
    module: str         # dotted name as resolved (relative imports made absolute)
    names: tuple[str, ...]  # names of a ``from`` import; () for ``import x``
    runs_at_import: bool    # module level or class body, not under ``if TYPE_CHECKING:``
    type_only: bool         # under ``if TYPE_CHECKING:``

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path, top: str) -> list[Path]:
    base = root / top
    if base.is_file():
        return [base]
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module of ``core`` by dotted name."""
    return {module_name(p, root): p for p in python_files(root, "core")}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, root: Path) -> Iterator[Import]:
    """Every import statement of ``path``, at any depth."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def visit(node: ast.AST, at_import: bool, type_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(path, child.lineno, alias.name, (), at_import and not type_only, type_only)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[:len(package) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                yield Import(path, child.lineno, target, tuple(a.name for a in child.names),
                             at_import and not type_only, type_only)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, False, type_only)
            elif isinstance(child, ast.If) and is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), at_import, True)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), at_import, type_only)
            else:
                yield from visit(child, at_import, type_only)

    yield from visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), True, False)


def targets(imp: Import, mods: dict[str, Path]) -> set[str]:
    """The modules of the tree that ``imp`` runs (a ``from`` name may itself be a module)."""
    found = {f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in mods}
    if imp.module in mods and (not imp.names or len(found) < len(imp.names)):
        found.add(imp.module)
    return found


def enclosing(module: str, package: str, mods: dict[str, Path]) -> bool:
    """Whether ``module`` lives inside (or is) the package ``package``."""
    return mods[package].name == "__init__.py" and (module == package or module.startswith(package + "."))


def top_package(module: str) -> str:
    """``core.index.files`` -> ``core.index``; ``core.store`` -> ``core.store``."""
    return ".".join(module.split(".")[:2])


def import_graph(root: Path, packages: bool) -> dict[str, dict[str, Import]]:
    """``graph[a][b]``: the first import by which ``a`` runs ``b`` (modules or packages)."""
    mods = modules(root)
    graph: dict[str, dict[str, Import]] = {}
    for name, path in mods.items():
        for imp in imports(path, root):
            if imp.type_only or not (packages or imp.runs_at_import):
                continue
            for target in targets(imp, mods):
                parts = target.split(".")
                ran = {target} | {".".join(parts[:i]) for i in range(2, len(parts))
                                  if not enclosing(name, ".".join(parts[:i]), mods)}
                for t in ran:
                    a, b = (top_package(name), top_package(t)) if packages else (name, t)
                    if a != b:
                        graph.setdefault(a, {}).setdefault(b, imp)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle (as a node list, first node repeated last) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(path_back(graph, v, component))

    for node in sorted(graph):
        if node not in index:
            strong(node)
    return found


def path_back(graph: dict[str, dict[str, Import]], start: str, within: set[str]) -> list[str]:
    """A shortest path ``start -> ... -> start`` inside ``within`` (breadth first)."""
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in within:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def cycle_problems(root: Path, packages: bool) -> list[str]:
    graph = import_graph(root, packages)
    problems = []
    for cycle in cycles(graph):
        steps = [f"{graph[a][b].where(root)} imports {b}" for a, b in zip(cycle, cycle[1:])]
        problems.append(f"import cycle {' -> '.join(cycle)}: " + "; ".join(steps))
    return problems


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_name_problems(root: Path) -> list[str]:
    problems = []
    files = [p for top in ("core", "ui", "pages", "app.py") if (root / top).exists()
             for p in python_files(root, top)]
    for path in files:
        importer = module_name(path, root)
        for imp in imports(path, root):
            if not (imp.module == "core" or imp.module.startswith("core.")):
                continue
            if imp.module != "core" and top_package(imp.module) == top_package(importer):
                continue
            parts = [] if imp.module == SHARED_MODULE else imp.module.split(".")[1:]
            private = [part for part in parts if is_private(part)]
            private += [n for n in imp.names if is_private(n) and f"{imp.module}.{n}" != SHARED_MODULE]
            if private:
                problems.append(f"{imp.where(root)}: imports private {', '.join(private)} from {imp.module} "
                                f"(another package); import a public name from its front door")
    return problems


def bound_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (defs, classes, assignments, imports), also
    inside top-level ``if``/``try``/``for``/``with`` blocks, never inside functions."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in child.names)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names.add(child.id)
            elif not isinstance(child, (ast.Lambda, ast.comprehension, ast.ListComp, ast.SetComp,
                                        ast.DictComp, ast.GeneratorExp)):
                visit(child)

    visit(tree)
    return names


def dunder_all(tree: ast.Module) -> tuple[int, list[str] | None] | None:
    """(line, names) of a literal ``__all__``, (line, None) if not literal, None if absent."""
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets_ = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets_):
                value = node.value
                if isinstance(value, (ast.List, ast.Tuple)) and all(
                        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts):
                    return node.lineno, [e.value for e in value.elts]
                return node.lineno, None
    return None


def lazy_exports(tree: ast.Module) -> tuple[int, dict[str, str]] | None:
    """(line, {name: module}) of a literal ``_EXPORTS`` dict (``core``'s lazy front door)."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and isinstance(node.value, ast.Dict):
            return node.lineno, {k.value: v.value for k, v in zip(node.value.keys, node.value.values)
                                 if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
    return None


def front_door_problems(root: Path) -> list[str]:
    mods = modules(root)
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in mods.items()}
    problems = []
    dirs = sorted({p.parent for p in mods.values()})
    for d in dirs:
        if not (d / "__init__.py").is_file():
            problems.append(f"{d.relative_to(root)}/: a package directory without __init__.py")
    for name, path in mods.items():
        where = path.relative_to(root)
        found = dunder_all(trees[name])
        if found is None:
            if path.name == "__init__.py":
                problems.append(f"{where}:1: a front door without __all__")
            continue
        line, names = found
        if names is None:
            lazy = lazy_exports(trees[name]) if path.name == "__init__.py" else None
            if lazy is None:
                problems.append(f"{where}:{line}: __all__ is not a literal list of names")
                continue
            line, exports = lazy
            for export, module in exports.items():
                if module not in trees or export not in bound_names(trees[module]):
                    problems.append(f"{where}:{line}: _EXPORTS maps {export!r} to {module}, "
                                    f"which does not define it")
            names = list(exports)
        bound = bound_names(trees[name])
        for n in names:
            if n.startswith("_"):
                problems.append(f"{where}:{line}: __all__ hands on the private name {n!r}")
            elif found[1] is not None and n not in bound:
                problems.append(f"{where}:{line}: __all__ names {n!r}, which the module does not define")
    return problems


def size_problems(root: Path) -> list[str]:
    problems = []
    for path in python_files(root, "core"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            problems.append(f"{path.relative_to(root)}:{MAX_LINES + 1}: {lines} lines, over {MAX_LINES}; "
                            "split it by responsibility")
    return problems


def streamlit_problems(root: Path) -> list[str]:
    return [f"{imp.where(root)}: core imports {imp.module}" for path in python_files(root, "core")
            for imp in imports(path, root)
            if imp.module == "streamlit" or imp.module.startswith("streamlit.")]


def page_problems(root: Path) -> list[str]:
    problems = []
    files = [p for top in ("pages", "app.py") if (root / top).exists() for p in python_files(root, top)]
    for path in files:
        for imp in imports(path, root):
            if imp.module.split(".")[0] in PAGE_FORBIDDEN:
                problems.append(f"{imp.where(root)}: a page imports {imp.module}; "
                                "do that work in core and call it through ui")
            elif imp.module == "core" or imp.module.startswith("core."):
                if not imp.names:
                    problems.append(f"{imp.where(root)}: a page imports the module {imp.module}; "
                                    "import errors, constants or value types by name")
                elif imp.module != "core.errors":
                    other = [n for n in imp.names if not CONSTANT.match(n) and n not in PAGE_VALUE_TYPES]
                    if other:
                        problems.append(f"{imp.where(root)}: a page imports {', '.join(other)} from "
                                        f"{imp.module}; call core through ui (pages take only errors, "
                                        f"constants and {', '.join(sorted(PAGE_VALUE_TYPES))} from core)")
    return problems


CHECKS = {
    "module cycles": lambda root: cycle_problems(root, packages=False),
    "package cycles": lambda root: cycle_problems(root, packages=True),
    "private names": private_name_problems,
    "front doors": front_door_problems,
    "module size": size_problems,
    "streamlit in core": streamlit_problems,
    "pages": page_problems,
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_tree_keeps_the_rule(check: str):
    problems = CHECKS[check](ROOT)
    assert not problems, f"{check}:\n" + "\n".join(problems)


def test_the_checks_see_the_real_tree():
    assert len(modules(ROOT)) > 40
    assert len(import_graph(ROOT, packages=False)) > 30
    assert "core.index" in import_graph(ROOT, packages=True)["core.embeddings"]


# ---- each checker catches a planted violation -------------------------------------------------


def plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "core/__init__.py": '__all__ = []\n',
    "core/_shared.py": '__all__ = ["helper"]\ndef helper(): ...\n',
    "core/errors.py": 'class CatalogError(Exception): ...\n',
    "core/a/__init__.py": 'from core.a.one import run\n__all__ = ["run"]\n',
    "core/a/one.py": 'from core._shared import helper\ndef run(): return helper()\ndef _inner(): ...\n',
    "core/b/__init__.py": 'from core.b.two import go\n__all__ = ["go"]\n',
    "core/b/two.py": 'from core.a import run\ndef go(): return run()\n',
    "pages/p.py": 'import streamlit as st\nfrom core.errors import CatalogError\nfrom ui import x\n',
}


def test_a_clean_planted_tree_passes_every_check(tmp_path: Path):
    root = plant(tmp_path, CLEAN)
    assert {name: check(root) for name, check in CHECKS.items()} == {name: [] for name in CHECKS}


@pytest.mark.parametrize(("check", "files", "expected"), [
    ("module cycles", {"core/a/one.py": "from core.b.two import go\ndef run(): ...\n"},
     "core/a/one.py:1 imports core.b.two; core/b/two.py:1 imports core.a"),
    ("package cycles", {"core/a/one.py": "def run():\n    from core.b import go\n"},
     "import cycle core.a -> core.b -> core.a: core/a/one.py:2 imports core.b; "
     "core/b/two.py:1 imports core.a"),
    ("private names", {"core/b/two.py": "from core.a.one import _inner\n"},
     "core/b/two.py:1: imports private _inner from core.a.one (another package)"),
    ("front doors", {"core/a/__init__.py": 'from core.a.one import run\n__all__ = ["run", "walk"]\n'},
     "core/a/__init__.py:2: __all__ names 'walk', which the module does not define"),
    ("front doors", {"core/c/x.py": "X = 1\n"}, "core/c/: a package directory without __init__.py"),
    ("module size", {"core/a/one.py": "x = 1\n" * (MAX_LINES + 1)}, "core/a/one.py:401: 401 lines"),
    ("streamlit in core", {"core/a/one.py": "def run():\n    import streamlit as st\n"},
     "core/a/one.py:2: core imports streamlit"),
    ("pages", {"pages/p.py": "import numpy as np\n"}, "pages/p.py:1: a page imports numpy"),
    ("pages", {"pages/p.py": "from core.a import run\n"}, "pages/p.py:1: a page imports run from core.a"),
])
def test_each_check_names_the_file_and_line_of_a_planted_violation(tmp_path: Path, check, files, expected):
    root = plant(tmp_path, {**CLEAN, **files})
    problems = CHECKS[check](root)
    assert any(expected in p for p in problems), problems

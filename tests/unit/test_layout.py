"""House rules of the project's packages: no import cycles among a package's modules, no Python file over
800 lines.

Imports are read with `ast` and every import statement counts wherever it is: module level, inside functions
and methods, and under `if TYPE_CHECKING:` (a type-only import still makes two modules depend on each other).
`from pkg import name` counts as an import of the submodule `pkg.name` when that module exists, else of `pkg`;
relative imports are resolved against the importing module's package. Only the explicit target counts
(importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`, which is not recorded as an edge).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 800

CYCLE_FREE = ["lab", "support"]
SHORT_FILES = ["lab", "support"]


def _modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (a package is its `__init__.py`)."""
    out: dict[str, Path] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module of the package, line) for every import statement anywhere in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _longest_known(alias.name, known)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else _longest_known(base, known)
                if target is not None:
                    yield target, node.lineno


def _longest_known(name: str, known: set[str]) -> str | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def import_graph(package: str) -> dict[str, dict[str, int]]:
    """module -> {imported module of the same package -> line of the first such import}."""
    modules = _modules(package)
    known = set(modules)
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for module, path in modules.items():
        for target, line in _imported(module, path, known):
            if target != module:
                graph[module].setdefault(target, line)
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted: every module of a
    component reaches every other one through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _cycle_in(component: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """A shortest closed path through the component's first module (breadth-first inside the component)."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {component}")  # a component always has one


def _describe(component: list[str], graph: dict[str, dict[str, int]], package: str) -> str:
    """The component's modules and one cycle through them, each import with its file and line."""
    modules = _modules(package)
    cycle = _cycle_in(component, graph)
    steps = [
        f"{a} ({modules[a].relative_to(ROOT)}:{graph[a][b]})" for a, b in pairwise(cycle)
    ]
    return f"{', '.join(component)}: " + " -> ".join([*steps, cycle[-1]])


def test_cycle_finder_sees_function_local_and_relative_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import a\nimport pkg.sub\n")
    (pkg / "leaf.py").write_text("import pkg.a\nfrom pkg.sub import c\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    graph = import_graph("pkg")
    assert graph["pkg.b"] == {"pkg.sub.c": 2}
    assert graph["pkg.sub.c"] == {"pkg.a": 1, "pkg.sub": 2}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    assert _cycle_in(["pkg.a", "pkg.b", "pkg.sub.c"], graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


@pytest.mark.parametrize("package", CYCLE_FREE)
def test_no_import_cycles(package: str) -> None:
    graph = import_graph(package)
    cycles = [_describe(c, graph, package) for c in import_cycles(graph)]
    assert not cycles, f"import cycles in {package}/:\n" + "\n".join(cycles)


@pytest.mark.parametrize("package", SHORT_FILES)
def test_no_python_file_over_800_lines(package: str) -> None:
    counts = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in _modules(package).values()}
    too_long = {str(path.relative_to(ROOT)): n for path, n in counts.items() if n > MAX_LINES}
    assert not too_long, f"Python files over {MAX_LINES} lines in {package}/: {too_long}"

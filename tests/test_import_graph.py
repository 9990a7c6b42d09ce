"""No import circle between the modules of pid_bench, generators and estimators.

Every import counts, wherever it is written: at the top of a module, inside a function (a
lazy import), or under `if TYPE_CHECKING:`. A lazy import hides a circle from Python, not from
a reader: the two modules still depend on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pid_bench", "generators", "estimators")


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's `__init__`)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _imported(node: ast.AST, module: str, is_pkg: bool, known: dict) -> list[str]:
    """The dotted names an import statement imports (`from a import b`: `a.b` where `b` is a
    module, else `a`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from its package, one level up per extra dot
        pkg = module if is_pkg else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            pkg = pkg.rpartition(".")[0]
        base = f"{pkg}.{base}" if base else pkg
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of the three packages it imports (anywhere in its file)."""
    known = _modules(root)
    graph: dict[str, set[str]] = {}
    for module, (path, is_pkg) in known.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for name in _imported(node, module, is_pkg, known):
                while name and name not in known:  # `pid_bench.x.Y` -> module `pid_bench.x`
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.add(name)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path `[a, b, ..., a]`, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per group of modules that import each other, found one after another by
    taking each circle's modules out of the graph."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles = []
    while cycle := find_cycle(graph):
        cycles.append(cycle)
        for module in cycle:
            graph.pop(module, None)
        graph = {k: v - set(cycle) for k, v in graph.items()}
    return cycles


def test_no_import_circle() -> None:
    graph = import_graph()
    assert "pid_bench.runner" in graph and "estimators" in graph  # the walk found the packages
    cycles = find_cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_check_finds_a_circle() -> None:
    """The check itself: a circle through a lazy import is found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    two = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c", "a"}}
    assert find_cycles(two) == [["a", "b", "a"], ["c", "d", "c"]]


def test_lazy_and_type_checking_imports_count(tmp_path: Path) -> None:
    pkg = tmp_path / "pid_bench"
    pkg.mkdir()
    for name in ("generators", "estimators"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pid_bench.b import g\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pid_bench import a\n"
    )
    graph = import_graph(tmp_path)
    assert graph["pid_bench.a"] == {"pid_bench.b"}
    assert graph["pid_bench.b"] == {"pid_bench.a"}
    assert find_cycle(graph) == ["pid_bench.a", "pid_bench.b", "pid_bench.a"]

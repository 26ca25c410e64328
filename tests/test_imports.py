"""The package's own import structure: every module imports on its own, the import graph among
gnntrack's modules has no cycle, the training engine (gnntrack/train/) depends on neither the
studies nor the CLI verbs, and the verbs (gnntrack/commands/) are leaves only the CLI loads.

The graph is read from the source (AST), so an import inside a function counts like one at the top:
a lazy import hides a cycle from Python's import machinery but not from a reader.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gnntrack

PACKAGE_DIR = Path(gnntrack.__file__).resolve().parent

# (importer, imported) edges tolerated in a cycle; a cycle is fixed by moving the shared piece, so
# this stays empty.
CYCLE_ALLOWLIST: frozenset[tuple[str, str]] = frozenset()


def module_files() -> dict[str, Path]:
    """{'gnntrack.a.b': path} for every module of the package (packages by their __init__.py)."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The gnntrack modules that `path` (module `name`) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b` imports module a.b when it is one, else the name b from a
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import gnntrack.a.b as c` of a name, not a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(path, name, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle [a, b, ..., a] of `graph` (edges in CYCLE_ALLOWLIST ignored), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if (node, nxt) in CYCLE_ALLOWLIST:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_a_two_module_cycle_and_none_in_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_among_the_package_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_training_engine_imports_neither_studies_nor_commands():
    graph = import_graph()
    bad = {(name, dep) for name, deps in graph.items() if name.startswith("gnntrack.train")
           for dep in deps if dep.startswith(("gnntrack.studies", "gnntrack.commands"))}
    assert not bad


def test_commands_are_leaves_that_only_the_cli_loads():
    # a verb's module is a thin wrapper: what another verb or an experiment needs lives in the package
    graph = import_graph()
    bad = {(name, dep) for name, deps in graph.items() for dep in deps
           if dep.startswith("gnntrack.commands.") and name != "gnntrack.cli"}
    assert not bad


def test_experiments_and_scripts_do_not_import_the_commands():
    root = PACKAGE_DIR.parent
    bad = []
    for path in sorted([*root.glob("experiments/**/*.py"), *root.glob("scripts/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(root)}: {n}" for n in names if n.startswith("gnntrack.commands")]
    assert not bad


def test_every_module_imports_in_a_fresh_interpreter():
    # one fresh interpreter for all modules (importing each alone would start ~100 interpreters);
    # a module that only imports after another one did would still fail the cycle test above
    names = sorted(name for name in module_files() if not name.endswith("__main__"))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

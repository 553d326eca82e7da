"""The rooms' imports point one way only, and no module imports itself back through others.

The layers, lowest first (docs/architecture.md)::

    agents  <-  scenarios  <-  simulation          analysis (reads run folders; uses agents' maths)
                                     ^                  ^
                                     +--- experiments --+   <-   cli
                                     +--- dashboard ----+   <-   cli
    files (atomic writes): below every room
    facade/ (the top-level package ``hvae`` itself: ``import hvae``, the Python API): above every room but cli

A room may import only itself and the rooms it sits on. Every ``import`` statement counts, also
the ones inside functions (a lazy import is still a dependency), so an upward import anywhere
fails :func:`test_no_room_imports_upward`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Each room and the rooms it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "files": set(),
    "agents": {"files"},
    "scenarios": {"files", "agents"},
    "simulation": {"files", "agents", "scenarios"},
    "analysis": {"files", "agents"},
    "experiments": {"files", "agents", "scenarios", "simulation", "analysis"},
    "dashboard": {"files", "agents", "scenarios", "simulation", "analysis"},
    "cli": {"files", "agents", "scenarios", "simulation", "analysis", "experiments", "dashboard"},
    # the facade (facade/__init__.py, facade/api.py, installed as hvae/) composes the rooms; no room imports it
    "hvae": {"files", "agents", "scenarios", "simulation", "analysis", "experiments"},
}


#: Rooms whose folder has another name: the top-level package ``hvae`` lives in facade/ (setup.py says why).
FOLDERS = {"hvae": "facade"}


def room_of(module: str) -> str:
    """``hvae.<room>.…`` → the room; a module of the top-level package itself (``hvae``, ``hvae.api``) → ``hvae``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "hvae"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts and parts[0] == FOLDERS["hvae"]:  # the top-level package's own modules
        parts.pop(0)
    return ".".join(["hvae", *parts])


def imported_modules(source: str, module: str, is_package: bool = False, runtime_only: bool = False) -> set[str]:
    """Every ``hvae.…`` module a source imports, at any depth (relative imports resolved).

    ``runtime_only`` leaves out imports under ``if TYPE_CHECKING:`` (annotations only: they never
    run, so they cannot form an import cycle; they still count as dependencies between rooms).
    """
    tree = ast.parse(source)
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(inner) for child in node.body for inner in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hvae."))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if base.startswith("hvae."):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def sources() -> dict[str, tuple[Path, str]]:
    out = {}
    for room in ALLOWED:
        for path in sorted((ROOT / FOLDERS.get(room, room)).rglob("*.py")):
            out[module_name(path)] = (path, path.read_text(encoding="utf-8"))
    return out


def upward_imports(module: str, imports: set[str]) -> list[str]:
    room = room_of(module)
    allowed = ALLOWED[room] | {room}
    return sorted(name for name in imports if room_of(name) not in allowed)


def test_every_room_is_known() -> None:
    rooms = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert rooms == {FOLDERS.get(room, room) for room in ALLOWED}


def test_no_room_imports_upward() -> None:
    problems = []
    for module, (path, source) in sources().items():
        for name in upward_imports(module, imported_modules(source, module, path.name == "__init__.py")):
            problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, "upward imports:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("hvae.simulation.dynamics", "def f():\n    from hvae.analysis.revealed import fit_revealed_angle\n"),
        ("hvae.agents.svo", "import hvae.scenarios.schema\n"),
        ("hvae.analysis.summary", "from hvae.simulation import runner\n"),
        ("hvae.experiments.sweep.spec", "from ...cli import main\n"),
    ],
)
def test_the_check_catches_an_upward_import(module: str, source: str) -> None:
    assert upward_imports(module, imported_modules(source, module))


def test_no_import_cycles_between_modules() -> None:
    code = sources()
    graph = {
        module: {name for name in imported_modules(source, module, path.name == "__init__.py", runtime_only=True) if name in code}
        - {module}
        for module, (path, source) in code.items()
    }
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_lazy_cycle() -> None:
    graph = {"hvae.cli.main": {"hvae.experiments.sweep"}, "hvae.experiments.sweep": {"hvae.cli.main"}}
    assert find_cycles(graph)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules of each import cycle (strongly connected groups, Tarjan), first one repeated at the end."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group) + [sorted(group)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups

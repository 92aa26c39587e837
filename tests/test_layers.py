"""The layout's rules, checked on the source: layers point one way, and no
two files import each other (directly or around a loop).

Every import statement counts, at any depth: inside functions (the CLI's
lazy imports), inside `if TYPE_CHECKING:` blocks, relative or absolute.
The parts and what each may import are the layout table of DESIGN.md.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "posgw"
#: Each part of `posgw` (a top-level folder) and the parts it may import.
#: Third-party libraries are allowed everywhere except in protocols/.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "protocols": frozenset(),
    "drivers": frozenset({"protocols"}),
    "gateway": frozenset({"protocols", "drivers"}),
    "center": frozenset({"protocols", "drivers"}),
    "simulator": frozenset({"protocols", "drivers"}),
    "sandbox": frozenset({"protocols", "drivers", "gateway", "center", "simulator"}),
    "cli": frozenset({"protocols", "drivers", "gateway", "center", "simulator", "sandbox"}),
}
PARTS = tuple(MAY_IMPORT)


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module, as written in a file (with its line)."""

    source: Path
    line: int
    module: str  # absolute dotted name


def module_name(path: Path) -> str:
    """`gateway/store/models.py` -> `posgw.gateway.store.models` (packages: their name)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def source_files() -> list[Path]:
    return sorted(path for part in PARTS for path in (ROOT / part).rglob("*.py"))


MODULES: dict[str, Path] = {module_name(path): path for path in source_files()}


def imports_of(path: Path) -> Iterator[Import]:
    """Every module `path` imports; `from P import n` names P.n when n is a module."""
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield Import(path, node.lineno, child if child in MODULES else base)


def _absolute(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    anchor = package.split(".")
    anchor = anchor[:len(anchor) - (level - 1)]
    return ".".join([*anchor, *([module] if module else [])])


def part_of(module: str) -> str | None:
    """The posgw part a module belongs to (None: not ours, or the package face)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[0] == PACKAGE else None


def own_file(module: str) -> Path | None:
    """The file of the module (or of its nearest enclosing module of ours)."""
    while module:
        if module in MODULES:
            return MODULES[module]
        module = module.rpartition(".")[0]
    return None


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- the layers ---------------------------------------------------------------


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_only_the_layers_it_may(part: str) -> None:
    allowed = MAY_IMPORT[part] | {part}
    wrong = [f"{shown(i.source)}:{i.line} imports {i.module} ({part_of(i.module)}/)"
             for path in source_files() if path.relative_to(ROOT).parts[0] == part
             for i in imports_of(path)
             if part_of(i.module) is not None and part_of(i.module) not in allowed]
    assert not wrong, f"{part}/ may import only {sorted(allowed)}:\n" + "\n".join(wrong)


#: The one library protocols/ may use: the MACs' block ciphers (DES, AES)
#: are pure computation, no I/O, and no one should write their own.
PROTOCOLS_LIBRARIES = frozenset({"cryptography"})


def test_protocols_imports_only_the_standard_library_and_its_ciphers() -> None:
    allowed = {*sys.stdlib_module_names, *PROTOCOLS_LIBRARIES, PACKAGE, "__future__"}
    wrong = [f"{shown(i.source)}:{i.line} imports {i.module}"
             for path in (ROOT / "protocols").rglob("*.py") for i in imports_of(path)
             if i.module.split(".")[0] not in allowed]
    assert not wrong, "protocols/ is sans-IO: stdlib and block ciphers only:\n" + "\n".join(wrong)


def test_the_walk_sees_lazy_and_type_checking_imports() -> None:
    """The checks above would pass vacuously if the walk missed nested imports."""
    modules = {i.module for i in imports_of(ROOT / "cli" / "center.py")}
    assert "posgw.center.queries" in modules  # imported inside a command function
    assert "posgw.center.verify" in modules  # imported under TYPE_CHECKING


# --- loops between files ------------------------------------------------------


def import_graph() -> dict[Path, set[Path]]:
    graph: dict[Path, set[Path]] = {path: set() for path in source_files()}
    for path in graph:
        for item in imports_of(path):
            target = own_file(item.module) if part_of(item.module) else None
            if target is not None and target != path:
                graph[path].add(target)
    return graph


def loops(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """The strongly connected sets of files with more than one file (Tarjan)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    found: list[list[Path]] = []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_the_loop_finder_finds_a_loop() -> None:
    a, b, c = Path("a.py"), Path("b.py"), Path("c.py")
    assert loops({a: {b}, b: {c}, c: {a}}) == [[a, b, c]]
    assert loops({a: {b}, b: {c}, c: set()}) == []


@pytest.mark.parametrize("part", PARTS)
def test_no_two_files_import_each_other(part: str) -> None:
    """Within each part (a loop across parts is a layer violation above)."""
    graph = import_graph()
    found = [component for component in loops(graph)
             if any(path.relative_to(ROOT).parts[0] == part for path in component)]
    described = ["  " + " <-> ".join(shown(path) for path in component) + "\n    " +
                 "\n    ".join(f"{shown(path)} imports {shown(target)}"
                               for path in component for target in sorted(graph[path])
                               if target in component)
                 for component in found]
    assert not found, f"import loops in {part}/:\n" + "\n".join(described)

"""The layout stays readable: no import cycles between modules, nor between the packages
of cqrs_cli (domain, journal, write, views, projection, sync, read, cli), counting every
import, lazy and type-checking ones included: a cycle is a cycle for whoever reads the
code, even when Python tolerates it at run time."""

from __future__ import annotations

import ast
from pathlib import Path

import cqrs_cli

ROOT = Path(cqrs_cli.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The cqrs_cli modules `path` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("cqrs_cli"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("cqrs_cli"):
                continue
            for alias in node.names:  # `from . import bulk` imports a module
                if f"{target}.{alias.name}" in MODULES:
                    found.add(f"{target}.{alias.name}")
                    break
            else:
                found.add(target)
    return {module for module in found if module in MODULES and module != name}


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph`, as a path that ends where it starts; None if there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def package_of(module: str) -> str:
    """cqrs_cli.write.batch -> write; a top-level module (errors, paths) is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cqrs_cli"


def test_no_module_imports_itself_through_others() -> None:
    graph = {name: imports_of(path) for name, path in MODULES.items()}
    # The package's __init__ lists the public names lazily (it imports nothing at run
    # time, and nothing inside imports it): leave it out.
    graph.pop("cqrs_cli", None)
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph) or [])


def test_no_package_imports_itself_through_others() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if name == "cqrs_cli":
            continue
        source = package_of(name)
        targets = {package_of(module) for module in imports_of(path)} - {source, "cqrs_cli"}
        graph.setdefault(source, set()).update(targets)
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph) or [])


def test_the_journal_and_the_domain_know_nothing_of_the_layers_above() -> None:
    for name, path in MODULES.items():
        package = package_of(name)
        if package not in ("domain", "journal"):
            continue
        above = {package_of(m) for m in imports_of(path)} & {"write", "read", "sync", "cli"}
        assert not above, f"{name} imports {above}"

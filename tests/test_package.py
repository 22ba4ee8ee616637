"""The package's shape: module-level imports form no cycle, and the product never imports
the tools, the research scripts or the tests."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "cae_codec"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_dir(package: str, name: str) -> bool:
    """True when ``package.name`` is a module of the repository (not an attribute)."""
    base = REPO.joinpath(*package.split("."), name)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported: module-level statements only (imports
    inside functions run later, and ``if TYPE_CHECKING:`` blocks never)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.Try)) else ():
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names}
            elif isinstance(sub, ast.ImportFrom) and sub.module:
                # `from pkg import mod` needs the module mod; `from pkg import name` needs pkg itself
                found |= {
                    f"{sub.module}.{a.name}" if (modules_dir(sub.module, a.name)) else sub.module for a in sub.names
                }
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in top_level_imports(path) if t in modules and t != name}
        # importing a.b.c imports a and a.b first: that order is how packages work, not a
        # dependency on what their __init__ defines, so only the module itself counts
        edges[name] = targets & modules.keys()
    return edges


def test_module_level_imports_form_no_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                # a package importing its own submodule is how packages work, not a cycle
                cycle = [*stack[stack.index(nxt) :], nxt]
                if not all(b.startswith(a + ".") for a, b in itertools.pairwise(cycle)):
                    raise AssertionError("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_product_imports_no_tool_research_or_test_module() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            for name in names:
                assert name.split(".")[0] not in ("tools", "research", "tests", "bench"), f"{path}: imports {name}"

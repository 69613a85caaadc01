"""The house's shape, held by tests: no import circles between modules, the CLI on top.

import-linter (`lint-imports`, in CI beside ruff) keeps the packages in their layers
(pyproject.toml). It compares packages, so it cannot see a circle inside one package,
and it does not see cli/, which is installed as nmt.cli from outside nmt/. These tests
cover both, reading the imports the way import-linter does (grimp), imports under
`if TYPE_CHECKING:` included: a circle that only type checkers follow is still a circle
in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parents[1]


def strongly_connected(graph) -> list[list[str]]:
    """The import circles of `graph`: its strongly connected sets of two or more modules
    (Tarjan's algorithm, iterative, so a deep chain cannot overflow the stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    imported = sorted(graph.find_modules_directly_imported_by(child))
                    work.append((child, iter(imported)))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                circle = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    circle.append(member)
                    if member == module:
                        break
                if len(circle) > 1:
                    circles.append(sorted(circle))
    return circles


def test_the_circle_finder_finds_a_circle():
    class Graph:
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, module):
            return self.edges[module]

    assert strongly_connected(Graph()) == [["a", "b", "c"]]


def test_no_module_of_nmt_imports_another_in_a_circle():
    graph = grimp.build_graph("nmt", exclude_type_checking_imports=False, cache_dir=None)
    assert strongly_connected(graph) == []


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports by name (relative imports are not used in nmt)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_entry_point_imports_the_command_line():
    """nmt.cli is the top floor: no library module may reach up into it."""
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "nmt").rglob("*.py")
        if any(m == "nmt.cli" or m.startswith("nmt.cli.") for m in imported_modules(path))
    ]
    assert importers == ["nmt/__main__.py"]


# ---------------------------------------------------------------------------- sizes

MAX_FILE_LINES = 400
MAX_BODY_LINES = 60
# Paths (a folder ends in /) whose sizes are not held, each with its reason: none now.
EXEMPT: set[str] = set()


def exempt(path: str) -> bool:
    return any(path == e or (e.endswith("/") and path.startswith(e)) for e in EXEMPT)


def sources() -> list[tuple[str, str]]:
    """(path from the root, text) of every module of nmt/, cli/ and the runtime (runtime/)
    not in EXEMPT."""
    folders = (ROOT / "nmt", ROOT / "cli", ROOT / "runtime" / "nmt_runtime")
    paths = sorted(path for folder in folders for path in folder.rglob("*.py"))
    found = [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in paths]
    return [(path, text) for path, text in found if not exempt(path)]


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's body in lines: from its first statement (the docstring, if any) to its
    last line, blank lines and comments between included. The signature is not counted:
    a command's typed CLI options are declarations, not steps."""
    return node.end_lineno - node.body[0].lineno + 1


def test_the_size_counter_counts_the_body_with_its_docstring():
    (f,) = ast.parse('def f(\n    a,\n):\n    """Doc."""\n\n    return a\n').body
    assert body_lines(f) == 3


def test_no_file_is_past_400_lines():
    long = {path: n for path, text in sources() if (n := len(text.splitlines())) > MAX_FILE_LINES}
    assert long == {}


def test_no_function_body_is_past_60_lines():
    long = {
        f"{path}:{node.lineno} {node.name}": body_lines(node)
        for path, text in sources()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and body_lines(node) > MAX_BODY_LINES
    }
    assert long == {}

"""The shape of the library (DESIGN.md, "The shape of the house"), checked from its imports.

Reads the source, never runs it: every ``import`` statement of every module (those
inside functions too, since a lazy import still ties two modules together) and of every
notebook's code cells.
- no import cycle inside ``mamllib``;
- the core (``mamllib/maml.py``) imports no other mamllib module than its batch type and
  its argument checks;
- nothing outside ``mamllib/tools/`` imports the tooling;
- a notebook imports from at most three mamllib namespaces and from no command-line module;
- no library module is over 400 lines (the tooling excepted).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from mamllib.paths import ROOT

PACKAGE = ROOT / "mamllib"
CORE = "mamllib.maml"
CORE_MAY_IMPORT = {"mamllib.batch", "mamllib.checks"}
TOOLS = "mamllib.tools"
MAX_LINES = 400
MAX_NAMESPACES = 3
NOTEBOOK_FOLDERS = ("notebooks", "lecture", "student")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The mamllib module an import names (``from a.b import c``: ``a.b.c`` if a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported(tree: ast.AST) -> set[str]:
    """Every mamllib module a parsed source imports, and the packages that run first.

    ``mamllib`` itself is included only when an import names it directly
    (``import mamllib``, ``from mamllib import MAML``).
    """
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        if name != "mamllib" and not name.startswith("mamllib."):
            continue
        module = resolve(name)
        if module == "mamllib":
            found.add(module)
        while module and module != "mamllib":  # importing a.b.c runs a.b's __init__ first
            found.add(module)
            module = module.rpartition(".")[0]
    return found


def ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def imports_of(module: str) -> set[str]:
    """The mamllib modules ``module`` imports; its own packages are left out: a module's
    package is already being imported when the module runs, whatever it imports."""
    source = MODULES[module].read_text(encoding="utf-8")
    return imported(ast.parse(source)) - ancestors(module)


GRAPH = {module: imports_of(module) for module in MODULES}


def is_command_line(module: str) -> bool:
    source = MODULES[module].read_text(encoding="utf-8")
    return (
        MODULES[module].name == "__main__.py"
        or "import argparse" in source
        or 'if __name__ == "__main__"' in source
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def library(module: str) -> bool:
    return module != TOOLS and not module.startswith(TOOLS + ".")


def test_the_checker_sees_imports_and_cycles():
    tree = ast.parse("import mamllib.maml\nfrom mamllib.data import load_omniglot\n"
                     "def f():\n    from mamllib.tools import bench\n")  # fmt: skip
    assert imported(tree) == {
        "mamllib.maml",
        "mamllib.data",
        "mamllib.tools",
        "mamllib.tools.bench",
    }
    assert imported(ast.parse("from mamllib import MAML")) == {"mamllib"}
    both = ast.parse(
        "from mamllib import rl, MAML\nimport mamllib.viz\nfrom mamllib.viz.plots import f"
    )
    assert namespaces(both) == {"mamllib", "mamllib.viz"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    both = ast.parse(
        "from mamllib import rl, MAML\nimport mamllib.viz\nfrom mamllib.viz.plots import f"
    )
    assert namespaces(both) == {"mamllib", "mamllib.viz"}
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_mamllib():
    # the root package imports most of the library to export it; every module runs it
    # first, so it is left out of the graph
    graph = {m: deps - {"mamllib"} for m, deps in GRAPH.items() if m != "mamllib"}
    assert cycles(graph) == []


def test_the_core_imports_only_its_batch_type_and_checks():
    assert GRAPH[CORE] <= CORE_MAY_IMPORT, sorted(GRAPH[CORE] - CORE_MAY_IMPORT)


def test_no_library_module_imports_the_tooling():
    offenders = {
        module: sorted(i for i in deps if not library(i))
        for module, deps in GRAPH.items()
        if library(module) and any(not library(i) for i in deps)
    }
    assert not offenders, offenders


def test_no_library_module_is_over_400_lines():
    long = {
        module: n
        for module, path in MODULES.items()
        if library(module) and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


NOTEBOOKS = sorted(p for folder in NOTEBOOK_FOLDERS for p in (ROOT / folder).glob("*.ipynb"))


def notebook_code(path: Path) -> ast.AST:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = [
        line
        for cell in cells
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))  # IPython magics and shell lines
    ]
    return ast.parse("\n".join(lines))


def namespaces(tree: ast.AST) -> set[str]:
    """What the import statements import from: ``from mamllib import rl`` is ``mamllib``,
    ``from mamllib.viz.plots import x`` and ``import mamllib.viz`` are ``mamllib.viz``."""
    paths = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            paths.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            paths.add(node.module)
    return {".".join(p.split(".")[:2]) for p in paths if p.split(".")[0] == "mamllib"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_notebook_reads_like_the_course(path):
    tree = notebook_code(path)
    assert len(namespaces(tree)) <= MAX_NAMESPACES, sorted(namespaces(tree))
    clis = sorted(m for m in imported(tree) if is_command_line(m))
    assert not clis, clis

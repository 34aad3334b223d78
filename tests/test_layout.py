"""The layout's promises: the contract is a leaf, config is light, no import cycles, no path
tricks in the jobs."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

PACKAGE = ROOT / "sparkface"


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path) -> tuple[set[str], set[str]]:
    """The project modules a file imports at its top level, and those it imports inside
    functions."""
    tree = ast.parse(path.read_text())
    top, inner = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sparkface"):
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("sparkface")]
        if not names:
            continue
        (top if node in tree.body else inner).update(names)
    return top, inner


def test_the_contract_imports_nothing_but_the_future():
    tree = ast.parse((PACKAGE / "core" / "contract.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [getattr(n, "module", None) for n in imports] == ["__future__"]


def test_importing_the_config_imports_neither_spark_nor_keras():
    probe = (
        "import sys, sparkface.core.config; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'keras', 'tensorflow'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


def test_no_project_import_inside_a_function_and_no_cycle():
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        top, inner = project_imports(path)
        assert not inner, f"{path}: imports {sorted(inner)} inside a function"
        graph[module_name(path)] = {m for m in top if m != "sparkface"}
    state: dict[str, str] = {}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join((*trail, module))
        state[module] = "open"
        for imported in graph.get(module, ()):
            visit(imported, (*trail, module))
        state[module] = "done"

    for module in graph:
        visit(module, ())


def test_no_job_or_test_edits_the_import_path():
    files = [*(ROOT / "jobs").glob("*.py"), *(ROOT / "tests").glob("*.py")]
    files += (ROOT / "research").rglob("*.py")
    assert len(files) > 40
    for path in files:
        if path.name != "test_layout.py":
            assert "sys.path" not in path.read_text(), path


def test_the_product_never_imports_the_lab():
    """research/ (model selection, trial benchmarks, the lab's jobs) may use sparkface; nothing
    the wheel ships may use research/."""
    shipped = [*PACKAGE.rglob("*.py"), *(ROOT / "jobs").glob("*.py")]
    shipped += (ROOT / "benchmarks").glob("*.py")
    for path in shipped:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            assert not [n for n in names if n.split(".")[0] == "research"], path

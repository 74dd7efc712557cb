"""The core is a core: nothing in flink_runbook/ imports Prefect, or the shell above it."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "flink_runbook"
SHELL = ("prefect", "flink_runbook.flows", "flink_runbook.tasks", "flink_runbook.deployments", "flink_runbook.cli",
         "flink_runbook.demo")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_core_module_imports_prefect_or_the_shell():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20
    offending = {
        str(path.relative_to(CORE)): sorted(name for name in imported_modules(path) if name.startswith(SHELL))
        for path in files
    }
    assert {file: names for file, names in offending.items() if names} == {}


def test_the_core_holds_the_domain_only():
    assert {p.name for p in CORE.iterdir() if p.is_dir() and any(p.glob("*.py"))} == {
        "flink",
        "containers",
        "runbook",
        "audit",
        "inventory",
    }
    assert not (CORE / "cli.py").exists() and not (CORE / "demo").exists()

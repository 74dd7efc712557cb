"""The product stands alone: nothing it imports at run time needs the demo harness or an optional extra.

tests/integration/test_adopt.py installs the built wheel in a fresh virtualenv; this catches the same mistake
in a second, in this checkout.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from flink_runbook.runbook.model import RecoveryResult, RecoveryStatus
from flink_runbook.runbook.reporting.recovery_report import recovery_report
from flink_runbook.runbook.reporting.timeline_chart import NO_MATPLOTLIB, report_chart
from tests.unit.test_operator_view import result_of_a_recovery

# Every module the installed tool may import, with the optional packages made unimportable first.
IMPORT_THE_PRODUCT = textwrap.dedent("""
    import importlib, pkgutil, sys
    SHELL = sys.argv[1:]
    for optional in ("matplotlib", "websockets.sync"):
        sys.modules[optional] = None  # an import of it raises ImportError, as where it is not installed
    # The shell's folders are packages of the namespace (pyproject.toml's package-dir), not its subfolders.
    names = []
    for top in ("flink_runbook", *(f"flink_runbook.{shell}" for shell in SHELL)):
        package = importlib.import_module(top)
        found = pkgutil.walk_packages(package.__path__, top + ".")
        names += [top, *(m.name for m in found if not m.name.endswith(".__main__"))]  # __main__ runs the CLI
    for name in names:
        importlib.import_module(name)
    print(len(names), sorted(m for m in sys.modules if m.startswith("flink_runbook.demo")))
""")
SHELL = ("flows", "tasks", "deployments", "serving", "infrastructure", "records", "cli")


def test_no_product_module_needs_the_demo_harness_or_matplotlib():
    command = [sys.executable, "-c", IMPORT_THE_PRODUCT, *SHELL]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    count, demo_modules = done.stdout.split(" ", 1)
    assert int(count) > 80 and demo_modules.strip() == "[]"


def test_without_matplotlib_the_report_says_there_is_no_chart(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = result_of_a_recovery()
    uri, note = report_chart(result)
    assert uri is None and note == NO_MATPLOTLIB
    report = recovery_report(result, uri, note)
    assert f"_{NO_MATPLOTLIB}_" in report and "![Timeline" not in report
    assert "| +2.0s | 3.2s | restart_taskmanagers tm |" in report  # the table is all there


def test_a_run_that_did_nothing_has_no_chart_and_no_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    healthy = RecoveryResult(cluster="c", status=RecoveryStatus.HEALTHY)
    assert report_chart(healthy) == (None, None)

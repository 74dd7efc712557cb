"""Apply the audit's safe fixes to the files: check every edit first, back up, then write. The only writer."""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flink_runbook.audit.cluster import AuditInputs, AuditResult
from flink_runbook.audit.compose_file import ComposeFileError, read_compose_file
from flink_runbook.audit.config_fix import FileFix, fix_compose, fix_flink_config
from flink_runbook.flink.config_file import ConfigFileError, read_flink_config


class UnsafeFix(RuntimeError):
    """An edit that would not read back cleanly; nothing was written."""


@dataclass
class WrittenFix:
    path: str
    backup: str | None  # None: nothing changed in this file
    diff: str
    changes: list[str]
    left: list[str]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def plan_fixes(inputs: AuditInputs, result: AuditResult) -> list[FileFix]:
    fixes = [
        fix_flink_config(config, config.path.read_text(), result.findings, inputs.flink_version)
        for config in inputs.configs.values()
    ]
    if inputs.compose is not None:
        fixes.append(fix_compose(inputs.compose, inputs.compose.path.read_text(), result.findings))
    return fixes


def _reads_back(fix: FileFix, probe_dir: Path) -> None:
    """The fixed text parses as the same kind of file, or the whole fix is refused."""
    probe = probe_dir / Path(fix.path).name
    probe.write_text(fix.fixed)
    try:
        if (
            probe.name in ("flink-conf.yaml", "config.yaml")
            or probe.suffix in (".yaml", ".yml")
            and "compose" not in probe.name
        ):
            read_flink_config(probe)
        else:
            read_compose_file(probe)
    except (ConfigFileError, ComposeFileError) as exc:
        raise UnsafeFix(f"{fix.path}: the fixed file would not read back ({exc}); nothing was written") from None


def write_fixes(fixes: list[FileFix], probe_dir: Path, now: datetime | None = None) -> list[WrittenFix]:
    """Check every changed file, back each up (<file>.bak-<UTC time>), then write; unchanged files are untouched."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    changed = [f for f in fixes if f.changed]
    for fix in changed:
        _reads_back(fix, probe_dir)
    written = []
    for fix in fixes:
        diff = "".join(
            difflib.unified_diff(
                fix.original.splitlines(keepends=True),
                fix.fixed.splitlines(keepends=True),
                fix.path,
                f"{fix.path} (fixed)",
            )
        )
        backup = None
        if fix.changed:
            backup = f"{fix.path}.bak-{stamp}"
            shutil.copy2(fix.path, backup)
        written.append(WrittenFix(fix.path, backup, diff, fix.changes, fix.left))
    for fix in changed:
        Path(fix.path).write_text(fix.fixed)
    return written

"""Apply the audit's safe fixes to the files: check every edit first, back up, then write. The only writer."""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flink_runbook.audit.cluster import AuditInputs, AuditResult, role_settings
from flink_runbook.audit.compose_file import ComposeFile, ComposeFileError, read_compose_file, read_compose_file_text
from flink_runbook.audit.config_fix import FileFix, fix_compose, fix_flink_config
from flink_runbook.audit.env_file import parse_env_text
from flink_runbook.audit.flink_properties import parse_properties
from flink_runbook.audit.properties_fix import (
    PropertyEdit,
    apply_property_edits,
    merge_edits,
    place_of,
    property_edits,
)
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
    """Every file's fix: each setting fixed where it lives (config file, or FLINK_PROPERTIES over it)."""
    roles = role_settings(inputs)
    fixes = [
        fix_flink_config(config, config.path.read_text(), result.findings, inputs.flink_version, roles.get(role))
        for role, config in inputs.configs.items()
    ]
    edits: list[PropertyEdit] = []
    left: list[str] = []
    for role, settings in roles.items():
        if settings.properties is not None or settings.file is None:
            found, cannot = property_edits(settings, inputs.services[role], result.findings, inputs.flink_version)
            edits += found
            left += cannot
    edits, shared = merge_edits(edits)
    left += shared
    compose = inputs.compose
    env_files = sorted({e.properties.path for e in edits} - ({compose.path} if compose else set()))
    for path in env_files:
        text = path.read_text()
        mine = [e for e in edits if e.properties.path == path]
        fixed, changes, cannot = apply_property_edits(text, mine, _env_reread(mine))
        fixes.append(FileFix(str(path), text, fixed, changes, cannot, kind="env"))
    if compose is not None:
        text = compose.path.read_text()
        mine = [e for e in edits if e.properties.path == compose.path]
        fixed, changes, cannot = apply_property_edits(text, mine, _compose_reread(compose))
        # The restart policy on the text as FLINK_PROPERTIES left it (a line added there moves the ones below).
        again = read_compose_file_text(fixed, compose.path, compose.variables) if fixed != text else compose
        restart = fix_compose(again, fixed, result.findings)
        fixes.append(
            FileFix(str(compose.path), text, restart.fixed, changes + restart.changes, cannot + restart.left, "compose")
        )
    left = list(dict.fromkeys(left))  # one block several roles read: said once
    if left:
        if fixes:
            fixes[-1].left += left
        else:
            fixes.append(FileFix(str(compose.path) if compose else "", "", "", left=left))
    return fixes


def _compose_reread(compose: ComposeFile):
    """The compose file's text as settings: each FLINK_PROPERTIES in it by place, and "" for everything else."""

    def reread(text: str) -> dict[str, dict[str, str]]:
        again = read_compose_file_text(text, compose.path, compose.variables)
        places: dict[str, dict[str, str]] = {}
        rest = {}
        for name, service in again.services.items():
            block = service.flink_properties
            if block is not None and block.path == compose.path:
                places[place_of(block)] = {key: entry.value for key, entry in block.entries.items()}
            settings = dict(service.settings)
            environment = settings.get("environment")
            if isinstance(environment, dict):
                settings["environment"] = {k: v for k, v in environment.items() if k != "FLINK_PROPERTIES"}
            elif isinstance(environment, list):
                settings["environment"] = [v for v in environment if not str(v).startswith("FLINK_PROPERTIES=")]
            rest[name] = settings
        places[""] = {"services": repr(rest)}
        return places

    return reread


def _env_reread(edits: list[PropertyEdit]):
    """An env file's text as settings: each edited variable's FLINK_PROPERTIES by place, "" the other variables."""
    blocks = {place_of(e.properties): e.properties for e in edits}

    def reread(text: str) -> dict[str, dict[str, str]]:
        values = parse_env_text(text)
        places = {
            place: {
                key: entry.value
                for key, entry in parse_properties(
                    values[block.label].value if block.label in values else "", block.path, block.label, 0, int
                ).entries.items()
            }
            for place, block in blocks.items()
        }
        names = {block.label for block in blocks.values()}
        places[""] = {name: env.value for name, env in values.items() if name not in names}
        return places

    return reread


def _reads_back(fix: FileFix, probe_dir: Path) -> None:
    """The fixed text parses as the same kind of file, or the whole fix is refused."""
    probe = probe_dir / Path(fix.path).name
    probe.write_text(fix.fixed)
    try:
        if fix.kind == "flink":
            read_flink_config(probe)
        elif fix.kind == "compose":
            read_compose_file(probe)
        else:
            parse_env_text(fix.fixed)
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

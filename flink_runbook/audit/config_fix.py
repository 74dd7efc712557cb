"""Safe fixes for audit findings, as text edits that keep everything else. Pure: text in, text out.

A line that holds exactly one `key: value` is edited in place, byte for byte
around it. What no single line holds in a standard YAML file (Flink 2.x
config.yaml, compose files) is edited with a YAML round trip that keeps
comments and order (audit.yaml_round_trip): a value in a flow map
(`heartbeat: {timeout: 5000}`), a nested key to rename, a service written as
a flow map; the result must read back with nothing but the fixed keys
changed, or the edit is left for a human. Flink 1.x flink-conf.yaml is not
YAML and has only the line editor. Anything needing a human's choice (where
checkpoints go, restarting a cluster) is left alone and said so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from flink_runbook.audit.compose_file import ComposeFile, ComposeFileError, read_compose_file_text
from flink_runbook.audit.config import AuditFinding, audit_flink_config, values_by_current_key
from flink_runbook.audit.settings import PROPERTIES, RoleSettings, as_settings
from flink_runbook.audit.yaml_round_trip import RoundTrip, RoundTripError
from flink_runbook.flink.config_file import LEGACY, ConfigFileError, FlinkConfigFile, parse_config_yaml
from flink_runbook.flink.options import key_status
from flink_runbook.flink.values import duration_ms

RUNBOOK_HEARTBEAT_TIMEOUT_MS = 180_000
RESTART_DELAY_MS = 10_000
RESTART_BUDGET_MS = 5 * 60_000
_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s:#][^:#]*?)(?P<sep>\s*:\s*)(?P<value>[^#]*?)(?P<rest>\s*(#.*)?)$")


@dataclass(frozen=True)
class NestedEdit:
    """An edit no single line holds, left for the YAML round trip: set `key` to `value`, or rename it
    to `new_key` at the top level (where its top-level parent stood)."""

    key: str
    line: int
    value: str | None = None
    new_key: str | None = None
    reason: str = ""

    @property
    def said(self) -> str:
        if self.new_key:
            return f"line {self.line}: {self.key} -> {self.new_key} (same value; was nested)"
        return f"line {self.line}: {self.key} -> {self.value} ({self.reason}; was not on a line of its own)"

    def expected(self, before: dict[str, str]) -> dict[str, str]:
        after = dict(before)
        if self.new_key:
            after[self.new_key] = after.pop(self.key)
        else:
            after[self.key] = str(self.value)
        return after


@dataclass
class FileFix:
    path: str
    original: str
    fixed: str
    changes: list[str] = field(default_factory=list)  # what was changed, for the on-call engineer
    left: list[str] = field(default_factory=list)  # findings not fixed here, and why
    kind: str = "flink"  # flink (a Flink config file) or compose

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


class _Editor:
    """Line edits on one file; refuses an edit it cannot make safely."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)
        self.appended: list[str] = []

    def set_value(self, line: int, key_text: str, value: str) -> bool:
        match = _LINE.match(self.lines[line - 1].rstrip("\n"))
        if not match or match.group("key").strip() != key_text:
            return False
        self.lines[line - 1] = f"{match['indent']}{match['key']}{match['sep']}{value}{match['rest']}" + self._newline(
            line - 1
        )
        return True

    def rename_key(self, line: int, old: str, new: str) -> bool:
        match = _LINE.match(self.lines[line - 1].rstrip("\n"))
        if not match or match.group("key").strip() != old or match.group("indent"):
            return False  # only a top-level (flat) key can be renamed in place
        self.lines[line - 1] = f"{new}{match['sep']}{match['value']}{match['rest']}" + self._newline(line - 1)
        return True

    def comment_out(self, line: int, why: str) -> None:
        self.lines[line - 1] = f"# {self.lines[line - 1].rstrip(chr(10))}  # {why}" + self._newline(line - 1)

    def insert_after(self, line: int, text: str) -> None:
        self.lines.insert(line, text + "\n")

    def append(self, text: str) -> None:
        self.appended.append(text + "\n")

    def _newline(self, index: int) -> str:
        return "\n" if self.lines[index].endswith("\n") else ""

    def text(self) -> str:
        body = "".join(self.lines)
        if self.appended and body and not body.endswith("\n"):
            body += "\n"
        return body + "".join(self.appended)


def wanted_settings(codes: set[str], values: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(key, value, why) the safe fixes of `codes` set, from the role's settings as they apply (`values`:
    values_by_current_key)."""
    wanted = []
    if codes & {"HEARTBEAT_TIMEOUT_SHORT", "HEARTBEAT_RATIO_LOW"}:
        interval = _duration_or(values.get("heartbeat.interval", ("", ""))[0], 10_000)
        timeout = max(RUNBOOK_HEARTBEAT_TIMEOUT_MS, 5 * interval)
        wanted.append(("heartbeat.timeout", str(int(timeout)), "the runbook's 3 min, at least 5 heartbeat intervals"))
    if "RESTART_BUDGET_SHORT" in codes:
        why = "restarts spread over 5 min"
        written_delay = _duration_or(values.get("restart-strategy.fixed-delay.delay", ("", ""))[0], 1000)
        delay = max(written_delay, RESTART_DELAY_MS)
        attempts = math.ceil(RESTART_BUDGET_MS / delay)
        if delay != written_delay:
            wanted.append(("restart-strategy.fixed-delay.delay", f"{int(delay / 1000)} s", why))
        wanted.append(("restart-strategy.fixed-delay.attempts", str(attempts), why))
    if "CHECKPOINTS_NOT_RETAINED" in codes:
        wanted.append(
            (
                "execution.checkpointing.externalized-checkpoint-retention",
                "RETAIN_ON_CANCELLATION",
                "keep checkpoints of a failed job to resubmit from",
            )
        )
    return wanted


def role_findings(settings: RoleSettings, findings: list[AuditFinding], flink_version: str) -> list[AuditFinding]:
    """The findings of `findings` that are about this role's settings (its file or its FLINK_PROPERTIES)."""
    mine = set(audit_flink_config(settings, flink_version))
    return [f for f in findings if f in mine]


def fix_flink_config(
    config: FlinkConfigFile,
    text: str,
    findings: list[AuditFinding],
    flink_version: str,
    settings: RoleSettings | None = None,
) -> FileFix:
    """Apply the safe fixes for `findings` (those located in this file) to `text`, the file's content.

    `settings`: the role's settings when FLINK_PROPERTIES lie over the file; a key set there is fixed there
    (audit.properties_fix), not here, where the image would override it."""
    role = settings or as_settings(config)
    editor = _Editor(text)
    fix = FileFix(str(config.path), text, text)
    values = values_by_current_key(config, flink_version)
    mine = [f for f in findings if f.where.startswith(f"{config.path}:") or f.where.startswith(f"{config.path} ")]
    codes = {f.code for f in mine} | {f.code for f in role_findings(role, findings, flink_version)}
    nested: list[NestedEdit] = []

    def set_key(key: str, value: str, reason: str) -> None:
        if role.origin.get(role_values.get(key, ("", key))[1]) == PROPERTIES:
            return  # FLINK_PROPERTIES sets it over this file: fixed there
        if key not in values:
            editor.append(f"{key}: {value}")
            fix.changes.append(f"added {key}: {value} ({reason})")
            return
        old, written = values[key]
        entry = config.entries[written]
        leaf = written if config.format == LEGACY or "." not in written else written.rsplit(".", 1)[-1]
        if editor.set_value(entry.line, leaf, value) or editor.set_value(entry.line, written, value):
            fix.changes.append(f"line {entry.line}: {written}: {old} -> {value} ({reason})")
        elif config.format == LEGACY:
            fix.left.append(f"line {entry.line}: {written} is not on a line of its own; set it to {value} by hand")
        else:
            nested.append(NestedEdit(written, entry.line, value=value, reason=reason))

    role_values = values_by_current_key(role, flink_version)
    for key, value, reason in wanted_settings(codes, role_values):
        set_key(key, value, reason)
    for finding in mine:
        if finding.code in ("CONFIG_KEY_RENAMED", "CONFIG_KEY_GONE"):
            nested += _rename_or_remove(config, editor, fix, finding, flink_version)
        elif finding.code in ("CHECKPOINTING_NOT_CONFIGURED", "CHECKPOINT_DIR_NOT_CONFIGURED"):
            fix.left.append(f"{finding.code}: needs your choice ({finding.recommended})")
    fix.fixed = _round_trip(config, editor.text(), nested, fix)
    return fix


def _entries(text: str, config: FlinkConfigFile) -> dict[str, str]:
    return {key: entry.value for key, entry in parse_config_yaml(text, config.path).entries.items()}


def _round_trip(config: FlinkConfigFile, text: str, edits: list[NestedEdit], fix: FileFix) -> str:
    """The nested edits with a YAML round trip, accepted only if nothing else reads differently afterwards."""
    if not edits:
        return text
    try:
        document = RoundTrip(text)
        done = [edit for edit in edits if (document.rename_to_top_level(edit.key, edit.new_key) if edit.new_key
                                           else document.set_value(edit.key, str(edit.value)))]
        fixed = document.text()
        expected = _entries(text, config)
        for edit in done:
            expected = edit.expected(expected)
        if _entries(fixed, config) != expected:
            raise RoundTripError("the round trip would change other keys too")
    except (RoundTripError, ConfigFileError) as exc:
        fix.left += [f"line {edit.line}: {edit.key}: {exc}; fix it by hand" for edit in edits]
        return text
    fix.changes += [edit.said for edit in done]
    fix.left += [
        f"line {edit.line}: {edit.key} was not found to edit; fix it by hand" for edit in edits if edit not in done
    ]
    return fixed


def _duration_or(text: str, default_ms: float) -> float:
    try:
        return duration_ms(text)
    except ValueError:
        return default_ms  # unset or unreadable (CONFIG_VALUE_INVALID says so): Flink's default


def _rename_or_remove(
    config: FlinkConfigFile, editor: _Editor, fix: FileFix, finding: AuditFinding, flink_version: str
) -> list[NestedEdit]:
    """Rename or comment out a key Flink no longer reads; a nested one to rename is returned for the round trip."""
    key = finding.where.rsplit(" ", 1)[-1]
    entry = config.entries.get(key)
    if entry is None:
        return []
    status = key_status(key, flink_version)
    new = status.use
    if new and new in config.entries:
        editor.comment_out(entry.line, f"{new} is set too and wins")
        fix.changes.append(f"line {entry.line}: commented out {key} ({new} is set too and wins)")
    elif new and editor.rename_key(entry.line, key, new):
        fix.changes.append(f"line {entry.line}: {key} -> {new} (same value)")
    elif status.status == "gone":
        editor.comment_out(entry.line, f"Flink {flink_version} does not read {key}")
        fix.changes.append(f"line {entry.line}: commented out {key} (Flink {flink_version} does not read it)")
    elif new and config.format != LEGACY:
        return [NestedEdit(key, entry.line, new_key=new)]
    else:
        fix.left.append(f"line {entry.line}: {key} is nested; rename it to {new} by hand")
    return []


def fix_compose(compose: ComposeFile, text: str, findings: list[AuditFinding]) -> FileFix:
    """Add `restart: unless-stopped` where it is missing; nothing else in a compose file is changed."""
    editor = _Editor(text)
    fix = FileFix(str(compose.path), text, text, kind="compose")
    missing = []
    for finding in findings:
        if not finding.where.startswith(f"{compose.path}:") or " FLINK_PROPERTIES" in finding.where.replace(".", " "):
            continue  # another file's, or a Flink setting in FLINK_PROPERTIES (audit.properties_fix)
        if finding.code == "RESTART_POLICY_MISSING":
            missing.append(compose.services[finding.where.split(" services.", 1)[1].split(".", 1)[0]])
        else:
            fix.left.append(f"{finding.code}: needs your choice ({finding.recommended})")
    in_flow_maps = []
    edited: set[int] = set()
    for service in sorted(missing, key=lambda s: -s.line):  # bottom up: an inserted line moves only what is below
        if "restart" in service.merged:
            # Written in a map the service merges (`<<: *common`): edited there, for every service merging it,
            # only when each of them is being fixed too; else the others would change without a word.
            line = service.lines["restart"]
            source = service.merged["restart"]
            sharing = sorted(n for n, s in compose.services.items() if s.merged.get("restart") == source)
            others = [name for name in sharing if name not in {s.name for s in missing}]
            if others:
                fix.left.append(
                    f"services.{service.name}.restart is merged from the map at line {service.merged['restart']}, "
                    f"which {', '.join(others)} merge(s) too: set restart: unless-stopped in services."
                    f"{service.name} or in that map by hand"
                )
            elif line in edited:
                pass
            elif editor.set_value(line, "restart", "unless-stopped"):
                edited.add(line)
                fix.changes.append(f"line {line}: restart -> unless-stopped in the map {', '.join(sharing)} merge")
            else:
                fix.left.append(f"line {line}: restart is not on a line of its own; set it to unless-stopped by hand")
            continue
        if "restart" in service.lines:
            line = service.lines["restart"]
            if editor.set_value(line, "restart", "unless-stopped"):
                fix.changes.append(f"line {line}: services.{service.name}.restart -> unless-stopped")
            else:
                in_flow_maps.append(service)
            continue
        children = [line for key, line in service.lines.items() if "." not in key and key not in service.merged]
        if not children or min(children) == service.line:  # `name: {image: x}`: no line of its own to insert
            in_flow_maps.append(service)
            continue
        first = editor.lines[min(children) - 1]
        indent = first[: len(first) - len(first.lstrip())]
        editor.insert_after(service.line, f"{indent}restart: unless-stopped")
        fix.changes.append(f"line {service.line + 1}: added services.{service.name}.restart: unless-stopped")
    fix.fixed = _restart_in_flow_maps(compose, editor.text(), in_flow_maps, fix)
    return fix


def _restart_in_flow_maps(compose: ComposeFile, text: str, services: list, fix: FileFix) -> str:
    """`restart: unless-stopped` for services no line editor can reach, with a YAML round trip."""
    if not services:
        return text
    try:
        document = RoundTrip(text)
        for service in services:
            document.set_in(("services", service.name), "restart", "unless-stopped")
        fixed = document.text()
        before, after = read_compose_file_text(text, compose.path), read_compose_file_text(fixed, compose.path)
        for service in services:
            before.services[service.name].settings["restart"] = "unless-stopped"
        if {n: s.settings for n, s in before.services.items()} != {n: s.settings for n, s in after.services.items()}:
            raise RoundTripError("the round trip would change other settings too")
    except (RoundTripError, ComposeFileError) as exc:
        fix.left += [f"services.{s.name}: {exc}; add restart: unless-stopped by hand" for s in services]
        return text
    fix.changes += [f"line {s.line}: services.{s.name}.restart -> unless-stopped (a flow map)" for s in services]
    return fixed

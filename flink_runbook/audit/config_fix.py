"""Safe fixes for audit findings, as text edits that keep everything else byte for byte. Pure: text in, text out.

Only a line that holds exactly one `key: value` is edited; a value in a flow
map (`heartbeat: {timeout: 5000}`), a key nested under a parent that would be
left empty, and anything needing a human's choice (where checkpoints go,
restarting a cluster) is left alone and said so. Comments stay where they are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from flink_runbook.audit.compose_file import ComposeFile
from flink_runbook.audit.config import AuditFinding, values_by_current_key
from flink_runbook.flink.config_file import LEGACY, FlinkConfigFile
from flink_runbook.flink.options import key_status
from flink_runbook.flink.values import duration_ms

RUNBOOK_HEARTBEAT_TIMEOUT_MS = 180_000
RESTART_DELAY_MS = 10_000
RESTART_BUDGET_MS = 5 * 60_000
_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s:#][^:#]*?)(?P<sep>\s*:\s*)(?P<value>[^#]*?)(?P<rest>\s*(#.*)?)$")


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


def fix_flink_config(config: FlinkConfigFile, text: str, findings: list[AuditFinding], flink_version: str) -> FileFix:
    """Apply the safe fixes for `findings` (those located in this file) to `text`, the file's content."""
    editor = _Editor(text)
    fix = FileFix(str(config.path), text, text)
    values = values_by_current_key(config, flink_version)
    mine = [f for f in findings if f.where.startswith(f"{config.path}:") or f.where.startswith(f"{config.path} ")]
    codes = {f.code for f in mine}

    def set_key(key: str, value: str, reason: str) -> None:
        if key not in values:
            editor.append(f"{key}: {value}")
            fix.changes.append(f"added {key}: {value} ({reason})")
            return
        old, written = values[key]
        entry = config.entries[written]
        leaf = written if config.format == LEGACY or "." not in written else written.rsplit(".", 1)[-1]
        if editor.set_value(entry.line, leaf, value) or editor.set_value(entry.line, written, value):
            fix.changes.append(f"line {entry.line}: {written}: {old} -> {value} ({reason})")
        else:
            fix.left.append(f"line {entry.line}: {written} is not on a line of its own; set it to {value} by hand")

    if codes & {"HEARTBEAT_TIMEOUT_SHORT", "HEARTBEAT_RATIO_LOW"}:
        interval = _duration_or(values.get("heartbeat.interval", ("", ""))[0], 10_000)
        timeout = max(RUNBOOK_HEARTBEAT_TIMEOUT_MS, 5 * interval)
        set_key("heartbeat.timeout", str(int(timeout)), "the runbook's 3 min, at least 5 heartbeat intervals")
    if "RESTART_BUDGET_SHORT" in codes:
        written_delay = _duration_or(values.get("restart-strategy.fixed-delay.delay", ("", ""))[0], 1000)
        delay = max(written_delay, RESTART_DELAY_MS)
        attempts = math.ceil(RESTART_BUDGET_MS / delay)
        if delay != written_delay:
            set_key("restart-strategy.fixed-delay.delay", f"{int(delay / 1000)} s", "restarts spread over 5 min")
        set_key("restart-strategy.fixed-delay.attempts", str(attempts), "restarts spread over 5 min")
    if "CHECKPOINTS_NOT_RETAINED" in codes:
        set_key(
            "execution.checkpointing.externalized-checkpoint-retention",
            "RETAIN_ON_CANCELLATION",
            "keep checkpoints of a failed job to resubmit from",
        )
    for finding in mine:
        if finding.code in ("CONFIG_KEY_RENAMED", "CONFIG_KEY_GONE"):
            _rename_or_remove(config, editor, fix, finding, flink_version)
        elif finding.code in ("CHECKPOINTING_NOT_CONFIGURED", "CHECKPOINT_DIR_NOT_CONFIGURED"):
            fix.left.append(f"{finding.code}: needs your choice ({finding.recommended})")
    fix.fixed = editor.text()
    return fix


def _duration_or(text: str, default_ms: float) -> float:
    try:
        return duration_ms(text)
    except ValueError:
        return default_ms  # unset or unreadable (CONFIG_VALUE_INVALID says so): Flink's default


def _rename_or_remove(
    config: FlinkConfigFile, editor: _Editor, fix: FileFix, finding: AuditFinding, flink_version: str
) -> None:
    key = finding.where.rsplit(" ", 1)[-1]
    entry = config.entries.get(key)
    if entry is None:
        return
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
    else:
        fix.left.append(f"line {entry.line}: {key} is nested; rename it to {new} by hand")


def fix_compose(compose: ComposeFile, text: str, findings: list[AuditFinding]) -> FileFix:
    """Add `restart: unless-stopped` where it is missing; nothing else in a compose file is changed."""
    editor = _Editor(text)
    fix = FileFix(str(compose.path), text, text, kind="compose")
    missing = []
    for finding in findings:
        if not finding.where.startswith(f"{compose.path}:"):
            continue
        if finding.code == "RESTART_POLICY_MISSING":
            missing.append(compose.services[finding.where.split(" services.", 1)[1].split(".", 1)[0]])
        else:
            fix.left.append(f"{finding.code}: needs your choice ({finding.recommended})")
    for service in sorted(missing, key=lambda s: -s.line):  # bottom up: an inserted line moves only what is below
        if "restart" in service.lines:
            line = service.lines["restart"]
            if editor.set_value(line, "restart", "unless-stopped"):
                fix.changes.append(f"line {line}: services.{service.name}.restart -> unless-stopped")
            continue
        children = [line for key, line in service.lines.items() if "." not in key]
        if not children:
            fix.left.append(f"services.{service.name} has no settings to indent by; add restart by hand")
            continue
        first = editor.lines[min(children) - 1]
        indent = first[: len(first) - len(first.lstrip())]
        editor.insert_after(service.line, f"{indent}restart: unless-stopped")
        fix.changes.append(f"line {service.line + 1}: added services.{service.name}.restart: unless-stopped")
    fix.fixed = editor.text()
    return fix

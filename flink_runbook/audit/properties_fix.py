"""Safe fixes written where a setting lives when that is FLINK_PROPERTIES. Pure: text in, text out.

A setting's own line is edited in place (its value, or its key to a new name);
a setting not written anywhere, for a role with no config file, is added as a
line of the same block with the indentation of its last line. Everything else
in the file stays byte for byte. The edited file must read back with only the
intended settings changed (the same block for the same services, the rest of
the compose file or env file as it was), or nothing of it is kept. A block
several services get (an anchor they merge, the .env file) is edited only when
every one of them asks for the same change; else it is left for a human, said why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flink_runbook.audit.config import AuditFinding, values_by_current_key
from flink_runbook.audit.config_fix import role_findings, wanted_settings
from flink_runbook.audit.flink_properties import FlinkProperties, image_text
from flink_runbook.audit.settings import LIVE, PROPERTIES, RoleSettings
from flink_runbook.flink.options import key_status

NEEDS_A_CHOICE = ("CHECKPOINTING_NOT_CONFIGURED", "CHECKPOINT_DIR_NOT_CONFIGURED")


@dataclass
class PropertyEdit:
    properties: FlinkProperties
    key: str  # as written (or to add)
    value: str | None = None  # set (or add) to this
    new_key: str | None = None  # or rename to this
    reason: str = ""
    services: set[str] = field(default_factory=set)  # whose findings ask for it

    @property
    def adds(self) -> bool:
        return self.value is not None and self.key not in self.properties.entries

    @property
    def said(self) -> str:
        place = f"{self.properties.label}"
        if self.new_key:
            return f"{place}: {self.key} -> {self.new_key} (same value)"
        if self.adds:
            return f"{place}: added {self.key}: {self.value} ({self.reason})"
        old = self.properties.entries[self.key]
        return f"line {old.line}: {place} {self.key}: {old.value} -> {self.value} ({self.reason})"


def holds(properties: FlinkProperties, where: str) -> bool:
    """A finding's `where` points into this FLINK_PROPERTIES."""
    return where.startswith(f"{properties.path}:") and f" {properties.label} " in where


def property_edits(
    settings: RoleSettings, service: str, findings: list[AuditFinding], flink_version: str
) -> tuple[list[PropertyEdit], list[str]]:
    """What this role's findings change in its FLINK_PROPERTIES, and what is left for a human (and why)."""
    block = settings.properties
    mine = role_findings(settings, findings, flink_version)
    values = values_by_current_key(settings, flink_version)
    edits, left = [], []
    for key, value, reason in wanted_settings({f.code for f in mine}, values):
        written = values.get(key, (None, key))[1]
        origin = settings.origin.get(written)
        if origin == PROPERTIES:
            edits.append(PropertyEdit(block, written, value, reason=reason, services={service}))
        elif settings.file is None and origin in (None, LIVE):
            if block is None:
                left.append(f"{settings.role}: {key}: {value}: no config file or FLINK_PROPERTIES to write it in")
            else:
                edits.append(PropertyEdit(block, key, value, reason=reason, services={service}))
    for finding in mine:
        if block is None or not holds(block, finding.where):
            continue
        if finding.code in ("CONFIG_KEY_RENAMED", "CONFIG_KEY_GONE"):
            key = finding.where.rsplit(" ", 1)[-1]
            new = key_status(key, flink_version).use
            line = block.entries[key].line
            if new and new not in block.entries:
                edits.append(PropertyEdit(block, key, new_key=new, services={service}))
            else:
                why = f"{new} is set too and wins" if new else f"Flink {flink_version} does not read it"
                left.append(f"{block.path}:{line} {block.label} {key}: remove that line by hand ({why})")
        elif finding.code in NEEDS_A_CHOICE:
            left.append(f"{finding.code}: needs your choice ({finding.recommended})")
    return edits, left


def merge_edits(edits: list[PropertyEdit]) -> tuple[list[PropertyEdit], list[str]]:
    """One edit per block and key, asked for by all the services that get the block; or left, said why."""
    merged: dict[tuple, PropertyEdit] = {}
    for edit in edits:
        place = (str(edit.properties.path), edit.properties.line, edit.properties.label, edit.key)
        if place in merged and (merged[place].value, merged[place].new_key) == (edit.value, edit.new_key):
            merged[place].services |= edit.services
        else:
            merged.setdefault(place, edit)
    kept, left = [], []
    for edit in merged.values():
        others = sorted(set(edit.properties.services) - edit.services)
        if others:
            left.append(
                f"{edit.properties.path}:{edit.properties.line} {edit.properties.label} is shared with "
                f"{', '.join(others)} (an anchor they merge, or the env file), which would change too: "
                f"set {_wanted(edit)} by hand"
            )
        else:
            kept.append(edit)
    return kept, left


def _setting_at(line: str, key: str, written: str) -> re.Match | None:
    """`key: value` on a file line, the key not part of a longer word."""
    return re.search(rf"(?<![\w.\-])(?P<key>{re.escape(key)})(?P<sep>\s*:\s*)(?P<value>{re.escape(written)})", line)


def apply_property_edits(
    text: str, edits: list[PropertyEdit], reread: Callable[[str], dict[str, dict[str, str]]]
) -> tuple[str, list[str], list[str]]:
    """(fixed text, changes, left) of one file. `reread(text)`: each block in the file, by place_of, as
    settings; under "" the rest of the file as it reads (must not change). Edits in place are checked
    together, each added line on its own: one that does not read back is left, the others kept."""
    if not edits:
        return text, [], []
    left = [
        f"{e.properties.path}:{e.properties.line} {e.properties.label}: {e.properties.not_editable}; "
        f"set {_wanted(e)} by hand"
        for e in edits
        if e.properties.not_editable
    ]
    editable = [e for e in edits if not e.properties.not_editable]
    try:
        expected = reread(text)
    except ValueError as exc:
        return text, [], left + [f"{e.properties.path}: {_wanted(e)}: cannot read it again ({exc})" for e in editable]
    lines = text.splitlines(keepends=True)
    now: dict[tuple[int, str], tuple[str, str]] = {}  # (block, key as read) -> (key, value) on its line now
    in_place = []
    for edit in [e for e in editable if not e.adds]:  # first: line numbers stay
        entry = edit.properties.entries[edit.key]
        found = _setting_at(lines[entry.line - 1], edit.key, edit.properties.written[edit.key])
        if not found:
            left.append(f"{edit.properties.path}:{entry.line}: {edit.key} is not written on that line as read")
            continue
        start, end = (found.start("key"), found.end("key")) if edit.new_key else (found.start("value"), found.end())
        line = lines[entry.line - 1]
        lines[entry.line - 1] = line[:start] + (edit.new_key or edit.value) + line[end:]
        value = edit.value or edit.properties.written[edit.key]
        now[(id(edit.properties), edit.key)] = (edit.new_key or edit.key, value)
        in_place.append(edit)
    fixed, done = text, []
    if in_place:
        candidate, wanted = "".join(lines), _after(expected, in_place)
        if _reads(reread, candidate) == wanted:
            fixed, expected, done = candidate, wanted, in_place
        else:
            left += [_unread(e) for e in in_place]
            lines, now = text.splitlines(keepends=True), {}
    for edit in sorted([e for e in editable if e.adds], key=lambda e: -_last_line(e.properties)):  # bottom up
        block = edit.properties
        if not block.entries:
            left.append(f"{block.path}:{block.line} {block.label} is empty: add {_wanted(edit)} by hand")
            continue
        number = _last_line(block)
        last_key = next(k for k, e in block.entries.items() if e.line == number)
        key, written = now.get((id(block), last_key), (last_key, block.written[last_key]))
        line = lines[number - 1]
        found = _setting_at(line, key, written)
        if not found:
            left.append(f"{block.path}:{number}: {last_key} is not written on that line as read")
            continue
        before = line[: found.start("key")]
        indent = before if not before.strip() else ""
        lines[number - 1] = line[: found.end()] + f"\n{indent}{edit.key}: {edit.value}" + line[found.end() :]
        candidate, wanted = "".join(lines), _after(expected, [edit])
        if _reads(reread, candidate) == wanted:
            fixed, expected = candidate, wanted
            done.append(edit)
        else:
            lines = fixed.splitlines(keepends=True)
            left.append(
                f"{block.path}:{number} {block.label}: a line added there would not read back as a setting of its "
                f"own (the text is on one line, or in quotes that fold lines): add {_wanted(edit)} by hand"
            )
    return fixed, [e.said for e in done], left


def _wanted(edit: PropertyEdit) -> str:
    return f"{edit.new_key or edit.key}{': ' + edit.value if edit.value else ''}"


def _unread(edit: PropertyEdit) -> str:
    return (
        f"{edit.properties.path}:{edit.properties.line} {edit.properties.label}: the edit would change more than "
        f"{edit.key} (it reads back differently); set {_wanted(edit)} by hand"
    )


def _reads(reread: Callable[[str], dict[str, dict[str, str]]], text: str) -> dict[str, dict[str, str]] | None:
    try:
        return reread(text)
    except ValueError:  # ComposeFileError: not even readable
        return None


def _after(expected: dict[str, dict[str, str]], edits: list[PropertyEdit]) -> dict[str, dict[str, str]]:
    """The blocks as they should read once `edits` are made."""
    after = {place: dict(settings) for place, settings in expected.items()}
    for edit in edits:
        settings = after.get(place_of(edit.properties))
        if settings is None:
            continue
        if edit.new_key:
            settings[edit.new_key] = settings.pop(edit.key)
        else:
            settings[edit.key] = image_text(edit.value)
    return after


def _last_line(block: FlinkProperties) -> int:
    return max(entry.line for entry in block.entries.values()) if block.entries else block.line


def place_of(block: FlinkProperties) -> str:
    """A block's name across a re-read (its lines may move): its label and the services that get it."""
    return f"{block.label} for {', '.join(sorted(block.services))}"

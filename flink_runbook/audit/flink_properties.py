"""FLINK_PROPERTIES, the official Flink image's way to configure a container, read as its entrypoint applies it.

The entrypoint takes the variable line by line, removes every whitespace
character from the line, skips an empty one, and passes `key:value` (split at
the first ':') to Flink's config tool, which writes it over the config file:
a FLINK_PROPERTIES setting overrides the file's. Each setting is kept here with
the file and line it is written on (the compose file, or the env file the
variable comes from), so findings point at it and a fix can edit that line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flink_runbook.flink.config_file import ConfigEntry

VARIABLE = "FLINK_PROPERTIES"


def image_text(text: str) -> str:
    """A line as the entrypoint reads it (`tr -d '[:space:]'`)."""
    return "".join(text.split())


@dataclass
class FlinkProperties:
    path: Path  # the file it is written in: the compose file or an env file
    label: str  # where in that file: services.<name>.environment.FLINK_PROPERTIES, or FLINK_PROPERTIES
    line: int  # 1-based line of the variable
    entries: dict[str, ConfigEntry] = field(default_factory=dict)  # key -> value as applied, its line
    written: dict[str, str] = field(default_factory=dict)  # key -> its value as written on its line (for an edit)
    services: list[str] = field(default_factory=list)  # every service that gets this text
    not_editable: str | None = None  # why its lines cannot be edited one by one; None: they can
    skipped: list[str] = field(default_factory=list)  # lines the image would not apply as a setting

    def where(self, key: str) -> str:
        entry = self.entries.get(key)
        if entry:
            return f"{self.path}:{entry.line} {self.label} {key}"
        return f"{self.path}:{self.line} {self.label} (no {key})"


def parse_properties(
    text: str, path: Path, label: str, line: int, line_of: Callable[[int], int], not_editable: str | None = None
) -> FlinkProperties:
    """The settings in `text` (the variable's value); `line_of(i)` is the file line of its i-th line."""
    properties = FlinkProperties(path, label, line, not_editable=not_editable)
    for index, raw in enumerate(text.split("\n")):
        content = image_text(raw)
        number = line_of(index)
        if not content or content.startswith("#"):
            continue  # the old image appended the variable to flink-conf.yaml, where '#' starts a comment
        key, sep, value = content.partition(":")
        if not sep or not key:
            properties.skipped.append(f"line {number}: {raw.strip()!r} is not 'key: value'")
            continue
        if key in properties.entries:
            properties.skipped.append(f"line {properties.entries[key].line}: {key} is set again on line {number}")
        properties.entries[key] = ConfigEntry(key, value, number)
        properties.written[key] = raw.partition(":")[2].strip()
    return properties

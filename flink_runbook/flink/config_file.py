"""A Flink configuration file read the way Flink reads it, each key with its line.

Two formats:
- flink-conf.yaml (Flink 1.x): not really YAML. Flink takes each line up to
  the first '#', splits it at the first ": " and skips a line without one
  (GlobalConfiguration, legacy parser). A later duplicate wins.
- config.yaml (Flink 1.19+ and 2.x): standard YAML; nested maps are keys
  joined with '.', so `heartbeat: {timeout: 5000}` is `heartbeat.timeout`.
Values are kept as written (the scalar's text), so nothing is lost to YAML
1.1 booleans and a fix can rewrite exactly what was there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flink_runbook.text_files import compose_yaml, read_text

LEGACY, STANDARD = "flink-conf.yaml", "config.yaml"


class ConfigFileError(ValueError):
    """A file that cannot be read as a Flink configuration; names the file and line."""


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    value: str
    line: int  # 1-based


@dataclass
class FlinkConfigFile:
    path: Path
    format: str  # LEGACY or STANDARD
    entries: dict[str, ConfigEntry] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # what Flink would ignore, with the line

    def value(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return entry.value if entry else None

    def where(self, key: str) -> str:
        entry = self.entries.get(key)
        return f"{self.path}:{entry.line} {key}" if entry else f"{self.path} (no {key})"


def config_format(path: Path) -> str:
    """Flink picks the parser by file name: flink-conf.yaml is legacy, anything else standard YAML."""
    return LEGACY if path.name == "flink-conf.yaml" else STANDARD


def read_flink_config(path: Path) -> FlinkConfigFile:
    text = read_text(path, ConfigFileError)
    if config_format(path) == LEGACY:
        return parse_legacy_flink_conf(text, path)
    return parse_config_yaml(text, path)


def parse_legacy_flink_conf(text: str, path: Path) -> FlinkConfigFile:
    config = FlinkConfigFile(path, LEGACY)
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        key, sep, value = content.partition(": ")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            config.skipped.append(f"line {number}: {content!r} is not 'key: value'; Flink skips it")
            continue
        if key in config.entries:
            config.skipped.append(f"line {config.entries[key].line}: {key} is set again on line {number}, which wins")
        config.entries[key] = ConfigEntry(key, value, number)
    return config


def parse_config_yaml(text: str, path: Path) -> FlinkConfigFile:
    root = compose_yaml(text, path, ConfigFileError)
    config = FlinkConfigFile(path, STANDARD)
    if root is None:
        return config
    if not isinstance(root, yaml.MappingNode):
        raise ConfigFileError(f"{path}: line {root.start_mark.line + 1}: the top level must be a map of keys")
    _flatten(root, "", config)
    return config


def _flatten(node: yaml.MappingNode, prefix: str, config: FlinkConfigFile) -> None:
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigFileError(f"{config.path}: line {key_node.start_mark.line + 1}: a key must be plain text")
        key = f"{prefix}{key_node.value}"
        line = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode):
            _flatten(value_node, f"{key}.", config)
            continue
        if isinstance(value_node, yaml.SequenceNode):
            value = "[" + ", ".join(_scalar_text(item) for item in value_node.value) + "]"
        else:
            value = value_node.value
        if key in config.entries:
            config.skipped.append(f"line {config.entries[key].line}: {key} is set again on line {line}, which wins")
        config.entries[key] = ConfigEntry(key, value, line)


def _scalar_text(node: yaml.Node) -> str:
    return node.value if isinstance(node, yaml.ScalarNode) else yaml.serialize(node).strip()

"""One role's Flink settings as its process gets them, each with where it is written. Pure.

The image's order: the config file, then FLINK_PROPERTIES over it. With no
config file in the inventory, what the image's own file sets is not known;
for the JobManager the running one says (GET /jobmanager/config), for a
TaskManager nothing does, so only what FLINK_PROPERTIES sets is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flink_runbook.audit.flink_properties import FlinkProperties
from flink_runbook.flink.config_file import ConfigEntry, FlinkConfigFile

FILE, PROPERTIES, LIVE = "file", "FLINK_PROPERTIES", "live"


@dataclass
class RoleSettings:
    role: str
    file: FlinkConfigFile | None = None
    properties: FlinkProperties | None = None
    live: dict[str, str] | None = None  # GET /jobmanager/config, used only where no file is configured
    live_url: str = ""
    entries: dict[str, ConfigEntry] = field(default_factory=dict)  # what applies, written or only seen running
    origin: dict[str, str] = field(default_factory=dict)  # key -> FILE, PROPERTIES or LIVE

    def __post_init__(self) -> None:
        if self.file is None and self.live is not None:
            for key, value in self.live.items():
                self._set(ConfigEntry(key, value, 0), LIVE)
        if self.file is not None:
            for entry in self.file.entries.values():
                self._set(entry, FILE)
        if self.properties is not None:
            for entry in self.properties.entries.values():
                self._set(entry, PROPERTIES)

    def _set(self, entry: ConfigEntry, origin: str) -> None:
        self.entries.pop(entry.key, None)  # keep the order of the layers: a later one's key after the earlier's
        self.entries[entry.key] = entry
        self.origin[entry.key] = origin

    @property
    def complete(self) -> bool:
        """An unset key means Flink's default: every layer that could set it is known."""
        return self.file is not None or self.live is not None

    def written(self, key: str) -> bool:
        """Set in a file someone edits (the config file or FLINK_PROPERTIES), not only seen running."""
        return self.origin.get(key) in (FILE, PROPERTIES)

    def where(self, key: str) -> str:
        origin = self.origin.get(key)
        if origin == PROPERTIES:
            return self.properties.where(key)
        if origin == FILE:
            return self.file.where(key)
        if origin == LIVE:
            return f"GET {self.live_url}/jobmanager/config {key}"
        if self.file is not None:  # unset: where a fix would write it
            return self.file.where(key)
        if self.properties is not None:
            return self.properties.where(key)
        return f"{self.role}: no config file or FLINK_PROPERTIES (no {key})"


def as_settings(config: FlinkConfigFile | RoleSettings) -> RoleSettings:
    """A config file alone is the settings of a role with nothing over it."""
    return config if isinstance(config, RoleSettings) else RoleSettings("", file=config)

"""Which configuration keys a Flink release knows, and what became of an old one.

The catalogues in option_catalogues/ were recorded from each release's own jars
(scripts/flink_options/record.py), so "renamed" and "gone" are what Flink
itself reads, not what a docs page says. Pure: no Prefect, no I/O beyond
reading those files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

CATALOGUE_DIR = Path(__file__).with_name("option_catalogues")


class UnknownFlinkRelease(ValueError):
    pass


@dataclass(frozen=True)
class FlinkOption:
    key: str
    default: str | None
    deprecated: bool
    replaces: tuple[str, ...]  # older (deprecated) names of this option that this release still reads


@dataclass(frozen=True)
class OptionCatalogue:
    flink_version: str
    options: dict[str, FlinkOption]

    @cached_property
    def replaced_by(self) -> dict[str, str]:
        """Older name -> the option that reads it now (built once: the audit asks for every key)."""
        return {old: option.key for option in self.options.values() for old in option.replaces}

    def current_key(self, key: str) -> str | None:
        """`key` if this release knows it, the key that replaced it if it is an older name, else None."""
        if key in self.options:
            return key
        return self.replaced_by.get(key)


@dataclass(frozen=True)
class KeyStatus:
    key: str
    # current; renamed (still read, write `use`); deprecated (still read, no successor);
    # gone (only another recorded release knows it); unknown (no recorded release knows it)
    status: str
    use: str | None = None
    known_in: str | None = None


def release_key(flink_version: str) -> tuple[int, ...]:
    """'1.20.5' -> (1, 20, 5), so that 1.9 sorts before 1.18; a part that is not a number counts as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in flink_version.split("."))


def recorded_releases() -> list[str]:
    return sorted((p.stem for p in CATALOGUE_DIR.glob("*.json")), key=release_key)


def catalogue_release(flink_version: str) -> str:
    """The recorded release whose catalogue judges `flink_version`: itself; else the newest recorded of its
    major.minor line; else the nearest older recorded release; else the oldest recorded (Flink renames and
    drops keys between lines, so the closest line knows the most of what this one reads)."""
    releases = recorded_releases()
    if not releases:
        raise UnknownFlinkRelease(
            f"no configuration catalogue in {CATALOGUE_DIR} (add one with scripts/flink_options/record.py)"
        )
    if flink_version in releases:
        return flink_version
    line = release_key(flink_version)[:2]
    same_line = [r for r in releases if release_key(r)[:2] == line]
    if same_line:
        return same_line[-1]
    older = [r for r in releases if release_key(r) < release_key(flink_version)]
    return older[-1] if older else releases[0]


def catalogue_note(flink_version: str) -> str | None:
    """What an audit of `flink_version` should say about its keys being judged by another release's catalogue;
    None when that release (or, for a bare line like '1.20', its newest release) is recorded."""
    used = catalogue_release(flink_version)
    if used == flink_version or (flink_version.count(".") == 1 and release_key(used)[:2] == release_key(flink_version)):
        return None
    return (
        f"no key catalogue is recorded for Flink {flink_version}; its keys were judged by Flink {used}'s, "
        f"the nearest recorded release (recorded: {', '.join(recorded_releases())}): a key {flink_version} "
        f"added, renamed or dropped since may be misjudged. Record one with scripts/flink_options/record.py "
        f"{flink_version}"
    )


@cache
def option_catalogue(flink_version: str) -> OptionCatalogue:
    """The catalogue of this release, or of the nearest recorded one (catalogue_release)."""
    match = catalogue_release(flink_version)
    document = json.loads((CATALOGUE_DIR / f"{match}.json").read_text())
    options = {
        key: FlinkOption(key, entry["default"], entry["deprecated"], tuple(entry["replaces"]))
        for key, entry in document["options"].items()
    }
    return OptionCatalogue(match, options)


def key_status(key: str, flink_version: str) -> KeyStatus:
    """What the running release makes of `key` written in a config file."""
    catalogue = option_catalogue(flink_version)
    current = catalogue.current_key(key)
    if current == key:
        option = catalogue.options[key]
        replacement = catalogue.replaced_by.get(key)  # also an option of its own, kept for old readers
        if replacement:
            return KeyStatus(key, "renamed", use=replacement)
        return KeyStatus(key, "deprecated" if option.deprecated else "current")
    if current is not None:
        return KeyStatus(key, "renamed", use=current)
    for other in reversed(recorded_releases()):  # the newest release that read it
        if other != catalogue.flink_version and option_catalogue(other).current_key(key) is not None:
            return KeyStatus(key, "gone", use=_successor_elsewhere(key), known_in=other)
    return KeyStatus(key, "unknown")


def _successor_elsewhere(key: str) -> str | None:
    """The key another release reads in place of `key`, if any release records one."""
    for release in recorded_releases():
        current = option_catalogue(release).current_key(key)
        if current and current != key:
            return current
    return None

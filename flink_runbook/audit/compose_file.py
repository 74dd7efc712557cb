"""A docker-compose.yml's services as Compose would run them: variables filled in, each setting with its line.

Variables are taken as Compose takes them: the process environment over the
project's .env file over `${VAR:-default}` defaults. A variable with no value
anywhere is left as written and reported, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flink_runbook.text_files import compose_yaml, duplicate_key, duplicate_key_problem, read_text

_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class ComposeFileError(ValueError):
    """A compose file that cannot be read; names the file and line."""


@dataclass
class ComposeService:
    name: str
    settings: dict  # the service's mapping, variables filled in
    lines: dict[str, int]  # dotted key path within the service -> 1-based line
    line: int


@dataclass
class ComposeFile:
    path: Path
    services: dict[str, ComposeService] = field(default_factory=dict)
    unresolved: set[str] = field(default_factory=set)  # variables with no value

    def where(self, service: str, key: str) -> str:
        svc = self.services.get(service)
        line = svc.lines.get(key, svc.line) if svc else None
        return f"{self.path}:{line} services.{service}.{key}" if line else f"{self.path} services.{service}.{key}"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a Compose .env file; comments and blank lines skipped; quotes removed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in read_text(path, ComposeFileError).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def interpolate(text: str, variables: dict[str, str], unresolved: set[str]) -> str:
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        value = variables.get(name)
        if op in (":-", ":?") and not value or op in ("-", "?") and value is None:
            if op.endswith("-"):
                return arg
            value = None
        if value is None:
            unresolved.add(name)
            return match.group(0)
        return value

    return _VARIABLE.sub(replace, text)


def read_compose_file(path: Path, variables: dict[str, str] | None = None) -> ComposeFile:
    """`variables` (e.g. the environment) win over the .env file beside the compose file."""
    return read_compose_file_text(read_text(path, ComposeFileError), path, variables)


def read_compose_file_text(text: str, path: Path, variables: dict[str, str] | None = None) -> ComposeFile:
    """A compose file's text as read_compose_file reads it (the .env beside `path` included)."""
    root = compose_yaml(text, path, ComposeFileError)
    twice = duplicate_key(root)
    if twice:  # Compose refuses it too ("mapping key ... already defined"): the audit must not judge the other one
        raise ComposeFileError(duplicate_key_problem(path, twice))
    compose = ComposeFile(path)
    values = {**read_env_file(path.parent / ".env"), **(variables or {})}
    services_node = _child(root, "services") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(services_node, yaml.MappingNode):
        raise ComposeFileError(f"{path}: no 'services:' map; is this a docker-compose file?")
    for name_node, service_node in services_node.value:
        if not isinstance(service_node, yaml.MappingNode):
            raise ComposeFileError(
                f"{path}: line {name_node.start_mark.line + 1}: service {name_node.value} is not a map"
            )
        lines: dict[str, int] = {}
        settings = _load(service_node, "", lines, values, compose.unresolved)
        compose.services[name_node.value] = ComposeService(
            name_node.value, settings, lines, name_node.start_mark.line + 1
        )
    return compose


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _load(node: yaml.Node, prefix: str, lines: dict[str, int], values: dict[str, str], unresolved: set[str]):
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            lines[path] = key_node.start_mark.line + 1
            result[key_node.value] = _load(value_node, f"{path}.", lines, values, unresolved)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_load(item, prefix, lines, values, unresolved) for item in node.value]
    return interpolate(node.value, values, unresolved)

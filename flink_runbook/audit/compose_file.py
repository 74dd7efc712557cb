"""A docker-compose.yml's services as Compose would run them: variables filled in, each setting with its line.

Variables are taken as Compose takes them: the process environment over the
project's .env file over `${VAR:-default}` defaults. A variable with no value
anywhere is left as written and reported, never guessed. YAML merge keys
(`<<: *common`) count as Compose counts them: a key merged from an anchor is
the service's unless the service writes it itself; its line is the anchor's.
Each service's FLINK_PROPERTIES (environment, or an env file) is read with its
lines (audit.flink_properties).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flink_runbook.audit.env_file import EnvValue, read_env_values
from flink_runbook.audit.flink_properties import VARIABLE, FlinkProperties, parse_properties
from flink_runbook.text_files import MERGE_TAG, compose_yaml, duplicate_key, duplicate_key_problem, read_text

_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class ComposeFileError(ValueError):
    """A compose file that cannot be read; names the file and line."""


@dataclass
class ComposeService:
    name: str
    settings: dict  # the service's mapping, variables filled in
    lines: dict[str, int]  # dotted key path within the service -> 1-based line where its value is written
    line: int
    merged: dict[str, int] = field(default_factory=dict)  # dotted key -> line of the map it is merged from
    flink_properties: FlinkProperties | None = None


@dataclass
class ComposeFile:
    path: Path
    services: dict[str, ComposeService] = field(default_factory=dict)
    unresolved: set[str] = field(default_factory=set)  # variables with no value
    variables: dict[str, str] = field(default_factory=dict)  # given over the .env file (to read it again)

    def where(self, service: str, key: str) -> str:
        svc = self.services.get(service)
        line = svc.lines.get(key, svc.line) if svc else None
        if not line:
            return f"{self.path} services.{service}.{key}"
        merged = f" (merged from the map at line {svc.merged[key]})" if key in svc.merged else ""
        return f"{self.path}:{line} services.{service}.{key}{merged}"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a Compose .env file; comments and blank lines skipped; quotes removed."""
    return {name: env.value for name, env in read_env_values(path, ComposeFileError).items()}


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
    compose = ComposeFile(path, variables=dict(variables or {}))
    env_file = read_env_values(path.parent / ".env", ComposeFileError)
    values = {**{name: env.value for name, env in env_file.items()}, **(variables or {})}
    services_node = _child(root, "services") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(services_node, yaml.MappingNode):
        raise ComposeFileError(f"{path}: no 'services:' map; is this a docker-compose file?")
    found = _PropertiesFinder(path, values, variables or {}, env_file, compose.unresolved)
    for name_node, service_node in services_node.value:
        if not isinstance(service_node, yaml.MappingNode):
            raise ComposeFileError(
                f"{path}: line {name_node.start_mark.line + 1}: service {name_node.value} is not a map"
            )
        service = ComposeService(name_node.value, {}, {}, name_node.start_mark.line + 1)
        service.settings = _load(service_node, "", service, values, compose.unresolved, path)
        service.flink_properties = found.in_service(service_node, service.name)
        compose.services[name_node.value] = service
    return compose


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((v for k, v, _ in _pairs(node) if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _pairs(
    node: yaml.MappingNode, path: Path | None = None, within: tuple[int, ...] = ()
) -> list[tuple[yaml.Node, yaml.Node, int | None]]:
    """(key, value, line of the map it is merged from or None) of a map, its `<<:` merge keys resolved as YAML
    and Compose resolve them: a key written in the map wins, then the merged maps in their order."""
    if id(node) in within:
        raise ComposeFileError(f"{path}: line {node.start_mark.line + 1}: a map that merges itself ('<<')")
    own = [(key, value, None) for key, value in node.value if key.tag != MERGE_TAG]
    names = {key.value for key, _, _ in own}
    merged = []
    for key, value in node.value:
        if key.tag != MERGE_TAG:
            continue
        for source in value.value if isinstance(value, yaml.SequenceNode) else [value]:
            if not isinstance(source, yaml.MappingNode):
                raise ComposeFileError(f"{path}: line {key.start_mark.line + 1}: '<<' must merge a map (an anchor)")
            for inner_key, inner_value, _ in _pairs(source, path, (*within, id(node))):
                if inner_key.value not in names:
                    names.add(inner_key.value)
                    merged.append((inner_key, inner_value, source.start_mark.line + 1))
    return own + merged


def _load(
    node: yaml.Node,
    prefix: str,
    service: ComposeService,
    values: dict[str, str],
    unresolved: set[str],
    path: Path,
    merged_from: int | None = None,
):
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node, source in _pairs(node, path):
            dotted = f"{prefix}{key_node.value}"
            service.lines[dotted] = key_node.start_mark.line + 1
            if source or merged_from:
                service.merged[dotted] = source or merged_from
            result[key_node.value] = _load(
                value_node, f"{dotted}.", service, values, unresolved, path, source or merged_from
            )
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_load(item, prefix, service, values, unresolved, path, merged_from) for item in node.value]
    return interpolate(node.value, values, unresolved)


# A value that is one variable and nothing else: `${FLINK_PROPERTIES}`, `$FLINK_PROPERTIES`, `${X:-default}`.
_REFERENCE = re.compile(
    r"^\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))$"
)


class _PropertiesFinder:
    """Each service's FLINK_PROPERTIES, with the file and lines it is written on; one object for one text that
    several services get (an anchor, the .env file)."""

    def __init__(
        self,
        path: Path,
        values: dict[str, str],
        variables: dict[str, str],
        env_file: dict[str, EnvValue],
        unresolved: set[str],
    ) -> None:
        self.path, self.values, self.variables, self.env_file = path, values, variables, env_file
        self.unresolved = unresolved
        self.seen: dict[tuple, FlinkProperties] = {}

    def in_service(self, service_node: yaml.MappingNode, service: str) -> FlinkProperties | None:
        found = None
        environment = next(((v, m) for k, v, m in _pairs(service_node, self.path) if k.value == "environment"), None)
        if environment is not None:
            node, merged = environment
            # Written in an anchor other services may merge too: named by its file and line alone.
            found = self._in_environment(node, VARIABLE if merged else f"services.{service}.environment.{VARIABLE}")
        if found is None:
            found = self._in_env_files(_child(service_node, "env_file"))
        if found is not None and service not in found.services:
            found.services.append(service)
        return found

    def _in_environment(self, node: yaml.Node, label: str) -> FlinkProperties | None:
        if isinstance(node, yaml.MappingNode):
            value = next((v for k, v, _ in _pairs(node, self.path) if k.value == VARIABLE), None)
            if isinstance(value, yaml.ScalarNode):
                return self._from_node(value, 0, label)
            return None
        if isinstance(node, yaml.SequenceNode):
            found = None
            for item in node.value:
                if isinstance(item, yaml.MappingNode):
                    raise ComposeFileError(
                        f"{self.path}: line {item.start_mark.line + 1}: an environment item is a map (an unquoted "
                        "': ' in it?); Compose wants NAME=value text: quote the item"
                    )
                if not isinstance(item, yaml.ScalarNode):
                    continue
                if item.value == VARIABLE:  # `- FLINK_PROPERTIES`: the value of the shell Compose runs in
                    found = self._from_variable(VARIABLE, None, item)
                elif item.value.startswith(f"{VARIABLE}="):
                    found = self._from_node(item, len(VARIABLE) + 1, label)
            return found
        return None

    def _from_node(self, node: yaml.ScalarNode, prefix: int, label: str) -> FlinkProperties | None:
        text = node.value[prefix:]
        reference = _REFERENCE.match(text.strip())
        if reference:
            return self._from_variable(reference["braced"] or reference["bare"], reference["default"], node)
        key = ("node", id(node))
        if key in self.seen:
            return self.seen[key]
        first = node.start_mark.line + 1
        not_editable = None
        if "$" in text:
            text = interpolate(text, self.values, self.unresolved)
            not_editable = "it is written with ${...} variables"
        if node.style == "|":
            line_of = lambda index: first + 1 + index  # noqa: E731 - a literal block: one text line a file line
        else:
            line_of = lambda index: first  # noqa: E731
            if "\n" in text.strip("\n") or node.end_mark.line != node.start_mark.line:
                not_editable = not_editable or "it is not written one setting a line (a '|' block)"
        self.seen[key] = parse_properties(text, self.path, label, first, line_of, not_editable)
        return self.seen[key]

    def _from_variable(self, name: str, default: str | None, node: yaml.Node) -> FlinkProperties | None:
        line = node.start_mark.line + 1
        if name in self.variables:  # the inventory's audit.compose_variables: no file to point at
            key = ("variable", name)
            if key not in self.seen:
                self.seen[key] = parse_properties(
                    self.variables[name], self.path, f"${{{name}}} (audit.compose_variables)", line,
                    lambda index: line, "it is set in the inventory's audit.compose_variables, not in a file",
                )
            return self.seen[key]
        if name in self.env_file:
            return self._from_env(self.env_file[name], self.path.parent / ".env")
        if default is not None:
            return parse_properties(default, self.path, VARIABLE, line, lambda index: line, "it is a ${...:-default}")
        self.unresolved.add(name)
        return None

    def _from_env(self, env: EnvValue, path: Path) -> FlinkProperties:
        key = ("env", str(path), env.name)
        if key not in self.seen:
            self.seen[key] = parse_properties(
                env.value, path, env.name, env.line, lambda index: env.line + index,
                "Compose reads escapes in its double quotes" if env.escapes else None,
            )
        return self.seen[key]

    def _in_env_files(self, node: yaml.Node | None) -> FlinkProperties | None:
        if node is None:
            return None
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        found = None
        for item in items:  # a later file wins
            if isinstance(item, yaml.MappingNode):
                item = _child(item, "path")
            if not isinstance(item, yaml.ScalarNode):
                continue
            path = self.path.parent / interpolate(item.value, self.values, self.unresolved)
            env = read_env_values(path, ComposeFileError).get(VARIABLE)
            if env is not None:
                found = self._from_env(env, path)
        return found

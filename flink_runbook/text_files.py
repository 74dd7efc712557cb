"""Reading the user's text and YAML files with errors that name the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_text(path: Path, error: type[Exception]) -> str:
    """The file's text; `error` naming the file and why it cannot be read."""
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(where: 'line L, column C' or '', what) of a YAML parse error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return where, getattr(exc, "problem", None) or str(exc)


def compose_yaml(text: str, path: Path, error: type[Exception]) -> yaml.Node | None:
    """The YAML node tree of `text` (keeps each key's line); `error` naming the file, line and problem."""
    try:
        return yaml.compose(text)
    except yaml.YAMLError as exc:
        where, problem = yaml_problem(exc)
        raise error(f"{path}: {where + ': ' if where else ''}not valid YAML: {problem}") from None


MERGE_TAG = "tag:yaml.org,2002:merge"


def duplicate_key(root: yaml.Node | None) -> tuple[str, int, int] | None:
    """The first key written twice in one mapping of the tree: (key, its line, the line it was first
    written on), 1-based; None: every key is unique. YAML requires unique keys; PyYAML keeps the last."""
    seen: set[int] = set()

    def walk(node: yaml.Node) -> tuple[str, int, int] | None:
        if id(node) in seen:  # an alias: the same node again (and a recursive one would never end)
            return None
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG:  # `<<: *base` may be overridden
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in first:
                        return key.value, line, first[(key.tag, key.value)]
                    first[(key.tag, key.value)] = line
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            return None
        return next((found for child in children if (found := walk(child))), None)

    return walk(root) if root is not None else None


def duplicate_key_problem(path: Path, found: tuple[str, int, int]) -> str:
    key, line, first = found
    return (
        f"{path}: line {line}: key {key!r} appears twice in the same mapping (first at line {first}); "
        "YAML would keep only the last one without a word: remove one"
    )


class _Loader(yaml.SafeLoader):
    """yaml.safe_load's loader; an integer too long for Python to read is a YAML error at its line."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
            too_long = f"an integer of {len(node.value)} characters is not a number anything takes"
            raise yaml.constructor.ConstructorError(None, None, too_long, node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def load_yaml(text: str, path: Path, error: type[Exception]) -> Any:
    """yaml.safe_load of a user's file, stricter: a key given twice in one mapping is an error naming the
    key and both lines (not last-wins); `error` naming the file, line and problem."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        found = duplicate_key(root)
        if found:
            raise error(duplicate_key_problem(path, found))
        return loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        where, problem = yaml_problem(exc)
        raise error(f"{path}: not valid YAML{' at ' + where if where else ''}: {problem}") from None
    finally:
        loader.dispose()

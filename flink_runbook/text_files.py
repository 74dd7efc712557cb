"""Reading the user's text and YAML files with errors that name the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

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

"""What is wrong with an inventory, said as `<file>: <key path>: <what is wrong>`, every problem at once."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from flink_runbook.redaction import redact_urls

# pydantic's error types for a value of the wrong kind, and the kind the key wants.
_EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}
_KINDS = {str: "string", int: "integer", float: "number", bool: "true or false", list: "list", dict: "mapping"}
# The error type of a rule of the inventory's own, whose message is already in the house wording.
PROBLEM = "inventory_problem"


class InventoryError(ValueError):
    """The inventory file is unreadable or invalid; the message names file, key and reason, one problem a
    line (`problems` holds them one by one)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def problem(reason: str, *at: str | int) -> PydanticCustomError:
    """An inventory rule broken, raised from a validator; `at`: the key below the one being validated that is
    wrong (a section's check naming one of its keys)."""
    return PydanticCustomError(PROBLEM, "{reason}", {"reason": reason, "at": at})


def type_name(value: Any) -> str:
    return "nothing" if value is None else _KINDS.get(type(value), type(value).__name__)


def shown(value: Any) -> str:
    """A value as an error repeats it: a number hundreds of digits long by its length, a long value cut, a
    URL's credentials masked (an error is printed and logged)."""
    text = repr(value)
    if isinstance(value, int) and len(text) > 40:
        return f"an integer of {len(text.lstrip('-'))} digits ({text[:6]}...)"
    return redact_urls(text if len(text) <= 80 else text[:77] + "...")


def key_path(loc: tuple[str | int, ...]) -> str:
    """clusters[1].recovery.stabilization_s, or (top level)."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return text or "(top level)"


def problems(error: ValidationError, file: Path, model: type[BaseModel]) -> list[str]:
    """Each of pydantic's errors about `file` (read as `model`) as `<file>: <key path>: <reason>`."""
    found = []
    for detail in error.errors(include_url=False):
        loc, reason = _reason(detail, model)
        found.append(f"{file}: {key_path(loc)}: {reason}")
    return list(dict.fromkeys(found))  # one mistake, one line


def _reason(detail: ErrorDetails, model: type[BaseModel]) -> tuple[tuple[str | int, ...], str]:
    loc, kind, value = tuple(detail["loc"]), detail["type"], detail.get("input")
    ctx = detail.get("ctx") or {}
    if kind == PROBLEM:
        return loc + tuple(ctx.get("at", ())), ctx["reason"]
    if kind == "missing":
        return loc, "is required"
    if kind == "extra_forbidden":
        return loc, _unknown_key(str(loc[-1]), _section_at(model, loc[:-1]))
    if kind in _EXPECTED:
        value_shown = "" if value is None else f" {shown(value)}"
        return loc, f"expected {_EXPECTED[kind]}, got {type_name(value)}{value_shown}"
    message = detail["msg"]
    return loc, f"{message[:1].lower()}{message[1:]}, got {shown(value)}"


def _unknown_key(key: str, section: type[BaseModel] | None) -> str:
    known = sorted(section.model_fields) if section else []
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return f"unknown key; expected one of: {', '.join(known)}{hint}"


def _section_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model of the mapping at `loc` of the file, found through the fields' annotations."""
    kind: Any = model
    for part in loc:
        kind = _unwrapped(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            kind = field.annotation
        elif typing.get_origin(kind) in (list, tuple, dict):
            kind = typing.get_args(kind)[-1 if typing.get_origin(kind) is dict else 0]
        else:
            return None
    kind = _unwrapped(kind)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _unwrapped(kind: Any) -> Any:
    """X of Annotated[X, ...] and of X | None."""
    while True:
        if typing.get_origin(kind) is typing.Annotated:
            kind = typing.get_args(kind)[0]
        elif typing.get_origin(kind) in (typing.Union, types.UnionType):
            others = [arg for arg in typing.get_args(kind) if arg is not type(None)]
            if len(others) != 1:
                return kind
            kind = others[0]
        else:
            return kind

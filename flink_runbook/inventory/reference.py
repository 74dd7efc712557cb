"""The inventory's reference (docs/inventory.md): every key with its type, default and meaning, made from the
model's JSON Schema (model.py's Field descriptions), so the page says what the loader accepts and cannot drift
from it (tests/unit/test_inventory_reference.py). `flink-runbook inventory reference > docs/inventory.md`."""

from __future__ import annotations

import json
from typing import Any

from flink_runbook.inventory import model

COMMAND = "flink-runbook inventory reference > docs/inventory.md"
INTRO = f"""\
# The inventory file: every key

The inventory is one YAML file naming the Flink clusters to look after and how to reach them
(`stack/inventory.yaml` is the demo stack's). Each table below is one mapping of the file; a key is
written with its full path (`clusters[]` is each item of the list `clusters`). A key left out, or given
as `null`, takes its default; an unknown key is an error. Paths are relative to the inventory's
directory; `~` is a home directory. `flink-runbook inventory check --config FILE` checks a file,
`flink-runbook inventory schema` prints its JSON Schema for an editor.

Made from the inventory's model (`flink_runbook/inventory/model.py`) by `{COMMAND}`:
edit the model's descriptions, not this page.
"""


def inventory_reference() -> str:
    """The reference as Markdown."""
    schema = model.InventoryFile.model_json_schema()
    definitions = schema.get("$defs", {})
    out = [INTRO]
    _section("", schema, schema.get("description", ""), definitions, out)
    return "\n".join(out).rstrip("\n") + "\n"


def _section(path: str, section: dict, about: str, definitions: dict, out: list[str]) -> None:
    """One mapping's table, then the tables of the mappings inside it, in the file's order."""
    out += [f"## `{path}`" if path else "## Top level", ""]
    if about:
        out += [about, ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    required = set(section.get("required", []))
    inner = []
    for key, prop in section.get("properties", {}).items():
        full = f"{path}.{key}" if path else key
        target = _section_of(prop, definitions)
        # A key whose meaning is its mapping's docstring has it there only (pydantic leaves it out as repeated).
        about = prop.get("description") or (target or {}).get("description", "")
        if target is not None:
            inner.append((full + ("[]" if _is_list(prop) else ""), target, about))
        default = "required" if key in required else _default(prop, target)
        out.append(f"| `{full}` | {_type(prop, definitions)} | {default} | {_cell(about)} |")
    out.append("")
    for full, target, description in inner:
        _section(full, target, description, definitions, out)


def _resolve(prop: dict, definitions: dict) -> dict:
    return definitions[prop["$ref"].rsplit("/", 1)[-1]] if "$ref" in prop else prop


def _not_null(prop: dict) -> dict:
    """The key's own type: a key that may be null is the same key left out."""
    kinds = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    return kinds[0] if len(kinds) == 1 else prop


def _is_list(prop: dict) -> bool:
    return _not_null(prop).get("type") == "array"


def _section_of(prop: dict, definitions: dict) -> dict | None:
    """The mapping a key holds (itself, or each item of its list), or None for a plain value."""
    prop = _not_null(prop)
    if prop.get("type") == "array":
        prop = prop.get("items", {})
    resolved = _resolve(prop, definitions)
    return resolved if "properties" in resolved else None


def _type(prop: dict, definitions: dict) -> str:
    prop = _not_null(prop)
    if "$ref" in prop:
        return "mapping (below)"
    kind = prop.get("type")
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if kind == "array":
        items = prop.get("items", {})
        if _section_of(items, definitions) is not None:
            return "list of mappings (below)"
        if "enum" in items:
            return "list of " + ", ".join(f"`{v}`" for v in items["enum"])
        return f"list of {_type(items, definitions)}s"
    if kind == "object":
        return f"mapping of name to {_type(prop.get('additionalProperties', {}), definitions)}"
    if kind in ("number", "integer"):
        bounds = f" from {_number(prop['minimum'])}" if "minimum" in prop else ""
        bounds += f" to {_number(prop['maximum'])}" if "maximum" in prop else ""
        return f"{'integer' if kind == 'integer' else 'number'}{bounds}"
    if kind == "boolean":
        return "true or false"
    if kind == "string" and str(prop.get("pattern", "")).startswith("^https?://"):
        return "http(s) URL"
    return "string"  # a string, or a number written where text is meant (an argument, a name)


def _default(prop: dict, section: dict | None) -> str:
    if "default" not in prop:
        return "its keys' defaults" if section is not None else "-"
    value = prop["default"]
    if value is None:
        return "absent"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"`{_number(value)}`"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

"""Edits of a standard YAML document that keep its comments, key order and quoting (ruamel.yaml round trip).

For what no single line holds: a value in a flow map (`heartbeat: {timeout: 5000}`), a key nested
under parents that has to be renamed, a service written as a flow map. Flink 2.x config.yaml and
compose files are standard YAML; Flink 1.x flink-conf.yaml is not (a flat format of its own) and
keeps its line editor. The caller checks that the result reads back with nothing else changed.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

_INDENTED = re.compile(r"^( +)\S")
_DASH = re.compile(r"^( *)- ")


class RoundTripError(ValueError):
    """The document cannot be edited this way; the edit is left for a human."""


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the file writes them, so the dump does not re-indent the file."""
    mapping, dash = None, None
    previous = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indented = _INDENTED.match(line)
        if indented and previous.rstrip().endswith(":"):
            step = len(indented.group(1)) - (len(previous) - len(previous.lstrip()))
            if step > 0 and _DASH.match(line):
                dash = step if dash is None else dash
            elif step > 0:
                mapping = step if mapping is None else mapping
        previous = line
    mapping = mapping or 2
    if dash is None:
        return mapping, mapping, 0
    return mapping, dash + 2, dash


class RoundTrip:
    """One document, edited by key path (a path is a tuple of keys from the top)."""

    def __init__(self, text: str) -> None:
        self._yaml = YAML(typ="rt")
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096  # never fold a long line
        mapping, sequence, offset = _indentation(text)
        self._yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        try:
            self.data = self._yaml.load(text)
        except YAMLError as exc:
            raise RoundTripError(f"not standard YAML: {exc}") from None
        if not isinstance(self.data, CommentedMap):
            raise RoundTripError("the top level is not a map of keys")

    def find(self, dotted: str) -> tuple[CommentedMap, str] | None:
        """The map holding the leaf of a Flink key written with any split into nested maps and dotted keys."""

        def search(node: Any, rest: str) -> tuple[CommentedMap, str] | None:
            if not isinstance(node, CommentedMap):
                return None
            for key in node:
                name = str(key)
                if name == rest:
                    return node, key
                if rest.startswith(name + "."):
                    found = search(node[key], rest[len(name) + 1 :])
                    if found:
                        return found
            return None

        return search(self.data, dotted)

    def set_value(self, dotted: str, value: str) -> bool:
        found = self.find(dotted)
        if found is None:
            return False
        holder, key = found
        holder[key] = plain(value)
        return True

    def set_in(self, path: tuple[str, ...], key: str, value: str) -> bool:
        """Set `key` in the map at `path` (a compose service), adding it when absent."""
        node: Any = self.data
        for step in path:
            node = node.get(step) if isinstance(node, CommentedMap) else None
        if not isinstance(node, CommentedMap):
            return False
        node[key] = plain(value)
        return True

    def rename_to_top_level(self, dotted: str, new_key: str) -> bool:
        """Move a (nested) key to a flat top-level key of the new name, where its top-level parent stood."""
        found = self.find(dotted)
        if found is None or new_key in self.data:
            return False
        holder, key = found
        value = holder[key]
        top = next(k for k in self.data if dotted == str(k) or dotted.startswith(f"{k}."))
        position = list(self.data).index(top)
        del holder[key]
        self._drop_empty_parents(dotted)
        self.data.insert(min(position, len(self.data)), new_key, value)
        return True

    def _drop_empty_parents(self, dotted: str) -> None:
        # A parent left with no keys would read as a key of its own with a null value.
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            found = self.find(".".join(parts[:cut]))
            if found is None:
                continue
            holder, key = found
            if isinstance(holder[key], CommentedMap) and not holder[key]:
                del holder[key]

    def text(self) -> str:
        out = io.StringIO()
        self._yaml.dump(self.data, out)
        return out.getvalue()


def plain(value: str) -> Any:
    """A value as the line editor writes it: a number stays a plain number, not a quoted string."""
    return int(value) if value.isdigit() else value

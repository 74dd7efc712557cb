"""A Compose env file (.env, `env_file:`) read as Compose reads it, each variable with the lines it is on.

`KEY=VALUE` a line; `export ` before the key is allowed; `#` starts a comment
line. A value in double or single quotes may run over several lines, the
quotes removed (how a multi-line FLINK_PROPERTIES is written there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flink_runbook.text_files import read_text


@dataclass(frozen=True)
class EnvValue:
    name: str
    value: str
    line: int  # 1-based: the line of `NAME=`; the value's i-th line is on line + i
    quote: str  # '"', "'" or '' (unquoted)

    @property
    def escapes(self) -> bool:
        """A backslash in double quotes: Compose reads escapes there, so the value is not the text as written."""
        return self.quote == '"' and "\\" in self.value


def parse_env_text(text: str) -> dict[str, EnvValue]:
    """Every variable of an env file's text; a later one of the same name wins, as in Compose."""
    values: dict[str, EnvValue] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        name = name.strip().removeprefix("export ").strip()
        value = value.strip()
        quote = value[:1] if value[:1] in ("'", '"') else ""
        if quote and not (len(value) > 1 and value.endswith(quote)):
            # An opening quote with no closing one on this line: the value runs on to the line that closes it.
            parts = [lines[number - 1].split("=", 1)[1].lstrip()[1:]]
            while index < len(lines) and not lines[index].rstrip().endswith(quote):
                parts.append(lines[index])
                index += 1
            if index < len(lines):
                parts.append(lines[index].rstrip()[:-1])
                index += 1
            values[name] = EnvValue(name, "\n".join(parts), number, quote)
            continue
        values[name] = EnvValue(name, value[1:-1] if quote else value, number, quote)
    return values


def read_env_values(path: Path, error: type[Exception]) -> dict[str, EnvValue]:
    """The file's variables; none when it does not exist (Compose's .env is optional)."""
    if not path.is_file():
        return {}
    return parse_env_text(read_text(path, error))

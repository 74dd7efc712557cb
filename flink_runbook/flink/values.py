"""Flink's value syntax for durations and memory sizes, parsed as Flink's TimeUtils and MemorySize do."""

from __future__ import annotations

import re

_DURATION_UNITS_MS = {
    **dict.fromkeys(("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1e-6),
    **dict.fromkeys(("us", "µs", "micro", "micros", "microsecond", "microseconds"), 1e-3),
    **dict.fromkeys(("ms", "milli", "millis", "millisecond", "milliseconds"), 1),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1000),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60_000),
    **dict.fromkeys(("h", "hour", "hours"), 3_600_000),
    **dict.fromkeys(("d", "day", "days"), 86_400_000),
}
_MEMORY_UNITS = {
    **dict.fromkeys(("", "b", "bytes"), 1),
    **dict.fromkeys(("k", "kb", "kibibytes"), 1024),
    **dict.fromkeys(("m", "mb", "mebibytes"), 1024**2),
    **dict.fromkeys(("g", "gb", "gibibytes"), 1024**3),
    **dict.fromkeys(("t", "tb", "tebibytes"), 1024**4),
}
_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)
_NUMBER_UNIT = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-zµ]*)$", re.IGNORECASE)


def duration_ms(text: str) -> float:
    """'5000' (ms), '10 s', '10s', '1 min', 'PT50S' -> milliseconds; ValueError names what is wrong."""
    value = text.strip().strip("'\"")
    iso = _ISO.match(value)
    if iso and value.upper() != "P":
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000
    match = _NUMBER_UNIT.match(value)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 5000, '10 s', '1 min', PT50S)")
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit not in _DURATION_UNITS_MS and unit != "":
        raise ValueError(f"{text!r}: unknown time unit {unit!r}")
    return number * _DURATION_UNITS_MS.get(unit, 1)


def memory_bytes(text: str) -> int:
    """'1728m', '4 gb', '4G' (Docker's spelling too), '1024' (bytes) -> bytes."""
    value = text.strip().strip("'\"")
    match = _NUMBER_UNIT.match(value)
    if not match or match.group(2).lower() not in _MEMORY_UNITS:
        raise ValueError(f"{text!r} is not a memory size (e.g. 1728m, '4 gb', 4G)")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])


def human_ms(ms: float) -> str:
    if ms >= 60_000 and ms % 60_000 == 0:
        return f"{ms / 60_000:g} min"
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"

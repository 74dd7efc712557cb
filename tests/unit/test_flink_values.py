"""Flink's duration and memory-size syntax."""

from __future__ import annotations

import pytest

from flink_runbook.flink.values import duration_ms, human_ms, memory_bytes


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("5000", 5000),
        ("10s", 10_000),
        ("1 s", 1000),
        ("1 min", 60_000),
        ("3 minutes", 180_000),
        ("PT50S", 50_000),
        ("PT10M", 600_000),
        ("P1D", 86_400_000),
        ("250 ms", 250),
        ("2h", 7_200_000),
    ],
)
def test_durations(text, ms):
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "ten seconds", "5 fortnights", "P", "-1 s"])
def test_bad_durations_say_what_is_wrong(text):
    with pytest.raises(ValueError, match="duration|time unit"):
        duration_ms(text)


@pytest.mark.parametrize(
    ("text", "size"), [("1728m", 1728 * 2**20), ("4G", 4 * 2**30), ("4 gb", 4 * 2**30), ("1024", 1024), ("2g", 2**31)]
)
def test_memory_sizes(text, size):
    assert memory_bytes(text) == size


def test_bad_memory_size():
    with pytest.raises(ValueError, match="not a memory size"):
        memory_bytes("lots")


def test_human_durations():
    assert (human_ms(180_000), human_ms(5000), human_ms(250)) == ("3 min", "5 s", "250 ms")

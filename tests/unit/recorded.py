"""Access to the REST answers recorded from real Flink 1.20.3 and 2.2.0 (tests/fixtures/rest/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flink_runbook.flink.answers import JobInfo, parse_job

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "rest"
VERSIONS = ("1.20.3", "2.2.0")


def answer(version: str, scenario: str, name: str) -> Any:
    return json.loads((RECORDED / f"flink-{version}" / scenario / f"{name}.json").read_text())


def recorded_at_ms(version: str, scenario: str) -> int:
    return int((RECORDED / f"flink-{version}" / scenario / "recorded_at_ms.txt").read_text())


def recorded_job(version: str, scenario: str) -> JobInfo:
    return parse_job(
        answer(version, scenario, "job"),
        answer(version, scenario, "job_exceptions"),
        answer(version, scenario, "job_checkpoints"),
        answer(version, scenario, "job_checkpoints_config"),
    )

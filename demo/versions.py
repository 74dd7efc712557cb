"""Flink versions the demo stack and the tests support."""

from __future__ import annotations

import os
from pathlib import Path

# Every release line from 1.18 on, each at its newest release on PyPI (apache-flink).
SUPPORTED_FLINK_VERSIONS = {
    "1.18": "1.18.1",
    "1.19": "1.19.3",
    "1.20": "1.20.5",
    "2.0": "2.0.2",
    "2.1": "2.1.3",
    "2.2": "2.2.1",
    "2.3": "2.3.0",
}
# The pair the integration tests run on (FLINK_TEST_VERSIONS overrides): the last 1.x line and the newest.
TESTED_FLINK_VERSIONS = ("1.20.5", "2.3.0")
DEFAULT_FLINK_VERSION = TESTED_FLINK_VERSIONS[0]

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_DIR = REPO_ROOT / "stack"


class UnsupportedFlinkVersion(ValueError):
    pass


def resolve_flink_version(requested: str | None = None) -> str:
    """A release line ('1.20') or full release ('1.20.5') -> the full release used by the stack."""
    requested = (requested or os.environ.get("FLINK_VERSION") or DEFAULT_FLINK_VERSION).strip()
    if requested in SUPPORTED_FLINK_VERSIONS.values():
        return requested
    if requested in SUPPORTED_FLINK_VERSIONS:
        return SUPPORTED_FLINK_VERSIONS[requested]
    supported = ", ".join([*SUPPORTED_FLINK_VERSIONS, *SUPPORTED_FLINK_VERSIONS.values()])
    raise UnsupportedFlinkVersion(f"FLINK_VERSION={requested!r} is not supported; use one of: {supported}")


def config_file_name(flink_version: str) -> str:
    """Flink 1.x reads flink-conf.yaml; 2.x reads only config.yaml."""
    return "flink-conf.yaml" if flink_version.startswith("1.") else "config.yaml"


def cache_dir() -> Path:
    """Where downloads, distributions and build contexts are kept between runs."""
    path = Path(os.environ.get("FLINK_RUNBOOK_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path

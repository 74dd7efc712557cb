"""Flink versions the demo stack and the tests support."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_FLINK_VERSION = "1.20.3"
SUPPORTED_FLINK_VERSIONS = {"1.20": "1.20.3", "2.2": "2.2.0"}

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_DIR = REPO_ROOT / "stack"


class UnsupportedFlinkVersion(ValueError):
    pass


def resolve_flink_version(requested: str | None = None) -> str:
    """'1.20', '1.20.3', '2.2' or '2.2.0' -> the full release used by the stack."""
    requested = (requested or os.environ.get("FLINK_VERSION") or DEFAULT_FLINK_VERSION).strip()
    if requested in SUPPORTED_FLINK_VERSIONS.values():
        return requested
    if requested in SUPPORTED_FLINK_VERSIONS:
        return SUPPORTED_FLINK_VERSIONS[requested]
    supported = ", ".join(sorted(SUPPORTED_FLINK_VERSIONS) + sorted(SUPPORTED_FLINK_VERSIONS.values()))
    raise UnsupportedFlinkVersion(f"FLINK_VERSION={requested!r} is not supported; use one of: {supported}")


def config_file_name(flink_version: str) -> str:
    """Flink 1.x reads flink-conf.yaml; 2.x reads only config.yaml."""
    return "flink-conf.yaml" if flink_version.startswith("1.") else "config.yaml"


def cache_dir() -> Path:
    """Where downloads, distributions and build contexts are kept between runs."""
    path = Path(os.environ.get("FLINK_RUNBOOK_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path

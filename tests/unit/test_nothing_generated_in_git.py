"""Nothing generated is tracked: a tracked Prefect database once blinded every fresh clone's demo.

The database held a PENDING monitor run and the monitor deployment's only
concurrency slot; every tick after a fresh `make demo` was cancelled.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

GENERATED = re.compile(
    r"(^|/)(\.prefect-home|\.venv|\.cache|__pycache__|\.pytest_cache|\.ruff_cache|build|stack/data)(/|$)"
    r"|\.(db|sqlite|sqlite3|db-journal|db-wal|log|pid|pyc|jar|class|egg-info)$"
    r"|(^|/)memo_store\.toml$|\.bak-\d"
)


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return listed.stdout.splitlines()


def test_no_database_log_cache_or_build_output_is_tracked():
    assert [path for path in tracked_files() if GENERATED.search(path)] == []


def test_the_pattern_catches_what_was_once_tracked():
    once_tracked = [".prefect-home/prefect.db", ".prefect-home/serve.log", ".prefect-home/memo_store.toml"]
    assert all(GENERATED.search(path) for path in once_tracked)
    assert not GENERATED.search("stack/inventory.yaml")

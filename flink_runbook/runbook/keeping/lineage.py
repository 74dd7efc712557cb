"""The job ids each configured job has run under, as this tool saw them (a small JSON file per cluster).

Without JobManager HA a restarted JobManager forgets every job; its checkpoints
stay on disk under <checkpoint dir>/<job id>/. Knowing which job ids were the
job's own is what lets a recovery restore it from its own checkpoint and not
from another job's in a shared directory.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from pathlib import Path

from flink_runbook.runbook.keeping.state_files import UnsafeStateFile, open_no_follow, read_state_file

KEPT_IDS = 20  # per job: enough history for a checkpoint directory's retained runs


def lineage_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "lineage" / f"{cluster}.json"


def read_lineage(state_dir: Path, cluster: str) -> dict[str, tuple[str, ...]]:
    """Job name -> the ids it ran under, oldest first; an unreadable file is an empty lineage, a symbolic
    link an UnsafeStateFile."""
    try:
        data = json.loads(read_state_file(lineage_file(state_dir, cluster)))
    except UnsafeStateFile:
        raise  # a planted link is said, not taken for "no lineage yet"
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): tuple(str(i) for i in v) for k, v in data.items() if isinstance(v, list)}


def remember_job_ids(state_dir: Path, cluster: str, job_ids: Mapping[str, str]) -> None:
    """Add each job's current id to its lineage (under a lock: monitor and recover both write)."""
    if not job_ids:
        return
    path = lineage_file(state_dir, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a", opener=open_no_follow) as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        lineage = {name: list(ids) for name, ids in read_lineage(state_dir, cluster).items()}
        changed = False
        for name, job_id in job_ids.items():
            ids = lineage.setdefault(name, [])
            if job_id not in ids:
                ids.append(job_id)
                del ids[:-KEPT_IDS]
                changed = True
        if changed:
            partial = path.with_suffix(".partial")
            with open(partial, "w", encoding="utf-8", opener=open_no_follow) as out:
                out.write(json.dumps(lineage, indent=1, sort_keys=True))
            os.replace(partial, path)  # a link at `path` was refused by read_lineage above

"""Which checkpoint or savepoint a job is resubmitted from (pure, plus one directory listing).

Like the Flink Kubernetes operator: the highest id among the latest completed
checkpoint, savepoint and restored checkpoint that has an external path; a
candidate whose files cannot be found is refused, not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flink_runbook.flink.answers import CheckpointStats
from flink_runbook.inventory import CheckpointDir

CHECKPOINT_DIR_NAME = re.compile(r"^chk-(\d+)$")


@dataclass(frozen=True)
class RestorePoint:
    path: str  # as the JobManager sees it (what goes into savepointPath)
    checkpoint_id: int
    kind: str  # checkpoint | savepoint
    source: str  # where it was found: "checkpoint history of job X" | "checkpoint directory"


@dataclass(frozen=True)
class RetainedCheckpoint:
    """A complete checkpoint on disk: <dir>/<job id>/chk-<n>/_metadata."""

    job_id: str
    checkpoint_id: int
    host_path: Path
    modified_at: float


def normalize_path(path: str) -> str:
    """file:/a, file:///a and /a name the same local path."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif path.startswith("file:"):
        path = path[len("file:") :]
    return "/" + path.lstrip("/")


def host_path(container_path: str, checkpoint_dir: CheckpointDir) -> Path | None:
    """Where the runbook's host sees a checkpoint the containers name `container_path`."""
    if not checkpoint_dir.host or not checkpoint_dir.container:
        return None
    inside = normalize_path(container_path)
    root = normalize_path(checkpoint_dir.container).rstrip("/")
    if inside != root and not inside.startswith(root + "/"):
        return None
    return checkpoint_dir.host / inside[len(root) :].lstrip("/")


def from_job_history(stats: CheckpointStats, job_label: str) -> RestorePoint | None:
    """The newest externally addressable point in a job's checkpoint statistics."""
    candidates = [
        (c, "savepoint" if c.is_savepoint else "checkpoint")
        for c in (stats.latest_completed, stats.latest_savepoint, stats.latest_restored)
        if c is not None and c.external_path
    ]
    if not candidates:
        return None
    best, kind = max(candidates, key=lambda pair: pair[0].id)
    return RestorePoint(
        path=best.external_path, checkpoint_id=best.id, kind=kind, source=f"checkpoint history of job {job_label}"
    )


def list_retained_checkpoints(host_dir: Path) -> list[RetainedCheckpoint]:
    """Complete checkpoints under a checkpoint directory (those with a _metadata file)."""
    found: list[RetainedCheckpoint] = []
    if not host_dir.is_dir():
        return found
    for job_dir in host_dir.iterdir():
        if not job_dir.is_dir():
            continue
        for chk in job_dir.iterdir():
            match = CHECKPOINT_DIR_NAME.match(chk.name)
            metadata = chk / "_metadata"
            if match and metadata.is_file():
                found.append(RetainedCheckpoint(job_dir.name, int(match.group(1)), chk, metadata.stat().st_mtime))
    return found


def newest_retained(checkpoints: list[RetainedCheckpoint], checkpoint_dir: CheckpointDir) -> RestorePoint | None:
    """After a JobManager restart: the most recently completed checkpoint on disk."""
    if not checkpoints or not checkpoint_dir.container or not checkpoint_dir.host:
        return None
    newest = max(checkpoints, key=lambda c: (c.modified_at, c.checkpoint_id))
    relative = newest.host_path.relative_to(checkpoint_dir.host).as_posix()
    container = normalize_path(checkpoint_dir.container).rstrip("/")
    return RestorePoint(
        path=f"file:{container}/{relative}",
        checkpoint_id=newest.checkpoint_id,
        kind="checkpoint",
        source=f"checkpoint directory {checkpoint_dir.host} (job {newest.job_id})",
    )

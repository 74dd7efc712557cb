"""Which checkpoint or savepoint a job is resubmitted from (pure, plus one directory listing).

Like the Flink Kubernetes operator: the highest id among the latest completed
checkpoint, savepoint and restored checkpoint that has an external path, then
the job's own checkpoints on disk; a candidate whose files cannot be found is
passed over, one outside the checkpoint directory never used.
"""

from __future__ import annotations

import posixpath
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
    """file:/a, file:///a and /a name the same local path; `..` and `.` are resolved (a path cannot climb out
    of the checkpoint directory by naming it first)."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif path.startswith("file:"):
        path = path[len("file:") :]
    return posixpath.normpath("/" + path.lstrip("/"))


def host_path(container_path: str, checkpoint_dir: CheckpointDir) -> Path | None:
    """Where the runbook's host sees a checkpoint the containers name `container_path`."""
    if not checkpoint_dir.host or not checkpoint_dir.container:
        return None
    if not _inside(container_path, checkpoint_dir.container):
        return None
    root = normalize_path(checkpoint_dir.container).rstrip("/")
    return checkpoint_dir.host / normalize_path(container_path)[len(root) :].lstrip("/")


def _history_candidates(stats: CheckpointStats, job_label: str) -> list[RestorePoint]:
    """The externally addressable points in a job's checkpoint statistics, newest first."""
    points = {
        c.external_path: RestorePoint(
            path=c.external_path,
            checkpoint_id=c.id,
            kind="savepoint" if c.is_savepoint else "checkpoint",
            source=f"checkpoint history of job {job_label}",
        )
        for c in (stats.latest_completed, stats.latest_savepoint, stats.latest_restored)
        if c is not None and c.external_path
    }
    return sorted(points.values(), key=lambda p: -p.checkpoint_id)


def list_retained_checkpoints(host_dir: Path) -> list[RetainedCheckpoint]:
    """Complete checkpoints under a checkpoint directory: <dir>/<job id>/chk-<n> with a non-empty _metadata."""
    found: list[RetainedCheckpoint] = []
    if not host_dir.is_dir():
        return found
    for job_dir in host_dir.iterdir():
        # A symlink may point anywhere (another job's directory, another volume): never followed.
        if job_dir.is_symlink() or not job_dir.is_dir():
            continue
        for chk in job_dir.iterdir():
            match = CHECKPOINT_DIR_NAME.match(chk.name)
            if match and not chk.is_symlink() and metadata_present(chk):
                found.append(
                    RetainedCheckpoint(job_dir.name, int(match.group(1)), chk, (chk / "_metadata").stat().st_mtime)
                )
    return found


def metadata_present(checkpoint: Path) -> bool:
    """A checkpoint is complete only with a non-empty _metadata (Flink writes it last)."""
    metadata = checkpoint / "_metadata"
    try:
        return metadata.is_file() and metadata.stat().st_size > 0
    except OSError:
        return False


def _container_path(checkpoint: RetainedCheckpoint, checkpoint_dir: CheckpointDir) -> str:
    relative = checkpoint.host_path.relative_to(checkpoint_dir.host).as_posix()
    return f"file:{normalize_path(checkpoint_dir.container).rstrip('/')}/{relative}"


@dataclass(frozen=True)
class RestoreChoice:
    """Where a job is resubmitted from: a point, or nothing (then its policy decides), or a refusal.

    `notes` say what was passed over and why (the report shows them).
    """

    point: RestorePoint | None = None
    refusal: str | None = None
    notes: tuple[str, ...] = ()
    # Something newer than the point was passed over (gone, outside the directory, or a newer checkpoint
    # of unknown lineage): restoring from it is for a human to approve.
    older_than_newest: bool = False


def choose_restore_point(
    job_name: str,
    checkpoint_dir: CheckpointDir,
    history: CheckpointStats | None,
    job_id: str | None,
    lineage: tuple[str, ...],
    retained: list[RetainedCheckpoint],
    released_savepoint: RestorePoint | None = None,
    others_ids: frozenset[str] = frozenset(),
) -> RestoreChoice:
    """The newest checkpoint of the job's own lineage that is really there.

    Own lineage: the job id the JobManager knows (with its checkpoint history),
    and the ids this tool saw the job run under before (`lineage`, newest last).
    Neither known (the JobManager restarted) and the directory holds checkpoints
    of more than one job id: ambiguous, refused, unless the inventory says the
    directory is the job's alone (checkpoint_dir.exclusive). A point outside the
    configured checkpoint directory is never used; one whose _metadata is gone
    or empty is passed over for the next older one, and the choice says so.

    `released_savepoint`: the savepoint of a person's stop an operator released:
    the job comes back from it first (it is the job's own, wherever it lies).
    When the JobManager knows no job of the name, a complete checkpoint on disk
    newer than the lineage's, of a job id in no
    lineage (neither this job's nor, `others_ids`, another job's of the cluster),
    may be the job's own under an id this tool never saw (a stale lineage): the
    choice says so and is marked older than the newest (a human approves it).
    """
    own_ids = {*lineage, *([job_id] if job_id else [])}
    label = f"{job_name} ({job_id})" if job_id else job_name
    candidates = _history_candidates(history, label) if history is not None else []
    on_disk = sorted(retained, key=lambda c: (c.modified_at, c.checkpoint_id), reverse=True)
    unknown_newer: list[RetainedCheckpoint] = []
    if checkpoint_dir.host and checkpoint_dir.container:
        if checkpoint_dir.exclusive:
            mine = on_disk  # the directory is the job's alone: every job id in it is its own
        elif own_ids:
            mine = [c for c in on_disk if c.job_id in own_ids]
            if job_id is None:  # only the lineage says which are its own: is it up to date?
                newest_mine = mine[0].modified_at if mine else 0.0
                unknown_newer = [
                    c for c in on_disk if c.job_id not in own_ids | others_ids and c.modified_at > newest_mine
                ]
        elif len({c.job_id for c in on_disk}) > 1 and not checkpoint_dir.exclusive:
            ids = sorted({c.job_id for c in on_disk})
            return RestoreChoice(
                refusal=f"job {job_name}: the JobManager knows no job of this name and this tool has not seen "
                f"it run, and {checkpoint_dir.host} holds checkpoints of {len(ids)} job ids ({', '.join(ids)}): "
                "which are its own is unknown, so it is not restored from a guess. Resubmit it by hand from the "
                "right checkpoint, or set checkpoint_dir.exclusive: true if only this job writes there"
            )
        else:
            mine = on_disk
        known = {normalize_path(p.path).rstrip("/") for p in candidates}
        for chk in mine:
            path = _container_path(chk, checkpoint_dir)
            if normalize_path(path).rstrip("/") not in known:
                point = RestorePoint(path, chk.checkpoint_id, "checkpoint", f"checkpoint directory (job {chk.job_id})")
                candidates.append(point)
    notes: list[str] = []
    outside: list[str] = []
    if released_savepoint is not None:
        candidates.insert(0, released_savepoint)
    if unknown_newer:
        newest = unknown_newer[0]
        notes.append(
            f"{checkpoint_dir.host} holds a newer complete checkpoint ({newest.host_path}) of job id {newest.job_id}, "
            "which this tool never saw the job run under: its lineage may be stale (the job resubmitted by hand "
            "while this tool did not watch?); if that checkpoint is the job's, restore it by hand instead"
        )
    for point in candidates:
        if point is released_savepoint:
            on_host = host_path(point.path, checkpoint_dir)
            if on_host is not None and not metadata_present(on_host):
                notes.append(f"{point.path} is named by {point.source} but its _metadata is gone or empty")
                continue
            return RestoreChoice(point=point, notes=tuple(notes), older_than_newest=bool(notes))
        if checkpoint_dir.container and not _inside(point.path, checkpoint_dir.container):
            outside.append(point.path)
            notes.append(f"{point.path} is outside the configured checkpoint directory {checkpoint_dir.container}")
            continue
        on_host = host_path(point.path, checkpoint_dir)
        if on_host is not None and not metadata_present(on_host):
            notes.append(f"{point.path} is named by {point.source} but its _metadata is gone or empty")
            continue
        if notes:  # something newer was passed over
            notes.append(
                f"restored from the older {point.kind} {point.checkpoint_id}: records the job wrote after it "
                "may be written again, and a sink that is not transactional will hold them twice"
            )
        return RestoreChoice(point=point, notes=tuple(notes), older_than_newest=bool(notes))
    if outside:
        return RestoreChoice(
            refusal=f"job {job_name}: its only checkpoints are outside the configured checkpoint directory "
            f"{checkpoint_dir.container} ({', '.join(outside)}); fix checkpoint_dir in the inventory "
            "or restore it by hand",
            notes=tuple(notes),
        )
    return RestoreChoice(notes=tuple(notes))


def _inside(path: str, directory: str) -> bool:
    inside, root = normalize_path(path), normalize_path(directory).rstrip("/")
    return inside == root or inside.startswith(root + "/")

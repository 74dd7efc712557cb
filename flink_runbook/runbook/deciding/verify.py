"""Did the recovery work? Pure checks on what was observed afterwards."""

from __future__ import annotations

from pathlib import Path

from flink_runbook.flink.answers import JobInfo, TaskManagerInfo
from flink_runbook.runbook.deciding.restore_point import RestorePoint, normalize_path
from flink_runbook.runbook.model import Check

JOB_RUNNING_CHECK = "job running"
NEW_CHECKPOINT_CHECK = "a new checkpoint completed"


def new_exceptions(info: JobInfo, since_ms: int) -> list[str]:
    """Exception messages recorded after `since_ms` (a job Flink restarted keeps its older history)."""
    return [e.message for e in info.exceptions if (e.timestamp_ms or 0) > since_ms]


def job_checks(info: JobInfo | None, restore_point: RestorePoint | None, since_ms: int = 0) -> list[Check]:
    """RUNNING with every task running, restored from the chosen point, no exception since `since_ms`,
    a new checkpoint."""
    if info is None:
        return [Check(JOB_RUNNING_CHECK, False, "the JobManager knows no job of this name")]
    checks = [
        Check(
            JOB_RUNNING_CHECK,
            info.fully_running,
            f"state {info.state}, {info.vertices_running}/{info.vertices_total} tasks running",
        )
    ]
    restored = info.checkpoints.latest_restored
    if restore_point is not None:
        same = restored is not None and normalize_path(restored.external_path or "") == normalize_path(
            restore_point.path
        )
        checks.append(
            Check(
                "restored from the chosen checkpoint",
                same,
                f"restored from {restored.external_path if restored else 'nothing'}; chosen {restore_point.path}",
            )
        )
    fresh = new_exceptions(info, since_ms)
    checks.append(
        Check(
            "no exceptions",
            not fresh,
            "no exception in the job's history" + (" since recovery" if since_ms else "")
            if not fresh
            else f"{len(fresh)}, newest: {fresh[0]}",
        )
    )
    latest = info.checkpoints.latest_completed
    base_id = restored.id if restored else 0
    checks.append(
        Check(
            NEW_CHECKPOINT_CHECK,
            latest is not None and latest.id > base_id,
            f"latest completed checkpoint {latest.id if latest else 'none'} (restored {base_id or 'none'})",
        )
    )
    return checks


def taskmanagers_stable(before: list[TaskManagerInfo], after: list[TaskManagerInfo], expected: int) -> Check:
    """The same TaskManagers stayed registered through the stabilisation window."""
    ids_before, ids_after = {tm.id for tm in before}, {tm.id for tm in after}
    return Check(
        "TaskManagers stayed registered",
        ids_before == ids_after and len(ids_after) >= expected,
        f"before {sorted(ids_before)}, after {sorted(ids_after)}, expected {expected}",
    )


def newest_output_mtime(output_dir: Path) -> float | None:
    """Modification time of the newest committed (not hidden) file under a sink directory."""
    if not output_dir.is_dir():
        return None
    times = [p.stat().st_mtime for p in output_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return max(times, default=None)


def sink_fresh(output_dir: Path, newest_mtime: float | None, since: float) -> Check:
    return Check(
        "sink has fresh output",
        newest_mtime is not None and newest_mtime >= since,
        f"newest committed file in {output_dir} written "
        + (f"{newest_mtime - since:+.1f}s relative to the resubmission" if newest_mtime else "never"),
    )

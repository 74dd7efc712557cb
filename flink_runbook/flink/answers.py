"""What Flink's REST answers mean, as plain data (pure functions, no I/O).

Field meanings were checked on real Flink 1.20.3 and 2.2.0 clusters; the
recorded answers are in tests/fixtures/rest/. Where versions differ, the
parser takes the field both have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TERMINAL_JOB_STATES = frozenset({"FAILED", "CANCELED", "FINISHED", "SUSPENDED"})
# "The heartbeat of TaskManager with id X timed out." (1.20, ResourceManager) or
# "Heartbeat of TaskManager with id X timed out." (2.2, JobMaster; the runbook's words).
HEARTBEAT_TIMEOUT = re.compile(r"[Hh]eartbeat of TaskManager with id (\S+?) timed out")
RESTARTS_EXHAUSTED = re.compile(r"Recovery is suppressed by (\w+\([^)]*\))")


@dataclass(frozen=True)
class TaskManagerInfo:
    id: str
    # None: registered, but no heartbeat received yet (Flink reports 0 then).
    heartbeat_age_ms: int | None
    slots_total: int
    slots_free: int
    path: str = ""


@dataclass(frozen=True)
class ExceptionEntry:
    exception_name: str
    message: str  # the first line of the stack trace
    timestamp_ms: int | None
    task_name: str | None = None
    taskmanager_id: str | None = None
    heartbeat_timeout_of: str | None = None  # TaskManager id, when this is a heartbeat timeout
    restart_strategy_exhausted: str | None = None  # e.g. FixedDelayRestartBackoffTimeStrategy(...)


@dataclass(frozen=True)
class CheckpointInfo:
    id: int
    external_path: str | None
    completed_at_ms: int | None
    is_savepoint: bool = False


@dataclass(frozen=True)
class CheckpointStats:
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    restored: int = 0
    latest_completed: CheckpointInfo | None = None
    latest_savepoint: CheckpointInfo | None = None
    latest_restored: CheckpointInfo | None = None
    interval_ms: int | None = None  # None: checkpointing disabled
    retained_on_cancellation: bool | None = None


@dataclass(frozen=True)
class JobInfo:
    name: str
    id: str
    state: str
    start_time_ms: int | None
    duration_ms: int | None
    vertices_total: int = 0
    vertices_running: int = 0
    # Entries of the exception history, newest first; each one was a failure of the job.
    exceptions: tuple[ExceptionEntry, ...] = ()
    exceptions_truncated: bool = False
    checkpoints: CheckpointStats = field(default_factory=CheckpointStats)

    @property
    def root_cause(self) -> str | None:
        return self.exceptions[0].message if self.exceptions else None

    @property
    def failures(self) -> int:
        return len(self.exceptions)


def parse_cluster_overview(answer: dict[str, Any]) -> dict[str, Any]:
    """GET /overview -> flink_version, taskmanagers, slots_total, slots_available."""
    return {
        "flink_version": answer.get("flink-version"),
        "taskmanagers": int(answer.get("taskmanagers", 0)),
        "slots_total": int(answer.get("slots-total", 0)),
        "slots_available": int(answer.get("slots-available", 0)),
    }


def parse_taskmanagers(answer: dict[str, Any], now_ms: int) -> list[TaskManagerInfo]:
    """GET /taskmanagers. `timeSinceLastHeartbeat` is the epoch time (ms) of the last
    heartbeat, not an age, on 1.20 and 2.2 alike; the age is now - that. A
    TaskManager that has just registered reports 0: no heartbeat yet."""
    return [
        TaskManagerInfo(
            id=tm["id"],
            heartbeat_age_ms=(
                max(0, now_ms - int(tm["timeSinceLastHeartbeat"])) if int(tm["timeSinceLastHeartbeat"]) > 0 else None
            ),
            slots_total=int(tm.get("slotsNumber", 0)),
            slots_free=int(tm.get("freeSlots", 0)),
            path=tm.get("path", ""),
        )
        for tm in answer.get("taskmanagers", [])
    ]


def parse_cluster_config(answer: list[dict[str, Any]]) -> dict[str, str]:
    """GET /jobmanager/config: a list of {key, value}."""
    return {entry["key"]: entry["value"] for entry in answer if "key" in entry}


def pick_job(jobs_overview: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The job of that name that matters now: a live one if any, else the most recently started."""
    named = [job for job in jobs_overview if job.get("name") == name]
    if not named:
        return None
    live = [job for job in named if job.get("state") not in TERMINAL_JOB_STATES]
    return max(live or named, key=lambda job: job.get("start-time", 0))


def parse_exception_history(answer: dict[str, Any]) -> tuple[tuple[ExceptionEntry, ...], bool]:
    """GET /jobs/:jobid/exceptions -> (entries newest first, truncated).

    Only `exceptionHistory` exists on both 1.20 and 2.x; `root-exception` and
    `all-exceptions` are gone in 2.x, and on 1.20 `all-exceptions` does not
    hold the history (1 entry for a job that failed 4 times).
    """
    history = answer.get("exceptionHistory") or {}
    entries = []
    for entry in history.get("entries", []):
        trace = entry.get("stacktrace") or ""
        first_line = trace.strip().splitlines()[0] if trace.strip() else entry.get("exceptionName", "")
        heartbeat = HEARTBEAT_TIMEOUT.search(trace.split("\n\tat ", 1)[0])
        exhausted = RESTARTS_EXHAUSTED.search(first_line)
        entries.append(
            ExceptionEntry(
                exception_name=entry.get("exceptionName", ""),
                message=first_line,
                timestamp_ms=entry.get("timestamp"),
                task_name=entry.get("taskName"),
                taskmanager_id=entry.get("taskManagerId"),
                heartbeat_timeout_of=heartbeat.group(1) if heartbeat else None,
                restart_strategy_exhausted=exhausted.group(1) if exhausted else None,
            )
        )
    return tuple(entries), bool(history.get("truncated"))


def _checkpoint(entry: dict[str, Any] | None, completed_key: str = "latest_ack_timestamp") -> CheckpointInfo | None:
    if not entry:
        return None
    return CheckpointInfo(
        id=int(entry["id"]),
        external_path=entry.get("external_path"),
        completed_at_ms=entry.get(completed_key),
        is_savepoint=bool(entry.get("is_savepoint")),
    )


def parse_checkpoints(answer: dict[str, Any], config: dict[str, Any] | None) -> CheckpointStats:
    """GET /jobs/:jobid/checkpoints (+ /checkpoints/config) -> counts and the latest ones."""
    counts = answer.get("counts") or {}
    latest = answer.get("latest") or {}
    interval = (config or {}).get("interval")
    externalization = (config or {}).get("externalization") or {}
    return CheckpointStats(
        completed=int(counts.get("completed", 0)),
        failed=int(counts.get("failed", 0)),
        in_progress=int(counts.get("in_progress", 0)),
        restored=int(counts.get("restored", 0)),
        latest_completed=_checkpoint(latest.get("completed")),
        latest_savepoint=_checkpoint(latest.get("savepoint")),
        latest_restored=_checkpoint(latest.get("restored"), "restore_timestamp"),
        # Flink reports a disabled checkpoint interval as Long.MAX_VALUE (or -1 on old versions).
        interval_ms=interval if isinstance(interval, int) and 0 < interval < 2**62 else None,
        retained_on_cancellation=(
            bool(externalization.get("enabled")) and not externalization.get("delete_on_cancellation")
            if externalization
            else None
        ),
    )


def parse_job(
    details: dict[str, Any],
    exceptions: dict[str, Any],
    checkpoints: dict[str, Any] | None,
    checkpoint_config: dict[str, Any] | None,
) -> JobInfo:
    """GET /jobs/:jobid (+ exceptions, checkpoints) -> JobInfo."""
    vertices = details.get("vertices", [])
    entries, truncated = parse_exception_history(exceptions)
    return JobInfo(
        name=details.get("name", ""),
        id=details["jid"],
        state=details.get("state", "UNKNOWN"),
        start_time_ms=details.get("start-time"),
        duration_ms=details.get("duration"),
        vertices_total=len(vertices),
        vertices_running=sum(1 for v in vertices if v.get("status") == "RUNNING"),
        exceptions=entries,
        exceptions_truncated=truncated,
        checkpoints=parse_checkpoints(checkpoints or {}, checkpoint_config),
    )


def heartbeat_timeouts_in_log(log: str) -> set[str]:
    """TaskManager ids whose heartbeat timeout the JobManager log reports."""
    return set(HEARTBEAT_TIMEOUT.findall(log))

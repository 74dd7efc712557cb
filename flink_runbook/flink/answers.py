"""What Flink's REST answers mean, as plain data (pure functions, no I/O).

Field meanings were checked on real Flink 1.20.3 and 2.2.0 clusters; the
recorded answers are in tests/fixtures/rest/. Where versions differ, the
parser takes the field both have.

Every field is read through `field()`: a field the runbook needs that is
missing, or any field it reads that has another JSON type, raises
AnswerInvalid naming the field. Nothing else is trusted, so an answer from
another service or a changed Flink never turns into a wrong decision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from enum import StrEnum
from typing import Any

TERMINAL_JOB_STATES = frozenset({"FAILED", "CANCELED", "FINISHED", "SUSPENDED"})
# "The heartbeat of TaskManager with id X timed out." (1.20, ResourceManager) or
# "Heartbeat of TaskManager with id X timed out." (2.2, JobMaster; the runbook's words).
HEARTBEAT_TIMEOUT = re.compile(r"[Hh]eartbeat of TaskManager with id (\S+?) timed out")
RESTARTS_EXHAUSTED = re.compile(r"Recovery is suppressed by (\w+\([^)]*\))")


class JobState(StrEnum):
    """Flink's job states that the runbook acts on (JobStatus), plus MISSING: the JobManager knows no such job."""

    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    SUSPENDED = "SUSPENDED"
    MISSING = "MISSING"


class AnswerInvalid(ValueError):
    """A REST answer lacks a field the runbook reads, or has it with another type."""

    def __init__(self, field_path: str, problem: str) -> None:
        self.field = field_path
        super().__init__(f"field {field_path} {problem}")


_ABSENT = object()
_JSON_TYPE = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}


def _type_name(value: Any) -> str:
    return "null" if value is None else _JSON_TYPE.get(type(value), type(value).__name__)


def field(obj: Any, key: str, kind: type, at: str, default: Any = _ABSENT) -> Any:
    """obj[key], checked to be of `kind`; `default` when it may be absent or null (else AnswerInvalid)."""
    path = f"{at}.{key}" if at else key
    if not isinstance(obj, dict):
        raise AnswerInvalid(at or "(the answer)", f"is {_type_name(obj)}, not an object")
    value = obj.get(key, _ABSENT)
    if value is _ABSENT or value is None:
        if default is _ABSENT:
            raise AnswerInvalid(path, "is missing" if value is _ABSENT else "is null")
        return default
    # JSON has no int/bool distinction Python keeps: true is not a count.
    wrong = isinstance(value, bool) and kind is not bool
    if wrong or not isinstance(value, kind if kind is not float else (int, float)):
        raise AnswerInvalid(path, f"is {_type_name(value)} ({str(value)[:40]!r}), not {_JSON_TYPE[kind]}")
    return value


def items(obj: Any, key: str, at: str) -> list[tuple[str, dict[str, Any]]]:
    """The objects of the list obj[key], each with its path for errors."""
    values = field(obj, key, list, at)
    path = f"{at}.{key}" if at else key
    return [(f"{path}[{i}]", _object(value, f"{path}[{i}]")) for i, value in enumerate(values)]


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AnswerInvalid(path, f"is {_type_name(value)}, not an object")
    return value


@dataclass(frozen=True)
class ClusterOverview:
    flink_version: str
    taskmanagers: int
    slots_total: int
    slots_available: int


@dataclass(frozen=True)
class TaskManagerInfo:
    id: str
    # None: registered, but no heartbeat received yet (Flink reports 0 then).
    heartbeat_age_ms: int | None
    slots_total: int
    slots_free: int
    path: str = ""

    @property
    def host(self) -> str:
        """The address part of a default id ("<address>:<port>-<suffix>"); a set resource id as it is."""
        return self.id.rsplit(":", 1)[0]

    @property
    def rpc_host(self) -> str:
        """The address in the RPC path, e.g. pekko.tcp://flink@172.18.0.3:6122/user/rpc/taskmanager_0."""
        _, at, rest = self.path.partition("@")
        return rest.split("/", 1)[0].rsplit(":", 1)[0] if at else ""

    @property
    def identities(self) -> frozenset[str]:
        """What this TaskManager may name its container by: the id, its address part, the RPC host.

        The id's address is the container's IP by default, `taskmanager.host` when set (often the
        hostname); `taskmanager.resource-id` replaces the id but not the RPC path.
        """
        return frozenset(n for n in (self.id, self.host, self.rpc_host) if n)


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
    """One checkpoint or savepoint of GET /jobs/:jobid/checkpoints' `latest`."""

    id: int
    external_path: str | None
    completed_at_ms: int | None
    is_savepoint: bool = False


@dataclass(frozen=True)
class CheckpointStats:
    """A job's checkpoint counts, the latest of each kind (what a resubmission restores from),
    and its checkpointing configuration."""

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
class JobSummary:
    """One line of GET /jobs/overview: enough to pick the job of a name that matters now
    (pick_job) and to tell a live one from one that has ended."""

    id: str
    name: str
    state: str
    start_time_ms: int
    end_time_ms: int | None = None  # None: still live (Flink's -1), or not said

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL_JOB_STATES


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
    checkpoints: CheckpointStats = dataclass_field(default_factory=CheckpointStats)

    @property
    def root_cause(self) -> str | None:
        return self.exceptions[0].message if self.exceptions else None

    @property
    def failures(self) -> int:
        return len(self.exceptions)

    @property
    def fully_running(self) -> bool:
        """RUNNING with every task running: the one meaning of "the job runs" (findings, plan, recovery, verify)."""
        return self.state == JobState.RUNNING and self.vertices_running == self.vertices_total


def parse_cluster_overview(answer: Any) -> ClusterOverview:
    """GET /overview -> version and slots. Only Flink's answer has flink-version."""
    return ClusterOverview(
        flink_version=field(answer, "flink-version", str, ""),
        taskmanagers=field(answer, "taskmanagers", int, ""),
        slots_total=field(answer, "slots-total", int, ""),
        slots_available=field(answer, "slots-available", int, ""),
    )


def parse_taskmanagers(answer: Any, now_ms: int) -> list[TaskManagerInfo]:
    """GET /taskmanagers. `timeSinceLastHeartbeat` is the epoch time (ms) of the last
    heartbeat, not an age, on 1.20 and 2.2 alike; the age is now - that. A
    TaskManager that has just registered reports 0: no heartbeat yet."""
    found = []
    for at, tm in items(answer, "taskmanagers", ""):
        last = field(tm, "timeSinceLastHeartbeat", int, at)
        found.append(
            TaskManagerInfo(
                id=field(tm, "id", str, at),
                heartbeat_age_ms=max(0, now_ms - last) if last > 0 else None,
                slots_total=field(tm, "slotsNumber", int, at),
                slots_free=field(tm, "freeSlots", int, at),
                path=field(tm, "path", str, at, default=""),
            )
        )
    return found


def parse_cluster_config(answer: Any) -> dict[str, str]:
    """GET /jobmanager/config: a list of {key, value}."""
    if not isinstance(answer, list):
        raise AnswerInvalid("(the answer)", f"is {_type_name(answer)}, not a list of {{key, value}}")
    config = {}
    for i, entry in enumerate(answer):
        at = f"[{i}]"
        config[field(entry, "key", str, at)] = field(entry, "value", str, at)
    return config


def parse_jobs_overview(answer: Any) -> list[JobSummary]:
    """GET /jobs/overview: every job the JobManager remembers."""
    return [
        JobSummary(
            id=field(job, "jid", str, at),
            name=field(job, "name", str, at),
            state=field(job, "state", str, at),
            start_time_ms=field(job, "start-time", int, at),
            end_time_ms=_ended(field(job, "end-time", int, at, default=-1)),
        )
        for at, job in items(answer, "jobs", "")
    ]


def _ended(end_time_ms: int) -> int | None:
    return end_time_ms if end_time_ms > 0 else None


def pick_job(jobs: list[JobSummary], name: str, known_ids: Sequence[str] = ()) -> JobSummary | None:
    """The job of that name that matters now: the live one if there is one, else the most recently started.

    When several share the name (two live copies, DUPLICATE_JOB; or none live, after one), the one this tool
    knows (`known_ids`: the ids it saw the job run under, newest last) is judged: a copy that ran beside it
    would otherwise hide its failure by being newer. A job started after the known one ended is not a copy
    but its successor (resubmitted, by the recovery or by hand): the newest of those is judged.
    """
    named = [job for job in jobs if job.name == name]
    if not named:
        return None
    live = [job for job in named if job.live]
    candidates = live or named
    rank = {job_id: index for index, job_id in enumerate(known_ids)}
    known = [job for job in candidates if job.id in rank]
    if len(live) == 1 or not known:
        return max(candidates, key=lambda job: job.start_time_ms)
    newest_known = max(known, key=lambda job: rank[job.id])
    if live:
        return newest_known
    ended = newest_known.end_time_ms
    if ended is None:  # Flink did not say when it ended: what ran beside it cannot be told from what came after
        return max(candidates, key=lambda job: job.start_time_ms)
    successors = [job for job in candidates if job.id not in rank and job.start_time_ms >= ended]
    return max([newest_known, *successors], key=lambda job: job.start_time_ms)


@dataclass(frozen=True)
class ExceptionHistory:
    entries: tuple[ExceptionEntry, ...] = ()  # newest first
    truncated: bool = False


def parse_exception_history(answer: Any) -> ExceptionHistory:
    """GET /jobs/:jobid/exceptions.

    Only `exceptionHistory` exists on both 1.20 and 2.x; `root-exception` and
    `all-exceptions` are gone in 2.x, and on 1.20 `all-exceptions` does not
    hold the history (1 entry for a job that failed 4 times).
    """
    history = field(answer, "exceptionHistory", dict, "")
    entries = []
    for at, entry in items(history, "entries", "exceptionHistory"):
        name = field(entry, "exceptionName", str, at)
        trace = field(entry, "stacktrace", str, at)
        first_line = trace.strip().splitlines()[0] if trace.strip() else name
        heartbeat = HEARTBEAT_TIMEOUT.search(trace.split("\n\tat ", 1)[0])
        exhausted = RESTARTS_EXHAUSTED.search(first_line)
        entries.append(
            ExceptionEntry(
                exception_name=name,
                message=first_line,
                timestamp_ms=field(entry, "timestamp", int, at, default=None),
                # A global failure has no task and no TaskManager.
                task_name=field(entry, "taskName", str, at, default=None),
                taskmanager_id=field(entry, "taskManagerId", str, at, default=None),
                heartbeat_timeout_of=heartbeat.group(1) if heartbeat else None,
                restart_strategy_exhausted=exhausted.group(1) if exhausted else None,
            )
        )
    return ExceptionHistory(tuple(entries), field(history, "truncated", bool, "exceptionHistory", default=False))


def _checkpoint(latest: dict[str, Any], key: str, completed_key: str) -> CheckpointInfo | None:
    entry = field(latest, key, dict, "latest", default=None)  # null: none of that kind yet
    if entry is None:
        return None
    at = f"latest.{key}"
    return CheckpointInfo(
        id=field(entry, "id", int, at),
        external_path=field(entry, "external_path", str, at, default=None),
        completed_at_ms=field(entry, completed_key, int, at, default=None),
        is_savepoint=field(entry, "is_savepoint", bool, at, default=False),
    )


def parse_checkpoint_stats(answer: Any) -> CheckpointStats:
    """GET /jobs/:jobid/checkpoints -> counts and the latest ones (without the configuration)."""
    counts = field(answer, "counts", dict, "")
    latest = field(answer, "latest", dict, "")
    return CheckpointStats(
        completed=field(counts, "completed", int, "counts"),
        failed=field(counts, "failed", int, "counts"),
        in_progress=field(counts, "in_progress", int, "counts"),
        restored=field(counts, "restored", int, "counts"),
        latest_completed=_checkpoint(latest, "completed", "latest_ack_timestamp"),
        latest_savepoint=_checkpoint(latest, "savepoint", "latest_ack_timestamp"),
        latest_restored=_checkpoint(latest, "restored", "restore_timestamp"),
    )


def parse_checkpoint_config(answer: Any) -> tuple[int | None, bool | None]:
    """GET /jobs/:jobid/checkpoints/config -> (interval in ms or None when disabled, retained on cancellation)."""
    interval = field(answer, "interval", int, "")
    externalization = field(answer, "externalization", dict, "", default=None)
    retained = None
    if externalization is not None:
        enabled = field(externalization, "enabled", bool, "externalization", default=False)
        deleted = field(externalization, "delete_on_cancellation", bool, "externalization", default=False)
        retained = enabled and not deleted
    # Flink reports a disabled checkpoint interval as Long.MAX_VALUE (or -1 on old versions).
    return (interval if 0 < interval < 2**62 else None), retained


def parse_job_details(answer: Any) -> JobInfo:
    """GET /jobs/:jobid -> JobInfo without its exceptions and checkpoints."""
    vertices = items(answer, "vertices", "")
    return JobInfo(
        name=field(answer, "name", str, ""),
        id=field(answer, "jid", str, ""),
        state=field(answer, "state", str, ""),
        start_time_ms=field(answer, "start-time", int, ""),
        duration_ms=field(answer, "duration", int, "", default=None),
        vertices_total=len(vertices),
        vertices_running=sum(1 for at, v in vertices if field(v, "status", str, at) == JobState.RUNNING),
    )


def job_info(
    details: JobInfo,
    history: ExceptionHistory,
    checkpoints: CheckpointStats | None,
    checkpoint_config: tuple[int | None, bool | None] | None,
) -> JobInfo:
    """One job from its four answers; no checkpoints (None): checkpointing is off (Flink answers 404)."""
    stats = checkpoints or CheckpointStats()
    if checkpoint_config is not None:
        stats = replace(stats, interval_ms=checkpoint_config[0], retained_on_cancellation=checkpoint_config[1])
    return replace(details, exceptions=history.entries, exceptions_truncated=history.truncated, checkpoints=stats)


def parse_job(details: Any, exceptions: Any, checkpoints: Any | None, checkpoint_config: Any | None) -> JobInfo:
    """The four answers of one job as they came -> JobInfo (for recorded answers; the client reads each one)."""
    return job_info(
        parse_job_details(details),
        parse_exception_history(exceptions),
        parse_checkpoint_stats(checkpoints) if checkpoints is not None else None,
        parse_checkpoint_config(checkpoint_config) if checkpoint_config is not None else None,
    )


def heartbeat_timeouts_in_log(log: str) -> set[str]:
    """TaskManager ids whose heartbeat timeout the JobManager log reports."""
    return set(HEARTBEAT_TIMEOUT.findall(log))

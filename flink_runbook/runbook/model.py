"""The records of a recovery, shared by what decides, what acts and what reports: the steps on its timeline,
the checks, the jobs it resubmitted, its progress and its result (pure data, no I/O)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from flink_runbook.flink.answers import TaskManagerInfo
from flink_runbook.runbook.deciding.plan import Action
from flink_runbook.runbook.deciding.restore_point import RestorePoint


class StepStatus(StrEnum):
    PLANNED = "planned"  # a dry run's step, or one not started yet
    DONE = "done"
    SKIPPED = "skipped"  # not needed once looked at (Flink restarted the job by itself)
    FAILED = "failed"


class RecoveryStatus(StrEnum):
    HEALTHY = "healthy"  # nothing to do
    PLANNED = "planned"  # a dry run
    RECOVERED = "recovered"  # done and verified
    FAILED = "failed"
    REFUSED = "refused"  # nothing safe to do: a human decides
    # A triggered run that found another recovery of the cluster holding it, and nothing left once that ended.
    SUPERSEDED = "superseded"
    # The recovery's deadline (recovery.deadline_s) passed before it was done: it stopped, a human looks.
    TIMED_OUT = "timed out"

    @property
    def ok(self) -> bool:
        """A run that needs nobody: healthy, recovered, a dry run's plan, or another run's recovery."""
        return self in (
            RecoveryStatus.HEALTHY, RecoveryStatus.RECOVERED, RecoveryStatus.PLANNED, RecoveryStatus.SUPERSEDED
        )


@dataclass
class ActionRecord:
    action: str
    target: str
    reason: str
    status: StepStatus = StepStatus.PLANNED
    started_at: str | None = None
    duration_s: float | None = None
    detail: str = ""
    started_s: float | None = None  # epoch seconds, for the timeline chart


@dataclass
class JobRecord:
    name: str
    old_id: str | None
    new_id: str | None = None
    restored_from: str | None = None


@dataclass(frozen=True)
class Milestone:
    """A moment of the incident on the timeline: the fault seen, a job RUNNING, its first new checkpoint."""

    name: str
    at_s: float  # epoch seconds


@dataclass
class RecoveryResult:
    cluster: str
    status: RecoveryStatus
    dry_run: bool = False
    actions: list[ActionRecord] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    taskmanagers_before: list[str] = field(default_factory=list)
    taskmanagers_after: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    findings_before: list[dict] = field(default_factory=list)
    findings_after: list[dict] = field(default_factory=list)
    started_at: str = ""
    duration_s: float = 0.0
    milestones: list[Milestone] = field(default_factory=list)
    # From the first sign of the fault (the job's failure in Flink's exception history, or this run's first
    # look) to the recovery verified: the incident's time to recover; None unless it recovered.
    mttr_s: float | None = None
    approval: dict | None = None  # the gate's decision (ApprovalDecision.to_dict), when it was asked
    run_url: str | None = None  # the recover run in the Prefect UI
    # It did nothing: the cluster was healthy, the guard rails held it, or another recovery kept the lock.
    nothing_done: bool = False

    @property
    def fault_at_s(self) -> float | None:
        return min((m.at_s for m in self.milestones if m.name == FAULT_OBSERVED or m.name.endswith(JOB_FAILED)),
                   default=None)

    @property
    def verified(self) -> bool:
        return self.status in (RecoveryStatus.RECOVERED, RecoveryStatus.HEALTHY) and all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["verified"] = self.verified
        return data


FAULT_OBSERVED = "fault observed"


JOB_FAILED = "failed (Flink's exception history)"


RECOVERED = "recovered (verified)"


def utc_now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def utc_iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Resubmitted:
    """A job to verify: what it was restored from, and from when on its exceptions count."""

    job: str
    restore_point: RestorePoint | None
    exceptions_since_ms: int
    job_id: str | None = None  # followed by its id: another job may share the name


@dataclass(frozen=True)
class Progress:
    """What the recovery has done so far: the timeline and what later steps need to know."""

    steps: tuple[ActionRecord, ...] = ()
    jobs: tuple[JobRecord, ...] = ()
    checks: tuple[Check, ...] = ()
    # TaskManager ids still registered from restarted containers right after the restart: the old processes.
    still_registered: frozenset[str] = frozenset()
    taskmanagers: tuple[TaskManagerInfo, ...] = ()  # registered once they were back
    resubmitted: tuple[Resubmitted, ...] = ()
    resubmitted_at: float | None = None  # epoch seconds of the last resubmission (sink freshness counts from it)
    milestones: tuple[Milestone, ...] = ()  # a job RUNNING, its first new checkpoint: for the timeline
    deadline_at: float | None = None  # epoch seconds: recovery.deadline_s after the first action

    @property
    def past_deadline(self) -> bool:
        return self.deadline_at is not None and time.time() >= self.deadline_at

    @property
    def stopped(self) -> bool:
        """An action step failed: the later action steps are not attempted."""
        return any(step.status == StepStatus.FAILED and step.action in tuple(Action) for step in self.steps)

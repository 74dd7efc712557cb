"""The verdict of a recovery: what it did, whether it worked, in one result (pure)."""

from __future__ import annotations

from typing import Any

from flink_runbook.runbook.deciding.plan import RecoveryPlan
from flink_runbook.runbook.model import (
    FAULT_OBSERVED,
    JOB_FAILED,
    RECOVERED,
    ActionRecord,
    JobRecord,
    Milestone,
    Progress,
    RecoveryResult,
    RecoveryStatus,
    StepStatus,
)
from flink_runbook.runbook.observing.diagnosis import Diagnosis

# A failure in the exception history older than this before the run looked is not this incident's.
FAILURE_LOOKBACK_S = 3600


class RecoveryNotDone(RuntimeError):
    """A failed or refused recovery; carries every cluster's result for the caller."""

    def __init__(self, message: str, results: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.results = results

    def __reduce__(self) -> tuple:  # picklable with both arguments, for Prefect's result handling
        return (type(self), (str(self), self.results))


def findings_summary(diagnosis: Diagnosis) -> list[dict]:
    return [{"code": f.code, "severity": f.severity, "summary": f.summary} for f in diagnosis.findings]


def fault_milestones(before: Diagnosis) -> list[Milestone]:
    """When the fault began: each broken job's newest failure in Flink's exception history (within the
    hour), and when this run first saw the cluster."""
    seen_s = before.observation.observed_at_ms / 1000
    out = [Milestone(FAULT_OBSERVED, seen_s)]
    for view in before.observation.jobs:
        info = view.info
        if info is None or info.fully_running or not info.exceptions:
            continue
        failed_ms = info.exceptions[0].timestamp_ms
        if failed_ms and seen_s - FAILURE_LOOKBACK_S <= failed_ms / 1000 <= seen_s:
            out.append(Milestone(f"job {view.name} {JOB_FAILED}", failed_ms / 1000))
    return sorted(out, key=lambda m: m.at_s)


def verdict(
    before: Diagnosis,
    plan: RecoveryPlan,
    progress: Progress | None,
    after: Diagnosis | None,
    *,
    started_at: str,
    duration_s: float,
) -> RecoveryResult:
    """The result of one cluster's recovery; `progress` None: a dry run (the plan is the result).

    Recovered only when every step worked, every check passed, nothing was refused and the
    cluster diagnoses healthy afterwards.
    """
    result = RecoveryResult(
        cluster=plan.cluster,
        status=RecoveryStatus.HEALTHY,
        dry_run=progress is None,
        refusals=list(plan.refusals),
        taskmanagers_before=[tm.id for tm in before.observation.taskmanagers],
        findings_before=findings_summary(before),
        started_at=started_at,
        duration_s=round(duration_s, 2),
    )
    if plan.healthy:
        return result
    if progress is None:
        result.status = RecoveryStatus.PLANNED if plan.actions else RecoveryStatus.REFUSED
        result.actions = [ActionRecord(a.action, a.target, a.reason) for a in plan.actions]
        result.jobs = [
            JobRecord(a.target, a.old_job_id, restored_from=a.restore_point.path if a.restore_point else None)
            for a in plan.resubmits
        ]
        return result
    result.actions, result.jobs, result.checks = list(progress.steps), list(progress.jobs), list(progress.checks)
    result.milestones = fault_milestones(before) + sorted(progress.milestones, key=lambda m: m.at_s)
    if after is not None:
        result.findings_after = findings_summary(after)
        result.taskmanagers_after = [tm.id for tm in after.observation.taskmanagers]
    worked = (
        after is not None
        and after.healthy
        and not plan.refusals
        and all(step.status != StepStatus.FAILED for step in progress.steps)
        and all(check.passed for check in progress.checks)
    )
    if worked:
        result.status = RecoveryStatus.RECOVERED
        ends = [a.started_s + (a.duration_s or 0) for a in progress.steps if a.started_s is not None]
        if ends and result.fault_at_s is not None:
            result.milestones.append(Milestone(RECOVERED, max(ends)))
            result.mttr_s = round(max(ends) - result.fault_at_s, 1)
    elif plan.refusals and not plan.actions:
        result.status = RecoveryStatus.REFUSED
    else:
        result.status = RecoveryStatus.FAILED
    return result

"""The verdict of a recovery: what it did, whether it worked, in one result (pure)."""

from __future__ import annotations

from typing import Any

from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.execute import Progress
from flink_runbook.runbook.plan import RecoveryPlan
from flink_runbook.runbook.recovery_report import ActionRecord, JobRecord, RecoveryResult, RecoveryStatus, StepStatus


class RecoveryNotDone(RuntimeError):
    """A failed or refused recovery; carries every cluster's result for the caller."""

    def __init__(self, message: str, results: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.results = results

    def __reduce__(self) -> tuple:  # picklable with both arguments, for Prefect's result handling
        return (type(self), (str(self), self.results))


def findings_summary(diagnosis: Diagnosis) -> list[dict]:
    return [{"code": f.code, "severity": f.severity, "summary": f.summary} for f in diagnosis.findings]


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
    elif plan.refusals and not plan.actions:
        result.status = RecoveryStatus.REFUSED
    else:
        result.status = RecoveryStatus.FAILED
    return result

"""recover: restart the TaskManagers, resubmit jobs from their latest retained checkpoint, verify.

Driven by what it observes: it diagnoses first, plans from the diagnosis (a
pure function), carries the plan out one recorded step at a time, verifies,
and diagnoses again. A crash half-way is finished by the next run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flink_runbook.flows.diagnose import diagnose_cluster
from flink_runbook.flows.locking import one_recovery_at_a_time
from flink_runbook.tasks.recover_steps import (
    find_retained_checkpoints,
    restart_taskmanagers,
    resubmit_job,
    settle_job,
    start_jobmanager,
    verify_job,
    verify_stability,
    wait_for_taskmanagers,
    write_recovery_report,
)
from prefect import flow, get_run_logger
from prefect.states import Failed

from flink_runbook.inventory import ClusterSpec, load_inventory
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.plan import PlannedAction, RecoveryPlan, plan_recovery
from flink_runbook.runbook.recovery_report import ActionRecord, JobRecord, RecoveryResult, utc_now_iso
from flink_runbook.runbook.restore_point import RestorePoint

RECOVERY_OK = ("healthy", "recovered", "planned")


class RecoveryNotDone(RuntimeError):
    """A failed or refused recovery; carries every cluster's result for the caller."""

    def __init__(self, message: str, results: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.results = results

    def __reduce__(self) -> tuple:  # picklable with both arguments, for Prefect's result handling
        return (type(self), (str(self), self.results))


def _findings(diagnosis: Diagnosis) -> list[dict]:
    return [{"code": f.code, "severity": f.severity, "summary": f.summary} for f in diagnosis.findings]


@contextmanager
def _step(result: RecoveryResult, action: str, target: str, reason: str) -> Iterator[ActionRecord]:
    """Record one step on the timeline: start, duration, outcome."""
    record = ActionRecord(action=action, target=target, reason=reason, started_at=utc_now_iso())
    result.actions.append(record)
    started = time.monotonic()
    try:
        yield record
        if record.status == "planned":
            record.status = "done"
    except Exception as exc:
        record.status, record.detail = "failed", str(exc)
        raise
    finally:
        record.duration_s = round(time.monotonic() - started, 2)


def _lost_taskmanager_ids(diagnosis: Diagnosis, restarted: tuple[str, ...]) -> set[str]:
    """Registered TaskManagers that live in containers being restarted: they must not count as back."""
    addresses = {
        ip for c in diagnosis.observation.containers.containers if c.name in restarted for ip in c.ip_addresses
    }
    return {tm.id for tm in diagnosis.observation.taskmanagers if tm.id.rsplit(":", 1)[0] in addresses}


def _resubmit(cluster: ClusterSpec, action: PlannedAction, result: RecoveryResult) -> tuple:
    """Resubmit one job unless Flink brought it back itself; returns what to verify."""
    job = next(j for j in cluster.jobs if j.name == action.target)
    record = JobRecord(name=job.name, old_id=action.old_job_id)
    result.jobs.append(record)
    with _step(result, "resubmit_job", job.name, action.reason) as step:
        state, job_id = settle_job(cluster, job.name)
        if state in ("RUNNING",):
            record.new_id = job_id
            step.status, step.detail = "skipped", f"Flink restarted job {job_id} by itself; not resubmitted"
            # Its history holds the failure being recovered from: judge it from now on.
            return job, None, int(time.time() * 1000)
        if state not in ("FAILED", "CANCELED", "SUSPENDED", "MISSING"):
            raise RuntimeError(
                f"job {job.name} is still {state} after the TaskManagers came back; "
                "not resubmitted, to never run two copies"
            )
        restore_point: RestorePoint | None = action.restore_point
        submission = resubmit_job(cluster, job, restore_point)
        record.new_id = submission.job_id
        record.restored_from = restore_point.path if restore_point else None
        step.detail = submission.how + (f"; output: {submission.output[-300:]}" if submission.output else "")
        # A new job: every exception in its history counts.
        return job, restore_point, 0


def _carry_out(cluster: ClusterSpec, plan: RecoveryPlan, diagnosis: Diagnosis, result: RecoveryResult) -> None:
    for action in plan.of("start_jobmanager"):
        with _step(result, action.action, action.target, action.reason) as step:
            step.detail = start_jobmanager(cluster, action.containers)
    restarted: tuple[str, ...] = ()
    gone = set()
    for action in plan.of("restart_taskmanagers"):
        with _step(result, action.action, action.target, action.reason) as step:
            step.detail, still_registered = restart_taskmanagers(cluster, action.containers)
            restarted += action.containers
            gone |= still_registered
    taskmanagers = []
    for action in plan.of("wait_for_taskmanagers"):
        resubmitting = {a.target for a in plan.of("resubmit_job")}
        free_slots = sum(j.parallelism for j in cluster.jobs if j.name in resubmitting)
        with _step(result, action.action, action.target, action.reason) as step:
            gone |= _lost_taskmanager_ids(diagnosis, restarted)
            taskmanagers = wait_for_taskmanagers(cluster, free_slots, gone)
            step.detail = "registered: " + ", ".join(tm.id for tm in taskmanagers)
    to_verify = [_resubmit(cluster, action, result) for action in plan.of("resubmit_job")]
    since = time.time()
    exceptions_since = {job.name: since_ms for job, _, since_ms in to_verify}
    for job, restore_point, since_ms in to_verify:
        with _step(result, "verify_job", job.name, "RUNNING, restored, no exceptions, a new checkpoint") as step:
            checks = verify_job(cluster, job, restore_point, since, since_ms)
            result.checks += checks
            if not all(c.passed for c in checks):
                step.status, step.detail = "failed", "; ".join(c.detail for c in checks if not c.passed)
    if plan.actions:
        with _step(result, "verify_stability", cluster.name, f"{cluster.recovery.stabilization_s:.0f}s window") as s:
            checks = verify_stability(cluster, taskmanagers or [], exceptions_since)
            result.checks += checks
            if not all(c.passed for c in checks):
                s.status, s.detail = "failed", "; ".join(c.detail for c in checks if not c.passed)


def recover_cluster(cluster: ClusterSpec, dry_run: bool = False) -> RecoveryResult:
    logger = get_run_logger()
    started = time.monotonic()
    result = RecoveryResult(cluster=cluster.name, status="healthy", dry_run=dry_run, started_at=utc_now_iso())

    def observe_and_plan() -> tuple[Diagnosis, RecoveryPlan]:
        diagnosis = diagnose_cluster(cluster)
        plan = plan_recovery(cluster, diagnosis, find_retained_checkpoints(cluster))
        result.findings_before = _findings(diagnosis)
        result.taskmanagers_before = [tm.id for tm in diagnosis.observation.taskmanagers]
        result.refusals = list(plan.refusals)
        return diagnosis, plan

    if dry_run:
        _, plan = observe_and_plan()
        result.status = "healthy" if plan.healthy else "planned" if plan.actions else "refused"
        result.actions = [ActionRecord(a.action, a.target, a.reason) for a in plan.actions]
        result.jobs = [
            JobRecord(a.target, a.old_job_id, restored_from=a.restore_point.path if a.restore_point else None)
            for a in plan.of("resubmit_job")
        ]
    else:
        with one_recovery_at_a_time(cluster.name):
            diagnosis, plan = observe_and_plan()
            if plan.healthy:
                logger.info("Cluster %s is healthy: nothing to do", cluster.name)
            else:
                for refusal in plan.refusals:
                    logger.error("Cluster %s: refused: %s", cluster.name, refusal)
                try:
                    _carry_out(cluster, plan, diagnosis, result)
                except Exception as exc:  # recorded on the step; the report says what to do
                    logger.error("Cluster %s: recovery step failed: %s", cluster.name, exc)
                after = diagnose_cluster(cluster)
                result.findings_after = _findings(after)
                result.taskmanagers_after = [tm.id for tm in after.observation.taskmanagers]
                ok = after.healthy and not plan.refusals and all(a.status != "failed" for a in result.actions)
                result.status = (
                    "recovered"
                    if ok and all(c.passed for c in result.checks)
                    else ("refused" if plan.refusals and not plan.actions else "failed")
                )
    result.duration_s = round(time.monotonic() - started, 2)
    write_recovery_report(result)
    log = logger.info if result.status in ("healthy", "planned", "recovered") else logger.error
    log("Recovery of %s: %s in %.1fs", cluster.name, result.status, result.duration_s)
    return result


@flow(name="recover", description="Restart TaskManagers, resubmit jobs from their last checkpoint, verify.")
def recover_flow(config: str, cluster: str | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Recover every cluster of the inventory `config`, or the one named `cluster`."""
    inventory = load_inventory(config)
    results = [recover_cluster(spec, dry_run=dry_run).to_dict() for spec in inventory.select(cluster)]
    not_ok = [f"{r['cluster']} {r['status']}" for r in results if r["status"] not in RECOVERY_OK]
    if not_ok:
        # A red run in the UI. Prefect needs an exception as a failed state's data; it carries the results.
        message = f"recovery not done: {', '.join(not_ok)}; see the recovery report"
        return Failed(message=message, data=RecoveryNotDone(message, results))
    return results


def run_recover(config: str, cluster: str | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Run the recover flow and return its results whether or not it failed (for the CLI and tests)."""
    state = recover_flow(config=config, cluster=cluster, dry_run=dry_run, return_state=True)
    outcome = state.result(raise_on_failure=False)
    return outcome.results if isinstance(outcome, RecoveryNotDone) else outcome

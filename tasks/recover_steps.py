"""The runbook's fix as Prefect tasks: plan, restart, wait, resubmit, verify, report.

Each task wraps one step of the core executor (flink_runbook.runbook.acting.execute)
and returns the progress as plain data. Steps that change the cluster are not
retried by Prefect: each one checks the world first (a job already running is
not submitted again), and a second `recover` run finishes what a failed one left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.acting import execute
from flink_runbook.runbook.deciding.guard import GuardAction
from flink_runbook.runbook.deciding.plan import PlannedAction, RecoveryPlan, plan_recovery
from flink_runbook.runbook.deciding.restore_point import list_retained_checkpoints
from flink_runbook.runbook.deciding.verdict import verdict
from flink_runbook.runbook.keeping.lineage import read_lineage
from flink_runbook.runbook.model import Check, Progress, RecoveryResult, Resubmitted, StepStatus
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.reporting.recovery_report import recovery_report
from flink_runbook.runbook.reporting.timeline_chart import report_chart
from flink_runbook.tasks.clients import cluster_clients
from flink_runbook.tasks.incident_steps import record_incident
from flink_runbook.tasks.monitor_steps import guard_decision_now
from flink_runbook.tasks.options import CHANGES_CLUSTER, READ_ONLY

WAIT_LINE_EVERY_S = 5.0


def _logged(cluster: ClusterSpec, before: Progress, after: Progress) -> Progress:
    """Say what the step did, in the run's log (the timeline is in the report)."""
    for step in after.steps[len(before.steps) :]:
        log = get_run_logger().error if step.status == StepStatus.FAILED else get_run_logger().info
        log("%s %s %s: %s in %.1fs. %s", cluster.name, step.action, step.target, step.status, step.duration_s or 0,
            step.detail)
    return after


@task(name="plan recovery", task_run_name="plan recovery of {cluster.name}", **READ_ONLY)
def plan_cluster_recovery(cluster: ClusterSpec, diagnosis: Diagnosis) -> RecoveryPlan:
    """The plan from the diagnosis and the checkpoints retained on disk; refusals are logged."""
    retained = {
        job.name: list_retained_checkpoints(job.checkpoint_dir.host) if job.checkpoint_dir.host else []
        for job in cluster.jobs
    }
    plan = plan_recovery(cluster, diagnosis, retained, read_lineage(cluster.state_dir, cluster.name))
    for refusal in plan.refusals:
        get_run_logger().error("Cluster %s: refused: %s", cluster.name, refusal)
    return plan


@task(name="check the guard rails", task_run_name="check the guard rails of {cluster.name}", **READ_ONLY)
def guard_refusal(cluster: ClusterSpec, config: Path) -> str | None:
    """A triggered recovery checks escalation, cooldown and the flap limit itself, like the monitor does:
    whoever posted the event, it acts only when they allow it. Asked under the recovery lock. Returns why
    not, or None."""
    decision = guard_decision_now(cluster, config, str(flow_run.id) if flow_run.id else None, holding_the_lock=True)
    if decision.action == GuardAction.RECOVER:
        return None
    return f"the guard rails do not allow a recovery now ({decision.action}: {decision.reason})"


def _cluster_step(name: str, step: Callable[..., Progress], **options: Any) -> Task:
    """A task for one of the executor's plan steps, named like the runbook's step."""

    def run(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress) -> Progress:
        bounded = execute.within_deadline(cluster, progress)
        return _logged(cluster, progress, step(bounded, plan, cluster_clients(cluster), progress))

    run.__name__ = run.__qualname__ = name.replace(" ", "_").lower()
    return task(name=name, task_run_name=f"{name} of {{cluster.name}}", **options)(run)


reconnect_networks = _cluster_step("reconnect networks", execute.reconnect_container_networks, **CHANGES_CLUSTER)
unpause_containers = _cluster_step("unpause containers", execute.unpause_containers, **CHANGES_CLUSTER)
start_jobmanager = _cluster_step("start JobManager", execute.start_jobmanager, **CHANGES_CLUSTER)
restart_taskmanagers = _cluster_step("restart TaskManagers", execute.restart_taskmanagers, **CHANGES_CLUSTER)
wait_for_taskmanagers = _cluster_step("wait for TaskManagers", execute.wait_for_taskmanagers, cache_policy=NO_CACHE)
verify_stability = _cluster_step("verify stability", execute.verify_stability, cache_policy=NO_CACHE)


@task(name="resubmit job", task_run_name="resubmit {planned.target}", **CHANGES_CLUSTER)
def resubmit_job(cluster: ClusterSpec, planned: PlannedAction, progress: Progress) -> Progress:
    bounded = execute.within_deadline(cluster, progress)
    return _logged(cluster, progress, execute.resubmit_job(bounded, planned, cluster_clients(cluster), progress))


@task(name="verify job", task_run_name="verify {job.job}", cache_policy=NO_CACHE)
def verify_job(cluster: ClusterSpec, job: Resubmitted, progress: Progress) -> Progress:
    """Progress is a progress artifact of the run, visible in the UI while it waits."""
    logger = get_run_logger()
    artifact = create_progress_artifact(
        progress=0.0, key=f"recover-{cluster.name}-verify", description=f"Verifying {job.job} on {cluster.name}"
    )

    started, said = time.monotonic(), [-WAIT_LINE_EVERY_S]
    deadline = cluster.recovery.verify_timeout_s

    def show(checks: list[Check]) -> None:
        passed = sum(c.passed for c in checks)
        update_progress_artifact(artifact, progress=100.0 * passed / len(checks))
        elapsed = time.monotonic() - started
        if passed < len(checks) and elapsed - said[0] >= WAIT_LINE_EVERY_S:  # a line per few seconds, not a flood
            said[0] = elapsed
            waiting = "; ".join(c.detail for c in checks if not c.passed)
            logger.info("verify %s: %d/%d checks pass after %.0fs of %.0fs; waiting for: %s", job.job, passed,
                        len(checks), elapsed, deadline, waiting)

    bounded = execute.within_deadline(cluster, progress)
    return _logged(cluster, progress, execute.verify_job(bounded, job, cluster_clients(cluster), progress, show))


# The verdict is the core's (pure); as a task it is a step of the run in the UI.
judge_recovery = task(name="judge recovery", task_run_name="judge recovery of {plan.cluster}", cache_policy=NO_CACHE)(
    verdict
)


@task(name="write recovery report", task_run_name="write recovery report of {result.cluster}", cache_policy=NO_CACHE)
def write_recovery_report(result: RecoveryResult) -> RecoveryResult:
    """The verdict, as a Markdown artifact of the run (its timeline as a chart) and one log line."""
    chart_uri, chart_note = report_chart(result)
    create_markdown_artifact(
        key=f"recover-{result.cluster}", markdown=recovery_report(result, chart_uri, chart_note),
        description=f"Recovery of Flink cluster {result.cluster}",
    )
    record_incident(result)
    log = get_run_logger().info if result.status.ok else get_run_logger().error
    mttr = f", MTTR {result.mttr_s:.1f}s from the first sign of the fault" if result.mttr_s is not None else ""
    log("DONE: recovery of %s %s in %.1fs%s", result.cluster, result.status, result.duration_s, mttr)
    return result

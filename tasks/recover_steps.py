"""The runbook's fix as Prefect tasks: plan, restart, wait, resubmit, verify, report.

Each task wraps one step of the core executor (flink_runbook.runbook.execute)
and returns the progress as plain data. Steps that change the cluster are not
retried by Prefect: each one checks the world first (a job already running is
not submitted again), and a second `recover` run finishes what a failed one left.
"""

from __future__ import annotations

from flink_runbook.tasks.clients import cluster_clients
from flink_runbook.tasks.options import CHANGES_CLUSTER, READ_ONLY
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook import execute
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.execute import Progress, Resubmitted
from flink_runbook.runbook.plan import PlannedAction, RecoveryPlan, plan_recovery
from flink_runbook.runbook.recovery_report import RecoveryResult, StepStatus, recovery_report
from flink_runbook.runbook.restore_point import list_retained_checkpoints
from flink_runbook.runbook.verdict import verdict
from flink_runbook.runbook.verify import Check


def _logged(cluster: ClusterSpec, before: Progress, after: Progress) -> Progress:
    """Say what the step did, in the run's log (the timeline is in the report)."""
    for step in after.steps[len(before.steps) :]:
        log = get_run_logger().error if step.status == StepStatus.FAILED else get_run_logger().info
        log("%s %s %s: %s in %.1fs. %s", cluster.name, step.action, step.target, step.status, step.duration_s or 0,
            step.detail)  # fmt: skip
    return after


@task(name="plan recovery", task_run_name="plan recovery of {cluster.name}", **READ_ONLY)
def plan_cluster_recovery(cluster: ClusterSpec, diagnosis: Diagnosis) -> RecoveryPlan:
    """The plan from the diagnosis and the checkpoints retained on disk; refusals are logged."""
    retained = {
        job.name: list_retained_checkpoints(job.checkpoint_dir.host) if job.checkpoint_dir.host else []
        for job in cluster.jobs
    }
    plan = plan_recovery(cluster, diagnosis, retained)
    for refusal in plan.refusals:
        get_run_logger().error("Cluster %s: refused: %s", cluster.name, refusal)
    return plan


@task(name="start JobManager", task_run_name="start JobManager of {cluster.name}", **CHANGES_CLUSTER)
def start_jobmanager(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress) -> Progress:
    return _logged(cluster, progress, execute.start_jobmanager(cluster, plan, cluster_clients(cluster), progress))


@task(name="restart TaskManagers", task_run_name="restart TaskManagers of {cluster.name}", **CHANGES_CLUSTER)
def restart_taskmanagers(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress) -> Progress:
    return _logged(cluster, progress, execute.restart_taskmanagers(cluster, plan, cluster_clients(cluster), progress))


@task(name="wait for TaskManagers", task_run_name="wait for TaskManagers of {cluster.name}", cache_policy=NO_CACHE)
def wait_for_taskmanagers(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress) -> Progress:
    return _logged(cluster, progress, execute.wait_for_taskmanagers(cluster, plan, cluster_clients(cluster), progress))


@task(name="resubmit job", task_run_name="resubmit {planned.target}", **CHANGES_CLUSTER)
def resubmit_job(cluster: ClusterSpec, planned: PlannedAction, progress: Progress) -> Progress:
    return _logged(cluster, progress, execute.resubmit_job(cluster, planned, cluster_clients(cluster), progress))


@task(name="verify job", task_run_name="verify {job.job}", cache_policy=NO_CACHE)
def verify_job(cluster: ClusterSpec, job: Resubmitted, progress: Progress) -> Progress:
    """Progress is a progress artifact of the run, visible in the UI while it waits."""
    logger = get_run_logger()
    artifact = create_progress_artifact(
        progress=0.0, key=f"recover-{cluster.name}-verify", description=f"Verifying {job.job} on {cluster.name}"
    )

    def show(checks: list[Check]) -> None:
        passed = sum(c.passed for c in checks)
        update_progress_artifact(artifact, progress=100.0 * passed / len(checks))
        if passed < len(checks):
            waiting = "; ".join(c.detail for c in checks if not c.passed)
            logger.info("verify %s: %d/%d checks pass; waiting (%s)", job.job, passed, len(checks), waiting)

    return _logged(cluster, progress, execute.verify_job(cluster, job, cluster_clients(cluster), progress, show))


@task(name="verify stability", task_run_name="verify stability of {cluster.name}", cache_policy=NO_CACHE)
def verify_stability(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress) -> Progress:
    return _logged(cluster, progress, execute.verify_stability(cluster, plan, cluster_clients(cluster), progress))


@task(name="write recovery report", task_run_name="write recovery report of {cluster.name}", cache_policy=NO_CACHE)
def write_recovery_report(
    cluster: ClusterSpec,
    before: Diagnosis,
    plan: RecoveryPlan,
    progress: Progress | None,
    after: Diagnosis | None,
    started_at: str,
    duration_s: float,
) -> RecoveryResult:
    """The verdict, as a Markdown artifact of the run and one log line."""
    result = verdict(before, plan, progress, after, started_at=started_at, duration_s=duration_s)
    create_markdown_artifact(
        key=f"recover-{cluster.name}", markdown=recovery_report(result),
        description=f"Recovery of Flink cluster {cluster.name}",
    )  # fmt: skip
    log = get_run_logger().info if result.status.ok else get_run_logger().error
    log("Recovery of %s: %s in %.1fs", cluster.name, result.status, result.duration_s)
    return result

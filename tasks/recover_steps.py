"""The runbook's fix as Prefect tasks: restart, resubmit, verify.

Steps that change the cluster are not retried by Prefect: each one checks the
world first (a job already running is not submitted again), and a second
`recover` run finishes what a crashed one left.
"""

from __future__ import annotations

import time

from flink_runbook.tasks.clients import cluster_docker, cluster_rest
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from flink_runbook.flink.answers import TaskManagerInfo
from flink_runbook.inventory import ClusterSpec, JobSpec
from flink_runbook.runbook import act as recovery_actions
from flink_runbook.runbook.act import Submission
from flink_runbook.runbook.observe import check_job, inspect_taskmanagers
from flink_runbook.runbook.recovery_report import RecoveryResult, recovery_report
from flink_runbook.runbook.restore_point import RestorePoint, RetainedCheckpoint, list_retained_checkpoints
from flink_runbook.runbook.verify import (
    Check,
    job_checks,
    new_exceptions,
    newest_output_mtime,
    sink_fresh,
    taskmanagers_stable,
)

CHANGES_CLUSTER = {"cache_policy": NO_CACHE, "retries": 0}
READ_ONLY = {"cache_policy": NO_CACHE, "retries": 2, "retry_delay_seconds": 1}


@task(name="find retained checkpoints", **READ_ONLY)
def find_retained_checkpoints(cluster: ClusterSpec) -> dict[str, list[RetainedCheckpoint]]:
    return {
        job.name: list_retained_checkpoints(job.checkpoint_dir.host) if job.checkpoint_dir.host else []
        for job in cluster.jobs
    }


@task(name="start JobManager", **CHANGES_CLUSTER)
def start_jobmanager(cluster: ClusterSpec, containers: tuple[str, ...]) -> str:
    recovery_actions.restart_containers(cluster_docker(cluster), containers, cluster.recovery.container_stop_timeout_s)
    version = recovery_actions.wait_for_jobmanager(cluster_rest(cluster), cluster.recovery.jobmanager_timeout_s)
    return f"restarted {', '.join(containers)}; REST answers (Flink {version})"


@task(name="restart TaskManagers", **CHANGES_CLUSTER)
def restart_taskmanagers(cluster: ClusterSpec, containers: tuple[str, ...]) -> tuple[str, set[str]]:
    """`docker-compose restart taskmanager`, for exactly the containers the plan names.

    Returns what was done and the TaskManager ids still registered from those
    containers right after the restart (old registrations that must not count).
    """
    addresses = recovery_actions.restart_containers(
        cluster_docker(cluster), containers, cluster.recovery.container_stop_timeout_s
    )
    stale = recovery_actions.taskmanagers_at(cluster_rest(cluster), addresses)
    return f"docker restart {' '.join(containers)}", stale


@task(name="wait for TaskManagers", cache_policy=NO_CACHE)
def wait_for_taskmanagers(cluster: ClusterSpec, free_slots: int, gone_ids: set[str]) -> list[TaskManagerInfo]:
    return recovery_actions.wait_for_taskmanagers(
        cluster_rest(cluster),
        cluster.expected_taskmanagers,
        free_slots,
        gone_ids,
        cluster.recovery.taskmanager_timeout_s,
    )


@task(name="let Flink settle the job", task_run_name="let Flink settle {job_name}", cache_policy=NO_CACHE)
def settle_job(cluster: ClusterSpec, job_name: str) -> tuple[str, str | None]:
    # A job Flink is restarting gets the slot-request time to come back by itself.
    return recovery_actions.settle_job(cluster_rest(cluster), job_name, timeout_s=30)


@task(name="resubmit job", task_run_name="resubmit {job.name}", **CHANGES_CLUSTER)
def resubmit_job(cluster: ClusterSpec, job: JobSpec, restore_point: RestorePoint | None) -> Submission:
    """`./restart-flink-cdc-job.sh`, from the latest retained checkpoint instead of from scratch."""
    rest = cluster_rest(cluster)
    if job.resubmit_command:
        return recovery_actions.run_resubmit_command(rest, job, restore_point)
    return recovery_actions.submit_job(rest, job, restore_point)


@task(name="verify job", task_run_name="verify {job.name}", cache_policy=NO_CACHE)
def verify_job(
    cluster: ClusterSpec, job: JobSpec, restore_point: RestorePoint | None, since: float, exceptions_since_ms: int
) -> list[Check]:
    """Wait until the job runs, restored from the chosen point, with no exception and a new checkpoint.

    Progress is a progress artifact of the run, visible in the UI while it waits.
    """
    rest = cluster_rest(cluster)
    logger = get_run_logger()
    progress = create_progress_artifact(
        progress=0.0, key=f"recover-{cluster.name}-verify", description=f"Verifying {job.name} on {cluster.name}"
    )
    deadline = time.monotonic() + cluster.recovery.verify_timeout_s
    while True:
        checks = job_checks(check_job(rest, job.name).info, restore_point, exceptions_since_ms)
        if job.sink_output_dir:
            checks.append(sink_fresh(job.sink_output_dir, newest_output_mtime(job.sink_output_dir), since))
        passed = sum(c.passed for c in checks)
        update_progress_artifact(progress, progress=100.0 * passed / len(checks))
        if passed == len(checks) or time.monotonic() >= deadline:
            break
        logger.info(
            "verify %s: %d/%d checks pass; waiting (%s)",
            job.name,
            passed,
            len(checks),
            "; ".join(c.detail for c in checks if not c.passed),
        )
        time.sleep(1)
    return checks


@task(name="verify stability", cache_policy=NO_CACHE)
def verify_stability(
    cluster: ClusterSpec, taskmanagers: list[TaskManagerInfo], exceptions_since_ms: dict[str, int]
) -> list[Check]:
    """TaskManagers and jobs stay healthy through the stabilisation window."""
    time.sleep(cluster.recovery.stabilization_s)
    rest = cluster_rest(cluster)
    checks = [taskmanagers_stable(taskmanagers, inspect_taskmanagers(rest), cluster.expected_taskmanagers)]
    for job in cluster.jobs:
        info = check_job(rest, job.name).info
        fresh = new_exceptions(info, exceptions_since_ms.get(job.name, 0)) if info else []
        checks.append(
            Check(
                f"{job.name} still running without exceptions after {cluster.recovery.stabilization_s:.0f}s",
                info is not None and info.state == "RUNNING" and not fresh,
                f"state {info.state if info else 'MISSING'}, {len(fresh)} new exception(s)",
            )
        )
    return checks


@task(name="write recovery report", cache_policy=NO_CACHE)
def write_recovery_report(result: RecoveryResult) -> str:
    report = recovery_report(result)
    create_markdown_artifact(
        key=f"recover-{result.cluster}", markdown=report, description=f"Recovery of Flink cluster {result.cluster}"
    )
    return report

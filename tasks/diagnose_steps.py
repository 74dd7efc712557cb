"""The runbook's diagnosis steps as Prefect tasks. Read-only, so retrying is safe."""

from __future__ import annotations

from flink_runbook.tasks.clients import cluster_docker, cluster_rest
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flink_runbook.containers.states import DockerUnavailable
from flink_runbook.flink.answers import TaskManagerInfo
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook import observe as observation
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.incident_report import diagnosis_report
from flink_runbook.runbook.observe import ContainersView, JobManagerView, JobView

# Observations must never come from a cache.
READ_ONLY = {"cache_policy": NO_CACHE, "retries": 2, "retry_delay_seconds": 1}


@task(name="check JobManager REST", **READ_ONLY)
def check_jobmanager(cluster: ClusterSpec) -> JobManagerView:
    return observation.check_jobmanager(cluster_rest(cluster))


@task(name="check containers", **READ_ONLY)
def check_containers(cluster: ClusterSpec) -> ContainersView:
    try:
        client = cluster_docker(cluster)
    except DockerUnavailable as exc:
        return ContainersView(error=str(exc))
    return observation.check_containers(cluster, client)


@task(name="inspect TaskManagers", **READ_ONLY)
def inspect_taskmanagers(cluster: ClusterSpec) -> list[TaskManagerInfo]:
    return observation.inspect_taskmanagers(cluster_rest(cluster))


@task(name="check job", task_run_name="check job {job_name}", **READ_ONLY)
def check_job(cluster: ClusterSpec, job_name: str) -> JobView:
    return observation.check_job(cluster_rest(cluster), job_name)


@task(name="collect logs", **READ_ONLY)
def collect_logs(cluster: ClusterSpec, containers: ContainersView) -> dict[str, str]:
    if containers.error:
        return {}
    return observation.collect_logs(cluster, cluster_docker(cluster), containers)


@task(name="write incident report", cache_policy=NO_CACHE)
def write_incident_report(cluster: ClusterSpec, diagnosis: Diagnosis) -> str:
    """Markdown report and tables as artifacts of the run; returns the Markdown."""
    report = diagnosis_report(cluster, diagnosis)
    result = diagnosis.to_dict()
    create_markdown_artifact(
        key=f"diagnose-{cluster.name}", markdown=report, description=f"Diagnosis of Flink cluster {cluster.name}"
    )
    if result["taskmanagers"]:
        create_table_artifact(
            key=f"diagnose-{cluster.name}-taskmanagers",
            table=result["taskmanagers"],
            description=f"TaskManagers of {cluster.name}",
        )
    if result["jobs"]:
        create_table_artifact(
            key=f"diagnose-{cluster.name}-jobs", table=result["jobs"], description=f"Jobs of {cluster.name}"
        )
    return report

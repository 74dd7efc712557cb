"""diagnose: the runbook's checks, read-only, with findings and an incident report per cluster."""

from __future__ import annotations

from typing import Any

from flink_runbook.tasks.diagnose_steps import (
    check_containers,
    check_job,
    check_jobmanager,
    collect_logs,
    inspect_taskmanagers,
    write_incident_report,
)
from prefect import flow, get_run_logger

from flink_runbook.inventory import ClusterSpec, load_inventory
from flink_runbook.runbook.diagnosis import Diagnosis, diagnose
from flink_runbook.runbook.observe import ClusterObservation, heartbeat_timeouts_in_logs, now_ms


def diagnose_cluster(cluster: ClusterSpec) -> Diagnosis:
    """The runbook's diagnosis of one cluster, step by step."""
    containers = check_containers(cluster)
    jobmanager = check_jobmanager(cluster)
    taskmanagers, jobs = [], []
    if jobmanager.reachable:
        taskmanagers = inspect_taskmanagers(cluster)
        jobs = [check_job(cluster, job.name) for job in cluster.jobs]
    logs = collect_logs(cluster, containers)
    seen = ClusterObservation(
        cluster=cluster.name,
        rest_url=cluster.rest.url,
        observed_at_ms=now_ms(),
        jobmanager=jobmanager,
        taskmanagers=tuple(taskmanagers),
        jobs=tuple(jobs),
        containers=containers,
        log_heartbeat_timeouts=heartbeat_timeouts_in_logs(logs, containers),
        logs=logs,
    )
    diagnosis = diagnose(cluster, seen)
    write_incident_report(cluster, diagnosis)
    logger = get_run_logger()
    if diagnosis.healthy:
        logger.info("Cluster %s is healthy (%d finding(s) below error)", cluster.name, len(diagnosis.findings))
    for finding in diagnosis.findings:
        log = logger.warning if finding.severity in ("error", "critical") else logger.info
        log("%s %s [%s]: %s. Do: %s", cluster.name, finding.code, finding.severity, finding.summary, finding.action)
    return diagnosis


@flow(name="diagnose", description="The runbook's checks (read-only): findings and an incident report per cluster.")
def diagnose_flow(config: str, cluster: str | None = None) -> list[dict[str, Any]]:
    """Diagnose every cluster of the inventory `config`, or the one named `cluster`."""
    inventory = load_inventory(config)
    return [diagnose_cluster(spec).to_dict() for spec in inventory.select(cluster)]

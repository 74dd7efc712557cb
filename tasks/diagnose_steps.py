"""The runbook's diagnosis as Prefect tasks: observe and classify (read-only), and the incident report."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.fleet_check import observe_and_diagnose
from flink_runbook.runbook.observing.observe import Depth
from flink_runbook.runbook.reporting.incident_report import diagnosis_report
from flink_runbook.tasks.clients import cluster_clients
from flink_runbook.tasks.options import READ_ONLY


@task(name="diagnose cluster", task_run_name="diagnose {cluster.name} ({depth})", **READ_ONLY)
def diagnose_cluster(cluster: ClusterSpec, depth: Depth) -> Diagnosis:
    """The runbook's checks (containers, JobManager, TaskManagers, jobs; FULL: logs too) and their findings.

    The ids the configured jobs run under are remembered on this host (their lineage): after a JobManager
    restart forgets them, a recovery restores each job from its own checkpoints.
    """
    diagnosis, lineage_warning = observe_and_diagnose(cluster, cluster_clients(cluster), depth)
    if lineage_warning:
        get_run_logger().warning("Cluster %s: %s", cluster.name, lineage_warning)
    return diagnosis


@task(name="write incident report", task_run_name="write incident report of {cluster.name}", cache_policy=NO_CACHE)
def write_incident_report(cluster: ClusterSpec, diagnosis: Diagnosis) -> str:
    """The findings in the log, the Markdown report and tables as artifacts of the run; returns the Markdown."""
    logger = get_run_logger()
    if diagnosis.healthy:
        logger.info("Cluster %s is healthy (%d finding(s) below error)", cluster.name, len(diagnosis.findings))
    for finding in diagnosis.findings:
        log = logger.warning if finding.severity in ("error", "critical") else logger.info
        log("%s %s [%s]: %s. Do: %s", cluster.name, finding.code, finding.severity, finding.summary, finding.action)
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

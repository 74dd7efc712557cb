"""Read what the audit checks: the cluster's files and, if it answers, its REST API. Reads only; changes nothing."""

from __future__ import annotations

import contextlib

from flink_runbook.audit.cluster import AuditInputs
from flink_runbook.audit.compose_file import ComposeFile, read_compose_file
from flink_runbook.flink.answers import pick_job
from flink_runbook.flink.config_file import FlinkConfigFile, read_flink_config
from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.inventory import ClusterSpec, InventoryError


def read_audit_inputs(cluster: ClusterSpec, rest: FlinkRestClient) -> AuditInputs:
    not_read: list[str] = []
    live_config, live_version = None, None
    try:
        live_version = rest.cluster_overview().flink_version
        live_config = rest.jobmanager_config()
    except FlinkRestError as exc:
        not_read.append(f"the live configuration: {exc}")
    inputs = AuditInputs(
        cluster=cluster.name,
        flink_version=flink_release(cluster, live_version),
        rest_url=cluster.rest.url,
        services={
            "jobmanager": cluster.containers.jobmanager_service,
            "taskmanager": cluster.containers.taskmanager_service,
        },
        live_config=live_config,
        not_read=not_read,
    )
    inputs.configs, inputs.compose = read_audit_files(cluster)
    if live_config is not None:
        inputs.running_jobs = _running_jobs(cluster, rest)
    return inputs


def flink_release(cluster: ClusterSpec, live_version: str | None) -> str:
    """The release the files are for: what the JobManager says, else the inventory's audit.flink_version."""
    version = live_version or cluster.audit.flink_version
    if version is None:
        raise InventoryError(
            f"cluster {cluster.name}: the JobManager at {cluster.rest.url} does not answer and audit.flink_version "
            "is not set; the audit needs to know which Flink release the files are for"
        )
    return version


def check_audit_inputs(cluster: ClusterSpec, rest: FlinkRestClient) -> None:
    """What would stop the audit, checked before anything runs: an unreadable file, no known Flink release.

    Reads the files and, only when the inventory names no release, GET /overview; not the jobs.
    """
    read_audit_files(cluster)
    live_version = None
    if cluster.audit.flink_version is None:
        with contextlib.suppress(FlinkRestError):  # unreachable: flink_release says what is missing
            live_version = rest.cluster_overview().flink_version
    flink_release(cluster, live_version)


def read_audit_files(cluster: ClusterSpec) -> tuple[dict[str, FlinkConfigFile], ComposeFile | None]:
    """The cluster's Flink config files and compose file; ConfigFileError / ComposeFileError name the bad one."""
    sources = cluster.audit
    configs = {
        role: read_flink_config(path)
        for role, path in (("jobmanager", sources.jobmanager_config), ("taskmanager", sources.taskmanager_config))
        if path is not None
    }
    compose = read_compose_file(sources.compose_file, sources.compose_variables) if sources.compose_file else None
    return configs, compose


def _running_jobs(cluster: ClusterSpec, rest: FlinkRestClient) -> list:
    jobs = []
    overview = rest.jobs_overview()
    for spec in cluster.jobs:
        summary = pick_job(overview, spec.name)
        if summary is None or not summary.live:
            continue
        try:
            config = rest.job_checkpoint_config(summary.id)
        except FlinkRestError as exc:
            if exc.status != 404:  # 404: checkpointing is off for this job
                raise
            config = None
        jobs.append((spec.name, summary.id, config))
    return jobs

"""`flink-runbook init`: ask a running cluster and the local Docker engine what they know, write a starting
inventory (flink_runbook.inventory.starting writes it; this only asks). Read-only towards the cluster.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import docker
import docker.errors

from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.inventory.found import (
    PORT_LABELS,
    SETTINGS_SAID,
    FoundCluster,
    FoundJob,
    checkpoint_dir_setting,
    cluster_name,
    host_side,
    jar_of,
    local_path,
    mounted_config_file,
    publishes,
    rest_port,
    same_cluster_unproven,
    taskmanager_service,
)


def _key_values(answer: object) -> dict[str, str]:
    """GET .../config answers a list of {key, value}."""
    return {e["key"]: str(e.get("value")) for e in answer or () if isinstance(e, dict) and "key" in e}


def find_job(rest: FlinkRestClient, job_id: str, name: str, state: str, cluster_config: dict[str, str]) -> FoundJob:
    parallelism = rest.get(f"/jobs/{job_id}/config").get("execution-config", {}).get("job-parallelism")
    try:
        job_config = _key_values(rest.get(f"/jobs/{job_id}/jobmanager/config"))
    except FlinkRestError:  # not offered by this release: the cluster's configuration is the job's default
        job_config = {}
    checkpointing, retained = True, None
    try:
        externalization = rest.job_checkpoint_config(job_id).get("externalization") or {}
        retained = bool(externalization.get("enabled")) and not externalization.get("delete_on_cancellation")
    except FlinkRestError as exc:
        if exc.status != 404:
            raise
        checkpointing = False  # Flink answers 404 when the job takes no checkpoints
    directory = checkpoint_dir_setting(job_config) or checkpoint_dir_setting(cluster_config)
    return FoundJob(
        name=name, job_id=job_id, state=state,
        parallelism=parallelism if isinstance(parallelism, int) and parallelism > 0 else None,
        checkpoint_dir=directory, checkpointing=checkpointing, retained_on_cancel=retained,
    )


def _with_jar(job: FoundJob, jars: list[dict], job_names: list[str], beside: Path) -> FoundJob:
    name, entry, why = jar_of(job_names, jars)
    if name is None:
        return FoundJob(**{**job.__dict__, "uploaded_jars": tuple(f.get("name", "?") for f in jars)})
    # Relative paths in an inventory are read from its directory: a jar put beside it is named by its file name.
    on_host = name if (beside / name).is_file() else None
    return FoundJob(**{**job.__dict__, "jar_name": name, "jar_path": on_host, "entry_class": entry, "jar_guess": why})


def _docker_facts(client: docker.DockerClient, rest_url: str, taskmanager_hosts: list[str]) -> dict:
    """What the containers behind the REST port say: compose project and services, mounts, files."""
    port = rest_port(rest_url)
    publishing = [c for c in client.containers.list() if publishes(c.attrs["NetworkSettings"]["Ports"], port)]
    if len(publishing) != 1:
        found = ", ".join(c.name for c in publishing)
        return {"not_found": (
            f"the cluster's containers: {len(publishing)} containers on this Docker engine publish port {port}"
            + (f" ({found})" if found else "")
        ,)}
    jobmanager = publishing[0]
    labels = jobmanager.labels
    project, service = (labels.get(label) for label in PORT_LABELS)
    if not project:
        return {"not_found": (f"the cluster's compose project: container {jobmanager.name} has no compose labels",)}
    members = client.containers.list(all=True, filters={"label": f"{PORT_LABELS[0]}={project}"})
    services_by_address = {
        network.get("IPAddress"): member.labels.get(PORT_LABELS[1], "")
        for member in members
        for network in (member.attrs["NetworkSettings"].get("Networks") or {}).values()
        if network.get("IPAddress")
    }
    tm_service, guess = taskmanager_service(taskmanager_hosts, services_by_address)
    taskmanager = next((m for m in members if tm_service and m.labels.get(PORT_LABELS[1]) == tm_service), None)
    config_files = labels.get("com.docker.compose.project.config_files", "")
    return {
        "compose_project": project,
        "compose_project_guess": same_cluster_unproven(
            urlparse(rest_url).hostname, taskmanager_hosts, set(services_by_address)
        ),
        "jobmanager_service": service,
        "taskmanager_service": tm_service,
        "taskmanager_service_guess": guess,
        "compose_file": config_files.split(",")[0] or None,
        "jobmanager_config": mounted_config_file(jobmanager.attrs.get("Mounts")),
        "taskmanager_config": mounted_config_file(taskmanager.attrs.get("Mounts")) if taskmanager else None,
        "mounts": jobmanager.attrs.get("Mounts") or [],
    }


def find_cluster(rest_url: str, requested_name: str | None, beside: Path) -> FoundCluster:
    """Everything init can learn; a REST failure is the command's (FlinkRestError), Docker's only a gap."""
    rest = FlinkRestClient(rest_url, read_retries=1)
    overview = rest.cluster_overview()
    config = rest.jobmanager_config()
    taskmanager_hosts = [tm.rpc_host for tm in rest.taskmanagers()]
    live = [job for job in rest.jobs_overview() if job.live]
    jars = (rest.get("/jars") or {}).get("files") or []
    try:
        facts = _docker_facts(docker.from_env(), rest_url, taskmanager_hosts)
    except docker.errors.DockerException as exc:
        facts = {"not_found": (f"the cluster's containers: the Docker engine did not answer ({exc})",)}
    mounts = facts.pop("mounts", [])
    jobs = []
    for summary in live:
        job = find_job(rest, summary.id, summary.name, summary.state, config)
        inside = local_path(job.checkpoint_dir) if job.checkpoint_dir else None
        if inside:
            job = FoundJob(**{**job.__dict__, "checkpoint_dir_host": host_side(inside, mounts)})
        jobs.append(_with_jar(job, jars, [j.name for j in live], beside))
    return FoundCluster(
        rest_url=rest.base_url,
        name=cluster_name(requested_name, facts.get("compose_project"), rest_url),
        flink_version=overview.flink_version or None,
        taskmanagers=overview.taskmanagers,
        slots_total=overview.slots_total,
        settings={key: config[key] for key in SETTINGS_SAID if key in config},
        jobs=tuple(jobs),
        **facts,
    )


def rest_url_problem(url: str) -> str | None:
    """Why `url` cannot be a JobManager's REST address; None: it can."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        return f"--rest {url!r} is not a URL: {exc}"
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        return f"--rest {url!r} is not the http:// or https:// address of a JobManager, like http://127.0.0.1:8081"
    return None

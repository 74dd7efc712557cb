"""Observing one cluster: read-only REST and Docker calls that return plain data.

Each function is one runbook check; flows call them through thin tasks. A
cluster whose REST API or Docker engine cannot be reached is still observed:
the error becomes part of the observation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
import requests

from flink_runbook.containers.states import ContainerState, container_states, log_tail, recent_oom_kills
from flink_runbook.flink.answers import (
    JobInfo,
    TaskManagerInfo,
    heartbeat_timeouts_in_log,
    parse_cluster_config,
    parse_cluster_overview,
    parse_job,
    parse_taskmanagers,
    pick_job,
)
from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.inventory import ClusterSpec, InventoryError, RestSettings

# Flink's documented defaults, used when /jobmanager/config does not list the key.
DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000
DEFAULT_HEARTBEAT_TIMEOUT_MS = 50_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class JobManagerView:
    """The cluster as its JobManager REST API describes it (GET /overview, /jobmanager/config)."""

    reachable: bool
    error: str | None = None
    error_kind: str | None = None  # unreachable | invalid_answer
    flink_version: str | None = None
    slots_total: int = 0
    slots_available: int = 0
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = DEFAULT_HEARTBEAT_TIMEOUT_MS


@dataclass(frozen=True)
class JobView:
    """A configured job and what the JobManager knows of it (None: it knows no job of that name)."""

    name: str
    info: JobInfo | None


@dataclass(frozen=True)
class ContainersView:
    containers: tuple[ContainerState, ...] = ()
    oom_kills: dict[str, int] = field(default_factory=dict)  # container name -> recent OOM kills
    error: str | None = None


def rest_client(settings: RestSettings, secret: Callable[[str], str] | None = None) -> FlinkRestClient:
    """A REST client with the cluster's auth, TLS and timeouts.

    `secret(name)` resolves a Prefect Secret block; the core never imports Prefect.
    """
    session = requests.Session()
    auth = settings.auth
    if auth.kind == "basic":
        user, password = os.environ.get(auth.username_env or ""), os.environ.get(auth.password_env or "")
        if user is None or password is None:
            raise InventoryError(
                f"basic auth for {settings.url} needs environment variables {auth.username_env} and {auth.password_env}"
            )
        session.auth = (user, password)
    elif auth.kind == "bearer":
        token = os.environ.get(auth.token_env) if auth.token_env else None
        if token is None and auth.token_secret_block:
            if secret is None:
                raise InventoryError(f"bearer token for {settings.url} is in Secret block {auth.token_secret_block!r}")
            token = secret(auth.token_secret_block)
        if not token:
            raise InventoryError(f"bearer auth for {settings.url} found no token ({auth.token_env})")
        session.headers["Authorization"] = f"Bearer {token}"
    session.verify = str(settings.ca_bundle) if settings.ca_bundle else settings.verify_tls
    if settings.client_cert:
        session.cert = (
            (str(settings.client_cert), str(settings.client_key)) if settings.client_key else str(settings.client_cert)
        )
    return FlinkRestClient(
        settings.url,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        session=session,
    )


def _error_kind(error: FlinkRestError) -> str:
    # An HTTP answer that is not Flink's JSON means something else listens there.
    return "unreachable" if error.status is None else "invalid_answer"


def check_jobmanager(rest: FlinkRestClient) -> JobManagerView:
    """Runbook step: is the JobManager's REST API answering, and as Flink?"""
    try:
        overview = rest.cluster_overview()
        if not isinstance(overview, dict) or "flink-version" not in overview:
            raise FlinkRestError(
                "GET /overview answered JSON that is not Flink's",
                url=rest.base_url + "/overview",
                status=200,
                body=str(overview),
            )
        config = parse_cluster_config(rest.get("/jobmanager/config"))
    except FlinkRestError as exc:
        return JobManagerView(reachable=False, error=str(exc), error_kind=_error_kind(exc))
    parsed = parse_cluster_overview(overview)
    return JobManagerView(
        reachable=True,
        flink_version=parsed["flink_version"],
        slots_total=parsed["slots_total"],
        slots_available=parsed["slots_available"],
        heartbeat_interval_ms=int(config.get("heartbeat.interval", DEFAULT_HEARTBEAT_INTERVAL_MS)),
        heartbeat_timeout_ms=int(config.get("heartbeat.timeout", DEFAULT_HEARTBEAT_TIMEOUT_MS)),
    )


def inspect_taskmanagers(rest: FlinkRestClient) -> list[TaskManagerInfo]:
    """Runbook step: which TaskManagers are registered, how fresh their heartbeats are."""
    return parse_taskmanagers(rest.get("/taskmanagers"), now_ms())


def check_job(rest: FlinkRestClient, name: str) -> JobView:
    """Runbook step: the configured job's state, exception history and checkpoints, found by name."""
    summary = pick_job(rest.jobs_overview(), name)
    if summary is None:
        return JobView(name=name, info=None)
    job_id = summary["jid"]
    details = rest.job(job_id)
    exceptions = rest.job_exceptions(job_id)
    try:
        checkpoints = rest.job_checkpoints(job_id)
        checkpoint_config = rest.get(f"/jobs/{job_id}/checkpoints/config")
    except FlinkRestError as exc:
        if exc.status != 404:  # 404: checkpointing is not enabled for this job
            raise
        checkpoints, checkpoint_config = None, None
    return JobView(name=name, info=parse_job(details, exceptions, checkpoints, checkpoint_config))


def check_containers(cluster: ClusterSpec, client: docker.DockerClient) -> ContainersView:
    """Runbook step: `docker ps --filter name=flink`, plus exit codes, OOM kills and restarts."""
    states = container_states(client, cluster.containers)
    ids = [s.container_id for s in states if s.container_id]
    oom = recent_oom_kills(client, ids, cluster.thresholds.oom_lookback_s)
    by_id = {s.container_id: s.name for s in states}
    return ContainersView(containers=tuple(states), oom_kills={by_id[i]: n for i, n in oom.items()})


def collect_logs(cluster: ClusterSpec, client: docker.DockerClient, containers: ContainersView) -> dict[str, str]:
    """Runbook step: `docker logs --tail N` of every container of the cluster."""
    return {
        state.name: log_tail(client, state.container_id, cluster.thresholds.log_lines)
        for state in containers.containers
        if state.container_id
    }


def heartbeat_timeouts_in_logs(logs: dict[str, str], containers: ContainersView) -> frozenset[str]:
    """TaskManager ids whose heartbeat timeout the JobManager logs report."""
    jobmanagers = {s.name for s in containers.containers if s.role == "jobmanager"}
    found: set[str] = set()
    for name, text in logs.items():
        if name in jobmanagers:
            found |= heartbeat_timeouts_in_log(text)
    return frozenset(found)


@dataclass(frozen=True)
class ClusterObservation:
    """Everything one diagnose pass saw of a cluster; the input of classification."""

    cluster: str
    rest_url: str
    observed_at_ms: int
    jobmanager: JobManagerView
    taskmanagers: tuple[TaskManagerInfo, ...] = ()
    jobs: tuple[JobView, ...] = ()
    containers: ContainersView = field(default_factory=ContainersView)
    log_heartbeat_timeouts: frozenset[str] = frozenset()
    logs: dict[str, str] = field(default_factory=dict)


def observe_cluster_quickly(
    cluster: ClusterSpec,
    rest: FlinkRestClient,
    docker_client: docker.DockerClient | None,
    docker_error: str | None = None,
) -> ClusterObservation:
    """The monitor's cheap pass: containers, JobManager, TaskManagers, jobs; no logs.

    The same checks as diagnose, in one call, so a 30-second tick stays cheap.
    """
    containers = check_containers(cluster, docker_client) if docker_client else ContainersView(error=docker_error)
    jobmanager = check_jobmanager(rest)
    taskmanagers: list[TaskManagerInfo] = []
    jobs: list[JobView] = []
    if jobmanager.reachable:
        try:
            taskmanagers = inspect_taskmanagers(rest)
            jobs = [check_job(rest, job.name) for job in cluster.jobs]
        except FlinkRestError as exc:  # it went away between two calls
            jobmanager = JobManagerView(reachable=False, error=str(exc), error_kind=_error_kind(exc))
    return ClusterObservation(
        cluster=cluster.name,
        rest_url=cluster.rest.url,
        observed_at_ms=now_ms(),
        jobmanager=jobmanager,
        taskmanagers=tuple(taskmanagers),
        jobs=tuple(jobs),
        containers=containers,
    )

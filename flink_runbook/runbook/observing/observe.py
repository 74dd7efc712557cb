"""Observing one cluster: the runbook's read-only checks, one way for diagnose, monitor and recover.

`observe_cluster` never raises for what the cluster answers: a JobManager
that does not answer, an answer that is not Flink's (a missing field, a field
of another type, an HTTP error) and a Docker engine that cannot be asked all
become part of the observation, and so findings. The REST client retries a
read twice on connection errors and 5xx answers; there is no second retry
layer, so the monitor and the recovery judge the same cluster the same way.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import docker
import docker.errors
import requests

from flink_runbook.containers.engines import forget_engine
from flink_runbook.containers.states import (
    ContainerState,
    EngineView,
    container_states,
    engine_view,
    log_tail,
    recent_oom_kills,
)
from flink_runbook.flink.answers import (
    ExceptionHistory,
    JobInfo,
    JobSummary,
    TaskManagerInfo,
    heartbeat_timeouts_in_log,
    job_info,
    parse_checkpoint_config,
    pick_job,
)
from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.flink.values import duration_ms
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.keeping.lineage import read_lineage
from flink_runbook.runbook.keeping.person_stops import PersonStop
from flink_runbook.runbook.observing.application_mode import runs_in_application_mode
from flink_runbook.runbook.observing.engine_identity import EngineMismatch
from flink_runbook.runbook.observing.high_availability import high_availability_type

# Flink's documented defaults, used when /jobmanager/config does not list the key.
DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000
DEFAULT_HEARTBEAT_TIMEOUT_MS = 50_000


def now_ms() -> int:
    return int(time.time() * 1000)


class Depth(StrEnum):
    # Containers, JobManager, TaskManagers and each job as the jobs overview lists it (no per-job reads):
    # the serving process's fault watcher, every few seconds.
    GLANCE = "glance"
    QUICK = "quick"  # containers, JobManager, TaskManagers, jobs: the monitor's 30-second tick
    FULL = "full"  # the same and the containers' logs: diagnose and recover


class RestProblem(StrEnum):
    UNREACHABLE = "unreachable"  # no HTTP answer at all
    # An answer, but not Flink's: an error status, not JSON, a field missing or of another type.
    INVALID_ANSWER = "invalid_answer"






@dataclass(frozen=True)
class EngineLook:
    """What asking a Docker engine for its containers gave: a view, or why there is none."""

    view: EngineView | None
    error: str | None = None
    engine_mismatch: EngineMismatch | None = None


def look_at_engine(clients: ClusterClients, cluster: ClusterSpec, oom_lookback_s: float | None = None) -> EngineLook:
    """The engine of the cluster as it is now; a failure is an answer (and the engine's client is dropped)."""
    if clients.docker is None:
        return EngineLook(None, clients.docker_error or "no Docker client", clients.engine_mismatch)
    try:
        return EngineLook(engine_view(clients.docker, oom_lookback_s or cluster.thresholds.oom_lookback_s))
    except (docker.errors.DockerException, requests.RequestException) as exc:
        forget_engine(cluster.docker)
        return EngineLook(None, f"asking the Docker engine at {cluster.docker.where()} failed: {exc}")


@dataclass(frozen=True)
class JobManagerView:
    """The cluster as its JobManager REST API describes it (GET /overview, /jobmanager/config)."""

    reachable: bool
    error: str | None = None
    error_kind: RestProblem | None = None
    flink_version: str | None = None
    slots_total: int = 0
    slots_available: int = 0
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = DEFAULT_HEARTBEAT_TIMEOUT_MS
    # It runs its one job itself (execution.target: embedded): nothing can be submitted to it.
    application_mode: bool = False
    high_availability: str | None = None  # high-availability.type as its live configuration says; None: none


@dataclass(frozen=True)
class JobView:
    """A configured job and what the JobManager knows of it (None: it knows no job of that name)."""

    name: str
    info: JobInfo | None
    # Two or more live jobs of this name: which is "the" job is for a human to say.
    duplicate_ids: tuple[str, ...] = ()
    # What this tool remembers of a person stopping it (flink_runbook.runbook.keeping.person_stops), once Flink forgot.
    remembered_stop: PersonStop | None = None


@dataclass(frozen=True)
class ContainersView:
    """The cluster's containers as the Docker engine sees them (error: the engine could not be asked)."""

    containers: tuple[ContainerState, ...] = ()
    oom_kills: dict[str, int] = field(default_factory=dict)  # container name -> recent OOM kills
    error: str | None = None
    # The engine at docker.host is not the cluster's (error says so too): nothing there is the cluster's.
    engine_mismatch: EngineMismatch | None = None


@dataclass(frozen=True)
class ClusterObservation:
    """Everything one pass saw of a cluster at one moment: the input of classification
    (flink_runbook.runbook.observing.findings) and, through the diagnosis, of the recovery plan."""

    cluster: str
    rest_url: str
    observed_at_ms: int
    jobmanager: JobManagerView
    taskmanagers: tuple[TaskManagerInfo, ...] = ()
    jobs: tuple[JobView, ...] = ()
    containers: ContainersView = field(default_factory=ContainersView)
    log_heartbeat_timeouts: frozenset[str] = frozenset()
    logs: dict[str, str] = field(default_factory=dict)
    depth: Depth = Depth.QUICK


def observe_cluster(
    cluster: ClusterSpec, clients: ClusterClients, depth: Depth = Depth.QUICK, engine: EngineLook | None = None
) -> ClusterObservation:
    """The runbook's checks of one cluster: containers, JobManager, TaskManagers, jobs (and, FULL, logs).
    `engine`: its Docker engine as already seen this pass (the monitor looks once per engine)."""
    containers = check_containers(cluster, engine or look_at_engine(clients, cluster))
    jobmanager, taskmanagers, jobs = check_jobmanager(cluster, clients.rest, depth)
    logs = collect_logs(cluster, clients, containers) if depth == Depth.FULL else {}
    return ClusterObservation(
        cluster=cluster.name,
        rest_url=cluster.rest.url,
        observed_at_ms=now_ms(),
        jobmanager=jobmanager,
        taskmanagers=tuple(taskmanagers),
        jobs=tuple(jobs),
        containers=containers,
        log_heartbeat_timeouts=heartbeat_timeouts_in_logs(logs, containers),
        logs=logs,
        depth=depth,
    )


def _problem(error: FlinkRestError) -> RestProblem:
    # An HTTP answer that is not Flink's means something else listens there, or Flink changed.
    return RestProblem.UNREACHABLE if error.status is None else RestProblem.INVALID_ANSWER


def check_jobmanager(
    cluster: ClusterSpec, rest: FlinkRestClient, depth: Depth = Depth.QUICK
) -> tuple[JobManagerView, list[TaskManagerInfo], list[JobView]]:
    """Runbook steps through the REST API: is the JobManager answering as Flink, which TaskManagers are
    registered (and how fresh their heartbeats are), and each configured job's state, exceptions and
    checkpoints. Any failure on the way, even between two calls, makes the whole answer the failure."""
    try:
        overview = rest.cluster_overview()
        config = rest.jobmanager_config()
        taskmanagers = rest.taskmanagers(now_ms())
        overview_of_jobs = rest.jobs_overview()  # once for the pass, not once per configured job
        known = _known_ids(cluster, overview_of_jobs)
        if depth == Depth.GLANCE:
            jobs = [job_at_a_glance(job.name, overview_of_jobs, known.get(job.name, ())) for job in cluster.jobs]
        else:
            jobs = [
                check_job(rest, job.name, overview_of_jobs, known_ids=known.get(job.name, ())) for job in cluster.jobs
            ]
    except FlinkRestError as exc:
        return JobManagerView(reachable=False, error=str(exc), error_kind=_problem(exc)), [], []
    key = "heartbeat.interval"
    try:  # as Flink reads durations: 5000 (ms), "50 s", "3 min", PT50S
        interval = int(duration_ms(config.get(key, str(DEFAULT_HEARTBEAT_INTERVAL_MS))))
        key = "heartbeat.timeout"
        timeout = int(duration_ms(config.get(key, str(DEFAULT_HEARTBEAT_TIMEOUT_MS))))
    except ValueError as exc:
        error = FlinkRestError(
            f"GET answered {key} that the runbook cannot read as a duration: {exc}",
            url=rest.url("/jobmanager/config"),
            status=200,
        )
        return JobManagerView(reachable=False, error=str(error), error_kind=RestProblem.INVALID_ANSWER), [], []
    view = JobManagerView(
        reachable=True,
        flink_version=overview.flink_version,
        slots_total=overview.slots_total,
        slots_available=overview.slots_available,
        heartbeat_interval_ms=interval,
        heartbeat_timeout_ms=timeout,
        application_mode=runs_in_application_mode(config),
        high_availability=high_availability_type(config),
    )
    return view, taskmanagers, jobs


def _known_ids(cluster: ClusterSpec, overview: list[JobSummary]) -> dict[str, tuple[str, ...]]:
    """The job ids this tool saw each job run under (its lineage), read only when a configured name has
    several jobs to choose from: one file read per cluster per tick saved on every other tick."""
    jobs_of = Counter(job.name for job in overview)
    if not any(jobs_of[job.name] > 1 for job in cluster.jobs):
        return {}
    try:
        return read_lineage(cluster.state_dir, cluster.name)
    except OSError:  # a link planted at the lineage: said where it is written (fleet_check); picked as before
        return {}


def duplicate_ids(jobs: list[JobSummary], name: str) -> tuple[str, ...]:
    """The ids of the live jobs of this name when there is more than one (DUPLICATE_JOB), else none."""
    live = sorted(job.id for job in jobs if job.name == name and job.live)
    return tuple(live) if len(live) > 1 else ()


def check_job(
    rest: FlinkRestClient,
    name: str,
    jobs: list[JobSummary] | None = None,
    job_id: str | None = None,
    known_ids: Sequence[str] = (),
) -> JobView:
    """Runbook step: the configured job's state, exception history and checkpoints, found by name
    among `jobs` (GET /jobs/overview, read now when not given), or the job of that id (a job this
    tool submitted is followed by its id, never by a name another job may share). Of several jobs of
    the name, the one of `known_ids` (its lineage) is judged, not a copy beside it (pick_job)."""
    overview = rest.jobs_overview() if jobs is None else jobs
    duplicates = duplicate_ids(overview, name)
    if job_id is not None:
        summary = next((job for job in overview if job.id == job_id), None)
    else:
        summary = pick_job(overview, name, known_ids)
    if summary is None:
        return JobView(name=name, info=None, duplicate_ids=duplicates)
    details = rest.job(summary.id)
    history: ExceptionHistory = rest.job_exceptions(summary.id)
    try:
        checkpoints = rest.job_checkpoints(summary.id)
        checkpoint_config = rest.job_checkpoint_config(summary.id, read=parse_checkpoint_config)
    except FlinkRestError as exc:
        if exc.status != 404:  # 404: checkpointing is not enabled for this job
            raise
        checkpoints, checkpoint_config = None, None
    info = job_info(details, history, checkpoints, checkpoint_config)
    return JobView(name=name, info=info, duplicate_ids=duplicates)


def job_at_a_glance(name: str, jobs: list[JobSummary], known_ids: Sequence[str] = ()) -> JobView:
    """The configured job as its line of GET /jobs/overview shows it, picked as check_job picks it: its state
    and id, no exceptions or checkpoints (a glance reads nothing per job)."""
    duplicates = duplicate_ids(jobs, name)
    summary = pick_job(jobs, name, known_ids)
    if summary is None:
        return JobView(name=name, info=None, duplicate_ids=duplicates)
    info = JobInfo(summary.name, summary.id, summary.state, summary.start_time_ms, duration_ms=None)
    return JobView(name=name, info=info, duplicate_ids=duplicates)


def check_containers(cluster: ClusterSpec, engine: EngineLook) -> ContainersView:
    """Runbook step: `docker ps --filter name=flink`, plus exit codes, OOM kills and restarts."""
    if engine.view is None:
        return ContainersView(error=engine.error or "no Docker client", engine_mismatch=engine.engine_mismatch)
    try:
        states = container_states(engine.view, cluster.containers)
        ids = [s.container_id for s in states if s.container_id]
        oom = recent_oom_kills(engine.view, ids, cluster.thresholds.oom_lookback_s)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        forget_engine(cluster.docker)
        return ContainersView(error=f"asking the Docker engine about cluster {cluster.name} failed: {exc}")
    by_id = {s.container_id: s.name for s in states}
    return ContainersView(containers=tuple(states), oom_kills={by_id[i]: n for i, n in oom.items()})


def collect_logs(cluster: ClusterSpec, clients: ClusterClients, containers: ContainersView) -> dict[str, str]:
    """Runbook step: `docker logs --tail N` of every container of the cluster."""
    if clients.docker is None or containers.error:
        return {}
    logs = {}
    for state in containers.containers:
        if state.container_id:
            try:
                logs[state.name] = log_tail(clients.docker, state.container_id, cluster.thresholds.log_lines)
            except (docker.errors.DockerException, requests.RequestException) as exc:
                logs[state.name] = f"(docker logs {state.name} failed: {exc})"
    return logs


def heartbeat_timeouts_in_logs(logs: dict[str, str], containers: ContainersView) -> frozenset[str]:
    """TaskManager ids whose heartbeat timeout the JobManager logs report."""
    jobmanagers = {s.name for s in containers.containers if s.role == "jobmanager"}
    found: set[str] = set()
    for name, text in logs.items():
        if name in jobmanagers:
            found |= heartbeat_timeouts_in_log(text)
    return frozenset(found)

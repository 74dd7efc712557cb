"""What the serving process's watcher counts as a fault, and when one starts a recovery (pure).

Two sources, both cheaper than a monitor run:
- Docker's event stream (flink_runbook.containers.docker_events): a container of the inventory
  paused, exited (crash, OOM kill, stop), turned unhealthy or was cut off its network. These are
  facts about a container, known within a second.
- A REST watch of `/taskmanagers` and `/jobs/overview` every few seconds: fewer TaskManagers
  than expected, a configured job not RUNNING, a JobManager that does not answer. A stale
  heartbeat alone is never a fault here: it is a suspicion (a GC pause) until Flink itself times
  the TaskManager out and drops it.

A fault starts a recovery only through the guard rails (the same decision the monitor takes), and
one fault starts one recovery: `FaultDeduper` admits nothing for a cluster while its recovery
runs, and a fault the REST watch keeps seeing again only every `recheck_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flink_runbook.containers.docker_events import DockerEvent
from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.answers import JobState, JobSummary, TaskManagerInfo
from flink_runbook.inventory import ClusterSpec

# A job in one of these is Flink's own restart at work, or a failure: either way not running.
NOT_RUNNING_JOB_STATES = frozenset({"RESTARTING", "FAILING", "FAILED", "SUSPENDED"})


@dataclass(frozen=True)
class WatchedContainer:
    cluster: str
    role: str  # jobmanager | taskmanager
    name: str


@dataclass(frozen=True)
class Fault:
    cluster: str
    source: str  # docker | rest
    code: str  # the finding code it is reported under
    what: str  # one line for the log and the event, e.g. "taskmanager container x paused"
    at: float  # when it happened (Docker's time) or was seen (the REST watch's)
    container: str = ""

    @property
    def definite(self) -> bool:
        """A fact about a container, not a reading of Flink's state: it is acted on at once."""
        return self.source == "docker"


def container_fault(event: DockerEvent, watched: dict[str, WatchedContainer]) -> Fault | None:
    """The fault a Docker event reports about a container of the inventory, or None."""
    container = watched.get(event.container_id)
    if container is None:
        return None
    subject = f"{container.role} container {container.name}"
    if event.kind == "network":
        if event.action != "disconnect":
            return None
        code, what = "CONTAINER_DISCONNECTED", f"{subject} was disconnected from network {event.network}"
    elif event.action == "pause":
        code, what = "CONTAINER_PAUSED", f"{subject} was paused (frozen)"
    elif event.action == "oom":
        code, what = "CONTAINER_OOM_KILLED", f"{subject}: the kernel OOM-killed a process in it"
    elif event.action == "die":
        code, what = "CONTAINER_EXITED", f"{subject} exited with code {event.exit_code}"
    elif event.action.startswith("health_status") and event.action.endswith("unhealthy"):
        code, what = "CONTAINER_UNHEALTHY", f"{subject} turned unhealthy (its Docker healthcheck)"
    else:
        return None
    return Fault(container.cluster, "docker", code, what, event.at, container.name)


# `docker stop` (and compose stop) first sends SIGTERM, logged as a `kill` event, then waits up to its timeout.
STOP_SIGNALS = frozenset({"15", "SIGTERM", "TERM"})
STOP_TIMEOUT_MAX_S = 120.0


def asks_to_stop(event: DockerEvent) -> bool:
    """A `kill` with SIGTERM: what `docker stop` sends first (a crash sends nothing; `docker kill`, SIGKILL)."""
    return event.kind == "container" and event.action == "kill" and event.labels.get("signal", "") in STOP_SIGNALS


def died_when_asked_to_stop(event: DockerEvent, asked_at: float | None) -> bool:
    """A `die` within the stop timeout after SIGTERM was asked: a person's stop, not a crash."""
    return event.action == "die" and asked_at is not None and 0 <= event.at - asked_at <= STOP_TIMEOUT_MAX_S


def fault_persists(fault: Fault, state: ContainerState) -> bool:
    """Whether a container fault still holds in the container's state now (not, e.g., a recovery's own restart)."""
    return {
        "CONTAINER_PAUSED": state.state == "paused",
        "CONTAINER_EXITED": state.state not in ("running", "restarting"),
        "CONTAINER_OOM_KILLED": state.state not in ("running", "restarting"),
        "CONTAINER_DISCONNECTED": state.detached_from is not None,
        "CONTAINER_UNHEALTHY": state.health == "unhealthy",
    }.get(fault.code, False)


def restarts_by_itself(restart_policy: str, exit_code: int | None) -> bool:
    """Whether Docker starts a container that exited on its own again (HostConfig.RestartPolicy.Name)."""
    return restart_policy in ("always", "unless-stopped") or (restart_policy == "on-failure" and bool(exit_code))


def rest_fault(
    cluster: ClusterSpec,
    taskmanagers: list[TaskManagerInfo] | None,
    jobs: list[JobSummary] | None,
    error: str | None,
    now: float,
    stopped_jobs: frozenset[str] = frozenset(),
    expected_taskmanagers: int | None = None,
) -> Fault | None:
    """What the REST watch counts as a fault in one reading of `/taskmanagers` and `/jobs/overview`.

    A person's decisions are not faults: `stopped_jobs` (their stop stands, Flink may have forgotten them) and
    the TaskManagers a person stopped (`expected_taskmanagers`, the inventory's count without them)."""
    if error is not None or taskmanagers is None or jobs is None:
        why = (error or "no answer")[:300]
        return Fault(cluster.name, "rest", "JOBMANAGER_UNREACHABLE", f"{cluster.rest.url} does not answer: {why}", now)
    expected = cluster.expected_taskmanagers if expected_taskmanagers is None else expected_taskmanagers
    if len(taskmanagers) < expected:
        what = f"{len(taskmanagers)} of {expected} TaskManager(s) registered"
        return Fault(cluster.name, "rest", "TASKMANAGERS_MISSING", what, now)
    for spec in cluster.jobs:
        if spec.name in stopped_jobs:
            continue
        named = sorted((j for j in jobs if j.name == spec.name), key=lambda j: j.start_time_ms)
        live = [j for j in named if j.live]
        if any(j.state == JobState.RUNNING for j in live):
            continue
        newest = (live or named or [None])[-1]
        if newest is None:
            return Fault(cluster.name, "rest", "JOB_MISSING", f"job {spec.name} is not known to the JobManager", now)
        if newest.state == JobState.CANCELED and spec.on_canceled == "leave":
            continue  # a human's cancel: reported by the monitor, never a reason to act
        if newest.state in NOT_RUNNING_JOB_STATES:
            what = f"job {spec.name} ({newest.id}) is {newest.state}"
            return Fault(cluster.name, "rest", "JOB_NOT_RUNNING", what, now)
    return None


@dataclass
class FaultDeduper:
    """One fault, one recovery: per cluster, nothing is admitted while its recovery runs; a fault seen
    again by the REST watch (same code) only every `recheck_s`; a new Docker fact always."""

    recheck_s: float = 30.0
    _running: set[str] = field(default_factory=set)
    _last: dict[str, tuple[str, float]] = field(default_factory=dict)
    # A Docker fact seen while the cluster's recovery runs: looked at again when it ends (it may be the
    # recovery's own restart, or a new fault the recovery did not plan for).
    _pending: dict[str, Fault] = field(default_factory=dict)

    def admit(self, fault: Fault, now: float) -> bool:
        if fault.cluster in self._running:
            if fault.definite:
                self._pending[fault.cluster] = fault
            return False
        last = self._last.get(fault.cluster)
        if not fault.definite and last and last[0] == fault.code and now - last[1] < self.recheck_s:
            return False
        self._last[fault.cluster] = (fault.code, now)
        return True

    def recovery_started(self, cluster: str) -> None:
        self._running.add(cluster)

    def recovery_ended(self, cluster: str, now: float) -> Fault | None:
        """Returns the last Docker fact seen while it ran, for the caller to check whether it still holds."""
        self._running.discard(cluster)
        # What the REST watch sees right after is the recovery's own aftermath: judged again in recheck_s.
        code = self._last.get(cluster, ("", now))[0]
        self._last[cluster] = (code, now)
        return self._pending.pop(cluster, None)

    def running(self, cluster: str) -> bool:
        return cluster in self._running

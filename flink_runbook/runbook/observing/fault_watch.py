"""What the serving process's watcher counts as a fault, and when one starts a recovery (pure rules).

The watcher is a door into the runbook, not a second one: what it acts on is a finding
(flink_runbook.runbook.observing.findings), from one of two sources cheaper than a monitor run:
- Docker's event stream (flink_runbook.containers.docker_events): a container of the inventory
  paused, exited (crash, OOM kill, stop), turned unhealthy or was cut off its network, known within a
  second (`container_event_finding`).
- A glance every few seconds (the runbook's own observation at `Depth.GLANCE`: containers,
  TaskManagers, the jobs overview) and its diagnosis: the serious findings a glance can judge. A stale
  heartbeat alone is never one (a warning: a GC pause, until Flink itself drops the TaskManager).

A fault starts a recovery only through the guard rails (the same decision the monitor takes), and
one fault starts one recovery: `FaultDeduper` admits nothing for a cluster while its recovery
runs, and a fault the glance keeps seeing again only every `recheck_s`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flink_runbook.containers.docker_events import DockerEvent
from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.answers import JobState
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.findings import Finding, FindingCode, container_event_finding
from flink_runbook.runbook.observing.observe import JobView

# The serious findings a glance judges as the full look would: the JobManager, the TaskManagers, a job
# that fails, restarts, was suspended or is missing. Not the containers (Docker's events push those),
# not a job a glance cannot tell from a person's stop (below), not what needs the job's details.
GLANCE_FAULTS = frozenset(
    {
        FindingCode.JOBMANAGER_UNREACHABLE,
        FindingCode.JOBMANAGER_REST_INVALID,
        FindingCode.NO_TASKMANAGERS,
        FindingCode.TASKMANAGERS_MISSING,
        FindingCode.JOB_MISSING,
        FindingCode.JOB_FAILED,
        FindingCode.JOB_RESTARTING,
        FindingCode.JOB_NOT_RUNNING,
    }
)
# An ended job may be a person's stop-with-savepoint, which only the job's checkpoints tell (the full look).
ENDED_BY_CHOICE = frozenset({JobState.CANCELED, JobState.FINISHED})


@dataclass(frozen=True)
class WatchedContainer:
    cluster: str
    role: str  # jobmanager | taskmanager
    name: str


@dataclass(frozen=True)
class Fault:
    cluster: str
    source: str  # docker | rest
    findings: tuple[Finding, ...]  # most severe first; the first names the fault
    at: float  # when it happened (Docker's time) or was seen (the glance's)
    container: str = ""

    @property
    def code(self) -> str:
        return self.findings[0].code

    @property
    def what(self) -> str:
        """One line for the log, e.g. "taskmanager container x was paused (frozen)"."""
        return "; ".join(f.summary for f in self.findings)

    @property
    def definite(self) -> bool:
        """A fact about a container, not a reading of Flink's state: it is acted on at once."""
        return self.source == "docker"


def watched_containers(cluster: str, states: Iterable[ContainerState]) -> dict[str, WatchedContainer]:
    """The cluster's containers by id, as its events name them (one expected but missing has no id)."""
    return {s.container_id: WatchedContainer(cluster, s.role, s.name) for s in states if s.container_id}


def container_fault(event: DockerEvent, container: WatchedContainer | None) -> Fault | None:
    """The fault a Docker event reports about a container of the inventory (None: not one of them), or None."""
    finding = container_event_finding(container.role, container.name, event) if container else None
    return Fault(container.cluster, "docker", (finding,), event.at, container.name) if finding else None


def fault_persists(fault: Fault, state: ContainerState) -> bool:
    """Whether a container fault still holds in the container's state now (not, e.g., a recovery's own restart)."""
    return {
        FindingCode.CONTAINER_PAUSED: state.state == "paused",
        FindingCode.CONTAINER_EXITED: state.state not in ("running", "restarting"),
        FindingCode.CONTAINER_OOM_KILLED: state.state not in ("running", "restarting"),
        FindingCode.CONTAINER_DISCONNECTED: state.detached_from is not None,
        FindingCode.CONTAINER_UNHEALTHY: state.health == "unhealthy",
    }.get(fault.code, False)


def restarts_by_itself(state: ContainerState) -> bool:
    """Whether Docker starts this container, exited on its own, again (its restart policy)."""
    policy = state.restart_policy or "no"
    return policy in ("always", "unless-stopped") or (policy == "on-failure" and bool(state.exit_code))


def _job_of(finding: Finding, jobs: Iterable[JobView]) -> JobView | None:
    for job in jobs:
        if finding.subject == job.name or (job.info and finding.subject == f"{job.name} ({job.info.id})"):
            return job
    return None


def glance_fault(
    diagnosis: Diagnosis,
    at: float,
    standing_stops: frozenset[str] = frozenset(),
    expected_taskmanagers: int | None = None,
) -> Fault | None:
    """The fault a glance's diagnosis shows, or None.

    A person's decisions are not faults: a job whose stop stands (`standing_stops`, Flink may have forgotten
    it) and the TaskManagers a person stopped (`expected_taskmanagers`: the inventory's count without them)."""
    seen = diagnosis.observation
    enough = expected_taskmanagers is not None and len(seen.taskmanagers) >= expected_taskmanagers
    faults = []
    for finding in diagnosis.serious:
        job = _job_of(finding, seen.jobs)
        if finding.code not in GLANCE_FAULTS or (job is not None and job.name in standing_stops):
            continue
        if job is not None and job.info is not None and job.info.state in ENDED_BY_CHOICE:
            continue
        if enough and finding.code in (FindingCode.NO_TASKMANAGERS, FindingCode.TASKMANAGERS_MISSING):
            continue
        faults.append(finding)
    return Fault(diagnosis.cluster, "rest", tuple(faults), at) if faults else None


@dataclass
class FaultDeduper:
    """One fault, one recovery: per cluster, nothing is admitted while its recovery runs; a fault seen
    again by the glance (same code) only every `recheck_s`; a new Docker fact always."""

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
        # What the glance sees right after is the recovery's own aftermath: judged again in recheck_s.
        code = self._last.get(cluster, ("", now))[0]
        self._last[cluster] = (code, now)
        return self._pending.pop(cluster, None)

    def running(self, cluster: str) -> bool:
        return cluster in self._running

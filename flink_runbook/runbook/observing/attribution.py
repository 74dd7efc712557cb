"""Which container a registered TaskManager runs in (pure): by every fact Flink and Docker give.

Flink names a TaskManager by its id (by default "<address>:<port>-<suffix>", the
address being the container's IP, or `taskmanager.host` when set, or any
`taskmanager.resource-id`) and its RPC path (pekko.tcp://flink@<address>:<port>/...).
Docker names a container by its name, hostname, IPs, network aliases and short id.
A TaskManager matches a container when any of these meet. One that matches no
container, or more than one, is unattributed: the plan then refuses to restart
any running TaskManager container rather than guess which one is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flink_runbook.containers.states import ContainerState, seconds_since
from flink_runbook.flink.answers import TaskManagerInfo


@dataclass(frozen=True)
class Attribution:
    by_container: dict[str, tuple[str, ...]]  # container name -> ids of the TaskManagers registered from it
    unattributed: tuple[TaskManagerInfo, ...] = ()

    def ids_of(self, container_names: Iterable[str]) -> frozenset[str]:
        return frozenset(tm for name in container_names for tm in self.by_container.get(name, ()))

    def describe_unattributed(self) -> str:
        return ", ".join(f"{tm.id} (path {tm.path or 'unknown'})" for tm in self.unattributed)


def attribute_taskmanagers(
    taskmanagers: Iterable[TaskManagerInfo], containers: Iterable[ContainerState]
) -> Attribution:
    """Each registered TaskManager to the one TaskManager container it names."""
    candidates = [c for c in containers if c.role == "taskmanager" and c.state != "missing"]
    by_container: dict[str, list[str]] = {c.name: [] for c in candidates}
    unattributed = []
    for tm in taskmanagers:
        matches = [c.name for c in candidates if tm.identities & c.identities]
        if len(matches) == 1:
            by_container[matches[0]].append(tm.id)
        else:
            unattributed.append(tm)
    return Attribution({name: tuple(ids) for name, ids in by_container.items()}, tuple(unattributed))


def taskmanagers_named_by(taskmanagers: Iterable[TaskManagerInfo], identities: frozenset[str]) -> set[str]:
    """Ids of the TaskManagers that name any of these container names or addresses."""
    return {tm.id for tm in taskmanagers if tm.identities & identities}


def restarting_taskmanagers(
    taskmanagers: Iterable[TaskManagerInfo],
    containers: Iterable[ContainerState],
    observed_at_s: float,
    grace_s: float,
) -> dict[str, frozenset[str]]:
    """TaskManager containers (re)started less than grace_s ago (e.g. by their restart policy after a crash)
    whose new process has not registered yet; each with the registrations of its previous process, which
    Flink still lists until it notices (a last heartbeat older than the container)."""
    taskmanagers = list(taskmanagers)
    containers = [c for c in containers if c.role == "taskmanager"]
    age_s = {tm.id: (tm.heartbeat_age_ms or 0) / 1000 for tm in taskmanagers}
    by_container = attribute_taskmanagers(taskmanagers, containers).by_container
    restarting = {}
    for container in containers:
        up_for = seconds_since(container.started_at, observed_at_s)
        if container.state != "running" or up_for is None or up_for >= grace_s:
            continue
        registered = by_container.get(container.name, ())
        previous = frozenset(i for i in registered if age_s.get(i, 0) >= up_for)
        if previous or not registered:
            restarting[container.name] = previous
    return restarting

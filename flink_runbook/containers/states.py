"""The cluster's containers as Docker sees them (docker SDK, no Prefect).

Containers are found by the labels Compose sets (project + service) or by
explicit names, so the same code serves the demo stack and a user's own.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import docker
import docker.errors
from docker.models.containers import Container

from flink_runbook.inventory import ContainerSelector

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# `docker compose run` containers carry the service's labels too, but are not the service.
ONEOFF_LABEL = "com.docker.compose.oneoff"
ROLES = ("jobmanager", "taskmanager")
BUILT_IN_NETWORK_MODES = frozenset({"", "default", "bridge", "host", "none"})
# The FLINK_PROPERTIES keys (the image's environment) kept from a container: whether a JobManager started again
# brings its job back (HA, a restore path; runbook.observing.application_mode). Nothing else is kept: the
# variable may carry credentials.
KEPT_FLINK_PROPERTIES = frozenset({
    "high-availability.type", "recovery.mode", "high-availability",
    "execution.state-recovery.path", "execution.savepoint.path",
})


def flink_properties(env: list[str] | None) -> tuple[tuple[str, str], ...]:
    """The kept `key: value` lines of FLINK_PROPERTIES in a container's environment (Config.Env)."""
    text = next((e.partition("=")[2] for e in env or () if e.startswith("FLINK_PROPERTIES=")), "")
    pairs = (line.partition(":") for line in text.splitlines())
    return tuple((k.strip(), v.strip()) for k, _, v in pairs if k.strip() in KEPT_FLINK_PROPERTIES and v.strip())


def seconds_since(docker_time: str | None, now_s: float) -> float | None:
    """Seconds from a Docker timestamp (RFC 3339 with nanoseconds, e.g. State.StartedAt) to now_s."""
    if not docker_time or docker_time.startswith("0001-"):
        return None
    whole, _, fraction = docker_time.rstrip("Z").partition(".")
    try:
        started = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
    return now_s - started - float(f"0.{fraction or 0}")


class DockerUnavailable(RuntimeError):
    """The Docker engine of a cluster cannot be reached."""


@dataclass(frozen=True)
class ContainerState:
    role: str  # jobmanager | taskmanager
    name: str
    service: str
    # running | paused | restarting | exited | dead | created | removing | missing
    state: str
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    started_at: str | None = None
    health: str | None = None  # healthy | unhealthy | starting | None (no healthcheck)
    image: str | None = None
    container_id: str | None = None
    ip_addresses: tuple[str, ...] = ()
    hostname: str | None = None
    # Names other containers reach it by on its networks (service name, aliases, short id).
    network_aliases: tuple[str, ...] = ()
    # The network it was created on (HostConfig.NetworkMode) and the ones it is attached to now.
    network_mode: str | None = None
    networks: tuple[str, ...] = ()
    finished_at: str | None = None  # State.FinishedAt: when it last exited
    # Exited because a person asked (`docker stop`: the engine logged a stop since it last started), not a crash.
    stopped_by_hand: bool = False
    restart_policy: str | None = None  # HostConfig.RestartPolicy.Name: no | always | unless-stopped | on-failure
    command: tuple[str, ...] = ()  # Config.Cmd: the entrypoint's arguments, e.g. standalone-job --job-classname X
    flink_properties: tuple[tuple[str, str], ...] = ()  # KEPT_FLINK_PROPERTIES set in its FLINK_PROPERTIES

    @property
    def detached_from(self) -> str | None:
        """The named network this running container was created on and is no longer attached to
        (`docker network disconnect`): a restart does not bring it back, a reconnect does."""
        mode = self.network_mode or ""
        if self.state != "running" or mode in BUILT_IN_NETWORK_MODES or mode.startswith("container:"):
            return None
        return None if mode in self.networks else mode

    @property
    def identities(self) -> frozenset[str]:
        """Every name and address a Flink process in this container may be known by."""
        names = {self.name, *self.ip_addresses, *self.network_aliases}
        if self.hostname:
            names.add(self.hostname)
        if self.container_id:
            names.add(self.container_id[:12])
        return frozenset(n for n in names if n)


def network_facts(attrs: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(IP addresses, network aliases) of a container, from `docker inspect`."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    addresses = sorted(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
    aliases = sorted({a for n in networks.values() for a in (n.get("Aliases") or []) + (n.get("DNSNames") or [])})
    return tuple(addresses), tuple(aliases)


def container_state(role: str, service: str, container: Container) -> ContainerState:
    state = container.attrs.get("State", {})
    health = (state.get("Health") or {}).get("Status")
    addresses, aliases = network_facts(container.attrs)
    return ContainerState(
        role=role,
        name=container.name,
        service=service,
        state=state.get("Status", container.status),
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(container.attrs.get("RestartCount", 0)),
        started_at=state.get("StartedAt"),
        finished_at=state.get("FinishedAt"),
        health=health,
        image=container.attrs.get("Config", {}).get("Image"),
        container_id=container.id,
        ip_addresses=addresses,
        hostname=(container.attrs.get("Config") or {}).get("Hostname"),
        network_aliases=aliases,
        network_mode=(container.attrs.get("HostConfig") or {}).get("NetworkMode"),
        networks=tuple(sorted((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})),
        restart_policy=((container.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or None,
        command=tuple((container.attrs.get("Config") or {}).get("Cmd") or ()),
        flink_properties=flink_properties((container.attrs.get("Config") or {}).get("Env")),
    )


@dataclass(frozen=True)
class EngineView:
    """One Docker engine at one moment: every container (`docker ps -a`, the listing only) and the times of
    its recent OOM kills. Taken once per engine per check, whatever number of clusters run there."""

    client: docker.DockerClient
    listed: tuple[dict, ...]  # the engine's listing: Id, Names, Labels, State
    oom_kill_times: dict[str, tuple[float, ...]] = field(default_factory=dict)  # container id -> epoch s
    taken_at: float = 0.0
    # `docker stop` (and compose stop/restart) asked of each container: container id -> epoch s. A crash
    # or an OOM kill logs `die` without it.
    stop_times: dict[str, tuple[float, ...]] = field(default_factory=dict)


def engine_view(client: docker.DockerClient, oom_lookback_s: float) -> EngineView:
    """List the engine's containers and its OOM events of the last `oom_lookback_s` (0: not asked for).

    State.OOMKilled is cleared when the restart policy restarts the container;
    the engine's 'oom' events are the evidence that survives the restart. Its
    'stop' events tell a container a person stopped from one that crashed.
    """
    now = time.time()
    listed = tuple(client.api.containers(all=True))
    if oom_lookback_s <= 0:  # only which containers there are (the fault watcher's refresh)
        return EngineView(client, listed, {}, now)
    events = client.events(
        since=int(now - oom_lookback_s), until=f"{now:.6f}", decode=True,  # to the microsecond: a stop just now
        filters={"event": ["oom", "stop"], "type": "container"},
    )
    times: dict[str, dict[str, list[float]]] = {"oom": {}, "stop": {}}
    for event in events:
        container_id = event.get("id") or event.get("Actor", {}).get("ID")
        action = event.get("Action") or event.get("status")
        if container_id and action in times:
            at = event.get("timeNano", 0) / 1e9 or float(event.get("time", now))
            times[action].setdefault(container_id, []).append(at)
    frozen = {action: {i: tuple(t) for i, t in by_id.items()} for action, by_id in times.items()}
    return EngineView(client, listed, frozen["oom"], now, frozen["stop"])


def stopped_by_hand(view: EngineView, state: ContainerState) -> bool:
    """Exited, and the engine logged a `docker stop` of it at or after its last start."""
    if state.state != "exited" or not state.container_id:
        return False
    up_for = seconds_since(state.started_at, view.taken_at)
    started = view.taken_at - up_for if up_for is not None else 0.0
    return any(at >= started for at in view.stop_times.get(state.container_id, ()))


def _listed_name(listed: dict) -> str:
    return next((n.lstrip("/") for n in listed.get("Names") or []), "")


def find_containers(view: EngineView, selector: ContainerSelector) -> dict[str, list[Container]]:
    """The cluster's containers by role, inspected; a role with none found maps to []."""
    found: dict[str, list[Container]] = {}
    for role in ROLES:
        names = selector.jobmanager_names if role == "jobmanager" else selector.taskmanager_names
        if names:
            # Exactly these names (the engine would also resolve an id prefix; the listing does not).
            chosen = [c for c in view.listed if _listed_name(c) in names]
        else:
            service = selector.jobmanager_service if role == "jobmanager" else selector.taskmanager_service
            chosen = [
                c
                for c in view.listed
                if (c.get("Labels") or {}).get(PROJECT_LABEL) == selector.compose_project
                and (c.get("Labels") or {}).get(SERVICE_LABEL) == service
                and (c.get("Labels") or {}).get(ONEOFF_LABEL, "False") != "True"
            ]
        containers = []
        for listed in chosen:
            with contextlib.suppress(docker.errors.NotFound):  # removed since the listing
                containers.append(view.client.containers.get(listed["Id"]))
        found[role] = sorted(containers, key=lambda c: c.name)
    return found


def container_states(view: EngineView, selector: ContainerSelector) -> list[ContainerState]:
    """State of every container of the cluster; expected but absent ones are reported as missing."""
    states: list[ContainerState] = []
    for role, containers in find_containers(view, selector).items():
        names = selector.jobmanager_names if role == "jobmanager" else selector.taskmanager_names
        default_service = selector.jobmanager_service if role == "jobmanager" else selector.taskmanager_service
        for container in containers:
            service = container.labels.get(SERVICE_LABEL, default_service)
            state = container_state(role, service, container)
            states.append(replace(state, stopped_by_hand=stopped_by_hand(view, state)))
        present = {c.name for c in containers}
        missing = [n for n in names if n not in present] or ([] if containers else [f"{default_service} (none found)"])
        states.extend(ContainerState(role=role, name=n, service=default_service, state="missing") for n in missing)
    return states


def recent_oom_kills(view: EngineView, container_ids: list[str], lookback_s: float) -> dict[str, int]:
    """How many times the kernel OOM-killed in each of these containers within `lookback_s` of the view."""
    since = view.taken_at - lookback_s
    counts = {i: sum(1 for t in view.oom_kill_times.get(i, ()) if t >= since) for i in container_ids}
    return {i: n for i, n in counts.items() if n}


def log_tail(client: docker.DockerClient, container_id: str, lines: int) -> str:
    """The last `lines` lines of a container's log (stdout and stderr)."""
    try:
        return client.containers.get(container_id).logs(tail=lines).decode(errors="replace")
    except docker.errors.NotFound:
        return ""

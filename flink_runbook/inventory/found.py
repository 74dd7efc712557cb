"""What `flink-runbook init` found out about a running cluster, and the pure readers of the answers it was
found in (Flink's REST API, docker inspect); cli/init.py asks, flink_runbook.inventory.starting writes the
file.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from flink_runbook.inventory.model import NAME_PATTERN

# Per release, the key of the directory Flink writes checkpoints to (2.x renamed it).
CHECKPOINT_DIR_KEYS = ("execution.checkpointing.dir", "state.checkpoints.dir")
HA_KEYS = ("high-availability.type", "high-availability")
CONFIG_FILE_NAMES = ("config.yaml", "flink-conf.yaml")  # a Flink config file mounted into a container
# The settings of the runbook's incident, said in the file's head (`flink-runbook audit` judges them).
SETTINGS_SAID = (
    "heartbeat.timeout",
    "heartbeat.interval",
    "restart-strategy.type",
    "restart-strategy.fixed-delay.attempts",
    "execution.checkpointing.externalized-checkpoint-retention",
    *HA_KEYS,
)
PORT_LABELS = ("com.docker.compose.project", "com.docker.compose.service")
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class FoundJob:
    """A job that runs now, as Flink says it."""

    name: str
    job_id: str
    state: str
    parallelism: int | None = None
    checkpoint_dir: str | None = None  # as Flink says it: file:///data/checkpoints, s3://bucket/path
    checkpoint_dir_host: str | None = None  # the same directory on the host (a container's mount), if found
    checkpointing: bool = True  # False: checkpointing is off (its checkpoint config answered 404)
    retained_on_cancel: bool | None = None  # externalized checkpoints kept when the job is cancelled
    jar_name: str | None = None  # the uploaded jar it most likely runs
    jar_path: str | None = None  # that jar on this host, as the inventory names it
    entry_class: str | None = None
    jar_guess: str | None = None  # why jar_name and entry_class are believed (None: nothing believed)
    uploaded_jars: tuple[str, ...] = ()  # every jar uploaded on the JobManager, when none could be picked


@dataclass(frozen=True)
class FoundCluster:
    rest_url: str
    name: str
    flink_version: str | None = None
    taskmanagers: int = 0
    slots_total: int = 0
    settings: dict[str, str] = field(default_factory=dict)  # the JobManager's, the keys of SETTINGS_SAID
    compose_project: str | None = None
    compose_project_guess: str | None = None  # why the project is not certain, when it is not
    jobmanager_service: str | None = None
    taskmanager_service: str | None = None
    taskmanager_service_guess: str | None = None  # why, when it is not the registered TaskManagers' service
    compose_file: str | None = None
    jobmanager_config: str | None = None
    taskmanager_config: str | None = None
    jobs: tuple[FoundJob, ...] = ()
    not_found: tuple[str, ...] = ()  # what the shell could not ask, and why (Docker unreachable, ...)


def cluster_name(requested: str | None, compose_project: str | None, rest_url: str) -> str:
    """The name asked for, else the compose project's, else one made of the REST address, as the inventory
    allows names (lowercase letters, digits, dashes)."""
    if requested:
        return requested
    parsed = urlparse(rest_url)
    raw = compose_project or f"flink-{parsed.hostname}-{parsed.port or 8081}"
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:63].strip("-")
    return name if NAME_PATTERN.match(name) else "flink"


def rest_port(rest_url: str) -> int:
    parsed = urlparse(rest_url)
    return parsed.port or (443 if parsed.scheme == "https" else 80)


def publishes(ports: dict, port: int) -> bool:
    """Whether a container (docker inspect's NetworkSettings.Ports) publishes a port on the host's `port`."""
    return any(
        str(binding.get("HostPort")) == str(port) for bindings in (ports or {}).values() for binding in bindings or ()
    )


def same_cluster_unproven(rest_host: str | None, taskmanager_hosts: list[str], addresses: set[str]) -> str | None:
    """Why the container publishing the REST port may not be this cluster's: the REST host is not this
    machine's loopback and no registered TaskManager has the address of a container of its project."""
    if rest_host in LOOPBACK or any(host in addresses for host in taskmanager_hosts):
        return None
    return (
        f"a container on this Docker engine publishes the port, but {rest_host} is not this machine's loopback "
        "and no registered TaskManager is a container of its project"
    )


def checkpoint_dir_setting(config: dict[str, str]) -> str | None:
    """The checkpoint directory a job's configuration names (either release's key)."""
    return next((config[key] for key in CHECKPOINT_DIR_KEYS if config.get(key)), None)


def local_path(flink_path: str) -> str | None:
    """The path inside the container of a file: URI (file:///data/x, file:/data/x, /data/x); None for s3:// etc."""
    if flink_path.startswith("/"):
        return flink_path.rstrip("/") or "/"
    if flink_path.startswith("file:"):
        return "/" + flink_path[len("file:") :].lstrip("/").rstrip("/")
    return None


def host_side(container_path: str, mounts: list[dict]) -> str | None:
    """Where `container_path` lies on the host, by the container's mounts (docker inspect's Mounts): the mount
    deepest in the path wins."""
    best: tuple[int, str] | None = None
    for mount in mounts or ():
        destination, source = (mount.get("Destination") or "").rstrip("/"), mount.get("Source")
        if not source or not destination:
            continue
        if container_path == destination or container_path.startswith(destination + "/"):
            rest = container_path[len(destination) :].lstrip("/")
            candidate = posixpath.join(source, rest) if rest else source
            if best is None or len(destination) > best[0]:
                best = (len(destination), candidate)
    return best[1] if best else None


def mounted_config_file(mounts: list[dict]) -> str | None:
    """The host file mounted into a container as its Flink config file, if one is."""
    return next(
        (m["Source"] for m in mounts or () if posixpath.basename(m.get("Destination") or "") in CONFIG_FILE_NAMES
         and m.get("Source")),
        None,
    )


def taskmanager_service(
    taskmanager_hosts: list[str], services_by_address: dict[str, str]
) -> tuple[str | None, str | None]:
    """The compose service whose containers have the registered TaskManagers' addresses: (service, None), or
    (a guess, why) when the addresses do not tell one service."""
    found = {services_by_address[host] for host in taskmanager_hosts if host in services_by_address}
    if len(found) == 1:
        return found.pop(), None
    others = sorted(set(services_by_address.values()))
    named = [s for s in others if "taskmanager" in s.lower()]
    if len(found) > 1:
        return sorted(found)[0], f"the TaskManagers run in services {', '.join(sorted(found))}; the first is named"
    if named:
        return named[0], "no registered TaskManager's address is a container of the project; chosen by its name"
    return None, None


def jar_of(jobs: list[str], jars: list[dict]) -> tuple[str | None, str | None, str | None]:
    """(jar name, entry class, why) of the jar a job most likely runs, from GET /jars (Flink does not say which
    jar a job came from): the only jar uploaded with one entry class, or nothing."""
    files = [f for f in jars if f.get("name")]
    if len(files) != 1:
        return None, None, None
    entries = [e.get("name") for e in files[0].get("entry") or () if e.get("name")]
    entry = entries[0] if len(entries) == 1 else None
    why = "the only jar uploaded on the JobManager" + (", its only entry class" if entry else "")
    if len(jobs) > 1:
        why += f"; {len(jobs)} jobs run, so it may be some of theirs only"
    return files[0]["name"], entry, why

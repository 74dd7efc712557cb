"""A starting inventory for a cluster nobody has described yet (`flink-runbook init`), pure.

The shell (cli/init.py) asks the cluster's REST API and the Docker engine what they know and hands it over
as a FoundCluster; this module reads their answers and writes the file's YAML text. Every line a person has
to decide carries `# DECIDE:`, every inference `# GUESSED:`, everything not found `# NOT FOUND:`, so that
nothing guessed passes for a fact.
"""

from __future__ import annotations

import posixpath
import re
import textwrap
from dataclasses import dataclass, field
from urllib.parse import urlparse

import yaml

from flink_runbook.inventory.model import NAME_PATTERN
from flink_runbook.inventory.specs import HOST_STATE_DIR, STATE_DIR_ENV, ClusterSpec, JobSpec

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


@dataclass(frozen=True)
class StartingInventory:
    text: str  # the YAML file
    open_points: tuple[str, ...]  # what was not found out, or is guessed: said to the person who ran init


# -- reading what Flink and Docker answered (pure) ------------------------------------------------------------


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


# -- writing the file ---------------------------------------------------------------------------------------


def _value(value: object) -> str:
    """One YAML scalar or flow list, quoted where YAML needs it."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _line(indent: int, key: str, value: object, comment: str | None = None) -> str:
    text = f"{' ' * indent}{key}: {_value(value)}"
    return f"{text}  # {comment}" if comment else text


def _settings_said(found: FoundCluster) -> str:
    said = [f"{key} {found.settings[key]}" for key in SETTINGS_SAID if found.settings.get(key)]
    if not any(found.settings.get(key) for key in HA_KEYS):
        said.append("no high availability")
    return ", ".join(said)


def _job_lines(job: FoundJob, open_points: list[str]) -> list[str]:
    out = [f"      - name: {_value(job.name)}  # {job.state} now as job {job.job_id}"]
    if job.jar_name:
        if job.jar_path:
            out.append(_line(8, "jar", job.jar_path, f"GUESSED: {job.jar_guess}; found beside this file"))
        else:
            out.append(_line(8, "jar", job.jar_name, f"DECIDE: the path of this jar on this host ({job.jar_guess})"))
            open_points.append(f"job {job.name}: put {job.jar_name} beside the inventory or write its path (jar)")
    else:
        uploaded = f"uploaded: {', '.join(job.uploaded_jars)}" if job.uploaded_jars else "none is uploaded"
        out.append(f"        # jar: PATH  # NOT FOUND: Flink does not say which jar a job runs ({uploaded})")
        open_points.append(f"job {job.name}: which jar it runs, and its entry class (jar, entry_class)")
    if job.entry_class:
        out.append(_line(8, "entry_class", job.entry_class, f"GUESSED: {job.jar_guess}"))
    elif job.jar_name:
        out.append("        # entry_class: CLASS  # NOT FOUND: the jar has no single entry class Flink knows of")
        open_points.append(f"job {job.name}: its entry class (entry_class)")
    out.append(_line(8, "args", [], "DECIDE: the program's arguments: Flink's REST API does not say them"))
    open_points.append(f"job {job.name}: its program arguments (args), which Flink's REST API does not say")
    if job.parallelism:
        out.append(_line(8, "parallelism", job.parallelism))
    out += _checkpoint_lines(job, open_points)
    out.append(_line(
        8, "no_checkpoint_policy", JobSpec.no_checkpoint_policy,
        "DECIDE: with no retained checkpoint: fail (a person decides) or fresh (start from nothing: its state "
        "is lost)",
    ))
    out.append(_line(
        8, "on_canceled", JobSpec.on_canceled, "DECIDE: a job a person cancelled: leave it, or resubmit it"
    ))
    return out


def _checkpoint_lines(job: FoundJob, open_points: list[str]) -> list[str]:
    if not job.checkpointing:
        open_points.append(f"job {job.name}: checkpointing is off: a recovery can only start it fresh")
        return ["        # checkpoint_dir: NOT FOUND: checkpointing is off for this job (nothing to restore from)"]
    if not job.checkpoint_dir:
        open_points.append(f"job {job.name}: its checkpoint directory (checkpoint_dir)")
        return ["        # checkpoint_dir: NOT FOUND: neither the job's nor the cluster's configuration names one"]
    out = []
    if job.retained_on_cancel is False:
        out.append("        # Its checkpoints are not retained when it is cancelled (externalized retention): a")
        out.append("        # cancelled job cannot be restored from them.")
    inside = local_path(job.checkpoint_dir)
    if inside is None:
        out.append(f"        # Checkpoints go to {job.checkpoint_dir}: not a local directory, so only Flink's REST")
        out.append("        # API says which is the latest (no checkpoint_dir needed).")
        return out
    out.append("        checkpoint_dir:")
    if job.checkpoint_dir_host:
        out.append(_line(10, "host", job.checkpoint_dir_host, "the JobManager container's mount of it"))
    else:
        out.append(_line(10, "host", inside, "GUESSED: no mount of it found: the same path as in the containers"))
        open_points.append(f"job {job.name}: where {inside} lies on this host (checkpoint_dir.host)")
    out.append(_line(10, "container", inside, f"Flink's checkpoint directory: {job.checkpoint_dir}"))
    out.append(_line(10, "exclusive", False, "DECIDE: true if only this job writes there"))
    return out


def starting_inventory(found: FoundCluster, command: str) -> StartingInventory:
    """The inventory's text for what was found, and the points a person has to settle; `command` is the init
    command line that wrote it (said in the file)."""
    open_points = list(found.not_found)
    head = [
        f"# Written by `{command}` from what the cluster's REST API and the Docker engine said.",
        "# Lines marked DECIDE are a person's choice, GUESSED ones were inferred, NOT FOUND ones are missing:",
        "# settle them, then `flink-runbook inventory check --config FILE` and `flink-runbook diagnose --config FILE`.",
        "# Every key: README.md (The inventory), or `flink-runbook inventory schema`.",
        f"# state_dir: {HOST_STATE_DIR}  # DECIDE: recovery locks and job lineage on this host (the default; "
        f"${STATE_DIR_ENV} overrides it)",
        "clusters:",
        f"  - name: {_value(found.name)}",
    ]
    version = f"Flink {found.flink_version}" if found.flink_version else "Flink (release not said)"
    said = f"{version}, {found.taskmanagers} TaskManager(s), {found.slots_total} slots; {_settings_said(found)} "
    said += "(`flink-runbook audit` judges them)"
    head += [f"    # {line}" for line in textwrap.wrap(said, 100)]
    out = head + ["    rest:", _line(6, "url", found.rest_url), "    containers:"]
    if found.compose_project and found.compose_project_guess:
        out.append(_line(6, "compose_project", found.compose_project, f"GUESSED: {found.compose_project_guess}"))
        open_points.append(f"the cluster's compose project (guessed {found.compose_project})")
    elif found.compose_project:
        out.append(_line(6, "compose_project", found.compose_project, "of the container publishing the REST port"))
        out.append(_line(6, "jobmanager_service", found.jobmanager_service or "jobmanager"))
    else:
        out.append(_line(
            6, "compose_project", found.name,
            "NOT FOUND: no container on this Docker engine publishes the REST port: the cluster's compose project "
            "(or names: {jobmanager: [...], taskmanager: [...]})",
        ))
        open_points.append("the cluster's containers (containers): no container here publishes the REST port")
    if found.compose_project and found.taskmanager_service and not found.taskmanager_service_guess:
        out.append(_line(6, "taskmanager_service", found.taskmanager_service, "the registered TaskManagers' service"))
    elif found.compose_project and found.taskmanager_service:
        out.append(_line(6, "taskmanager_service", found.taskmanager_service,
                         f"GUESSED: {found.taskmanager_service_guess}"))
        open_points.append(f"the TaskManagers' compose service (guessed {found.taskmanager_service})")
    elif found.compose_project:
        out.append(_line(6, "taskmanager_service", "taskmanager",
                         "NOT FOUND: no service of the project runs the registered TaskManagers"))
        open_points.append("the TaskManagers' compose service (taskmanager_service)")
    out.append(_line(
        4, "expected_taskmanagers", max(1, found.taskmanagers), "DECIDE: as many as are registered now"
    ))
    out.append(_line(
        4, "approval", ClusterSpec.approval.value,
        "DECIDE: never, risky (a person approves a fresh start, an older checkpoint, a JobManager start) or always",
    ))
    out.append(_line(
        4, "restart_stopped", ClusterSpec.restart_stopped,
        "DECIDE: true to start a TaskManager container a person stopped",
    ))
    if found.jobs:
        out.append("    jobs:")
        for job in found.jobs:
            out += _job_lines(job, open_points)
    else:
        out.append("    jobs: []  # no job runs now: add each one the runbook should bring back")
        open_points.append("no job runs now: add the jobs the runbook should bring back (jobs)")
    out += _audit_lines(found)
    return StartingInventory("\n".join(out) + "\n", tuple(open_points))


def _audit_lines(found: FoundCluster) -> list[str]:
    out = ["    audit:  # what `flink-runbook audit` reads"]
    if found.flink_version:
        out.append(_line(6, "flink_version", found.flink_version))
    if found.compose_file:
        out.append(_line(6, "compose_file", found.compose_file, "the compose project's file"))
    if found.jobmanager_config:
        out.append(_line(6, "jobmanager_config", found.jobmanager_config, "mounted into the JobManager container"))
    if found.taskmanager_config:
        out.append(_line(6, "taskmanager_config", found.taskmanager_config, "mounted into a TaskManager container"))
    return out if len(out) > 1 else ["    # audit: NOT FOUND: no compose file or Flink config file was found"]

"""The inventory: which Flink clusters to look after and how to reach them.

One YAML file, several clusters. Loaded into frozen dataclasses; every problem
is reported as `<file>: <key path>: <what is wrong>` and nothing is used from a
file with a problem.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from flink_runbook.redaction import credentials_in_url, redact_urls
from flink_runbook.text_files import load_yaml, read_text

S = TypeVar("S")

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# The largest duration any setting may have: a week. Larger is a typo, and a wait that never ends.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_COUNT = 100_000


HOST_STATE_DIR = Path("/var/lib/flink-runbook")
STATE_DIR_ENV = "FLINK_RUNBOOK_STATE_DIR"


def default_state_dir() -> Path:
    """Where the runbook keeps its host-level state (recovery locks, job lineage) unless the inventory says:
    one directory per host, not per user's $HOME, so a service running as root and an operator's CLI take
    the same lock and keep one lineage. FLINK_RUNBOOK_STATE_DIR overrides it (load_inventory checks it)."""
    return Path(os.environ.get(STATE_DIR_ENV) or HOST_STATE_DIR)


def describe_state_dir(path: Path) -> str:
    """The state dir and where its value comes from, for an error that must say what to change."""
    if os.environ.get(STATE_DIR_ENV) and path == default_state_dir():
        return f"{path} (from the environment variable {STATE_DIR_ENV})"
    if path == HOST_STATE_DIR:
        return f"{path} (the default; the inventory's state_dir or {STATE_DIR_ENV} overrides it)"
    return f"{path} (the inventory's state_dir)"


class InventoryError(ValueError):
    """The inventory file is unreadable or invalid; the message names file, key and reason."""


@dataclass(frozen=True)
class RestAuth:
    """Credentials come from the environment or a Prefect Secret block, never from the file."""

    kind: str = "none"  # none | basic | bearer
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    token_secret_block: str | None = None


@dataclass(frozen=True)
class RestSettings:
    url: str
    auth: RestAuth = field(default_factory=RestAuth)
    verify_tls: bool = True
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True)
class ContainerSelector:
    """Compose labels (project + service) or explicit container names."""

    compose_project: str | None = None
    jobmanager_service: str = "jobmanager"
    taskmanager_service: str = "taskmanager"
    jobmanager_names: tuple[str, ...] = ()
    taskmanager_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckpointDir:
    """The same directory as the runbook's host sees it and as the containers see it."""

    host: Path | None = None
    container: str | None = None
    # Only this job writes here: checkpoints of several job ids are all its own (earlier runs).
    exclusive: bool = False


@dataclass(frozen=True)
class JobSpec:
    name: str
    jar: Path | None = None
    entry_class: str | None = None
    args: tuple[str, ...] = ()
    parallelism: int = 1
    checkpoint_dir: CheckpointDir = field(default_factory=CheckpointDir)
    # What recover does when no checkpoint exists: fail (default) or fresh.
    no_checkpoint_policy: str = "fail"
    # What recover does with a job someone cancelled: leave it (default: a cancel is a decision) or resubmit.
    on_canceled: str = "leave"
    resubmit_command: tuple[str, ...] = ()
    resubmit_timeout_s: float = 300.0
    # Host directory of the job's sink; when set, verification requires fresh output there.
    sink_output_dir: Path | None = None

    @property
    def resubmit_may_run_twice(self) -> bool:
        """Its resubmit_command does not pass {job_id}: Flink cannot refuse a second run of it (a retry, a
        second recovery), which starts a second copy of the job."""
        return bool(self.resubmit_command) and not any("{job_id}" in arg for arg in self.resubmit_command)


@dataclass(frozen=True)
class Thresholds:
    """When a finding is raised: how stale, how stalled, how much log, how far back."""

    log_lines: int = 200
    # How far back Docker's OOM events count.
    oom_lookback_s: float = 3600.0
    # A registered TaskManager whose last heartbeat is older than this is stale.
    # None: twice the cluster's heartbeat.interval.
    heartbeat_stale_ms: int | None = None
    # A RUNNING job with no completed checkpoint for this long has stalled checkpoints.
    # None: five checkpoint intervals, at least 60 s.
    checkpoint_stall_s: float | None = None


@dataclass(frozen=True)
class RecoverySettings:
    """How long each step of a recovery may take, and how long it must stay stable afterwards
    (seconds)."""

    jobmanager_timeout_s: float = 120.0
    taskmanager_timeout_s: float = 120.0
    # How long a resubmitted job has to reach RUNNING, restore, and complete a checkpoint.
    verify_timeout_s: float = 120.0
    # How long TaskManagers and jobs must stay stable after that.
    stabilization_s: float = 15.0
    container_stop_timeout_s: int = 10
    # A TaskManager container (re)started less than this ago is still registering: wait, don't restart.
    registration_grace_s: float = 30.0
    # After starting a JobManager with high availability: how long it has, from its REST API answering, to list
    # the jobs it restores from HA storage before any of them is planned for a resubmission (a second copy).
    ha_restore_timeout_s: float = 60.0
    # The whole recovery, from its first action to the end of its verification: then it stops, releases the
    # cluster's lock and reports `timed out` (escalating), whatever it was waiting for.
    deadline_s: float = 900.0


@dataclass(frozen=True)
class MonitorSettings:
    """The guard rails of the monitor's recoveries: cooldown, flap limit, and when to act again
    after an escalation (seconds)."""

    cooldown_s: float = 120.0  # no new recovery this soon after the last one ended: let the cluster settle
    max_recoveries: int = 3  # flap protection: at most this many within window_s, then escalate to a human
    window_s: float = 3600.0
    resume_after_healthy_s: float = 600.0  # after an escalation, act again once the cluster was healthy this long
    # The monitor's check of the cluster ends by then, whatever it is waiting for (a probe's timeout):
    # a JobManager that cannot answer its few small GETs within it counts as unreachable.
    check_deadline_s: float = 2.0


@dataclass(frozen=True)
class AuditSources:
    """The files the audit reads (and --fix edits); None: not audited."""

    compose_file: Path | None = None
    jobmanager_config: Path | None = None
    taskmanager_config: Path | None = None
    # Values for ${VARS} in the compose file, over its .env; the environment is not read (audits must repeat).
    compose_variables: dict[str, str] = field(default_factory=dict)
    # The Flink release the files are for, when the REST API cannot say (cluster down).
    flink_version: str | None = None


@dataclass(frozen=True)
class DockerEngine:
    """The Docker engine that runs a cluster's containers: unix://, tcp:// (TLS with the certificates
    below) or ssh:// (the `ssh` client, its config and agent); no host: DOCKER_HOST or the local socket."""

    host: str | None = None
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    verify_tls: bool = True
    # Which engine it must be (`docker info` ID); None: the one of the cluster's first look, kept in the state
    # dir. What it must be, not where it is: clusters on one address share its client whatever they expect.
    engine_id: str | None = field(default=None, compare=False)

    @property
    def tls(self) -> bool:
        return bool(self.ca_cert or self.client_cert)

    def where(self) -> str:
        return self.host or "DOCKER_HOST or the local socket"


APPROVAL_POLICIES = ("never", "risky", "always")
# What a notification is sent for (notifications.events); all of them unless the inventory names some.
NOTICE_EVENTS = ("unhealthy", "recovery_started", "recovered", "recovery_failed", "escalated", "approval_needed")


@dataclass(frozen=True)
class Notifications:
    """Prefect notification blocks ("slack-webhook/oncall") that hear about this cluster, and for what."""

    blocks: tuple[str, ...] = ()
    events: frozenset[str] = frozenset(NOTICE_EVENTS)


@dataclass(frozen=True)
class ClusterSpec:
    """One Flink cluster of the inventory: where to reach it, its containers, its jobs, its settings."""

    name: str
    rest: RestSettings
    containers: ContainerSelector
    docker: DockerEngine = field(default_factory=DockerEngine)
    expected_taskmanagers: int = 1
    jobs: tuple[JobSpec, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    audit: AuditSources = field(default_factory=AuditSources)
    # Who decides a risky step (a fresh start, an older checkpoint, starting a JobManager, anything after an
    # escalation): never a human, a human for risky steps, a human for every recovery. Unanswered: rejected.
    approval: str = "risky"
    approval_timeout_s: float = 900.0
    notifications: Notifications = field(default_factory=Notifications)
    # A TaskManager container a person stopped (`docker stop`) is left stopped, like a cancelled job; true:
    # the runbook restarts it like a crashed one.
    restart_stopped: bool = False
    # Host-level state shared by every recovery of this inventory, whichever Prefect server it talks to.
    state_dir: Path = field(default_factory=default_state_dir)

    def job(self, name: str) -> JobSpec:
        """The configured job of that name (names are unique per cluster: load_inventory checks)."""
        return next(job for job in self.jobs if job.name == name)

    @property
    def jobs_by_name(self) -> dict[str, JobSpec]:
        return {job.name: job for job in self.jobs}


@dataclass(frozen=True)
class Inventory:
    path: Path
    clusters: tuple[ClusterSpec, ...]
    # Where escalations are sent (a Prefect automation posts to it); None: only the event.
    # A secret: kept in a Secret block by `serve`, never printed.
    escalation_webhook_url: str | None = field(default=None, repr=False)
    # What is allowed but deserves a second look, each as `<file>: <key path>: <why>` (the CLI prints them).
    warnings: tuple[str, ...] = ()

    def select(self, name: str | None) -> tuple[ClusterSpec, ...]:
        """All clusters, or the one named; an unknown name is an error naming the choices."""
        if name is None:
            return self.clusters
        for cluster in self.clusters:
            if cluster.name == name:
                return (cluster,)
        known = ", ".join(c.name for c in self.clusters)
        raise InventoryError(f"{self.path}: no cluster named {name!r}; the file defines: {known}")

    def to_act_on(self, name: str | None, all_clusters: bool = False) -> tuple[ClusterSpec, ...]:
        """What a recovery may change: the one cluster named, or all only when asked for explicitly
        (an event without a cluster name must not recover the whole fleet)."""
        if all_clusters and name:
            raise InventoryError(f"{self.path}: name one cluster or ask for all of them, not both")
        if not all_clusters and not name:
            known = ", ".join(c.name for c in self.clusters)
            raise InventoryError(f"{self.path}: no cluster named to recover; name one of: {known} (all of them: --all)")
        return self.select(name or None)


class _Mapping:
    """A YAML mapping being read: typed access by key, unknown keys are errors."""

    def __init__(self, data: Any, where: str, file: Path) -> None:
        self.file = file
        self.where = where
        if not isinstance(data, dict):
            self.fail(f"expected a mapping, got {_type_name(data)}")
        self.data = data
        self.known: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, reason: str, key: str | None = None) -> None:
        where = self.path(key) if key else (self.where or "(top level)")
        raise InventoryError(f"{self.file}: {where}: {reason}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.known.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.fail("is required", key)
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # YAML booleans are ints to Python; never accept one for the other.
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            expected = " or ".join(_kind_name(k) for k in kinds)
            self.fail(f"expected {expected}, got {_type_name(value)} {value!r}", key)
        return value

    def number(
        self, key: str, default: float | None, *, minimum: float = 0, maximum: float = MAX_SECONDS,
        integer: bool = False,
    ) -> Any:  # fmt: skip
        value = self.get(key, int if integer else (int, float), default)
        if value is None:
            return value
        # YAML .nan / .inf: a NaN timeout never times out. Only floats: an integer too large for a float
        # (400 digits) raises OverflowError in isfinite, and compares with the bounds exactly anyway.
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"must be a finite number, got {value!r}", key)
        if value < minimum:
            self.fail(f"must be at least {minimum}, got {_shown(value)}", key)
        if value > maximum:
            self.fail(f"must be at most {maximum:g}, got {_shown(value)}", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, [])
        for index, value in enumerate(values):
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                self.fail(f"expected a string, got {_type_name(value)} {value!r}", f"{key}[{index}]")
        return tuple(str(v) for v in values)

    def mapping(self, key: str, *, required: bool = False) -> _Mapping:
        return _Mapping(self.get(key, dict, {}, required=required), self.path(key), self.file)

    def flag(self, key: str, default: bool) -> bool:
        return self.get(key, bool, default)

    def path_value(self, key: str, base: Path) -> Path | None:
        value = self.get(key, str)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.known)
        if unknown:
            self.fail(f"unknown key; expected one of: {', '.join(sorted(self.known))}", unknown[0])


def _kind_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }.get(kind, kind.__name__)


def _shown(value: Any) -> str:
    """A value as an error repeats it; a number hundreds of digits long is said by its length."""
    text = repr(value)
    return f"an integer of {len(text.lstrip('-'))} digits ({text[:6]}...)" if len(text) > 40 else text


def _type_name(value: Any) -> str:
    return "nothing" if value is None else _kind_name(type(value)).removeprefix("a ").removeprefix("an ")


def _name(section: _Mapping, key: str) -> str:
    value = section.get(key, str, required=True)
    if not NAME_PATTERN.match(value):
        section.fail(f"{value!r} must be lowercase letters, digits and dashes (at most 63)", key)
    return value


def _http_url(section: _Mapping, key: str, *, required: bool) -> str | None:
    url = section.get(key, str, required=required)
    if url is None:
        return None
    try:
        parsed = urlparse(url)
        credentials = credentials_in_url(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6 address]
        section.fail(f"{redact_urls(url)!r} is not a URL: {exc}", key)
    if credentials:
        # It would travel into event labels, refusals and reports; the value itself is not repeated here.
        section.fail(
            f"must not carry credentials ({', '.join(credentials)} in {parsed.scheme}://{parsed.hostname}...); "
            "use rest.auth with environment variables or a Secret block (a webhook: a notification block)",
            key,
        )
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        section.fail(f"{redact_urls(url)!r} is not an http:// or https:// URL with a host", key)
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        section.fail(f"{redact_urls(url)!r} has an invalid port", key)
    return url


def _rest(section: _Mapping, base: Path) -> RestSettings:
    url = _http_url(section, "url", required=True)
    if urlparse(url).query or urlparse(url).fragment:
        # The REST paths are appended to it (base?x=1/overview): a query or fragment here is a mistake or a secret.
        section.fail(f"{redact_urls(url)!r} must not have a query or fragment: it is the base the REST paths "
                     "are added to", "url")  # fmt: skip
    auth_section = section.mapping("auth")
    kind = auth_section.get("type", str, "none")
    if kind not in ("none", "basic", "bearer"):
        auth_section.fail(f"{kind!r} is not one of: none, basic, bearer", "type")
    auth = RestAuth(
        kind=kind,
        username_env=auth_section.get("username_env", str),
        password_env=auth_section.get("password_env", str),
        token_env=auth_section.get("token_env", str),
        token_secret_block=auth_section.get("token_secret_block", str),
    )
    if kind == "basic" and not (auth.username_env and auth.password_env):
        auth_section.fail("basic auth needs username_env and password_env")
    if kind == "bearer" and not (auth.token_env or auth.token_secret_block):
        auth_section.fail("bearer auth needs token_env or token_secret_block")
    auth_section.done()
    tls = section.mapping("tls")
    settings = RestSettings(
        url=url.rstrip("/"),
        auth=auth,
        verify_tls=tls.get("verify", bool, True),
        ca_bundle=tls.path_value("ca_bundle", base),
        client_cert=tls.path_value("client_cert", base),
        client_key=tls.path_value("client_key", base),
        connect_timeout_s=section.number("connect_timeout_s", 3.0, minimum=0.1, maximum=600),
        read_timeout_s=section.number("read_timeout_s", 10.0, minimum=0.1, maximum=600),
    )
    if settings.client_key and not settings.client_cert:
        tls.fail("client_key needs client_cert (the key alone is not used)", "client_key")
    tls.done()
    section.done()
    return settings


def _containers(section: _Mapping) -> ContainerSelector:
    names = section.mapping("names")
    selector = ContainerSelector(
        compose_project=section.get("compose_project", str),
        jobmanager_service=section.get("jobmanager_service", str, "jobmanager"),
        taskmanager_service=section.get("taskmanager_service", str, "taskmanager"),
        jobmanager_names=names.strings("jobmanager"),
        taskmanager_names=names.strings("taskmanager"),
    )
    names.done()
    if not selector.compose_project and not (selector.jobmanager_names or selector.taskmanager_names):
        section.fail("give compose_project or names.jobmanager / names.taskmanager")
    section.done()
    return selector


def _job(section: _Mapping, base: Path) -> JobSpec:
    checkpoint = section.mapping("checkpoint_dir")
    policy = section.get("no_checkpoint_policy", str, "fail")
    if policy not in ("fail", "fresh"):
        section.fail(f"{policy!r} is not one of: fail, fresh", "no_checkpoint_policy")
    on_canceled = section.get("on_canceled", str, "leave")
    if on_canceled not in ("leave", "resubmit"):
        section.fail(f"{on_canceled!r} is not one of: leave, resubmit", "on_canceled")
    job = JobSpec(
        name=section.get("name", str, required=True),
        jar=section.path_value("jar", base),
        entry_class=section.get("entry_class", str),
        args=section.strings("args"),
        parallelism=section.number("parallelism", 1, minimum=1, maximum=MAX_COUNT, integer=True),
        checkpoint_dir=CheckpointDir(
            host=checkpoint.path_value("host", base),
            container=checkpoint.get("container", str),
            exclusive=checkpoint.flag("exclusive", False),
        ),
        no_checkpoint_policy=policy,
        on_canceled=on_canceled,
        resubmit_command=section.strings("resubmit_command"),
        resubmit_timeout_s=section.number("resubmit_timeout_s", 300.0, minimum=1),
        sink_output_dir=section.path_value("sink_output_dir", base),
    )
    checkpoint.done()
    section.done()
    return job


def _numbers(
    section: _Mapping,
    settings: type[S],
    minimum: dict[str, float],
    integer: frozenset[str] = frozenset(),
    maximum: dict[str, float] | None = None,
) -> S:
    """A section of numbers: one key per field of `settings`, the field's default when absent.
    Seconds are at most a week, counts at most MAX_COUNT, unless `maximum` says otherwise."""
    values = {
        f.name: section.number(
            f.name,
            f.default,
            minimum=minimum.get(f.name, 1),
            maximum=(maximum or {}).get(f.name, MAX_COUNT if f.name in integer else MAX_SECONDS),
            integer=f.name in integer,
        )
        for f in dataclasses.fields(settings)
    }
    section.done()
    return settings(**values)


def _thresholds(section: _Mapping) -> Thresholds:
    return _numbers(
        section,
        Thresholds,
        minimum={},
        integer=frozenset({"heartbeat_stale_ms", "log_lines"}),
        maximum={"heartbeat_stale_ms": MAX_SECONDS * 1000},
    )


def _recovery(section: _Mapping) -> RecoverySettings:
    # Zero is allowed where it means "do not wait" or "stop at once".
    return _numbers(
        section,
        RecoverySettings,
        minimum={
            "stabilization_s": 0,
            "container_stop_timeout_s": 0,
            "registration_grace_s": 0,
            "ha_restore_timeout_s": 0,
        },
        integer=frozenset({"container_stop_timeout_s"}),
        maximum={"container_stop_timeout_s": 3600},
    )


def _monitor(section: _Mapping) -> MonitorSettings:
    return _numbers(
        section,
        MonitorSettings,
        minimum={"cooldown_s": 0, "resume_after_healthy_s": 0, "check_deadline_s": 0.2},
        integer=frozenset({"max_recoveries"}),
    )


def _audit(section: _Mapping, base: Path) -> AuditSources:
    variables = section.get("compose_variables", dict, {})
    for name, value in variables.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            section.fail(f"expected a string, got {_type_name(value)} {value!r}", f"compose_variables.{name}")
    version = section.get("flink_version", str)
    if version is not None and not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        section.fail(f"expected a Flink release like 1.20 or 2.2.0, got {version!r}", "flink_version")
    sources = AuditSources(
        compose_file=section.path_value("compose_file", base),
        jobmanager_config=section.path_value("jobmanager_config", base),
        taskmanager_config=section.path_value("taskmanager_config", base),
        compose_variables={str(k): str(v) for k, v in variables.items()},
        flink_version=version,
    )
    section.done()
    return sources


def _notification_blocks(section: _Mapping, inherited: Notifications) -> Notifications:
    """blocks: Prefect notification blocks as type-slug/name; events: a subset of NOTICE_EVENTS. A cluster's
    own section replaces what it names and inherits the rest from the top level."""
    blocks = section.strings("blocks") if "blocks" in section.data else inherited.blocks
    for index, block in enumerate(blocks):
        if not re.fullmatch(r"[a-z0-9-]+/[A-Za-z0-9_.-]+", block):
            section.fail(
                f"{block!r} is not a Prefect block as type/name (e.g. slack-webhook/oncall, "
                "custom-webhook/pager; `prefect block ls` lists them)",
                f"blocks[{index}]",
            )
    events = section.strings("events") if "events" in section.data else tuple(inherited.events)
    for index, event in enumerate(events):
        if event not in NOTICE_EVENTS:
            section.fail(f"{event!r} is not one of: {', '.join(NOTICE_EVENTS)}", f"events[{index}]")
    return Notifications(blocks=blocks, events=frozenset(events))


def _notifications(section: _Mapping) -> tuple[str | None, Notifications]:
    url = _http_url(section, "escalation_webhook_url", required=False)
    notifications = _notification_blocks(section, Notifications())
    section.done()
    return url, notifications


DOCKER_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")
# What `docker info --format '{{.ID}}'` prints: 12 groups of 4 (Docker before 24) or a UUID (later).
ENGINE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9:-]{7,127}")
# Where the docker SDK and CLI go when no host is given (and DOCKER_HOST is not set).
LOCAL_DOCKER_SOCKET = "unix:///var/run/docker.sock"


def _docker(section: _Mapping, base: Path) -> DockerEngine:
    host = section.get("host", str)
    if host is not None and not host.startswith(DOCKER_SCHEMES):
        section.fail(f"{host!r} is not a Docker host (unix://, tcp:// or ssh://)", "host")
    tls = section.mapping("tls")
    engine = DockerEngine(
        host=host,
        ca_cert=tls.path_value("ca_cert", base),
        client_cert=tls.path_value("client_cert", base),
        client_key=tls.path_value("client_key", base),
        verify_tls=tls.get("verify", bool, True),
        engine_id=section.get("engine_id", str),
    )
    if engine.engine_id is not None and not ENGINE_ID_PATTERN.fullmatch(engine.engine_id):
        section.fail(
            f"{engine.engine_id!r} is not a Docker engine ID (what `docker info --format '{{{{.ID}}}}'` prints on "
            "the cluster's engine, e.g. N6Y4:IW72:...:TNRN or a UUID)",
            "engine_id",
        )
    if engine.tls and not (host or "").startswith("tcp://"):
        tls.fail("TLS certificates are for a tcp:// host only")
    if bool(engine.client_cert) != bool(engine.client_key):
        tls.fail("client_cert and client_key go together")
    tls.done()
    section.done()
    return engine


def _approval(section: _Mapping) -> str:
    policy = section.get("approval", str, "risky")
    if policy not in APPROVAL_POLICIES:
        section.fail(f"expected one of {', '.join(APPROVAL_POLICIES)}, got {policy!r}", "approval")
    return policy


def _cluster(section: _Mapping, base: Path, state_dir: Path, notifications: Notifications) -> ClusterSpec:
    jobs_data = section.get("jobs", list, [])
    jobs = tuple(_job(_Mapping(job, section.path(f"jobs[{i}]"), section.file), base) for i, job in enumerate(jobs_data))
    seen: set[str] = set()
    for index, job in enumerate(jobs):
        if job.name in seen:
            section.fail(f"job name {job.name!r} appears twice", f"jobs[{index}].name")
        seen.add(job.name)
    cluster = ClusterSpec(
        name=_name(section, "name"),
        rest=_rest(section.mapping("rest", required=True), base),
        containers=_containers(section.mapping("containers", required=True)),
        docker=_docker(section.mapping("docker"), base),
        expected_taskmanagers=section.number("expected_taskmanagers", 1, minimum=1, maximum=MAX_COUNT, integer=True),
        jobs=jobs,
        thresholds=_thresholds(section.mapping("thresholds")),
        recovery=_recovery(section.mapping("recovery")),
        monitor=_monitor(section.mapping("monitor")),
        audit=_audit(section.mapping("audit"), base),
        approval=_approval(section),
        approval_timeout_s=section.number("approval_timeout_s", 900.0, minimum=1),
        notifications=_cluster_notifications(section.mapping("notifications"), notifications),
        restart_stopped=section.flag("restart_stopped", False),
        state_dir=state_dir,
    )
    section.done()
    return cluster


def _cluster_notifications(section: _Mapping, inherited: Notifications) -> Notifications:
    notifications = _notification_blocks(section, inherited)
    section.done()
    return notifications


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file; raises InventoryError naming file, key and reason."""
    file = Path(path)
    data = load_yaml(read_text(file, InventoryError), file, InventoryError)
    top = _Mapping(data, "", file)
    base = file.resolve().parent
    clusters_data = top.get("clusters", list, required=True)
    if not clusters_data:
        top.fail("needs at least one cluster", "clusters")
    state_dir = top.path_value("state_dir", base) or default_state_dir()
    if not state_dir.is_absolute():  # relative to each process's working directory: two processes, two states
        top.fail(f"the environment variable {STATE_DIR_ENV}={str(state_dir)!r} must be an absolute path", "state_dir")
    webhook, notifications = _notifications(top.mapping("notifications"))
    clusters = tuple(
        _cluster(_Mapping(c, f"clusters[{i}]", file), base, state_dir, notifications)
        for i, c in enumerate(clusters_data)
    )
    top.done()
    names = [c.name for c in clusters]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise InventoryError(f"{file}: clusters[{index}].name: {name!r} appears twice")
    _check_selectors_apart(file, clusters)
    return Inventory(path=file, clusters=clusters, escalation_webhook_url=webhook, warnings=_warnings(file, clusters))


def _selections(selector: ContainerSelector) -> set[tuple[str, ...]]:
    """What a selector takes on its engine, role by role as states.find_containers does: ("name", name), or
    ("compose", project, service) for a role without names."""
    taken: set[tuple[str, ...]] = set()
    for names, service in (
        (selector.jobmanager_names, selector.jobmanager_service),
        (selector.taskmanager_names, selector.taskmanager_service),
    ):
        if names:
            taken |= {("name", name) for name in names}
        elif selector.compose_project:
            taken.add(("compose", selector.compose_project, service))
    return taken


def _same_container(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if a == b or a[0] == b[0]:
        return a == b
    (_, name), (_, project, service) = (a, b) if a[0] == "name" else (b, a)
    # Compose names a service's containers <project>-<service>-<n> (docker-compose 1: with _) and labels them.
    return re.fullmatch(rf"{re.escape(project)}[-_]{re.escape(service)}[-_]\d+", name) is not None


def _same_engine(a: DockerEngine, b: DockerEngine) -> bool:
    if a.engine_id and b.engine_id:
        return a.engine_id == b.engine_id
    return (a.host or LOCAL_DOCKER_SOCKET) == (b.host or LOCAL_DOCKER_SOCKET)


def _described(selection: tuple[str, ...]) -> str:
    if selection[0] == "name":
        return f"container {selection[1]!r}"
    return f"compose project {selection[1]!r} service {selection[2]!r}"


def _check_selectors_apart(file: Path, clusters: tuple[ClusterSpec, ...]) -> None:
    """Two clusters that select the same container on one engine: a recovery of one would restart or start the
    other's. Refused at load; on different engines the same names are different containers."""
    for j, later in enumerate(clusters):
        for i, earlier in enumerate(clusters[:j]):
            if not _same_engine(earlier.docker, later.docker):
                continue
            for mine in sorted(_selections(later.containers)):
                theirs = next((t for t in sorted(_selections(earlier.containers)) if _same_container(mine, t)), None)
                if theirs is None:
                    continue
                engine = later.docker.engine_id or later.docker.where()
                raise InventoryError(
                    f"{file}: clusters[{j}].containers: {_described(mine)} is also selected by cluster "
                    f"{earlier.name!r} (clusters[{i}].containers: {_described(theirs)}) on the same Docker engine "
                    f"({engine}): a recovery of one would act on the other's containers; give each cluster its own "
                    "compose_project, services or names, or docker.host and docker.engine_id if they run on "
                    "different engines"
                )


def _warnings(file: Path, clusters: tuple[ClusterSpec, ...]) -> tuple[str, ...]:
    warnings = []
    for c, cluster in enumerate(clusters):
        for j, job in enumerate(cluster.jobs):
            if job.resubmit_may_run_twice:
                asked = "no one is asked (approval: never)" if cluster.approval == "never" else "a human approves it"
                warnings.append(
                    f"{file}: clusters[{c}].jobs[{j}].resubmit_command: has no {{job_id}}, so Flink cannot refuse "
                    "a second run of it (a retry, a second recovery) and a second copy of the job may start; "
                    f"its resubmission counts as risky: {asked}. Pass {{job_id}} on to the submission (jobId of "
                    "POST /jars/:id/run)"
                )
    return tuple(warnings)


def inventory_problem(path: str | Path) -> str | None:
    """What is wrong with the inventory file, for a command to refuse it before it starts anything; None: fine."""
    try:
        load_inventory(path)
    except InventoryError as exc:
        return str(exc)
    return None

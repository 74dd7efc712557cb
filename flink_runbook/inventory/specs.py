"""What the runbook knows of each cluster once the inventory is read: frozen dataclasses the rest of the
code builds, compares and `dataclasses.replace`s (load.py makes them from the validated file)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from flink_runbook.flink.sql_statements import runner_args
from flink_runbook.inventory.errors import InventoryError

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
    # A Flink SQL job: its statements file and the statements read from it at load (checked), which the SQL
    # runner in `jar` runs (flink_runbook.flink.sql_statements).
    sql: Path | None = None
    sql_statements: tuple[str, ...] = ()

    @property
    def program_args(self) -> list[str]:
        """What the job's jar is run with: its args, or for a SQL job its name and statements."""
        if self.sql is not None:
            return runner_args(self.name, self.sql_statements)
        return list(self.args)

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


class ApprovalPolicy(StrEnum):
    """When a human approves a recovery's plan before it runs (the inventory's `approval`)."""

    NEVER = "never"
    RISKY = "risky"  # when a step is risky (approval.risky_steps)
    ALWAYS = "always"

    def asks(self, changes_something: bool, risky: bool) -> bool:
        return changes_something and (self is ApprovalPolicy.ALWAYS or (self is ApprovalPolicy.RISKY and risky))


APPROVAL_POLICIES = tuple(ApprovalPolicy)
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
    approval: ApprovalPolicy = ApprovalPolicy.RISKY
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

"""The inventory file's shape and rules as pydantic models: every key, its type, its bounds, what goes
together. Validating a file reports every problem at once (errors.problems words them); the models also
give the file's JSON Schema for editors. Paths stay as written here: load.py resolves them.

A key given as null counts as absent (its default), as it always has; unknown keys are errors.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from flink_runbook.inventory.errors import problem, shown, type_name
from flink_runbook.inventory.specs import (
    APPROVAL_POLICIES,
    NOTICE_EVENTS,
    ClusterSpec,
    JobSpec,
    MonitorSettings,
    RecoverySettings,
    RestSettings,
    Thresholds,
)
from flink_runbook.redaction import credentials_in_url, redact_urls

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# The largest duration any setting may have: a week. Larger is a typo, and a wait that never ends.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_COUNT = 100_000
DOCKER_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")
# What `docker info --format '{{.ID}}'` prints: 12 groups of 4 (Docker before 24) or a UUID (later).
ENGINE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9:-]{7,127}")
BLOCK_PATTERN = re.compile(r"[a-z0-9-]+/[A-Za-z0-9_.-]+")
FLINK_RELEASE_PATTERN = re.compile(r"\d+\.\d+(\.\d+)?")


def number(minimum: float = 1, maximum: float = MAX_SECONDS, *, integer: bool = False) -> Any:
    """A setting's number, kept as written (3 stays an int): finite (a NaN timeout never times out), within
    its bounds; YAML's true is not a 1. Bounds are compared exactly, so a 400-digit integer is out of them,
    not an OverflowError."""

    def checked(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            raise problem(f"expected {'an integer' if integer else 'a number'}, got {type_name(value)} {shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise problem(f"must be a finite number, got {value!r}")
        if value < minimum:
            raise problem(f"must be at least {minimum:g}, got {shown(value)}")
        if value > maximum:
            raise problem(f"must be at most {maximum:g}, got {shown(value)}")
        return value

    schema = {"type": "integer" if integer else "number", "minimum": minimum, "maximum": maximum}
    return Annotated[int if integer else float, PlainValidator(checked), WithJsonSchema(schema)]


def choice(*options: str) -> Any:
    """One of a few words."""

    def checked(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise problem(f"{shown(value)} is not one of: {', '.join(options)}")
        return value

    return Annotated[str, PlainValidator(checked), WithJsonSchema({"type": "string", "enum": list(options)})]


def _text(value: Any) -> str:
    # An argument or a name may be written as a YAML number (--rate, 20): it is meant as text.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise problem(f"expected a string, got {type_name(value)} {shown(value)}")
    return str(value)


def _checked(check: Any, reason: str, pattern: str, base: Any = StrictStr) -> Any:
    """A string that must pass `check`; `reason` says what it is not, after the value."""

    def checked(value: str) -> str:
        if not check(value):
            raise problem(f"{shown(value)} {reason}")
        return value

    return Annotated[base, AfterValidator(checked), WithJsonSchema({"type": "string", "pattern": pattern})]


def _http_url(url: str) -> str:
    try:
        parsed = urlparse(url)
        credentials = credentials_in_url(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6 address]
        raise problem(f"{redact_urls(repr(url))} is not a URL: {exc}") from None
    if credentials:
        # It would travel into event labels, refusals and reports; the value itself is not repeated here.
        raise problem(
            f"must not carry credentials ({', '.join(credentials)} in {parsed.scheme}://{parsed.hostname}...); "
            "use rest.auth with environment variables or a Secret block (a webhook: a notification block)"
        )
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise problem(f"{redact_urls(repr(url))} is not an http:// or https:// URL with a host")
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise problem(f"{redact_urls(repr(url))} has an invalid port") from None
    return url


Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": ["string", "number"]})]
HttpUrl = Annotated[StrictStr, AfterValidator(_http_url), WithJsonSchema({"type": "string", "pattern": "^https?://"})]
Name = _checked(NAME_PATTERN.match, "must be lowercase letters, digits and dashes (at most 63)", NAME_PATTERN.pattern)
DockerHost = _checked(
    lambda host: host.startswith(DOCKER_SCHEMES), "is not a Docker host (unix://, tcp:// or ssh://)",
    "^(unix|tcp|ssh|npipe)://",
)
EngineId = _checked(
    ENGINE_ID_PATTERN.fullmatch,
    "is not a Docker engine ID (what `docker info --format '{{.ID}}'` prints on the cluster's engine, e.g. "
    "N6Y4:IW72:...:TNRN or a UUID)",
    f"^{ENGINE_ID_PATTERN.pattern}$",
)
FlinkRelease = _checked(
    FLINK_RELEASE_PATTERN.fullmatch, "is not a Flink release like 1.20 or 2.2.0", f"^{FLINK_RELEASE_PATTERN.pattern}$"
)
Block = _checked(
    BLOCK_PATTERN.fullmatch,
    "is not a Prefect block as type/name (e.g. slack-webhook/oncall, custom-webhook/pager; `prefect block ls` "
    "lists them)",
    f"^{BLOCK_PATTERN.pattern}$",
    base=Text,
)
Seconds = number()
SecondsOrZero = number(minimum=0)  # zero where it means "do not wait" or "stop at once"
Count = number(maximum=MAX_COUNT, integer=True)
RestTimeout = number(minimum=0.1, maximum=600)
# A file's path as written; relative to the inventory's directory, ~ for a home.
FilePath = StrictStr


class Section(BaseModel):
    """A mapping of the file: unknown keys are errors, a key given as null counts as absent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data


class Auth(Section):
    """Credentials come from the environment or a Prefect Secret block, never from the file."""

    type: choice("none", "basic", "bearer") = Field(
        "none", description=(
            "How the REST API is authenticated: none, basic (a user and a password) or bearer (a token)."
        ),
    )
    username_env: StrictStr | None = Field(
        None, description="Environment variable that holds the basic-auth user name."
    )
    password_env: StrictStr | None = Field(None, description="Environment variable that holds the basic-auth password.")
    token_env: StrictStr | None = Field(None, description="Environment variable that holds the bearer token.")
    token_secret_block: StrictStr | None = Field(
        None, description="Prefect Secret block that holds the bearer token (instead of token_env)."
    )

    @model_validator(mode="after")
    def _credentials_named(self) -> Auth:
        if self.type == "basic" and not (self.username_env and self.password_env):
            raise problem("basic auth needs username_env and password_env")
        if self.type == "bearer" and not (self.token_env or self.token_secret_block):
            raise problem("bearer auth needs token_env or token_secret_block")
        return self


class RestTls(Section):
    verify: StrictBool = Field(
        True, description=(
            "Check the JobManager's HTTPS certificate; false accepts any certificate (test clusters only)."
        ),
    )
    ca_bundle: FilePath | None = Field(
        None, description="CA certificates (a PEM file) that signed the JobManager's certificate, when not a public CA."
    )
    client_cert: FilePath | None = Field(
        None, description="Client certificate (PEM) for a JobManager that asks for one (mutual TLS)."
    )
    client_key: FilePath | None = Field(
        None, description="Private key of client_cert, when it is not in the same file."
    )

    @model_validator(mode="after")
    def _key_with_its_cert(self) -> RestTls:
        if self.client_key and not self.client_cert:
            raise problem("client_key needs client_cert (the key alone is not used)", "client_key")
        return self


class Rest(Section):
    """The JobManager's REST API."""

    url: HttpUrl = Field(
        description=(
            "Base URL of the JobManager's REST API (where the Flink web UI answers), e.g. http://127.0.0.1:8081."
        ),
    )
    auth: Auth = Field(
        default_factory=Auth, description=(
            "How to log in to the REST API; the credentials come from the environment or a Secret block, never from "
            "this file."
        ),
    )
    tls: RestTls = Field(default_factory=RestTls, description="HTTPS settings of the REST API.")
    connect_timeout_s: RestTimeout = Field(
        RestSettings.connect_timeout_s, description="Seconds to wait for the JobManager to accept a connection."
    )
    read_timeout_s: RestTimeout = Field(RestSettings.read_timeout_s, description="Seconds to wait for one REST answer.")

    @field_validator("url")
    @classmethod
    def _a_base(cls, url: str) -> str:
        if urlparse(url).query or urlparse(url).fragment:
            # The REST paths are appended to it (base?x=1/overview): a query or fragment is a mistake or a secret.
            raise problem(
                f"{redact_urls(repr(url))} must not have a query or fragment: it is the base the REST paths are "
                "added to"
            )
        return url


class DockerTls(Section):
    ca_cert: FilePath | None = Field(None, description="CA certificate (PEM) of a tcp:// Docker engine.")
    client_cert: FilePath | None = Field(
        None, description="Client certificate (PEM) for the tcp:// engine; goes with client_key."
    )
    client_key: FilePath | None = Field(None, description="Private key of client_cert.")
    verify: StrictBool = Field(True, description="Check the engine's certificate against ca_cert.")

    @model_validator(mode="after")
    def _cert_with_its_key(self) -> DockerTls:
        if bool(self.client_cert) != bool(self.client_key):
            raise problem("client_cert and client_key go together")
        return self


class Docker(Section):
    """The Docker engine that runs the cluster's containers; no host: DOCKER_HOST or the local socket."""

    host: DockerHost | None = Field(
        None, description=(
            "The Docker engine that runs the cluster's containers: unix://, tcp:// or ssh://. Absent: DOCKER_HOST, "
            "else the local socket."
        ),
    )
    tls: DockerTls = Field(default_factory=DockerTls, description="TLS of a tcp:// host.")
    engine_id: EngineId | None = Field(
        None, description=(
            "The engine's ID, as `docker info --format '{{.ID}}'` prints it: nothing is done on another engine. "
            "Absent: the engine of the first look, remembered in the state directory."
        ),
    )

    @model_validator(mode="after")
    def _tls_for_tcp(self) -> Docker:
        if (self.tls.ca_cert or self.tls.client_cert) and not (self.host or "").startswith("tcp://"):
            raise problem("TLS certificates are for a tcp:// host only", "tls")
        return self


class ContainerNames(Section):
    jobmanager: list[Text] = Field([], description="Names of the JobManager containers.")
    taskmanager: list[Text] = Field([], description="Names of the TaskManager containers.")


class Containers(Section):
    """Compose labels (project + service) or explicit container names."""

    compose_project: StrictStr | None = Field(
        None, description="Docker Compose project of the cluster: its containers are found by their Compose labels."
    )
    jobmanager_service: StrictStr = Field("jobmanager", description="Compose service of the JobManager.")
    taskmanager_service: StrictStr = Field("taskmanager", description="Compose service of the TaskManagers.")
    names: ContainerNames = Field(
        default_factory=ContainerNames, description=(
            "Container names, for containers that Compose did not start (instead of compose_project)."
        ),
    )

    @model_validator(mode="after")
    def _something_selected(self) -> Containers:
        if not self.compose_project and not (self.names.jobmanager or self.names.taskmanager):
            raise problem("give compose_project or names.jobmanager / names.taskmanager")
        return self


class CheckpointDirSection(Section):
    """The same directory as the runbook's host sees it and as the containers see it."""

    host: FilePath | None = Field(
        None, description=(
            "The job's checkpoint directory as this host sees it: where restore points are looked for (relative to "
            "the inventory's directory)."
        ),
    )
    container: StrictStr | None = Field(
        None, description="The same directory as the Flink containers see it: what Flink is told to restore from."
    )
    exclusive: StrictBool = Field(
        False, description=(
            "Only this job writes there, so checkpoints under several job ids are all its own: a restore may go ahead"
            " after a JobManager restart with no lineage known."
        ),
    )


class Job(Section):
    name: StrictStr = Field(description="The job's name as Flink lists it (/jobs/overview): how the runbook finds it.")
    jar: FilePath | None = Field(
        None, description="The job's jar on this host, uploaded to resubmit it (relative to the inventory's directory)."
    )
    entry_class: StrictStr | None = Field(
        None, description="Main class of the job in the jar; absent: the jar's Main-Class."
    )
    args: list[Text] = Field([], description="Program arguments the job is resubmitted with.")
    parallelism: Count = Field(JobSpec.parallelism, description="Parallelism the job is resubmitted with.")
    checkpoint_dir: CheckpointDirSection = Field(
        default_factory=CheckpointDirSection, description=(
            "Where the job's retained checkpoints are, on this host and in the containers."
        ),
    )
    no_checkpoint_policy: choice("fail", "fresh") = Field(
        JobSpec.no_checkpoint_policy, description=(
            "When there is no checkpoint to restore: fail (refuse; a human decides) or fresh (start with empty state:"
            " records replayed or skipped)."
        ),
    )
    on_canceled: choice("leave", "resubmit") = Field(
        JobSpec.on_canceled, description="A job someone cancelled: leave it (a cancel is a decision) or resubmit it."
    )
    resubmit_command: list[Text] = Field(
        [], description=(
            "Instead of uploading the jar: a command that resubmits the job (an argument list, no shell; "
            "{restore_path} and {job_id} are replaced)."
        ),
    )
    resubmit_timeout_s: Seconds = Field(
        JobSpec.resubmit_timeout_s, description=(
            "Seconds resubmit_command may run; then it is killed with every process it started."
        ),
    )
    sink_output_dir: FilePath | None = Field(
        None, description=(
            "Host directory the job's sink writes to; when set, a recovery is verified only once fresh output appears"
            " there."
        ),
    )
    sql: FilePath | None = Field(
        None, description=(
            "A Flink SQL job: its statements file (DDL, SETs, one INSERT or EXECUTE STATEMENT SET), run by the SQL "
            "runner in jar (relative to the inventory's directory; docs/sql-jobs.md)."
        ),
    )

    @model_validator(mode="after")
    def _sql_runs_in_the_runner(self) -> Job:
        if self.sql is None:
            return self
        if not self.jar:
            raise problem(
                "a SQL job needs jar: the jar with the SQL runner (flinkrunbook.sql.SqlStatementsJob) that runs "
                "its statements",
                "jar",
            )
        if self.args:
            raise problem("a SQL job takes no args: its statements are the runner's arguments", "args")
        if self.resubmit_command:
            raise problem(
                "a SQL job is resubmitted by the runbook (jar + sql), not by a resubmit_command", "resubmit_command"
            )
        return self


class ThresholdsSection(Section):
    log_lines: Count = Field(Thresholds.log_lines, description="Lines of the JobManager's log that diagnose reads.")
    oom_lookback_s: Seconds = Field(
        Thresholds.oom_lookback_s, description="How far back, in seconds, Docker's out-of-memory kills count."
    )
    heartbeat_stale_ms: number(maximum=MAX_SECONDS * 1000, integer=True) | None = Field(
        None, description=(
            "A TaskManager whose last heartbeat is older than this (milliseconds) is stale. Absent: twice the "
            "cluster's heartbeat.interval."
        ),
    )
    checkpoint_stall_s: Seconds | None = Field(
        None, description=(
            "A RUNNING job with no checkpoint completed for this long has stalled checkpoints. Absent: five "
            "checkpoint intervals, at least 60 s."
        ),
    )


class Recovery(Section):
    jobmanager_timeout_s: Seconds = Field(
        RecoverySettings.jobmanager_timeout_s, description=(
            "Seconds an unpaused or started JobManager has to answer on its REST API."
        ),
    )
    taskmanager_timeout_s: Seconds = Field(
        RecoverySettings.taskmanager_timeout_s, description=(
            "Seconds restarted TaskManagers have to register with their slots."
        ),
    )
    verify_timeout_s: Seconds = Field(
        RecoverySettings.verify_timeout_s, description=(
            "Seconds a resubmitted job has to reach RUNNING, restore, and complete a checkpoint."
        ),
    )
    stabilization_s: SecondsOrZero = Field(
        RecoverySettings.stabilization_s, description=(
            "Seconds the TaskManagers and jobs must then stay stable before the recovery counts as verified; 0 does "
            "not wait."
        ),
    )
    container_stop_timeout_s: number(minimum=0, maximum=3600, integer=True) = Field(
        RecoverySettings.container_stop_timeout_s, description=(
            "Seconds `docker restart` gives a TaskManager container to stop before killing it."
        ),
    )
    registration_grace_s: SecondsOrZero = Field(
        RecoverySettings.registration_grace_s, description=(
            "A TaskManager container (re)started less than this many seconds ago is still registering: waited for, "
            "not restarted."
        ),
    )
    ha_restore_timeout_s: SecondsOrZero = Field(
        RecoverySettings.ha_restore_timeout_s, description=(
            "After starting a JobManager with high availability: seconds it has, from its REST API answering, to list"
            " the jobs it restores before any is planned for a resubmission (a second copy); 0 does not wait."
        ),
    )
    deadline_s: Seconds = Field(
        RecoverySettings.deadline_s, description=(
            "Seconds the whole recovery may take, from its first action to the end of its verification; then it "
            "stops, gives the cluster's lock back and reports `timed out` (escalating)."
        ),
    )


class Monitor(Section):
    cooldown_s: SecondsOrZero = Field(
        MonitorSettings.cooldown_s, description=(
            "No new recovery this many seconds after the last one ended: the cluster settles first."
        ),
    )
    max_recoveries: Count = Field(
        MonitorSettings.max_recoveries, description=(
            "Flap protection: at most this many recoveries within window_s, then a human is called (escalated)."
        ),
    )
    window_s: Seconds = Field(
        MonitorSettings.window_s, description="The window, in seconds, that max_recoveries counts in."
    )
    resume_after_healthy_s: SecondsOrZero = Field(
        MonitorSettings.resume_after_healthy_s, description=(
            "After an escalation, the monitor acts again once the cluster was healthy this many seconds (or after "
            "`flink-runbook monitor reset`)."
        ),
    )
    check_deadline_s: number(minimum=0.2) = Field(
        MonitorSettings.check_deadline_s, description=(
            "Seconds the monitor's check of the cluster may take; a JobManager that cannot answer its few small "
            "requests within it counts as unreachable."
        ),
    )


class Audit(Section):
    """The files the audit reads (and --fix edits)."""

    compose_file: FilePath | None = Field(
        None, description="The cluster's Docker Compose file (relative to the inventory's directory)."
    )
    jobmanager_config: FilePath | None = Field(
        None, description="The JobManager's Flink configuration file (config.yaml, or flink-conf.yaml before 2.0)."
    )
    taskmanager_config: FilePath | None = Field(None, description="The TaskManagers' Flink configuration file.")
    compose_variables: dict[Annotated[str, PlainValidator(str)], Text] = Field(
        {}, description=(
            "Values for ${VARIABLES} in the compose file, over its .env; the environment is not read, so an audit "
            "says the same whoever runs it."
        ),
    )
    flink_version: FlinkRelease | None = Field(
        None, description=(
            "The Flink release the files are for (e.g. 1.20), used when the REST API cannot say (cluster down)."
        ),
    )


class ClusterNotifications(Section):
    """Prefect notification blocks that hear about this cluster, and for what; what is not given here comes
    from the top level's."""

    blocks: list[Block] | None = Field(
        None, description=(
            "Prefect notification blocks, as type/name (e.g. slack-webhook/oncall), told about this cluster. Absent: "
            "the top level's."
        ),
    )
    events: list[choice(*NOTICE_EVENTS)] | None = Field(
        None, description="What they are told about. Absent: the top level's."
    )


class InventoryNotifications(ClusterNotifications):
    """The notifications of every cluster that names none of its own, and where escalations are posted."""

    blocks: list[Block] | None = Field(
        None, description="Prefect notification blocks, as type/name (e.g. slack-webhook/oncall), told about every "
        "cluster whose notifications name none."
    )
    events: list[choice(*NOTICE_EVENTS)] | None = Field(
        None, description="What they are told about. Absent: everything."
    )
    escalation_webhook_url: HttpUrl | None = Field(
        None, description=(
            "URL an escalation is posted to (by a Prefect automation). A secret: `serve` keeps it in a Secret block."
        ),
    )


class Cluster(Section):
    """One Flink cluster: where to reach it, its containers, its jobs, its settings."""

    name: Name = Field(
        description="The cluster's name (lowercase letters, digits and dashes): it names its lock, events and runs."
    )
    rest: Rest = Field(description="The JobManager's REST API.")
    containers: Containers = Field(description="How the cluster's containers are found.")
    docker: Docker = Field(default_factory=Docker, description="The Docker engine that runs them.")
    expected_taskmanagers: Count = Field(
        ClusterSpec.expected_taskmanagers, description="How many TaskManagers the healthy cluster has registered."
    )
    jobs: list[Job] = Field([], description="The jobs to keep running.")
    thresholds: ThresholdsSection = Field(
        default_factory=ThresholdsSection, description="When diagnose calls something wrong."
    )
    recovery: Recovery = Field(default_factory=Recovery, description="How long each recovery step may take.")
    monitor: Monitor = Field(
        default_factory=Monitor, description="The monitor's guard rails: cooldown, flap limit, escalation."
    )
    audit: Audit = Field(
        default_factory=Audit, description="The files the audit reads (and `audit --fix` edits, after a backup)."
    )
    approval: choice(*APPROVAL_POLICIES) = Field(
        ClusterSpec.approval, description=(
            "Who approves a recovery: never a human; a human for risky steps (a fresh start, an older checkpoint, "
            "starting a JobManager, anything after an escalation); or a human for every recovery."
        ),
    )
    approval_timeout_s: Seconds = Field(
        ClusterSpec.approval_timeout_s, description=(
            "Seconds a question waits for a human's answer; unanswered counts as rejected."
        ),
    )
    notifications: ClusterNotifications = Field(
        default_factory=ClusterNotifications, description="Who hears about this cluster, and about what."
    )
    restart_stopped: StrictBool = Field(
        ClusterSpec.restart_stopped, description=(
            "false: a TaskManager container a person stopped (`docker stop`) is left stopped, like a cancelled job; "
            "true: it is restarted like a crashed one."
        ),
    )

    @field_validator("jobs")
    @classmethod
    def _job_names_unique(cls, jobs: list[Job]) -> list[Job]:
        names = [job.name for job in jobs]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise problem(f"job name {name!r} appears twice", index, "name")
        return jobs


class InventoryFile(Section):
    """A flink-runbook inventory: the Flink clusters to look after and how to reach them."""

    model_config = ConfigDict(title="flink-runbook inventory")

    clusters: list[Cluster] = Field(
        json_schema_extra={"minItems": 1}, description="The Flink clusters to look after (at least one)."
    )
    state_dir: FilePath | None = Field(
        None, description=(
            "This host's directory for recovery locks, job lineage, stops by a person and learned engine IDs "
            "(relative to the inventory's directory). Absent: $FLINK_RUNBOOK_STATE_DIR, else /var/lib/flink-runbook."
        ),
    )
    notifications: InventoryNotifications = Field(
        default_factory=InventoryNotifications, description=(
            "Notifications for every cluster that names none of its own, and where escalations go."
        ),
    )

    @field_validator("clusters")
    @classmethod
    def _clusters_named_once(cls, clusters: list[Cluster]) -> list[Cluster]:
        if not clusters:
            raise problem("needs at least one cluster")
        names = [cluster.name for cluster in clusters]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise problem(f"{name!r} appears twice", index, "name")
        return clusters

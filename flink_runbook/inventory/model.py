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

    type: choice("none", "basic", "bearer") = "none"
    username_env: StrictStr | None = None
    password_env: StrictStr | None = None
    token_env: StrictStr | None = None
    token_secret_block: StrictStr | None = None

    @model_validator(mode="after")
    def _credentials_named(self) -> Auth:
        if self.type == "basic" and not (self.username_env and self.password_env):
            raise problem("basic auth needs username_env and password_env")
        if self.type == "bearer" and not (self.token_env or self.token_secret_block):
            raise problem("bearer auth needs token_env or token_secret_block")
        return self


class RestTls(Section):
    verify: StrictBool = True
    ca_bundle: FilePath | None = None
    client_cert: FilePath | None = None
    client_key: FilePath | None = None

    @model_validator(mode="after")
    def _key_with_its_cert(self) -> RestTls:
        if self.client_key and not self.client_cert:
            raise problem("client_key needs client_cert (the key alone is not used)", "client_key")
        return self


class Rest(Section):
    """The JobManager's REST API."""

    url: HttpUrl
    auth: Auth = Field(default_factory=Auth)
    tls: RestTls = Field(default_factory=RestTls)
    connect_timeout_s: RestTimeout = RestSettings.connect_timeout_s
    read_timeout_s: RestTimeout = RestSettings.read_timeout_s

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
    ca_cert: FilePath | None = None
    client_cert: FilePath | None = None
    client_key: FilePath | None = None
    verify: StrictBool = True

    @model_validator(mode="after")
    def _cert_with_its_key(self) -> DockerTls:
        if bool(self.client_cert) != bool(self.client_key):
            raise problem("client_cert and client_key go together")
        return self


class Docker(Section):
    """The Docker engine that runs the cluster's containers; no host: DOCKER_HOST or the local socket."""

    host: DockerHost | None = None
    tls: DockerTls = Field(default_factory=DockerTls)
    engine_id: EngineId | None = None

    @model_validator(mode="after")
    def _tls_for_tcp(self) -> Docker:
        if (self.tls.ca_cert or self.tls.client_cert) and not (self.host or "").startswith("tcp://"):
            raise problem("TLS certificates are for a tcp:// host only", "tls")
        return self


class ContainerNames(Section):
    jobmanager: list[Text] = []
    taskmanager: list[Text] = []


class Containers(Section):
    """Compose labels (project + service) or explicit container names."""

    compose_project: StrictStr | None = None
    jobmanager_service: StrictStr = "jobmanager"
    taskmanager_service: StrictStr = "taskmanager"
    names: ContainerNames = Field(default_factory=ContainerNames)

    @model_validator(mode="after")
    def _something_selected(self) -> Containers:
        if not self.compose_project and not (self.names.jobmanager or self.names.taskmanager):
            raise problem("give compose_project or names.jobmanager / names.taskmanager")
        return self


class CheckpointDirSection(Section):
    """The same directory as the runbook's host sees it and as the containers see it."""

    host: FilePath | None = None
    container: StrictStr | None = None
    exclusive: StrictBool = False


class Job(Section):
    name: StrictStr
    jar: FilePath | None = None
    entry_class: StrictStr | None = None
    args: list[Text] = []
    parallelism: Count = JobSpec.parallelism
    checkpoint_dir: CheckpointDirSection = Field(default_factory=CheckpointDirSection)
    no_checkpoint_policy: choice("fail", "fresh") = JobSpec.no_checkpoint_policy
    on_canceled: choice("leave", "resubmit") = JobSpec.on_canceled
    resubmit_command: list[Text] = []
    resubmit_timeout_s: Seconds = JobSpec.resubmit_timeout_s
    sink_output_dir: FilePath | None = None
    # A Flink SQL job: its statements file, run by the SQL runner in `jar` (docs/sql-jobs.md).
    sql: FilePath | None = None

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
    log_lines: Count = Thresholds.log_lines
    oom_lookback_s: Seconds = Thresholds.oom_lookback_s
    heartbeat_stale_ms: number(maximum=MAX_SECONDS * 1000, integer=True) | None = None
    checkpoint_stall_s: Seconds | None = None


class Recovery(Section):
    jobmanager_timeout_s: Seconds = RecoverySettings.jobmanager_timeout_s
    taskmanager_timeout_s: Seconds = RecoverySettings.taskmanager_timeout_s
    verify_timeout_s: Seconds = RecoverySettings.verify_timeout_s
    stabilization_s: SecondsOrZero = RecoverySettings.stabilization_s
    container_stop_timeout_s: number(minimum=0, maximum=3600, integer=True) = RecoverySettings.container_stop_timeout_s
    registration_grace_s: SecondsOrZero = RecoverySettings.registration_grace_s
    ha_restore_timeout_s: SecondsOrZero = RecoverySettings.ha_restore_timeout_s
    deadline_s: Seconds = RecoverySettings.deadline_s


class Monitor(Section):
    cooldown_s: SecondsOrZero = MonitorSettings.cooldown_s
    max_recoveries: Count = MonitorSettings.max_recoveries
    window_s: Seconds = MonitorSettings.window_s
    resume_after_healthy_s: SecondsOrZero = MonitorSettings.resume_after_healthy_s
    check_deadline_s: number(minimum=0.2) = MonitorSettings.check_deadline_s


class Audit(Section):
    """The files the audit reads (and --fix edits)."""

    compose_file: FilePath | None = None
    jobmanager_config: FilePath | None = None
    taskmanager_config: FilePath | None = None
    compose_variables: dict[Annotated[str, PlainValidator(str)], Text] = {}
    flink_version: FlinkRelease | None = None


class ClusterNotifications(Section):
    """Prefect notification blocks that hear about this cluster, and for what; what is not given here comes
    from the top level's."""

    blocks: list[Block] | None = None
    events: list[choice(*NOTICE_EVENTS)] | None = None


class InventoryNotifications(ClusterNotifications):
    # Where escalations are sent (a Prefect automation posts to it). A secret: `serve` keeps it in a Secret block.
    escalation_webhook_url: HttpUrl | None = None


class Cluster(Section):
    """One Flink cluster: where to reach it, its containers, its jobs, its settings."""

    name: Name
    rest: Rest
    containers: Containers
    docker: Docker = Field(default_factory=Docker)
    expected_taskmanagers: Count = ClusterSpec.expected_taskmanagers
    jobs: list[Job] = []
    thresholds: ThresholdsSection = Field(default_factory=ThresholdsSection)
    recovery: Recovery = Field(default_factory=Recovery)
    monitor: Monitor = Field(default_factory=Monitor)
    audit: Audit = Field(default_factory=Audit)
    approval: choice(*APPROVAL_POLICIES) = ClusterSpec.approval
    approval_timeout_s: Seconds = ClusterSpec.approval_timeout_s
    notifications: ClusterNotifications = Field(default_factory=ClusterNotifications)
    restart_stopped: StrictBool = ClusterSpec.restart_stopped

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

    clusters: list[Cluster] = Field(json_schema_extra={"minItems": 1})
    # Recovery locks, job lineage, stops by a person, learned engine IDs: one directory per host.
    state_dir: FilePath | None = None
    notifications: InventoryNotifications = Field(default_factory=InventoryNotifications)

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

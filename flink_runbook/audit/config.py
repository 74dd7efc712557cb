"""The runbook's preventive advice as checks on a Flink configuration file. Pure: findings from parsed files.

Each finding says what is set (`current`), what to set (`recommended`), why,
and where (file:line key). Defaults compared against are Flink's own, from
the recorded catalogues (flink_options/), not from memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from flink_runbook.audit.settings import RoleSettings, as_settings
from flink_runbook.flink.config_file import LEGACY, STANDARD, FlinkConfigFile
from flink_runbook.flink.options import key_status, option_catalogue, release_key
from flink_runbook.flink.values import duration_ms, human_ms

MIN_HEARTBEAT_TIMEOUT_MS = 50_000  # Flink's default; shorter turns a GC pause or a busy host into a lost TaskManager
MIN_TIMEOUT_TO_INTERVAL = 5  # Flink's defaults (50 s / 10 s): several missed heartbeats before giving up
MIN_RESTART_BUDGET_MS = 5 * 60_000  # a restarted TaskManager container needs minutes, not seconds, to come back
MAX_CHECKPOINT_INTERVAL_MS = 10 * 60_000  # beyond this a recovery replays a lot, and a file sink publishes late
MIN_CHECKPOINT_TIMEOUT_MS = 60_000  # Flink's default is 10 min
RETAINING = {"RETAIN_ON_CANCELLATION", "DELETE_ON_CANCELLATION"}  # both keep checkpoints of a FAILED job


@dataclass(frozen=True)
class AuditFinding:
    code: str
    severity: str  # info, warning, error
    current: str
    recommended: str
    why: str
    where: str

    def to_dict(self) -> dict:
        return asdict(self)


def audit_flink_config(config: FlinkConfigFile | RoleSettings, flink_version: str) -> list[AuditFinding]:
    """Every finding for one file (or a role's settings: file, FLINK_PROPERTIES), as `flink_version` reads it.

    A role whose settings are not all known (no file, no running JobManager) gets only the findings about
    what is written: an unset key there may well be set by the image's own file."""
    config = as_settings(config)
    findings = _all_findings(config, flink_version)
    if config.complete:
        return findings
    written = {config.where(key) for key in config.entries}
    return [f for f in findings if f.where in written]


def _all_findings(config: RoleSettings, flink_version: str) -> list[AuditFinding]:
    values = values_by_current_key(config, flink_version)
    unreadable = _unreadable_values(config, values)
    return [
        *_file_not_read(config, flink_version),
        *unreadable,
        *_key_names(config, flink_version),
        *_heartbeat(config, values, flink_version),
        *_restart_strategy(config, values),
        *_checkpointing(config, values, flink_version),
    ]


DURATION_KEYS = (
    "heartbeat.interval",
    "heartbeat.timeout",
    "restart-strategy.fixed-delay.delay",
    "execution.checkpointing.interval",
    "execution.checkpointing.timeout",
)
COUNT_KEYS = ("restart-strategy.fixed-delay.attempts",)


def _unreadable_values(config: RoleSettings, values: dict[str, tuple[str, str]]) -> list[AuditFinding]:
    """Values the checks need that Flink could not parse either: a finding each, and left out of the checks."""
    findings = []
    for key in (*DURATION_KEYS, *COUNT_KEYS):
        if key not in values:
            continue
        value, written = values[key]
        try:
            duration_ms(value) if key in DURATION_KEYS else int(value)
        except ValueError:
            expected = "a duration like 5000, '10 s' or PT50S" if key in DURATION_KEYS else "a whole number"
            findings.append(
                AuditFinding(
                    "CONFIG_VALUE_INVALID",
                    "error",
                    f"{written}: {value}",
                    f"{written}: {expected}",
                    "Flink refuses to start (or the job to run) with a value it cannot parse",
                    config.where(written),
                )
            )
            del values[key]
    return findings


def config_files_read(flink_version: str) -> tuple[str, ...]:
    """The conf/ file names this release reads: 1.18 and older flink-conf.yaml only; 1.19 and 1.20
    config.yaml when it exists, else flink-conf.yaml; 2.0 on config.yaml only."""
    line = release_key(flink_version)[:2]
    if line < (1, 19):
        return (LEGACY,)
    if line < (2, 0):
        return (STANDARD, LEGACY)
    return (STANDARD,)


def _file_not_read(config: RoleSettings, flink_version: str) -> list[AuditFinding]:
    """A file under a name this release never reads in conf/: none of its settings take effect."""
    if config.file is None:
        return []
    name = config.file.path.name
    read = config_files_read(flink_version)
    if name not in (LEGACY, STANDARD) or name in read:
        return []
    return [
        AuditFinding(
            "CONFIG_FILE_NOT_READ",
            "error",
            f"{name} for Flink {flink_version}",
            f"the same settings in conf/{read[0]}",
            f"Flink {flink_version} reads {' or '.join(read)} from conf/, never {name}: "
            "every setting in it silently has no effect",
            str(config.file.path),
        )
    ]


def values_by_current_key(config: FlinkConfigFile | RoleSettings, flink_version: str) -> dict[str, tuple[str, str]]:
    """current key -> (value, the key as written). A new name written next to its old one wins, as in Flink."""
    catalogue = option_catalogue(flink_version)
    values: dict[str, tuple[str, str]] = {}
    for key, entry in config.entries.items():
        current = catalogue.current_key(key) or key
        if current not in values or key == current:
            values[current] = (entry.value, key)
    return values


def _key_names(config: RoleSettings, flink_version: str) -> list[AuditFinding]:
    findings = []
    for key, entry in config.entries.items():
        if not config.written(key):
            continue  # only seen running (the image's own file): nothing here to rename
        status = key_status(key, flink_version)
        if status.status == "gone":
            findings.append(
                AuditFinding(
                    "CONFIG_KEY_GONE",
                    "error",
                    f"{key}: {entry.value}",
                    f"{status.use}: {entry.value}" if status.use else f"remove {key}",
                    f"Flink {flink_version} does not read {key} (Flink {status.known_in} did): "
                    "the setting silently has no effect",
                    config.where(key),
                )
            )
        elif status.status == "renamed":
            findings.append(
                AuditFinding(
                    "CONFIG_KEY_RENAMED",
                    "info",
                    key,
                    status.use or key,
                    f"Flink {flink_version} reads {key} as a deprecated name; a later release may stop reading it",
                    config.where(key),
                )
            )
    return findings


def _duration(values: dict[str, tuple[str, str]], key: str, default_ms: float) -> tuple[float, str | None]:
    if key not in values:
        return default_ms, None
    return duration_ms(values[key][0]), values[key][1]


def _heartbeat(config: RoleSettings, values: dict, flink_version: str) -> list[AuditFinding]:
    defaults = option_catalogue(flink_version).options
    timeout, timeout_key = _duration(values, "heartbeat.timeout", duration_ms(defaults["heartbeat.timeout"].default))
    interval, interval_key = _duration(
        values, "heartbeat.interval", duration_ms(defaults["heartbeat.interval"].default)
    )
    findings = []
    if timeout < MIN_HEARTBEAT_TIMEOUT_MS:
        findings.append(
            AuditFinding(
                "HEARTBEAT_TIMEOUT_SHORT",
                "warning",
                f"heartbeat.timeout: {human_ms(timeout)}",
                "heartbeat.timeout: 180000 (3 min, the runbook's value; Flink's default is 50 s)",
                "a TaskManager that misses heartbeats this long (GC pause, CPU throttling, a busy host) is "
                "declared lost and its job fails: the runbook's incident",
                config.where(timeout_key or "heartbeat.timeout"),
            )
        )
    if timeout < MIN_TIMEOUT_TO_INTERVAL * interval:
        findings.append(
            AuditFinding(
                "HEARTBEAT_RATIO_LOW",
                "warning",
                f"heartbeat.timeout / heartbeat.interval = {human_ms(timeout)} / {human_ms(interval)}",
                f"a timeout of at least {MIN_TIMEOUT_TO_INTERVAL} intervals (Flink's defaults: 50 s / 10 s)",
                "with fewer intervals per timeout, one or two lost heartbeats are enough to drop a TaskManager",
                config.where(interval_key or timeout_key or "heartbeat.interval"),
            )
        )
    return findings


def _restart_strategy(config: RoleSettings, values: dict) -> list[AuditFinding]:
    strategy, strategy_key = values.get("restart-strategy.type", (None, None))
    if strategy is None or strategy.replace("-", "").lower() not in ("fixeddelay", "fixed_delay"):
        return []  # Flink's default with checkpointing is exponential-delay, retried without a limit
    attempts = int(values.get("restart-strategy.fixed-delay.attempts", ("1", None))[0])
    delay, _ = _duration(values, "restart-strategy.fixed-delay.delay", 1000)
    budget = attempts * delay
    if budget >= MIN_RESTART_BUDGET_MS:
        return []
    return [
        AuditFinding(
            "RESTART_BUDGET_SHORT",
            "warning",
            f"fixed-delay, {attempts} attempts x {human_ms(delay)} = {human_ms(budget)} before the job FAILS",
            "restart-strategy.type: exponential-delay (initial-backoff 1 s, max-backoff 1 min, retried until the "
            "cluster is back), or fixed-delay with attempts x delay >= 5 min",
            "a lost TaskManager takes minutes to come back (container restart, registration, slot allocation); "
            f"restarts that give up after {human_ms(budget)} turn a hiccup into a FAILED job that needs a human",
            config.where(strategy_key),
        )
    ]


def _checkpointing(config: RoleSettings, values: dict, flink_version: str) -> list[AuditFinding]:
    findings = []
    if "execution.checkpointing.interval" not in values:
        findings.append(
            AuditFinding(
                "CHECKPOINTING_NOT_CONFIGURED",
                "warning",
                "execution.checkpointing.interval: not set",
                "execution.checkpointing.interval: 30 s (or set it in the job: env.enableCheckpointing)",
                "without checkpoints a restarted job starts from scratch: records are lost or read twice",
                config.where("execution.checkpointing.interval"),
            )
        )
    else:
        interval_ms, interval_key = _duration(values, "execution.checkpointing.interval", 0)
        timeout_ms, timeout_key = _duration(values, "execution.checkpointing.timeout", 600_000)
        findings += checkpoint_timing_findings(
            interval_ms,
            timeout_ms,
            config.where(interval_key),
            config.where(timeout_key or "execution.checkpointing.timeout"),
        )
    retention, retention_key = values.get("execution.checkpointing.externalized-checkpoint-retention", (None, None))
    if (retention or "NO_EXTERNALIZED_CHECKPOINTS").upper() not in RETAINING:
        findings.append(
            AuditFinding(
                "CHECKPOINTS_NOT_RETAINED",
                "error",
                f"execution.checkpointing.externalized-checkpoint-retention: {retention or 'not set'} "
                "(Flink's default NO_EXTERNALIZED_CHECKPOINTS)",
                "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION",
                "Flink deletes the checkpoints of a job that ends FAILED; there is then nothing to resubmit from "
                "and recovery cannot be lossless",
                config.where(retention_key or "execution.checkpointing.externalized-checkpoint-retention"),
            )
        )
    if "execution.checkpointing.dir" not in values:
        findings.append(
            AuditFinding(
                "CHECKPOINT_DIR_NOT_CONFIGURED",
                "error",
                "execution.checkpointing.dir: not set",
                "execution.checkpointing.dir: a path on storage both JobManager and TaskManager mount, "
                "that survives container restarts (e.g. file:///data/checkpoints on a shared volume)",
                "without it checkpoints live in the JobManager's memory and die with it",
                config.where("execution.checkpointing.dir"),
            )
        )
    return findings


def checkpoint_timing_findings(interval_ms: float, timeout_ms: float, interval_at: str, timeout_at: str):
    """Checkpoint interval and timeout, from a file or from a running job's own settings."""
    findings = []
    if interval_ms > MAX_CHECKPOINT_INTERVAL_MS:
        findings.append(
            AuditFinding(
                "CHECKPOINT_INTERVAL_LONG",
                "warning",
                f"execution.checkpointing.interval: {human_ms(interval_ms)}",
                "execution.checkpointing.interval: 30 s to 1 min",
                "a recovery replays everything since the last checkpoint, and an exactly-once file sink "
                "publishes its output only at checkpoints: both grow with the interval",
                interval_at,
            )
        )
    if timeout_ms < MIN_CHECKPOINT_TIMEOUT_MS:
        findings.append(
            AuditFinding(
                "CHECKPOINT_TIMEOUT_SHORT",
                "warning",
                f"execution.checkpointing.timeout: {human_ms(timeout_ms)}",
                "execution.checkpointing.timeout: 10 min (Flink's default)",
                "under backpressure a checkpoint takes longer; one that times out is discarded, and with "
                "tolerable-failed-checkpoints 0 (the default) the job fails and restarts",
                timeout_at,
            )
        )
    return findings

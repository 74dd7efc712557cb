"""What the running cluster actually uses, against the files and the runbook. Pure: parsed REST answers in.

Inputs are GET /jobmanager/config (parse_cluster_config) and, per configured
job that is running, GET /jobs/:id/checkpoints/config (the job's code can
override the files, so the job's own answer is the truth for checkpointing).
"""

from __future__ import annotations

from typing import Any

from flink_runbook.audit.config import AuditFinding, checkpoint_timing_findings
from flink_runbook.audit.settings import PROPERTIES, RoleSettings, as_settings
from flink_runbook.flink.config_file import FlinkConfigFile
from flink_runbook.flink.options import option_catalogue
from flink_runbook.flink.values import duration_ms, memory_bytes

# Flink reports a disabled checkpoint interval as Long.MAX_VALUE (or -1 on old releases).
CHECKPOINTING_DISABLED = (-1, 2**63 - 1)


def same_setting(a: str, b: str) -> bool:
    """Equal as Flink would read them: '5000' == '5 s' as durations, '1024m' == '1073741824b' as sizes."""
    if a.strip() == b.strip():
        return True
    for parse in (duration_ms, memory_bytes):
        try:
            return parse(a) == parse(b)
        except ValueError:
            continue
    return a.strip().lower() == b.strip().lower()


def audit_live_config(
    file: FlinkConfigFile | RoleSettings, live: dict[str, str], flink_version: str, url: str
) -> list[AuditFinding]:
    """Settings written for the JobManager (its file, its FLINK_PROPERTIES over it) that the running JobManager
    does not use (a change never applied)."""
    settings = as_settings(file)
    catalogue = option_catalogue(flink_version)
    live_by_key = {catalogue.current_key(k) or k: v for k, v in live.items()}
    findings = []
    for key, entry in settings.entries.items():
        running = live_by_key.get(catalogue.current_key(key) or key)
        if not settings.written(key) or running is None or "******" in running or same_setting(entry.value, running):
            continue  # not reported (or hidden) by the REST API, or the same
        if settings.origin[key] == PROPERTIES:
            current, apply = (
                f"FLINK_PROPERTIES {key}: {entry.value}; running JobManager: {running}",
                "recreate the JobManager and TaskManager containers (docker compose up -d: a container keeps the "
                "environment it was created with; a restart does not apply a changed one)",
            )
        else:
            current, apply = (
                f"file {key}: {entry.value}; running JobManager: {running}",
                "restart the JobManager and TaskManagers to apply the file, or make the file say what runs",
            )
        findings.append(
            AuditFinding(
                "CONFIG_NOT_APPLIED",
                "warning",
                current,
                apply,
                "the file is not what runs: a restart will change behaviour nobody is expecting, "
                "or an intended fix never took effect",
                f"{settings.where(key)} vs GET {url}/jobmanager/config",
            )
        )
    return findings


def audit_job_checkpointing(job_name: str, job_id: str, config: dict[str, Any] | None, url: str) -> list[AuditFinding]:
    """A running job's own checkpoint settings (None: the endpoint answered 404, checkpointing off)."""
    where = f"GET {url}/jobs/{job_id}/checkpoints/config ({job_name})"
    interval = (config or {}).get("interval")
    if config is None or not isinstance(interval, int) or interval in CHECKPOINTING_DISABLED or interval <= 0:
        return [
            AuditFinding(
                "JOB_CHECKPOINTING_OFF",
                "error",
                f"{job_name}: checkpointing disabled",
                "execution.checkpointing.interval: 30 s (file) or env.enableCheckpointing(30000) (job code)",
                "a failed job has nothing to restart from: every record since it started is read again or lost",
                where,
            )
        ]
    timing = checkpoint_timing_findings(
        interval, config.get("timeout") or 600_000, where + " interval", where + " timeout"
    )
    externalization = config.get("externalization") or {}
    if not externalization.get("enabled"):
        return timing + [
            AuditFinding(
                "JOB_CHECKPOINTS_NOT_RETAINED",
                "error",
                f"{job_name}: externalization.enabled false",
                "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION",
                "Flink deletes this job's checkpoints when it fails; recovery must then start it from scratch",
                where,
            )
        ]
    return timing

"""One cluster's audit: every check over what was read, one result, a report for a human. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flink_runbook.audit.compose import audit_compose
from flink_runbook.audit.compose_file import ComposeFile
from flink_runbook.audit.config import AuditFinding, audit_flink_config, values_by_current_key
from flink_runbook.audit.live import audit_job_checkpointing, audit_live_config
from flink_runbook.audit.settings import RoleSettings
from flink_runbook.flink.config_file import FlinkConfigFile
from flink_runbook.flink.options import catalogue_note, catalogue_release

SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}


@dataclass
class AuditInputs:
    cluster: str
    flink_version: str
    rest_url: str
    services: dict[str, str]  # role -> compose service name
    configs: dict[str, FlinkConfigFile] = field(default_factory=dict)  # role -> file
    compose: ComposeFile | None = None
    live_config: dict[str, str] | None = None  # None: JobManager not reachable
    # (job name, job id, GET /jobs/:id/checkpoints/config or None on 404) for each configured job running now
    running_jobs: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)  # what could not be read, and why


@dataclass
class AuditResult:
    cluster: str
    flink_version: str
    findings: list[AuditFinding]
    sources: list[str]
    not_read: list[str]

    @property
    def worst(self) -> str:
        return max((f.severity for f in self.findings), key=SEVERITY_ORDER.get, default="none")

    @property
    def needs_attention(self) -> bool:
        return any(SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER["warning"] for f in self.findings)

    def to_dict(self) -> dict:
        return {
            "cluster": self.cluster,
            "flink_version": self.flink_version,
            "worst": self.worst,
            "findings": [f.to_dict() for f in self.findings],
            "sources": self.sources,
            "not_read": self.not_read,
        }


def role_settings(inputs: AuditInputs) -> dict[str, RoleSettings]:
    """role -> its settings: config file, FLINK_PROPERTIES over it, and for a JobManager with no file the
    running one's config. A role with none of them is left out."""
    roles = {}
    for role, service_name in inputs.services.items():
        file = inputs.configs.get(role)
        service = inputs.compose.services.get(service_name) if inputs.compose else None
        properties = service.flink_properties if service else None
        live = inputs.live_config if role == "jobmanager" and file is None else None
        if file is not None or properties is not None or live is not None:
            roles[role] = RoleSettings(role, file, properties, live, inputs.rest_url)
    return roles


def unchecked_without_files(inputs: AuditInputs, roles: dict[str, RoleSettings]) -> list[str]:
    """What the audit could not check because the inventory names no compose file, or no config file for a role."""
    notes = []
    if inputs.compose is None:
        notes.append(
            "no compose file in the inventory (audit.compose_file): restart policies, memory and CPU limits, image "
            "versions, volumes and FLINK_PROPERTIES were not checked"
        )
    for role in inputs.services:
        if role in inputs.configs:
            continue
        settings = roles.get(role)
        lead = f"{role}: no Flink config file in the inventory (audit.{role}_config)"
        if settings is not None and settings.live is not None:
            notes.append(
                f"{lead}: what its FLINK_PROPERTIES do not set is judged from the running JobManager (GET "
                f"{inputs.rest_url}/jobmanager/config); key names (CONFIG_KEY_RENAMED, CONFIG_KEY_GONE) only in "
                "what FLINK_PROPERTIES write"
            )
            continue
        why = "the JobManager does not answer" if role == "jobmanager" else "no REST answer gives a TaskManager's"
        examples = (
            "taskmanager.memory.process.size for MEMORY_LIMIT_BELOW_PROCESS_SIZE, taskmanager.numberOfTaskSlots "
            "for CPU_LIMIT_LOW" if role == "taskmanager" else "heartbeat, restart strategy, checkpointing"
        )
        notes.append(
            f"{lead} and {why}: only what its FLINK_PROPERTIES set was checked; a setting it leaves to the image's "
            f"own file was not (e.g. {examples})"
        )
    return notes


def audit_cluster(inputs: AuditInputs) -> AuditResult:
    findings: list[AuditFinding] = []
    roles = role_settings(inputs)
    for settings in roles.values():
        findings += audit_flink_config(settings, inputs.flink_version)
    if inputs.compose is not None:
        values = {role: values_by_current_key(settings, inputs.flink_version) for role, settings in roles.items()}

        def setting(role: str, key: str) -> str | None:
            return values.get(role, {}).get(key, (None, None))[0]

        slots = setting("taskmanager", "taskmanager.numberOfTaskSlots")
        findings += audit_compose(
            inputs.compose,
            inputs.services,
            {
                "jobmanager": setting("jobmanager", "jobmanager.memory.process.size"),
                "taskmanager": setting("taskmanager", "taskmanager.memory.process.size"),
            },
            setting("jobmanager", "execution.checkpointing.dir")
            or setting("taskmanager", "execution.checkpointing.dir"),
            int(slots) if slots and slots.isdigit() else None,
        )
    if inputs.live_config is not None and "jobmanager" in roles:
        findings += audit_live_config(roles["jobmanager"], inputs.live_config, inputs.flink_version, inputs.rest_url)
    job_findings = [
        f
        for name, job_id, config in inputs.running_jobs
        for f in audit_job_checkpointing(name, job_id, config, inputs.rest_url)
    ]
    findings += job_findings
    if inputs.running_jobs and not any(f.code == "JOB_CHECKPOINTING_OFF" for f in job_findings):
        # Every running job checkpoints (set in its code): the files not setting an interval is not a problem.
        findings = [f for f in findings if f.code != "CHECKPOINTING_NOT_CONFIGURED"]
    note = catalogue_note(inputs.flink_version)
    if note and (inputs.configs or inputs.live_config is not None):
        findings.append(
            AuditFinding(
                "KEY_CATALOGUE_NEAREST",
                "info",
                f"Flink {inputs.flink_version}: keys judged by {catalogue_release(inputs.flink_version)}'s catalogue",
                f"scripts/flink_options/record.py {inputs.flink_version}",
                note,
                "flink_runbook/flink/option_catalogues/",
            )
        )
    findings = list(dict.fromkeys(findings))  # one FLINK_PROPERTIES several services merge: said once
    findings.sort(key=lambda f: -SEVERITY_ORDER[f.severity])
    sources = [str(c.path) for c in inputs.configs.values()]
    if inputs.compose is not None:
        sources.append(str(inputs.compose.path))
    sources += [
        f"{s.properties.path}:{s.properties.line} {s.properties.label}" for s in roles.values() if s.properties
    ]
    if inputs.live_config is not None:
        sources.append(f"GET {inputs.rest_url}/jobmanager/config")
    sources += [f"GET {inputs.rest_url}/jobs/{job_id}/checkpoints/config" for _, job_id, _ in inputs.running_jobs]
    not_read = list(inputs.not_read) + unchecked_without_files(inputs, roles)
    return AuditResult(inputs.cluster, inputs.flink_version, findings, list(dict.fromkeys(sources)), not_read)


def audit_report_markdown(result: AuditResult) -> str:
    """The audit for a human: what is wrong, what to set instead, why, where."""
    lines = [
        f"# Configuration audit: {result.cluster}",
        "",
        f"Flink {result.flink_version}. Worst finding: **{result.worst}**. {len(result.findings)} finding(s).",
        "",
    ]
    if result.not_read:
        lines += ["Not read (so not checked):", "", *[f"- {n}" for n in result.not_read], ""]
    if result.findings:
        lines += ["| severity | code | current | recommended | where |", "|---|---|---|---|---|"]
        for f in result.findings:
            cells = (f.severity, f.code, f.current, f.recommended, f.where)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines += ["", "## Why", ""]
        seen = set()
        for f in result.findings:
            if f.code not in seen:
                seen.add(f.code)
                lines.append(f"- **{f.code}**: {f.why}")
        lines += [
            "",
            "Safe fixes: `flink-runbook audit --config FILE --cluster NAME --fix` (backs up every file first).",
        ]
    else:
        lines.append("Nothing to fix.")
    lines += ["", "Read: " + ", ".join(result.sources)]
    return "\n".join(lines) + "\n"

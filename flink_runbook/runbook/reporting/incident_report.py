"""The incident report, in Markdown, written for the on-call engineer (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from flink_runbook.flink.answers import JobState
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.findings import Severity

SEVERITY_MARK = {"critical": "CRITICAL", "error": "ERROR", "warning": "warning", "info": "info"}


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _heartbeat(age_ms: int | None) -> str:
    return "none yet (just registered)" if age_ms is None else f"{age_ms / 1000:.1f}s ago"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def diagnosis_report(cluster: ClusterSpec, diagnosis: Diagnosis) -> str:
    """Problem, error, each check with its result, root cause, what to do, useful commands."""
    seen = diagnosis.observation
    status = "healthy" if diagnosis.healthy else "UNHEALTHY"
    out = [f"# Flink cluster {cluster.name}: {status}", ""]
    out.append(
        f"Diagnosed at {_when(seen.observed_at_ms)} against {cluster.rest.url}"
        + (f" (Flink {seen.jobmanager.flink_version})" if seen.jobmanager.flink_version else "")
        + "."
    )
    out.append("")

    out += ["## Problem", ""]
    serious = [f for f in diagnosis.findings if Severity(f.severity).unhealthy]
    if not serious:
        out.append("No problem found: every container runs, the TaskManagers are registered and the jobs run.")
    for finding in serious:
        out.append(f"- **{finding.code}** ({SEVERITY_MARK[finding.severity]}): {finding.summary}")
    out.append("")

    errors = [j for j in seen.jobs if j.info and j.info.root_cause and j.info.state != "RUNNING"]
    if errors:
        out += ["## Error", ""]
        for job in errors:
            out.append(f"Job {job.name} ({job.info.id}), newest first:")
            out.append("```")
            out += [entry.message for entry in job.info.exceptions[:6]]
            out.append("```")
        out.append("")

    out += ["## Checks", ""]
    out += ["### 1. Containers (`docker ps`)", ""]
    if seen.containers.error:
        out.append(f"Not checked: {seen.containers.error}")
    else:
        out += _table(
            ["container", "role", "state", "exit code", "OOM", "restarts", "health"],
            [
                [
                    c.name,
                    c.role,
                    c.state,
                    c.exit_code if c.state != "running" else "",
                    c.oom_killed or bool(seen.containers.oom_kills.get(c.name)),
                    c.restart_count,
                    c.health or "",
                ]
                for c in seen.containers.containers
            ],
        )
    out += ["", "### 2. TaskManagers (`GET /taskmanagers`)", ""]
    if not seen.jobmanager.reachable:
        out.append(f"Not checked: the JobManager REST API did not answer ({seen.jobmanager.error}).")
    elif not seen.taskmanagers:
        out.append("None registered.")
    else:
        out += _table(
            ["TaskManager id", "last heartbeat", "slots", "free slots"],
            [[tm.id, _heartbeat(tm.heartbeat_age_ms), tm.slots_total, tm.slots_free] for tm in seen.taskmanagers],
        )
    out += ["", "### 3. Jobs (`GET /jobs/overview`, `/jobs/:id`, `/exceptions`, `/checkpoints`)", ""]
    if seen.jobmanager.reachable:
        out += _table(
            ["job", "id", "state", "failures", "latest retained checkpoint"],
            [
                [
                    j.name,
                    j.info.id if j.info else "-",
                    j.info.state if j.info else JobState.MISSING,
                    j.info.failures if j.info else "-",
                    (
                        j.info.checkpoints.latest_completed.external_path
                        if j.info and j.info.checkpoints.latest_completed
                        else "none"
                    ),
                ]
                for j in seen.jobs
            ],
        )
    else:
        out.append("Not checked: the JobManager REST API did not answer.")
    out.append("")

    out += ["## Root cause", ""]
    if diagnosis.findings:
        top = diagnosis.findings[0]
        out.append(f"{top.summary}. Evidence: {top.evidence}")
        for finding in diagnosis.findings[1:]:
            out.append(f"- {finding.code} ({finding.severity}): {finding.summary}. Evidence: {finding.evidence}")
    else:
        out.append("None: nothing is wrong.")
    out.append("")

    out += ["## What to do", ""]
    actions = list(dict.fromkeys(f.action for f in diagnosis.findings if f.severity != Severity.INFO))
    out += [f"{i}. {a}" for i, a in enumerate(actions, 1)] or ["Nothing."]
    out.append("")

    out += ["## Useful commands", "", "```bash"]
    out.append(f"curl -s {cluster.rest.url}/taskmanagers")
    out.append(f"curl -s {cluster.rest.url}/jobs/overview")
    for job in seen.jobs:
        if job.info:
            out.append(f"curl -s {cluster.rest.url}/jobs/{job.info.id}/exceptions")
    for container in seen.containers.containers:
        if container.container_id:
            out.append(f"docker logs --tail 100 {container.name}")
    out.append(f"flink-runbook recover --config <inventory.yaml> --cluster {cluster.name} --dry-run")
    out += ["```", ""]
    return "\n".join(out)

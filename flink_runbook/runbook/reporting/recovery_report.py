"""What a recovery did: the timeline, the jobs, the verification, and the report (pure)."""

from __future__ import annotations

from flink_runbook.runbook.deciding.approval import NOBODY
from flink_runbook.runbook.model import RecoveryResult, RecoveryStatus, StepStatus, utc_iso


def next_steps(result: RecoveryResult) -> list[str]:
    if result.status == RecoveryStatus.HEALTHY:
        return ["Nothing: the cluster was healthy."]
    if result.status == RecoveryStatus.SUPERSEDED:
        return ["Nothing: another recovery of this cluster ran first (this run waited for it); see that run's report."]
    if result.status == RecoveryStatus.PLANNED:
        return ["This was a dry run: nothing was changed. Run without --dry-run to carry out the plan."]
    if result.status == RecoveryStatus.RECOVERED:
        return [
            "Watch the job for a while (checkpoints keep completing, no new exceptions).",
            "Run `flink-runbook audit` to fix what made the failure possible (heartbeat timeout, restart strategy).",
        ]
    steps = [f"Refused: {r}" for r in result.refusals]
    failed = [a for a in result.actions if a.status == StepStatus.FAILED]
    steps += [f"Failed: {a.action} {a.target}: {a.detail}" for a in failed]
    steps += [f"Not verified: {c.name}: {c.detail}" for c in result.checks if not c.passed]
    steps.append("Run `flink-runbook diagnose` to see the cluster now; read the JobManager and TaskManager logs.")
    steps.append("Nothing was done twice: running `recover` again is safe, it starts from what it observes.")
    return steps


def timeline_table(result: RecoveryResult) -> list[str]:
    """Steps and milestones in time order, each with its time of day, its offset from the fault, and how long;
    then why each step ran and what it found, as a list: long reasons in a table column are cut off on
    screen (the Prefect UI does not wrap a wide table)."""
    zero = result.fault_at_s
    rows: list[tuple[float, str]] = []
    for m in result.milestones:
        rows.append((m.at_s, f"| {utc_iso(m.at_s)[11:23]} | {_offset(m.at_s, zero)} | | **{m.name}** | |"))
    started = sorted((a for a in result.actions if a.started_s is not None), key=lambda a: a.started_s)
    unstarted = [a for a in result.actions if a.started_s is None]
    for a in started:
        took = f"{a.duration_s:.1f}s" if a.duration_s is not None else ""
        rows.append((a.started_s, f"| {utc_iso(a.started_s)[11:23]} | {_offset(a.started_s, zero)} | {took} | "
                     f"{a.action} {a.target} | {a.status} |"))
    header = ["| at (UTC) | from fault | took | what | result |", "|---|---|---|---|---|"]
    table = header + [line for _, line in sorted(rows, key=lambda r: r[0])]
    table += [f"| | | | {a.action} {a.target} | {a.status} |" for a in unstarted]
    reasons = []
    for a in [*started, *unstarted]:
        when = f"{_offset(a.started_s, zero)} " if a.started_s is not None and zero is not None else ""
        found = f"; {a.status}: {a.detail}" if a.detail else ""
        reasons.append(f"- {when}**{a.action} {a.target}**: {a.reason or 'no reason given'}{found}")
    return table + (["", "Why each step ran, and what it found:", "", *reasons] if reasons else [])


def _offset(at_s: float, zero: float | None) -> str:
    return f"{at_s - zero:+.1f}s" if zero is not None else ""


def recovery_report(result: RecoveryResult, chart_uri: str | None = None, chart_note: str | None = None) -> str:
    """The report as Markdown; `chart_uri`: the timeline chart as an image URI, or `chart_note`: why there is
    none (timeline_chart.report_chart gives both)."""
    title = {
        RecoveryStatus.HEALTHY: "healthy, nothing to do",
        RecoveryStatus.PLANNED: "dry run",
        RecoveryStatus.RECOVERED: "RECOVERED",
        RecoveryStatus.FAILED: "RECOVERY FAILED",
        RecoveryStatus.REFUSED: "RECOVERY REFUSED",
        RecoveryStatus.TIMED_OUT: "RECOVERY TIMED OUT",
        RecoveryStatus.SUPERSEDED: "another recovery ran first, nothing left to do",
    }[RecoveryStatus(result.status)]
    out = [f"# Recovery of Flink cluster {result.cluster}: {title}", ""]
    summary = f"Started {result.started_at}, took {result.duration_s:.1f}s"
    if result.mttr_s is not None:
        summary += f"; time to recover from the first sign of the fault (MTTR): **{result.mttr_s:.1f}s**"
    out.append(summary + ".")
    if result.approval:
        decided = "approved" if result.approval["approved"] else "NOT approved"
        by = "" if result.approval["by"] == NOBODY else f" by {result.approval['by']}"  # unanswered: the timeout
        reason = f": {result.approval['reason']}" if result.approval["reason"] else ""
        out += ["", f"Approval: {decided}{by}{reason} (after {result.approval['waited_s']}s)."]
    out += ["", "## What was wrong", ""]
    out += [f"- **{f['code']}** ({f['severity']}): {f['summary']}" for f in result.findings_before] or ["Nothing."]
    out += ["", "## Timeline", ""]
    if chart_uri:
        out += [f"![Timeline of the recovery of {result.cluster}]({chart_uri})", ""]
    elif chart_note:
        out += [f"_{chart_note}_", ""]
    out += timeline_table(result)
    out += ["", "## TaskManagers", ""]
    out.append(f"- before: {', '.join(result.taskmanagers_before) or 'none registered'}")
    out.append(f"- after: {', '.join(result.taskmanagers_after) or 'none registered'}")
    out += ["", "## Jobs", "", "| job | old id | new id | restored from |", "|---|---|---|---|"]
    out += [f"| {j.name} | {j.old_id or '-'} | {j.new_id or '-'} | {j.restored_from or 'fresh'} |" for j in result.jobs]
    out += ["", "## Verification", ""]
    out += [f"- [{'x' if c.passed else ' '}] {c.name}: {c.detail}" for c in result.checks] or ["Not run."]
    out += ["", "## Findings after", ""]
    out += [f"- **{f['code']}** ({f['severity']}): {f['summary']}" for f in result.findings_after] or ["None."]
    out += ["", "## What to do next", ""]
    out += [f"{i}. {step}" for i, step in enumerate(next_steps(result), 1)]
    return "\n".join(out) + "\n"

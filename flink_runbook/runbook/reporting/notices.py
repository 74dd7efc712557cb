"""What the on-call channel hears, and when (pure): short messages with the cluster, the finding codes,
the job, the restore point and a link to the run. Sent through Prefect notification blocks by the shell."""

from __future__ import annotations

from dataclasses import dataclass

from flink_runbook.redaction import redact_urls
from flink_runbook.runbook.deciding.plan import RecoveryPlan
from flink_runbook.runbook.model import RecoveryResult, RecoveryStatus
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.findings import Severity


@dataclass(frozen=True)
class Notice:
    event: str  # one of inventory.NOTICE_EVENTS
    cluster: str
    subject: str
    body: str

    def __post_init__(self) -> None:
        # Refusals and failures quote REST errors, and those their URLs: no credential reaches the channel.
        object.__setattr__(self, "subject", redact_urls(self.subject))
        object.__setattr__(self, "body", redact_urls(self.body))


def _codes(diagnosis: Diagnosis) -> str:
    serious = [f.code for f in diagnosis.serious]
    return ", ".join(serious or [f.code for f in diagnosis.findings]) or "none"


def _jobs(plan: RecoveryPlan) -> list[str]:
    lines = []
    for a in plan.resubmits:
        point = (
            f"{a.restore_point.kind} {a.restore_point.checkpoint_id} ({a.restore_point.path})"
            if a.restore_point
            else "nothing: FRESH"
        )
        lines.append(f"Job {a.target}: restore from {point}")
    return lines


def _link(run_url: str | None) -> list[str]:
    return [f"Run: {run_url}"] if run_url else []


def unhealthy_notice(cluster: str, diagnosis: Diagnosis, run_url: str | None) -> Notice:
    errors = diagnosis.serious[:3]
    body = [f"Findings: {_codes(diagnosis)}", *[f"- {f.summary}" for f in errors], *_link(run_url)]
    return Notice("unhealthy", cluster, f"flink-runbook: {cluster} is unhealthy ({_codes(diagnosis)})", "\n".join(body))


def recovery_started_notice(cluster: str, diagnosis: Diagnosis, plan: RecoveryPlan, run_url: str | None) -> Notice:
    steps = ", ".join(f"{a.action} {a.target}" for a in plan.actions)
    body = [f"Findings: {_codes(diagnosis)}", f"Steps: {steps}", *_jobs(plan), *_link(run_url)]
    return Notice("recovery_started", cluster, f"flink-runbook: recovering {cluster}", "\n".join(body))


def recovery_outcome_notice(result: RecoveryResult) -> Notice | None:
    """recovered (with the MTTR) or recovery_failed (failed or refused); None for a run that did nothing."""
    codes = ", ".join(f["code"] for f in result.findings_before if Severity(f["severity"]).unhealthy) or "none"
    jobs = [f"Job {j.name}: {j.old_id or '-'} -> {j.new_id or '-'}, restored from {j.restored_from or 'nothing'}"
            for j in result.jobs]
    if result.status == RecoveryStatus.RECOVERED:
        mttr = f"MTTR {result.mttr_s:.1f}s" if result.mttr_s is not None else f"in {result.duration_s:.1f}s"
        body = [f"Findings: {codes}", *jobs, f"Verified: {len(result.checks)} checks passed", *_link(result.run_url)]
        return Notice(
            "recovered", result.cluster, f"flink-runbook: {result.cluster} recovered, {mttr}", "\n".join(body)
        )
    if result.status in (RecoveryStatus.FAILED, RecoveryStatus.REFUSED, RecoveryStatus.TIMED_OUT):
        why = [f"Refused: {r}" for r in result.refusals][:3]
        why += [f"Failed: {a.action} {a.target}: {a.detail}" for a in result.actions if a.status == "failed"][:3]
        why += [f"Not verified: {c.name}: {c.detail}" for c in result.checks if not c.passed][:3]
        body = [f"Findings: {codes}", *jobs, *why, "Next: read the report; a human decides now.",
                *_link(result.run_url)]
        return Notice("recovery_failed", result.cluster, f"flink-runbook: recovery of {result.cluster} {result.status}",
                      "\n".join(body))
    return None


def approval_needed_notice(
    cluster: str,
    diagnosis: Diagnosis,
    plan: RecoveryPlan,
    risks: tuple[str, ...],
    timeout_s: float,
    run_url: str | None,
) -> Notice:
    body = [
        f"Findings: {_codes(diagnosis)}",
        *[f"Risky: {risk}" for risk in risks[:3]],
        *_jobs(plan),
        f"Approve or reject in the Prefect UI (Resume); unanswered after {timeout_s:.0f}s it is rejected.",
        *_link(run_url),
    ]
    return Notice(
        "approval_needed", cluster, f"flink-runbook: {cluster} recovery waits for your approval", "\n".join(body)
    )


def escalated_notice(cluster: str, diagnosis: Diagnosis, reason: str) -> Notice:
    body = [
        f"Findings: {_codes(diagnosis)}",
        f"Why: {reason}",
        f"Next: `flink-runbook diagnose --cluster {cluster}`, fix the cause, then "
        f"`flink-runbook monitor reset --cluster {cluster}`.",
    ]
    return Notice("escalated", cluster, f"flink-runbook: {cluster} escalated, a human is needed", "\n".join(body))

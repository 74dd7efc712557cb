"""What a recovery did: the timeline, the jobs, the verification, and the report (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from flink_runbook.runbook.verify import Check


class StepStatus(StrEnum):
    PLANNED = "planned"  # a dry run's step, or one not started yet
    DONE = "done"
    SKIPPED = "skipped"  # not needed once looked at (Flink restarted the job by itself)
    FAILED = "failed"


class RecoveryStatus(StrEnum):
    HEALTHY = "healthy"  # nothing to do
    PLANNED = "planned"  # a dry run
    RECOVERED = "recovered"  # done and verified
    FAILED = "failed"
    REFUSED = "refused"  # nothing safe to do: a human decides
    # A triggered run that found another recovery of the cluster holding it, and nothing left once that ended.
    SUPERSEDED = "superseded"

    @property
    def ok(self) -> bool:
        """A run that needs nobody: healthy, recovered, a dry run's plan, or another run's recovery."""
        return self in (
            RecoveryStatus.HEALTHY, RecoveryStatus.RECOVERED, RecoveryStatus.PLANNED, RecoveryStatus.SUPERSEDED
        )  # fmt: skip


@dataclass
class ActionRecord:
    action: str
    target: str
    reason: str
    status: StepStatus = StepStatus.PLANNED
    started_at: str | None = None
    duration_s: float | None = None
    detail: str = ""


@dataclass
class JobRecord:
    name: str
    old_id: str | None
    new_id: str | None = None
    restored_from: str | None = None


@dataclass
class RecoveryResult:
    cluster: str
    status: RecoveryStatus
    dry_run: bool = False
    actions: list[ActionRecord] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    taskmanagers_before: list[str] = field(default_factory=list)
    taskmanagers_after: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    findings_before: list[dict] = field(default_factory=list)
    findings_after: list[dict] = field(default_factory=list)
    started_at: str = ""
    duration_s: float = 0.0

    @property
    def verified(self) -> bool:
        return self.status in (RecoveryStatus.RECOVERED, RecoveryStatus.HEALTHY) and all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["verified"] = self.verified
        return data


def utc_now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


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


def recovery_report(result: RecoveryResult) -> str:
    title = {
        RecoveryStatus.HEALTHY: "healthy, nothing to do",
        RecoveryStatus.PLANNED: "dry run",
        RecoveryStatus.RECOVERED: "RECOVERED",
        RecoveryStatus.FAILED: "RECOVERY FAILED",
        RecoveryStatus.REFUSED: "RECOVERY REFUSED",
        RecoveryStatus.SUPERSEDED: "another recovery ran first, nothing left to do",
    }[RecoveryStatus(result.status)]
    out = [f"# Recovery of Flink cluster {result.cluster}: {title}", ""]
    out.append(f"Started {result.started_at}, took {result.duration_s:.1f}s.")
    out += ["", "## What was wrong", ""]
    out += [f"- **{f['code']}** ({f['severity']}): {f['summary']}" for f in result.findings_before] or ["Nothing."]
    out += ["", "## Timeline", "", "| step | target | reason | result | started | took |", "|---|---|---|---|---|---|"]
    for a in result.actions:
        took = f"{a.duration_s:.1f}s" if a.duration_s is not None else ""
        detail = f"{a.status}: {a.detail}" if a.detail else a.status
        out.append(f"| {a.action} | {a.target} | {a.reason} | {detail} | {a.started_at or ''} | {took} |")
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

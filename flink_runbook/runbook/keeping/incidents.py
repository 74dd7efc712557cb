"""The last incidents of a cluster, one row each: what the Incidents table and `status` show (pure)."""

from __future__ import annotations

from flink_runbook.runbook.model import RecoveryResult, RecoveryStatus

INCIDENTS_KEPT = 10
# Runs that were not incidents: nothing was wrong, a dry run, another run's recovery.
NOT_INCIDENTS = (RecoveryStatus.HEALTHY, RecoveryStatus.PLANNED, RecoveryStatus.SUPERSEDED)


def incident_row(result: RecoveryResult) -> dict | None:
    """when, findings, action, MTTR, restore point, result, run; None when the run was not an incident."""
    if RecoveryStatus(result.status) in NOT_INCIDENTS:
        return None
    serious = [f["code"] for f in result.findings_before if f["severity"] in ("error", "critical")]
    # The steps in the order they ran (each once; a step never started last), as the timeline reads.
    ran = sorted(result.actions, key=lambda a: a.started_s if a.started_s is not None else float("inf"))
    actions = list(dict.fromkeys(a.action for a in ran))
    restored = "; ".join(f"{j.name} from {j.restored_from or 'nothing (fresh)'}" for j in result.jobs) or "-"
    return {
        "when": result.started_at,
        "findings": ", ".join(serious) or "-",
        "action": ", ".join(actions) or "none",
        "mttr_s": result.mttr_s,
        "restore_point": restored[:300],
        "result": str(result.status),
        "run": result.run_url or "",
    }


def with_incident(rows: list[dict], row: dict, kept: int = INCIDENTS_KEPT) -> list[dict]:
    """Newest first, at most `kept`."""
    return [row, *rows][:kept]

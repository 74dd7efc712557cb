"""Whether the monitor may start a recovery now (pure): guard rails against making things worse.

Inputs are what Prefect already records: the recover flow runs of the cluster
(running, recent, how they ended) and the cluster's escalation, if any. The
decision is one of:

    none      healthy; nothing to do
    recover   unhealthy, no recovery running, cooldown over, under the flap limit
    wait      unhealthy, but a recovery is running or the cooldown has not passed
    escalate  unhealthy after max_recoveries recoveries within the window: stop, call a human
    hold      escalated earlier; hands off until healthy for resume_after_healthy_s or reset
    resume    escalated earlier, healthy long enough: the monitor acts again
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from flink_runbook.inventory import MonitorSettings
from flink_runbook.runbook.keeping.host_lock import LockHolder

# Prefect state types of a recover run that has not finished (or not started) yet.
ACTIVE_STATES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})
# Runs that never acted: rejected by the deployment's concurrency limit or cancelled by a human.
NOT_COUNTED_STATES = frozenset({"CANCELLED", "CANCELLING"})
# The state name a recover run ends with when it did nothing: it found the cluster healthy, the guard rails
# held it (cooldown, escalation, flap limit), or another recovery kept the cluster's lock for the whole wait.
# It spent nothing, so it neither counts toward the flap limit nor restarts the cooldown: a burst of duplicate
# events must not turn the next real fault into an escalation.
NOTHING_DONE = "Nothing done"
# A run whose process died (the serving process or worker SIGKILLed, a reboot) was cut short, not finished:
# the cluster had no settled result to cool down from, so the next tick finishes the recovery at once.
# It still counts toward the flap limit.
CUT_SHORT_STATES = frozenset({"CRASHED"})


def recovers_cluster(run_parameters: dict, cluster_name: str, config: Path) -> bool:
    """Whether a recover run acts on this cluster: named in it, or all clusters of the same inventory file
    (all_clusters; a run naming none and not asking for all refuses, so does not count)."""
    if run_parameters.get("dry_run"):
        return False
    named = run_parameters.get("cluster")
    if named:
        return named == cluster_name
    if not run_parameters.get("all_clusters"):
        return False
    return Path(str(run_parameters.get("config", ""))).resolve() == config.resolve()


def dead_runs(runs: list[RecoveryRun], last_holder: LockHolder | None, held: bool) -> set[str]:
    """Recover runs Prefect still shows RUNNING whose process is gone: the run that last took the cluster's
    host lock, when nobody holds it now and it was never released (a released lock was let go on the way
    out; a lock a dead process held is freed by the kernel, not released)."""
    if last_holder is None or held or last_holder.released:
        return set()
    return {r.id for r in runs if r.id == last_holder.flow_run_id and r.state == "RUNNING"}


@dataclass(frozen=True)
class RecoveryRun:
    """One recover flow run of this cluster, as Prefect recorded it (times in epoch seconds):
    what the flap limit counts and the cooldown waits for."""

    name: str
    state: str
    expected_start: float
    ended_at: float | None = None
    id: str = ""
    state_name: str = ""  # Prefect's name of the state (NOTHING_DONE: a run that did nothing)
    started_at: float | None = None  # when it began to run (None: not yet)

    @property
    def counted(self) -> bool:
        """Whether the run spent the flap budget: it may have acted (cancelled and idle runs did not)."""
        return self.state not in NOT_COUNTED_STATES and self.state_name != NOTHING_DONE


@dataclass(frozen=True)
class Escalation:
    escalated_at: float
    reason: str
    # When the cluster was first seen healthy again since the escalation (None: not yet).
    healthy_since: float | None = None

    def to_dict(self) -> dict:
        return {"escalated_at": self.escalated_at, "reason": self.reason, "healthy_since": self.healthy_since}

    @classmethod
    def from_dict(cls, data: dict) -> Escalation:
        return cls(float(data["escalated_at"]), str(data["reason"]), data.get("healthy_since"))


class GuardAction(StrEnum):
    """What the monitor does about a cluster this tick."""

    NONE = "none"  # healthy
    RECOVER = "recover"  # unhealthy, and the guard rails allow a recovery: the trigger starts one
    WAIT = "wait"  # a recovery runs, or the cooldown after one has not passed
    ESCALATE = "escalate"  # too many recoveries in the window: a human looks
    HOLD = "hold"  # escalated: the monitor does not act until reset or healthy long enough
    RESUME = "resume"  # healthy long enough after an escalation: acting again


@dataclass(frozen=True)
class GuardDecision:
    action: GuardAction
    reason: str
    # The escalation to keep after this tick (None: no escalation).
    escalation: Escalation | None = None
    recent_recoveries: int = 0


def decide_recovery(
    healthy: bool,
    runs: list[RecoveryRun],
    escalation: Escalation | None,
    settings: MonitorSettings,
    now: float,
    *,
    holding_the_lock: bool = False,
) -> GuardDecision:
    """`holding_the_lock`: the asking run holds the cluster's recovery lock, so another scheduled or running
    recovery is queued behind it, not acting: it does not make this one wait (else the first of two
    triggered runs would defer to the second and hand it the cluster late)."""
    counted = [r for r in runs if r.counted and r.expected_start >= now - settings.window_s]
    recent = len(counted)
    if escalation is not None:
        if not healthy:
            return GuardDecision(
                GuardAction.HOLD,
                f"escalated {now - escalation.escalated_at:.0f}s ago ({escalation.reason}); "
                "the monitor does not act until a human resets it or the cluster recovers",
                replace(escalation, healthy_since=None),
                recent,
            )
        healthy_since = escalation.healthy_since if escalation.healthy_since is not None else now
        if now - healthy_since >= settings.resume_after_healthy_s:
            reason = f"healthy for {now - healthy_since:.0f}s since the escalation; acting again"
            return GuardDecision(GuardAction.RESUME, reason, None, recent)
        return GuardDecision(
            GuardAction.HOLD,
            f"healthy for {now - healthy_since:.0f}s of {settings.resume_after_healthy_s:.0f}s "
            "needed before the monitor acts again",
            replace(escalation, healthy_since=healthy_since),
            recent,
        )
    if healthy:
        return GuardDecision(GuardAction.NONE, "healthy", None, recent)
    active = [r for r in runs if r.state in ACTIVE_STATES]
    if active and not holding_the_lock:
        run = active[0]
        return GuardDecision(GuardAction.WAIT, f"recovery {run.name} is {run.state.lower()}", None, recent)
    ended = [r.ended_at for r in counted if r.ended_at is not None and r.state not in CUT_SHORT_STATES]
    if ended and now - max(ended) < settings.cooldown_s:
        return GuardDecision(
            GuardAction.WAIT,
            f"cooldown: the last recovery ended {now - max(ended):.0f}s ago (cooldown {settings.cooldown_s:.0f}s)",
            None,
            recent,
        )
    if recent >= settings.max_recoveries:
        reason = (
            f"{recent} recoveries within {settings.window_s:.0f}s (limit {settings.max_recoveries}) "
            "and the cluster is still unhealthy"
        )
        return GuardDecision(GuardAction.ESCALATE, reason, Escalation(escalated_at=now, reason=reason), recent)
    reason = f"unhealthy; recovery {recent + 1} of at most {settings.max_recoveries} in the window"
    return GuardDecision(GuardAction.RECOVER, reason, None, recent)

"""`flink-runbook status`: every cluster on one screen (pure): health, TaskManagers, each job's state and
checkpoint age, a recovery that is running now, the last incident and the guard's state."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.deciding.guard import ACTIVE_STATES, Escalation, RecoveryRun, decide_recovery
from flink_runbook.runbook.keeping.person_stops import left_stopped
from flink_runbook.runbook.observing.diagnosis import Diagnosis


@dataclass(frozen=True)
class JobStatus:
    name: str
    state: str
    checkpoint_age_s: float | None  # since the last completed checkpoint; None: none known
    stopped_by_person: str | None = None  # a stop the runbook leaves alone until released: what was seen


@dataclass(frozen=True)
class ClusterStatus:
    cluster: str
    health: str  # healthy | UNHEALTHY | NOT CHECKED
    findings: list[str] = field(default_factory=list)
    taskmanagers: str = ""
    jobs: list[JobStatus] = field(default_factory=list)
    guard: str = ""  # what the monitor would do now, and why
    recoveries_left: int | None = None  # of the flap limit's budget in the window
    escalated: str | None = None
    last_incident: dict | None = None
    error: str = ""
    # A recover run acting or queued now: during an incident the live checks may already look healthy (a thawed
    # TaskManager re-registers in seconds) while the recovery still verifies; the incident is recorded only at its end.
    recovering: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def cluster_status(
    cluster: ClusterSpec,
    diagnosis: Diagnosis | None,
    error: str,
    runs: list[RecoveryRun],
    escalation: Escalation | None,
    incidents: list[dict],
    now: float | None = None,
    history_known: bool = True,
) -> ClusterStatus:
    """`history_known` False: no Prefect record was read, so the guard's state is not guessed."""
    now = time.time() if now is None else now
    last = incidents[0] if incidents else None
    recovering = recovery_in_progress(runs, now)
    if diagnosis is None:
        return ClusterStatus(cluster.name, "NOT CHECKED", error=error, last_incident=last,
                             escalated=escalation.reason if escalation else None, recovering=recovering)
    seen = diagnosis.observation
    decision = decide_recovery(diagnosis.healthy, runs, escalation, cluster.monitor, now)
    jobs = []
    for view in seen.jobs:
        info = view.info
        latest = info.checkpoints.latest_completed if info else None
        age = (seen.observed_at_ms - latest.completed_at_ms) / 1000 if latest and latest.completed_at_ms else None
        stop = view.remembered_stop
        if left_stopped(info, cluster.jobs_by_name.get(view.name), stop):
            stopped = stop.describe() if stop is not None else "seen stopped now (not remembered: state dir writable?)"
        else:
            stopped = None
        jobs.append(JobStatus(view.name, info.state if info else "MISSING", age, stopped))
    registered = len(seen.taskmanagers)
    free = sum(tm.slots_free for tm in seen.taskmanagers)
    total = sum(tm.slots_total for tm in seen.taskmanagers)
    return ClusterStatus(
        cluster=cluster.name,
        health="healthy" if diagnosis.healthy else "UNHEALTHY",
        findings=[f.code for f in diagnosis.serious],
        taskmanagers=f"{registered}/{cluster.expected_taskmanagers} registered, {free}/{total} slots free",
        jobs=jobs,
        guard=f"{decision.action}: {decision.reason}" if history_known else "unknown (no Prefect record read)",
        recoveries_left=max(0, cluster.monitor.max_recoveries - decision.recent_recoveries) if history_known else None,
        escalated=escalation.reason if escalation else None,
        last_incident=last,
        recovering=recovering,
    )


def recovery_in_progress(runs: list[RecoveryRun], now: float) -> str | None:
    """`recover-c1-2026-12-06T07:26:49Z running for 12s (1 more queued)`, or None when no recover run is active."""
    active = sorted((r for r in runs if r.state in ACTIVE_STATES), key=lambda r: r.expected_start)
    if not active:
        return None
    acting = next((r for r in active if r.state in ("RUNNING", "CANCELLING", "PAUSED")), active[0])
    doing = "waiting to start" if acting.state in ("SCHEDULED", "PENDING") else acting.state.lower()
    text = f"{acting.name} {doing} for {max(0.0, now - acting.expected_start):.0f}s"
    if len(active) > 1:
        text += f" ({len(active) - 1} more queued)"
    return text


GREEN, RED, YELLOW, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


def status_lines(statuses: list[ClusterStatus], colour: bool = False) -> list[str]:
    """One block per cluster, for a terminal; ANSI colours only when `colour`."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if colour else text

    lines = []
    for s in statuses:
        tone = GREEN if s.health == "healthy" else RED
        head = f"{paint(s.cluster, BOLD)}  {paint(s.health, tone)}"
        if s.findings:
            head += "  " + paint(", ".join(s.findings), RED)
        lines.append(head)
        if s.error:
            lines.append(f"  {paint('not checked:', YELLOW)} {s.error}")
        if s.taskmanagers:
            lines.append(f"  TaskManagers  {s.taskmanagers}")
        for job in s.jobs:
            age = (
                f"last checkpoint {job.checkpoint_age_s:.0f}s ago"
                if job.checkpoint_age_s is not None
                else "no checkpoint"
            )
            if job.stopped_by_person:  # a decision, not a fault: not red
                lines.append(f"  job {job.name:<20} {paint(job.state, YELLOW)}  stopped by a person: "
                             f"{job.stopped_by_person}; left alone until `flink-runbook stopped release`")
                continue
            lines.append(f"  job {job.name:<20} {paint(job.state, GREEN if job.state == 'RUNNING' else RED)}  {age}")
        if s.recovering:
            lines.append(f"  {paint('RECOVERING', YELLOW)}    {s.recovering}: its steps are in that run's log in the "
                         "Prefect UI; the incident is recorded when it ends")
        if s.guard:
            budget = f"  ({s.recoveries_left} recoveries left in the window)" if s.recoveries_left is not None else ""
            lines.append(f"  guard         {s.guard}{budget}")
        if s.escalated:
            lines.append(f"  {paint('ESCALATED', RED)}     {s.escalated}")
        if s.last_incident:
            i = s.last_incident
            mttr = f", MTTR {i['mttr_s']:.1f}s" if i.get("mttr_s") is not None else ""
            lines.append(
                paint(f"  last incident {i['when']}: {i['findings']} -> {i['action']}: {i['result']}{mttr}", DIM)
            )
        else:
            lines.append(paint("  last incident none recorded", DIM))
    return lines

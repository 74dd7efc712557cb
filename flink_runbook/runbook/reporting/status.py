"""`flink-runbook status`: every cluster on one screen (pure): health, TaskManagers, each job's state and
checkpoint age, a recovery that is running now, the last incident and the guard's state."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.deciding.guard import ACTIVE_STATES, Escalation, RecoveryRun, decide_recovery
from flink_runbook.runbook.keeping.person_stops import left_stopped
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.findings import FindingCode


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
    gone: frozenset[str] = frozenset(),
) -> ClusterStatus:
    """`history_known` False: no Prefect record was read, so the guard's state is not guessed. `gone`: runs
    whose process is gone (recovery_in_progress)."""
    now = time.time() if now is None else now
    last = incidents[0] if incidents else None
    recovering = recovery_in_progress(runs, now, gone)
    if diagnosis is None:
        return ClusterStatus(cluster.name, "NOT CHECKED", error=error, last_incident=last,
                             escalated=escalation.reason if escalation else None, recovering=recovering)
    seen = diagnosis.observation
    decision = decide_recovery(diagnosis.healthy, runs, escalation, cluster.monitor, now)
    # An application that ended (its JobManager exited 0) is a decision or a finished job: its job is not MISSING.
    ended = any(f.code == FindingCode.APPLICATION_ENDED for f in diagnosis.findings)
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
        jobs.append(JobStatus(view.name, info.state if info else "ENDED" if ended else "MISSING", age, stopped))
    if ended and not seen.jobs:  # its JobManager is down: the jobs are the inventory's
        jobs = [JobStatus(job.name, "ENDED", None) for job in cluster.jobs]
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


# A run still waiting to start after this long is not a recovery in progress: nothing picks it up.
NOT_STARTED_AFTER_S = 60.0


def recovery_in_progress(runs: list[RecoveryRun], now: float, gone: frozenset[str] = frozenset()) -> str | None:
    """What the cluster's active recover runs are doing, for a person: `recover-c1-… running for 12s (1 more
    queued)`; None when none is active. `gone`: ids of RUNNING runs whose process no longer holds the recovery
    lock (Prefect still shows them running; the monitor's next tick marks them Crashed)."""
    active = [r for r in runs if r.state in ACTIVE_STATES]
    if not active:
        return None
    started = sorted((r for r in active if r.state not in ("SCHEDULED", "PENDING") and r.id not in gone),
                     key=lambda r: r.started_at or r.expected_start)  # the oldest acts; the others wait for its lock
    waiting = sorted((r for r in active if r.state in ("SCHEDULED", "PENDING")), key=lambda r: r.expected_start)
    dead = [r for r in active if r.id in gone]
    stale = [r for r in waiting if now - r.expected_start > NOT_STARTED_AFTER_S]
    fresh = [r for r in waiting if r not in stale]
    parts = []
    if started:
        run = started[0]
        age = f"{max(0.0, now - (run.started_at or run.expected_start)):.0f}s"
        if run.state == "PAUSED":
            parts.append(f"{run.name} waits for a person's approval ({age}): answer it on the run's page in the "
                         "Prefect UI")
        else:
            parts.append(f"{run.name} {run.state.lower()} for {age}")
        fresh = started[1:] + fresh
    elif fresh:
        parts.append(f"{fresh[0].name} waiting to start for {max(0.0, now - fresh[0].expected_start):.0f}s")
        fresh = fresh[1:]
    if fresh:
        parts[-1] += f" ({len(fresh)} more queued)"
    if stale:
        parts.append(f"{len(stale)} run(s) not started after {now - stale[0].expected_start:.0f}s ({stale[0].name}): "
                     "is `flink-runbook serve` (or a worker of the recover deployment) running?")
    for run in dead:
        parts.append(f"{run.name} shows RUNNING but its process is gone (it no longer holds the recovery lock); "
                     "the monitor's next tick marks it Crashed")
    return "; ".join(parts)


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
            if job.state == "ENDED":  # a decision or a finished job, not a fault: not red
                lines.append(f"  job {job.name:<20} {paint('ENDED', YELLOW)}  the application ended (its JobManager "
                             "exited 0: FINISHED, or CANCELED by a person); left as it is")
                continue
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

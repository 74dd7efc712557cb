"""One recovery of one cluster, in the runbook's order: observe, plan, gate, act, verify, report.

The driver decides; two ports do the I/O. `ClusterPort` looks at and changes the cluster (Docker, REST,
disk), one runbook step per call. `RecordsPort` is what the orchestrator keeps and says: the recovery
lock, escalations, the guard rails, a human's approval, notices, the live progress and the report.
The Prefect flow (flows/recover.py) gives both as tasks; unit tests give in-memory fakes. Every door
(the CLI, the monitor's trigger, the fault watcher, a UI run) runs this one function.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from typing import Protocol

from flink_runbook.inventory import ApprovalPolicy, ClusterSpec, JobSpec
from flink_runbook.runbook.deciding.approval import ApprovalDecision, needs_approval, not_approved_refusal, risky_steps
from flink_runbook.runbook.deciding.guard import Escalation
from flink_runbook.runbook.deciding.plan import Action, PlannedAction, RecoveryPlan
from flink_runbook.runbook.deciding.verdict import verdict
from flink_runbook.runbook.keeping.host_lock import RecoveryLockTimeout
from flink_runbook.runbook.model import Progress, RecoveryResult, RecoveryStatus, Resubmitted, utc_now_iso
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.reporting.notices import Notice, recovery_outcome_notice, recovery_started_notice

# The runbook's fix before the resubmissions, in its order; a failed step stops the later ones (Progress.stopped).
CONTAINER_STEPS = (
    Action.RECONNECT_NETWORKS,
    Action.UNPAUSE_CONTAINERS,
    Action.START_JOBMANAGER,
    Action.RESTART_TASKMANAGERS,
    Action.WAIT_FOR_TASKMANAGERS,
)
CHANGED_WHILE_WAITING = (
    "the cluster changed while the recovery waited for approval; what was approved is not what would be "
    "done now: run recover again to be asked about the new plan"
)


@dataclass(frozen=True)
class RecoveryTurn:
    """This run holds the cluster's recovery; `waited` says whether another recovery held it first."""

    waited: bool


class ClusterPort(Protocol):
    """Everything that looks at or changes one cluster."""

    def diagnose(self) -> Diagnosis: ...
    def plan(self, diagnosis: Diagnosis) -> RecoveryPlan: ...
    def step(self, action: Action, plan: RecoveryPlan, progress: Progress) -> Progress: ...
    def resubmit(self, planned: PlannedAction, progress: Progress) -> Progress: ...
    def verify_job(self, job: Resubmitted, progress: Progress) -> Progress: ...
    def verify_stability(self, plan: RecoveryPlan, progress: Progress) -> Progress: ...


class RecordsPort(Protocol):
    """What the orchestrator keeps and says about one cluster's recoveries."""

    def one_recovery_at_a_time(self) -> AbstractContextManager[RecoveryTurn]: ...  # RecoveryLockTimeout: busy
    def guard_refusal(self) -> str | None: ...
    def escalation(self) -> Escalation | None: ...
    def escalate(self, escalation: Escalation) -> None: ...
    def ask_for_approval(
        self, plan: RecoveryPlan, diagnosis: Diagnosis, risks: tuple[str, ...], asked_before: int
    ) -> ApprovalDecision: ...
    def tell_the_story(self, diagnosis: Diagnosis | None, plan: RecoveryPlan) -> None: ...  # None: not looked
    def show_progress(self, progress: Progress, total_steps: int) -> None: ...
    def notify(self, notice: Notice) -> None: ...
    def run_url(self) -> str | None: ...
    def write_report(self, result: RecoveryResult) -> RecoveryResult: ...


# -- the rules (pure) ---------------------------------------------------------------------------------------


def is_superseded(guarded: bool, waited: bool, healthy: bool, held_by_guard: bool) -> bool:
    """A triggered run that queued behind another recovery of the cluster, with nothing left to do once that
    one ended, is a duplicate: cancelled, not counted (as the deployment's CANCEL_NEW did, per cluster)."""
    return guarded and waited and (healthy or held_by_guard)


def risks_to_ask(
    plan: RecoveryPlan,
    approval_policy: str,
    escalated: str | None,
    jobs: Sequence[JobSpec],
    asked: Sequence[ApprovalDecision],
) -> tuple[str, ...] | None:
    """The risky steps a human must approve before the plan runs; None: it runs as it is. What a human
    approved earlier in this run is not asked again (the rest of a plan, after a started JobManager is
    seen again, is asked about only for what is new in it)."""
    approved = {risk for d in asked if d.approved for risk in d.risks}
    risks = tuple(r for r in risky_steps(plan, escalated, jobs) if r not in approved)
    if any(d.approved for d in asked) and not risks or not needs_approval(approval_policy, plan, risks):
        return None
    return risks


def plan_after_the_wait(
    again: RecoveryPlan,
    approved: tuple[str, ...],
    escalated: str | None,
    jobs: Sequence[JobSpec],
    asked: Sequence[ApprovalDecision],
) -> RecoveryPlan:
    """Minutes may have passed while a human decided: the plan from a new look runs only if it risks
    exactly what was approved; otherwise nothing runs and the operator is asked to start again."""
    earlier = {risk for d in asked[:-1] if d.approved for risk in d.risks}
    new_risks = tuple(r for r in risky_steps(again, escalated, jobs) if r not in earlier)
    if again.actions and new_risks != approved:
        return RecoveryPlan(again.cluster, refusals=(CHANGED_WHILE_WAITING,))
    return again


def outcome_is_news(result: RecoveryResult, before: Diagnosis, *, dry_run: bool, superseded: bool, held: bool) -> bool:
    """The operators hear how a recovery ended when it acted or refused on an unhealthy cluster. A dry run,
    a duplicate and a run the guard rails held are not news (an escalation was told when it happened)."""
    if dry_run or superseded or held or before.healthy:
        return False
    return bool(result.actions or result.refusals)


def timed_out(result: RecoveryResult, progress: Progress | None) -> bool:
    return progress is not None and progress.past_deadline and not result.status.ok


# -- the driver ---------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one recovery saw and did, for the verdict."""

    before: Diagnosis
    plan: RecoveryPlan
    progress: Progress | None = None
    after: Diagnosis | None = None
    superseded: bool = False
    held: str | None = None


class _Recovery:
    def __init__(self, cluster: ClusterSpec, world: ClusterPort, records: RecordsPort) -> None:
        self.cluster, self.world, self.records = cluster, world, records
        self.asked: list[ApprovalDecision] = []
        self.total_steps = 0

    def moved(self, progress: Progress) -> Progress:
        self.records.show_progress(progress, self.total_steps)
        return progress

    def gate(self, plan: RecoveryPlan, diagnosis: Diagnosis) -> RecoveryPlan:
        """The plan as the approval gate lets it run: unchanged, planned again after a wait, or refused. A
        human's no (or no answer) escalates the cluster: the monitor does not ask again every tick."""
        if self.cluster.approval == ApprovalPolicy.NEVER or not plan.actions:  # nothing to ask: no record read either
            return plan
        escalation = self.records.escalation()
        escalated = escalation.reason if escalation else None
        risks = risks_to_ask(plan, self.cluster.approval, escalated, self.cluster.jobs, self.asked)
        if risks is None:
            return plan
        decision = self.records.ask_for_approval(plan, diagnosis, risks, len(self.asked))
        decision = replace(decision, risks=risks)
        self.asked.append(decision)
        if not decision.approved:
            if decision.asked:
                self.records.escalate(Escalation(time.time(), f"recovery {not_approved_refusal(decision)}"))
            return RecoveryPlan(plan.cluster, refusals=(*plan.refusals, not_approved_refusal(decision)))
        if not decision.asked:
            return plan
        again = self.world.plan(self.world.diagnose())
        return plan_after_the_wait(again, risks, escalated, self.cluster.jobs, self.asked)

    def act(self, plan: RecoveryPlan, progress: Progress) -> Progress:
        self.total_steps += len(plan.actions) + len(plan.resubmits)  # each resubmitted job is verified too
        for action in CONTAINER_STEPS:
            progress = self.moved(self.world.step(action, plan, progress))
        for planned in plan.resubmits:
            progress = self.moved(self.world.resubmit(planned, progress))
        return progress

    def under_the_lock(self, turn: RecoveryTurn, guarded: bool) -> _Run:
        # Observe and plan inside the lock: the world as it is now, not as the trigger saw it.
        before = self.world.diagnose()
        held = self.records.guard_refusal() if guarded and not before.healthy else None
        run = _Run(before, RecoveryPlan(self.cluster.name), held=held)
        run.superseded = is_superseded(guarded, turn.waited, before.healthy, held is not None)
        if not run.superseded:
            run.plan = RecoveryPlan(self.cluster.name, refusals=(held,)) if held else self.world.plan(before)
        self.records.tell_the_story(before, run.plan)
        plan = self.gate(run.plan, before)
        progress = Progress(deadline_at=time.time() + self.cluster.recovery.deadline_s)
        if plan.actions:
            self.records.notify(recovery_started_notice(self.cluster.name, before, plan, self.records.run_url()))
            self.total_steps = 1  # the stability window
            progress = self.act(plan, progress)
            if plan.observe_again and not progress.stopped:
                # Containers came back (unpaused, JobManager started): the rest is planned from what is seen now.
                seen_again = self.world.diagnose()
                answered = len(self.asked)
                rest = self.gate(self.world.plan(seen_again), seen_again)
                if len(self.asked) > answered:  # a human's wait is not the recovery's: its deadline starts again
                    progress = replace(progress, deadline_at=time.time() + self.cluster.recovery.deadline_s)
                progress = self.act(rest, progress)
                plan = plan.followed_by(rest)
            # Verify: each job runs, restored, with zero exceptions and a new checkpoint; then it stays so.
            for job in progress.resubmitted:
                progress = self.moved(self.world.verify_job(job, progress))
            progress = self.moved(self.world.verify_stability(plan, progress))
            run.after = self.world.diagnose()
        run.plan, run.progress = plan, progress
        return run


def recover_cluster(
    cluster: ClusterSpec, world: ClusterPort, records: RecordsPort, *, dry_run: bool = False, guarded: bool = False
) -> RecoveryResult:
    """Recover one cluster. `dry_run`: observe and plan only, nothing changed and no lock taken. `guarded`
    (the monitor's trigger and the fault watcher set it): the run checks the guard rails itself and does
    nothing they do not allow, whoever asked for it."""
    started_at, started = utc_now_iso(), time.monotonic()
    recovery = _Recovery(cluster, world, records)
    if dry_run:
        before = world.diagnose()
        run = _Run(before, world.plan(before))
    else:
        with ExitStack() as holding:
            try:
                turn = holding.enter_context(records.one_recovery_at_a_time())
            except RecoveryLockTimeout as busy:  # another recovery kept the cluster the whole wait: nothing done
                return _lock_busy(cluster, records, started_at, time.monotonic() - started, str(busy))
            run = recovery.under_the_lock(turn, guarded)
    # Report: the verdict (the lock is already free for the next recovery).
    result = verdict(
        run.before, run.plan, run.progress, run.after, started_at=started_at, duration_s=time.monotonic() - started
    )
    if run.superseded:
        result = replace(result, status=RecoveryStatus.SUPERSEDED)
    if timed_out(result, run.progress):
        result = replace(result, status=RecoveryStatus.TIMED_OUT)
        # Stopped at its deadline, lock released: the monitor does not start it again every tick; a human looks.
        why = f"recovery timed out after recovery.deadline_s={cluster.recovery.deadline_s:.0f}s"
        records.escalate(Escalation(time.time(), why))
    # Nothing was attempted: the flap limit and the cooldown do not count it (flink_runbook.runbook.deciding.guard).
    nothing_done = not dry_run and (run.before.healthy or run.held is not None or run.superseded)
    approval = recovery.asked[-1].to_dict() if recovery.asked else None
    result = replace(result, nothing_done=nothing_done, run_url=records.run_url(), approval=approval)
    result = records.write_report(result)
    if outcome_is_news(result, run.before, dry_run=dry_run, superseded=run.superseded, held=run.held is not None):
        outcome = recovery_outcome_notice(result)
        if outcome is not None:
            records.notify(outcome)
    return result


def _lock_busy(
    cluster: ClusterSpec, records: RecordsPort, started_at: str, duration_s: float, why: str
) -> RecoveryResult:
    result = RecoveryResult(
        cluster.name, RecoveryStatus.REFUSED, refusals=[why], started_at=started_at,
        duration_s=round(duration_s, 2), run_url=records.run_url(), nothing_done=True,
    )
    records.tell_the_story(None, RecoveryPlan(cluster.name, refusals=(why,)))
    return records.write_report(result)


@dataclass(frozen=True)
class RunOutcome:
    """How a recover run over some clusters ends, whatever runs it: `cancelled` (every cluster's recovery was
    a duplicate of another's), `failed` (one was not done: a red run), or completed. `nothing_done`: no
    cluster was acted on, which the guard rails do not count (cooldown, flap limit)."""

    cancelled: bool
    failed: str | None
    nothing_done: bool


def run_outcome(results: Sequence[RecoveryResult]) -> RunOutcome:
    not_ok = [f"{r.cluster} {r.status}" for r in results if not r.status.ok]
    return RunOutcome(
        cancelled=bool(results) and all(r.status == RecoveryStatus.SUPERSEDED for r in results),
        failed=f"recovery not done: {', '.join(not_ok)}; see the recovery report" if not_ok else None,
        nothing_done=bool(results) and all(r.nothing_done for r in results),
    )

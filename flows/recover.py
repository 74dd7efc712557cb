"""recover: restart the TaskManagers, resubmit jobs from their latest retained checkpoint, verify.

The runbook's fix, driven by what it observes: a crash half-way is finished by the next run.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import Cancelled, Completed, Failed

from flink_runbook.flows.approval import ask_for_approval, check_approval_mode
from flink_runbook.flows.locking import one_recovery_at_a_time
from flink_runbook.flows.run_log import keep_engine_lines_out_of_the_way
from flink_runbook.inventory import ClusterSpec, load_inventory
from flink_runbook.runbook.approval import ApprovalDecision, needs_approval, not_approved_refusal, risky_steps
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.execute import Progress
from flink_runbook.runbook.guard import NOTHING_DONE, Escalation
from flink_runbook.runbook.host_lock import RecoveryLockTimeout
from flink_runbook.runbook.notices import recovery_outcome_notice, recovery_started_notice
from flink_runbook.runbook.observe import Depth
from flink_runbook.runbook.plan import RecoveryPlan
from flink_runbook.runbook.recovery_report import RecoveryResult, RecoveryStatus, utc_now_iso
from flink_runbook.runbook.verdict import RecoveryNotDone
from flink_runbook.tasks.diagnose_steps import diagnose_cluster
from flink_runbook.tasks.monitor_steps import read_escalations, store_escalation
from flink_runbook.tasks.notify_steps import notify_operators, run_url
from flink_runbook.tasks.recover_steps import (
    guard_refusal,
    judge_recovery,
    plan_cluster_recovery,
    reconnect_networks,
    restart_taskmanagers,
    resubmit_job,
    start_jobmanager,
    unpause_containers,
    verify_job,
    verify_stability,
    wait_for_taskmanagers,
    write_recovery_report,
)

keep_engine_lines_out_of_the_way()


class LiveProgress:
    """The recovery's progress bar in the UI (a progress artifact), moved on after every step."""

    def __init__(self, cluster: ClusterSpec, plan: RecoveryPlan) -> None:
        # Every planned action, one verification per job, the stability window.
        self.total = len(plan.actions) + len(plan.resubmits) + 1
        self.artifact = create_progress_artifact(
            progress=0.0, key=f"recover-{cluster.name}-progress", description=f"Recovery of {cluster.name}: steps done"
        )

    def moved(self, progress: Progress) -> Progress:
        update_progress_artifact(self.artifact, progress=min(100.0, 100.0 * len(progress.steps) / self.total))
        return progress


def _act(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress, live: LiveProgress) -> Progress:
    """The runbook's fix, one task per step; once a step fails, the later ones are not attempted."""
    progress = live.moved(reconnect_networks(cluster, plan, progress))
    progress = live.moved(unpause_containers(cluster, plan, progress))
    progress = live.moved(start_jobmanager(cluster, plan, progress))
    progress = live.moved(restart_taskmanagers(cluster, plan, progress))
    progress = live.moved(wait_for_taskmanagers(cluster, plan, progress))
    for planned in plan.resubmits:
        progress = live.moved(resubmit_job(cluster, planned, progress))
    return progress


def _tell_the_story(cluster: ClusterSpec, diagnosis: Diagnosis, plan: RecoveryPlan) -> None:
    """What was seen and what will be done, first in the run's log."""
    logger = get_run_logger()
    seen = "; ".join(f"{f.code}: {f.summary}" for f in diagnosis.serious)
    logger.info("SEEN on %s: %s", cluster.name, seen or "healthy")
    if plan.actions:
        logger.info("PLAN for %s: %s", cluster.name, "; then ".join(f"{a.action} {a.target} ({a.reason})"
                                                                  for a in plan.actions))  # fmt: skip
    for refusal in plan.refusals:
        logger.error("REFUSED on %s: %s", cluster.name, refusal)


def _approved(
    cluster: ClusterSpec, plan: RecoveryPlan, diagnosis: Diagnosis, mode: str, asked: list[ApprovalDecision]
) -> RecoveryPlan:
    """The plan as the approval gate lets it run: unchanged, replanned from a new look after a wait, or
    refused. A human's no (or no answer) escalates the cluster: the monitor does not ask again every tick."""
    if cluster.approval == "never" or not plan.actions:  # nothing to ask: no Prefect query either
        return plan
    escalation = read_escalations([cluster.name]).get(cluster.name)
    escalated = escalation.reason if escalation else None
    # What a human approved earlier in this run is not asked again (the rest of the plan, once a started
    # JobManager is seen again, is asked about only for what is new in it).
    approved = {risk for d in asked if d.approved for risk in d.risks}
    risks = tuple(r for r in risky_steps(plan, escalated, cluster.jobs) if r not in approved)
    if any(d.approved for d in asked) and not risks or not needs_approval(cluster.approval, plan, risks):
        return plan
    decision = replace(ask_for_approval(cluster, plan, diagnosis, risks, mode, len(asked)), risks=risks)
    asked.append(decision)
    if not decision.approved:
        if decision.asked:
            store_escalation(cluster.name, Escalation(time.time(), f"recovery {not_approved_refusal(decision)}"))
        return RecoveryPlan(cluster.name, refusals=(*plan.refusals, not_approved_refusal(decision)))
    if not decision.asked:
        return plan
    # Minutes may have passed: act on the cluster as it is now, and only on what was approved.
    again = plan_cluster_recovery(cluster, diagnose_cluster(cluster, Depth.FULL))
    new_risks = tuple(r for r in risky_steps(again, escalated, cluster.jobs) if r not in approved)
    if again.actions and new_risks != risks:
        return RecoveryPlan(cluster.name, refusals=(
            "the cluster changed while the recovery waited for approval; what was approved is not what would be "
            "done now: run recover again to be asked about the new plan",))  # fmt: skip
    return again


def recover_cluster(
    cluster: ClusterSpec, config: Path, dry_run: bool = False, guarded: bool = False, approval_mode: str = "pause"
) -> RecoveryResult:
    started_at, started = utc_now_iso(), time.monotonic()
    progress, after, superseded, asked, held = None, None, False, [], None
    if dry_run:  # observe and plan only: nothing is changed, no lock is taken
        before = diagnose_cluster(cluster, Depth.FULL)
        plan = plan_cluster_recovery(cluster, before)
    else:
        with ExitStack() as holding:
            try:
                turn = holding.enter_context(one_recovery_at_a_time(cluster))
            except RecoveryLockTimeout as busy:  # another recovery kept the cluster the whole wait: nothing done
                return _lock_busy(cluster, started_at, time.monotonic() - started, str(busy))
            # Observe and plan, inside the lock: the world as it is now, not as the trigger saw it
            before = diagnose_cluster(cluster, Depth.FULL)
            held = guard_refusal(cluster, config) if guarded and not before.healthy else None
            # A triggered run that queued behind another recovery of this cluster, with nothing left to do
            # once that one ended, is a duplicate: cancelled (as the deployment's CANCEL_NEW did, per cluster).
            superseded = guarded and turn.waited and (before.healthy or held is not None)
            if superseded:
                plan = RecoveryPlan(cluster.name)
            else:
                plan = RecoveryPlan(cluster.name, refusals=(held,)) if held else plan_cluster_recovery(cluster, before)
            _tell_the_story(cluster, before, plan)
            plan = _approved(cluster, plan, before, approval_mode, asked)
            progress = Progress(deadline_at=time.time() + cluster.recovery.deadline_s)
            if plan.actions:
                notify_operators(cluster, recovery_started_notice(cluster.name, before, plan, run_url()))
                live = LiveProgress(cluster, plan)
                progress = _act(cluster, plan, progress, live)
                if plan.observe_again and not progress.stopped:
                    # Containers came back (unpaused, JobManager started): plan the rest from what is seen now
                    seen_again = diagnose_cluster(cluster, Depth.FULL)
                    answered = len(asked)
                    rest = _approved(cluster, plan_cluster_recovery(cluster, seen_again), seen_again, approval_mode,
                                     asked)  # fmt: skip
                    if len(asked) > answered:  # a human's wait is not the recovery's: its deadline starts again
                        progress = replace(progress, deadline_at=time.time() + cluster.recovery.deadline_s)
                    live.total += len(rest.actions) + len(rest.resubmits)
                    progress = _act(cluster, rest, progress, live)
                    plan = plan.followed_by(rest)
                # Verify: each job runs, restored, with zero exceptions and a new checkpoint; then it stays so
                for job in progress.resubmitted:
                    progress = live.moved(verify_job(cluster, job, progress))
                progress = live.moved(verify_stability(cluster, plan, progress))
                after = diagnose_cluster(cluster, Depth.FULL)
    # Report: the verdict, as an artifact of the run
    duration_s = time.monotonic() - started
    result = judge_recovery(before, plan, progress, after, started_at=started_at, duration_s=duration_s)
    if superseded:
        result = replace(result, status=RecoveryStatus.SUPERSEDED)
    if progress is not None and progress.past_deadline and not result.status.ok:
        result = replace(result, status=RecoveryStatus.TIMED_OUT)
        # Stopped at its deadline, lock released: the monitor does not start it again every tick; a human looks.
        why = f"recovery timed out after recovery.deadline_s={cluster.recovery.deadline_s:.0f}s"
        store_escalation(cluster.name, Escalation(time.time(), why))
    # Nothing was attempted: the flap limit and the cooldown do not count it (flink_runbook.runbook.guard).
    result = replace(result, nothing_done=not dry_run and (before.healthy or held is not None or superseded))
    result = replace(result, run_url=run_url(), approval=asked[-1].to_dict() if asked else None)
    result = write_recovery_report(result)
    # A run the guard rails held (cooldown, escalated) is not news: the escalation was told when it happened.
    outcome = None if dry_run or superseded or held else recovery_outcome_notice(result)
    if outcome is not None and (result.actions or result.refusals) and not before.healthy:
        notify_operators(cluster, outcome)
    return result


def _lock_busy(cluster: ClusterSpec, started_at: str, duration_s: float, why: str) -> RecoveryResult:
    get_run_logger().error("REFUSED on %s: %s", cluster.name, why)
    result = RecoveryResult(cluster.name, RecoveryStatus.REFUSED, refusals=[why], started_at=started_at,
                            duration_s=round(duration_s, 2), run_url=run_url(), nothing_done=True)  # fmt: skip
    return write_recovery_report(result)


@flow(name="recover", description="Restart TaskManagers, resubmit jobs from their last checkpoint, verify.")
def recover_flow(
    config: str,
    cluster: str | None = None,
    dry_run: bool = False,
    all_clusters: bool = False,
    guarded: bool = False,
    approval_mode: str = "pause",
) -> list[dict[str, Any]]:
    """Recover the cluster named `cluster` of the inventory `config`, or every cluster with `all_clusters`.

    `guarded` (the monitor's trigger sets it): the run checks the guard rails itself (escalation,
    cooldown, flap limit) and does nothing they do not allow, whoever posted the event.
    `approval_mode`: how a step that needs a human is approved: pause (this run waits for the UI's or
    the API's answer), yes, prompt (a terminal), refuse (the CLI sets the last three). A run of a
    deployment takes pause or refuse only: a run parameter cannot skip the inventory's approval policy.
    """
    check_approval_mode(approval_mode)
    inventory = load_inventory(config)
    clusters = inventory.to_act_on(cluster, all_clusters)
    results = [recover_cluster(spec, inventory.path, dry_run, guarded, approval_mode).to_dict() for spec in clusters]
    if all(r["status"] == RecoveryStatus.SUPERSEDED for r in results):
        # Not a recovery: the guard rails do not count it (cooldown, flap limit).
        return Cancelled(message="another recovery of the cluster ran first; nothing was left for this run")
    # A run that did nothing anywhere says so in its state's name: the guard rails do not count it.
    name = {"name": NOTHING_DONE} if results and all(r["nothing_done"] for r in results) else {}
    not_ok = [f"{r['cluster']} {r['status']}" for r in results if not RecoveryStatus(r["status"]).ok]
    if not_ok:
        # A red run in the UI. Prefect needs an exception as a failed state's data; it carries the results.
        message = f"recovery not done: {', '.join(not_ok)}; see the recovery report"
        return Failed(message=message, data=RecoveryNotDone(message, results), **name)
    return Completed(data=results, **name) if name else results


def run_recover(
    config: str, cluster: str | None = None, dry_run: bool = False, all_clusters: bool = False,
    approval_mode: str = "refuse",
) -> list[dict[str, Any]]:  # fmt: skip
    """Run the recover flow and return its results whether or not it failed (for the CLI and tests).

    A run that failed for another reason than the recovery's verdict raises what failed it.
    """
    state = recover_flow(config=config, cluster=cluster, dry_run=dry_run, all_clusters=all_clusters,
                         approval_mode=approval_mode, return_state=True)  # fmt: skip
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RecoveryNotDone):
        return outcome.results
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome

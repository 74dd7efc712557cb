"""recover: restart the TaskManagers, resubmit jobs from their latest retained checkpoint, verify.

The runbook's fix, driven by what it observes: a crash half-way is finished by the next run.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Cancelled, Failed

from flink_runbook.flows.locking import one_recovery_at_a_time
from flink_runbook.inventory import ClusterSpec, load_inventory
from flink_runbook.runbook.execute import Progress
from flink_runbook.runbook.observe import Depth
from flink_runbook.runbook.plan import RecoveryPlan
from flink_runbook.runbook.recovery_report import RecoveryResult, RecoveryStatus, utc_now_iso
from flink_runbook.runbook.verdict import RecoveryNotDone
from flink_runbook.tasks.diagnose_steps import diagnose_cluster
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


def _act(cluster: ClusterSpec, plan: RecoveryPlan, progress: Progress) -> Progress:
    """The runbook's fix, one task per step; once a step fails, the later ones are not attempted."""
    progress = reconnect_networks(cluster, plan, progress)
    progress = unpause_containers(cluster, plan, progress)
    progress = start_jobmanager(cluster, plan, progress)
    progress = restart_taskmanagers(cluster, plan, progress)
    progress = wait_for_taskmanagers(cluster, plan, progress)
    for planned in plan.resubmits:
        progress = resubmit_job(cluster, planned, progress)
    return progress


def recover_cluster(cluster: ClusterSpec, config: Path, dry_run: bool = False, guarded: bool = False) -> RecoveryResult:
    started_at, started = utc_now_iso(), time.monotonic()
    progress, after, superseded = None, None, False
    if dry_run:  # observe and plan only: nothing is changed, no lock is taken
        before = diagnose_cluster(cluster, Depth.FULL)
        plan = plan_cluster_recovery(cluster, before)
    else:
        with one_recovery_at_a_time(cluster) as turn:
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
            progress = Progress()
            if plan.actions:
                progress = _act(cluster, plan, progress)
                if plan.observe_again and not progress.stopped:
                    # Containers came back (unpaused, JobManager started): plan the rest from what is seen now
                    seen_again = diagnose_cluster(cluster, Depth.FULL)
                    rest = plan_cluster_recovery(cluster, seen_again)
                    progress = _act(cluster, rest, progress)
                    plan = plan.followed_by(rest)
                # Verify: each job runs, restored, with zero exceptions and a new checkpoint; then it stays so
                for job in progress.resubmitted:
                    progress = verify_job(cluster, job, progress)
                progress = verify_stability(cluster, plan, progress)
                after = diagnose_cluster(cluster, Depth.FULL)
    # Report: the verdict, as an artifact of the run
    duration_s = time.monotonic() - started
    result = judge_recovery(before, plan, progress, after, started_at=started_at, duration_s=duration_s)
    if superseded:
        result = replace(result, status=RecoveryStatus.SUPERSEDED)
    return write_recovery_report(result)


@flow(name="recover", description="Restart TaskManagers, resubmit jobs from their last checkpoint, verify.")
def recover_flow(
    config: str, cluster: str | None = None, dry_run: bool = False, all_clusters: bool = False, guarded: bool = False
) -> list[dict[str, Any]]:
    """Recover the cluster named `cluster` of the inventory `config`, or every cluster with `all_clusters`.

    `guarded` (the monitor's trigger sets it): the run checks the guard rails itself (escalation,
    cooldown, flap limit) and does nothing they do not allow, whoever posted the event.
    """
    inventory = load_inventory(config)
    clusters = inventory.to_act_on(cluster, all_clusters)
    results = [recover_cluster(spec, inventory.path, dry_run, guarded).to_dict() for spec in clusters]
    if all(r["status"] == RecoveryStatus.SUPERSEDED for r in results):
        # Not a recovery: the guard rails do not count it (cooldown, flap limit).
        return Cancelled(message="another recovery of the cluster ran first; nothing was left for this run")
    not_ok = [f"{r['cluster']} {r['status']}" for r in results if not RecoveryStatus(r["status"]).ok]
    if not_ok:
        # A red run in the UI. Prefect needs an exception as a failed state's data; it carries the results.
        message = f"recovery not done: {', '.join(not_ok)}; see the recovery report"
        return Failed(message=message, data=RecoveryNotDone(message, results))
    return results


def run_recover(
    config: str, cluster: str | None = None, dry_run: bool = False, all_clusters: bool = False
) -> list[dict[str, Any]]:
    """Run the recover flow and return its results whether or not it failed (for the CLI and tests).

    A run that failed for another reason than the recovery's verdict raises what failed it.
    """
    state = recover_flow(config=config, cluster=cluster, dry_run=dry_run, all_clusters=all_clusters, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RecoveryNotDone):
        return outcome.results
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome

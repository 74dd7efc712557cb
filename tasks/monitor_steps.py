"""The monitor's steps: a cheap health check per cluster, the guard's inputs from Prefect, the events.

The records themselves are read and written in flink_runbook.records; these tasks only put them on
the monitor run's graph.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flink_runbook.inventory import ClusterSpec
from flink_runbook.records import events, flow_runs, variables
from flink_runbook.runbook.deciding.guard import Escalation, GuardDecision, RecoveryRun, dead_runs, decide_recovery
from flink_runbook.runbook.keeping.host_lock import is_held, lock_file, read_holder
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.fleet_check import ClusterCheck, check_fleet
from flink_runbook.runbook.reporting.events import (
    RESUMED_EVENT,
    ClusterEvent,
    cluster_event,
    cluster_resource,
    escalation_events,
)
from flink_runbook.tasks.clients import secret_value
from flink_runbook.tasks.options import READ_ONLY


@task(name="check the clusters", task_run_name="check {n_clusters} cluster(s)", cache_policy=NO_CACHE)
def check_clusters(clusters: list[ClusterSpec], n_clusters: int) -> list[ClusterCheck]:
    """The runbook's cheap checks of every cluster at once (flink_runbook.runbook.observing.fleet_check): a bounded
    pool, one look per Docker engine, a deadline per cluster. One task run per tick, whatever the fleet."""
    checks = check_fleet(clusters, secret=secret_value)
    logger = get_run_logger()
    for check in checks:
        if check.lineage_warning:
            logger.warning("Cluster %s: %s", check.cluster, check.lineage_warning)
    return checks


read_recovery_histories = task(name="read recovery history", **READ_ONLY)(flow_runs.recovery_histories)
# The monitor and flows/recover.py run these as tasks (seen on the run's graph).
read_escalations = task(name="read escalations", task_run_name="read escalations", **READ_ONLY)(
    variables.read_escalations
)
store_escalation = task(
    name="store escalation", task_run_name="store escalation of {cluster_name}", cache_policy=NO_CACHE
)(variables.store_escalation)
skip_late_backlog = task(name="skip the late backlog", cache_policy=NO_CACHE)(flow_runs.skip_late_runs)


@task(name="mark dead recoveries", cache_policy=NO_CACHE)
def mark_dead_recoveries(
    clusters: list[ClusterSpec], histories: dict[str, list[RecoveryRun]]
) -> dict[str, list[RecoveryRun]]:
    """A recover run SIGKILLed mid-way stays RUNNING in Prefect; the host lock it held was freed by the
    kernel. Such a run is set Crashed (so the guard neither waits an hour for it nor cools down from it).
    Why this stays beside the other cleaners: records.flow_runs.mark_crashed."""
    marked = dict(histories)
    for cluster in clusters:
        path = lock_file(cluster.state_dir, cluster.name)
        holder = read_holder(path)
        runs = histories.get(cluster.name, [])
        dead = dead_runs(runs, holder, is_held(cluster.state_dir, cluster.name))
        if not dead:
            continue
        message = (
            f"its process is gone: it no longer holds the recovery lock {path} (pid {holder.pid} on {holder.host})"
        )
        flow_runs.mark_crashed(dead, message)
        get_run_logger().warning(
            "Cluster %s: recover run(s) %s marked Crashed: %s", cluster.name, sorted(dead), message
        )
        marked[cluster.name] = [replace(r, state="CRASHED", ended_at=time.time()) if r.id in dead else r for r in runs]
    return marked


def guard_decision_now(
    cluster: ClusterSpec, config: Path, own_run_id: str | None = None, *, holding_the_lock: bool = False
) -> GuardDecision:
    """What the guard rails say about recovering this unhealthy cluster now (escalation, a recovery in
    flight, cooldown, flap limit), from Prefect's record; `own_run_id` is the asking run, not counted."""
    runs = [r for r in flow_runs.recovery_histories([cluster], config)[cluster.name] if r.id != own_run_id]
    escalation: Escalation | None = variables.read_escalations([cluster.name]).get(cluster.name)
    return decide_recovery(False, runs, escalation, cluster.monitor, time.time(), holding_the_lock=holding_the_lock)


@task(name="emit cluster events", task_run_name="emit events for {n_clusters} cluster(s)", cache_policy=NO_CACHE)
def emit_cluster_events(verdicts: list[tuple[Diagnosis, GuardDecision]], n_clusters: int) -> dict[str, list[str]]:
    """Each cluster's health event (and escalation events); returns the event names by cluster."""
    return {
        diagnosis.cluster: events.post([cluster_event(diagnosis, decision), *escalation_events(diagnosis, decision)])
        for diagnosis, decision in verdicts
    }


@task(name="reset escalation", task_run_name="reset escalation of {cluster.name}", cache_policy=NO_CACHE)
def reset_escalation(cluster: ClusterSpec, by: str) -> bool:
    """A human says the monitor may act on the cluster again; returns whether it was escalated."""
    was_escalated = variables.clear_escalation(cluster.name)
    resumed = ClusterEvent(
        RESUMED_EVENT,
        cluster_resource(cluster.name, cluster.rest.url, "resume"),
        {"reason": f"escalation reset by {by}", "was_escalated": was_escalated},
    )
    events.post([resumed])
    return was_escalated

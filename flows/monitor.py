"""monitor: the runbook's watchdog loop as a scheduled flow.

Each tick checks every cluster of the inventory at once (one bounded pool, a
deadline per cluster, one query of Prefect per kind of record), with the cheap checks
only, decides per cluster whether a recovery may start (flink_runbook.recovery_guard),
and emits events (flink_runbook.cluster_events). It never recovers by itself:
the recover deployment's trigger starts a recovery from the unhealthy event,
so the link is an automation an operator can see, pause and edit in the UI.
A run fails loudly while a cluster is escalated and unhealthy.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.utilities.annotations import quote

from flink_runbook.flows.run_labels import labelled
from flink_runbook.flows.run_log import keep_engine_lines_out_of_the_way
from flink_runbook.inventory import ClusterSpec, load_inventory
from flink_runbook.runbook.deciding.guard import GuardAction, GuardDecision, decide_recovery
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.reporting.notices import escalated_notice, unhealthy_notice
from flink_runbook.tasks.monitor_steps import (
    check_clusters,
    emit_cluster_events,
    mark_dead_recoveries,
    read_escalations,
    read_recovery_histories,
    skip_late_backlog,
    store_escalation,
)
from flink_runbook.tasks.notify_steps import notify_operators, run_url, wants_notice

keep_engine_lines_out_of_the_way()

# Above this many clusters a healthy one is not logged by name (the tick's summary line counts them).
QUIET_ABOVE = 20


class ClustersNeedAHuman(RuntimeError):
    """At least one cluster is escalated and still unhealthy: the monitor no longer acts on it."""


def _tell_on_call(cluster: ClusterSpec, diagnosis: Diagnosis, decision: GuardDecision) -> None:
    """Unhealthy (once: when the monitor starts a recovery) and escalated, to the cluster's blocks."""
    if decision.action == GuardAction.RECOVER and wants_notice(cluster, "unhealthy"):
        notify_operators(cluster, unhealthy_notice(cluster.name, diagnosis, run_url()))
    elif decision.action == GuardAction.ESCALATE and wants_notice(cluster, "escalated"):
        notify_operators(cluster, escalated_notice(cluster.name, diagnosis, decision.reason))


@flow(
    name="monitor",
    flow_run_name=labelled("monitor"),
    description="Cheap health check of every cluster; events that trigger recover, with guard rails.",
)
def monitor_flow(config: str) -> list[dict[str, Any]]:
    logger = get_run_logger()
    inventory = load_inventory(config)
    clusters = inventory.clusters
    if deployment.id:
        skipped = skip_late_backlog(str(deployment.id), str(flow_run.id))
        if skipped:
            logger.warning("Skipped %d late monitor runs left over from downtime; this tick checks now", skipped)
    # quote(): the fleet goes to the tasks as it is; Prefect does not walk 500 clusters' fields for task inputs.
    fleet = quote(list(clusters))
    checks = check_clusters(fleet, len(clusters))
    histories = mark_dead_recoveries(fleet, quote(read_recovery_histories(fleet, inventory.path)))
    escalations = read_escalations([c.name for c in clusters])
    results, escalated, verdicts = [], [], []
    for cluster, check in zip(clusters, checks, strict=True):
        diagnosis = check.diagnosis
        if diagnosis is None:  # not seen: nothing is decided on it, and the other clusters still are
            logger.error("%s: %s; the other clusters are checked", cluster.name, check.error)
            results.append({"cluster": cluster.name, "healthy": False, "decision": "none", "reason": check.error,
                            "events": [], "findings": ["CHECK_FAILED"]})
            continue
        escalation = escalations.get(cluster.name)
        decision = decide_recovery(diagnosis.healthy, histories[cluster.name], escalation, cluster.monitor, time.time())
        if decision.escalation != escalation:
            store_escalation(cluster.name, decision.escalation)
        _tell_on_call(cluster, diagnosis, decision)
        verdicts.append((diagnosis, decision))
        serious = [f.code for f in diagnosis.serious]
        summary = f"{cluster.name}: {'healthy' if diagnosis.healthy else 'UNHEALTHY ' + ', '.join(serious)}"
        if decision.action in (GuardAction.ESCALATE, GuardAction.HOLD) and not diagnosis.healthy:
            logger.error(
                "%s; ESCALATED: %s. Look at it now; `flink-runbook monitor reset` lets the monitor act again",
                summary,
                decision.reason,
            )
            escalated.append(cluster.name)
        elif diagnosis.healthy and decision.action == GuardAction.NONE:
            if len(clusters) <= QUIET_ABOVE:
                logger.info("%s", summary)
        else:
            logger.warning("%s; %s: %s", summary, decision.action, decision.reason)
        results.append(
            {
                "cluster": cluster.name,
                "healthy": diagnosis.healthy,
                "decision": decision.action,
                "reason": decision.reason,
                "findings": [f.code for f in diagnosis.findings],
            }
        )
    emitted = emit_cluster_events(quote(verdicts), len(verdicts))
    for result in results:
        result.setdefault("events", emitted.get(result["cluster"], []))
    healthy = sum(1 for r in results if r["healthy"])
    logger.info("%d of %d cluster(s) healthy", healthy, len(clusters))
    if escalated:
        raise ClustersNeedAHuman(
            f"escalated and still unhealthy: {', '.join(escalated)}; the monitor does not recover them until "
            "they are healthy again or `flink-runbook monitor reset --cluster NAME` is run"
        )
    return results

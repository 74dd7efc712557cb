"""monitor: the runbook's watchdog loop as a scheduled flow.

Each tick checks every cluster of the inventory at once, with the cheap checks
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

from flink_runbook.inventory import load_inventory
from flink_runbook.runbook.guard import GuardAction, decide_recovery
from flink_runbook.runbook.observe import Depth
from flink_runbook.tasks.diagnose_steps import diagnose_cluster
from flink_runbook.tasks.monitor_steps import (
    emit_cluster_events,
    mark_dead_recoveries,
    read_escalation,
    read_recovery_history,
    skip_late_backlog,
    store_escalation,
)


class ClustersNeedAHuman(RuntimeError):
    """At least one cluster is escalated and still unhealthy: the monitor no longer acts on it."""


@flow(name="monitor", description="Cheap health check of every cluster; events that trigger recover, with guard rails.")
def monitor_flow(config: str) -> list[dict[str, Any]]:
    logger = get_run_logger()
    inventory = load_inventory(config)
    clusters = inventory.clusters
    if deployment.id:
        skipped = skip_late_backlog(str(deployment.id), str(flow_run.id))
        if skipped:
            logger.warning("Skipped %d late monitor runs left over from downtime; this tick checks now", skipped)
    checks = [diagnose_cluster.submit(cluster, Depth.QUICK) for cluster in clusters]
    results, escalated = [], []
    for cluster, check in zip(clusters, checks, strict=True):
        try:
            diagnosis = check.result()
        except Exception as exc:  # one cluster's failure must not blind the monitor to the others
            logger.error("%s: the health check failed (%s: %s); the other clusters are checked", cluster.name,
                         type(exc).__name__, str(exc)[:500])  # fmt: skip
            results.append({"cluster": cluster.name, "healthy": False, "decision": "none", "reason": str(exc)[:500],
                            "events": [], "findings": ["CHECK_FAILED"]})  # fmt: skip
            continue
        escalation = read_escalation(cluster.name)
        history = mark_dead_recoveries(cluster, read_recovery_history(cluster, inventory.path))
        decision = decide_recovery(diagnosis.healthy, history, escalation, cluster.monitor, time.time())
        if decision.escalation != escalation:
            store_escalation(cluster.name, decision.escalation)
        events = emit_cluster_events(diagnosis, decision)
        serious = [f.code for f in diagnosis.findings if f.severity in ("error", "critical")]
        summary = f"{cluster.name}: {'healthy' if diagnosis.healthy else 'UNHEALTHY ' + ', '.join(serious)}"
        if decision.action in (GuardAction.ESCALATE, GuardAction.HOLD) and not diagnosis.healthy:
            logger.error(
                "%s; ESCALATED: %s. Look at it now; `flink-runbook monitor reset` lets the monitor act again",
                summary,
                decision.reason,
            )
            escalated.append(cluster.name)
        elif diagnosis.healthy and decision.action == GuardAction.NONE:
            logger.info("%s", summary)
        else:
            logger.warning("%s; %s: %s", summary, decision.action, decision.reason)
        results.append(
            {
                "cluster": cluster.name,
                "healthy": diagnosis.healthy,
                "decision": decision.action,
                "reason": decision.reason,
                "events": events,
                "findings": [f.code for f in diagnosis.findings],
            }
        )
    if escalated:
        raise ClustersNeedAHuman(
            f"escalated and still unhealthy: {', '.join(escalated)}; the monitor does not recover them until "
            "they are healthy again or `flink-runbook monitor reset --cluster NAME` is run"
        )
    return results

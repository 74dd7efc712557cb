"""monitor: the runbook's watchdog loop as a scheduled flow.

Each tick checks every cluster of the inventory at once, with the cheap checks
only, and emits flink.cluster.healthy or flink.cluster.unhealthy per cluster
(flink_runbook.cluster_events). Recovery is started from those events.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flink_runbook.inventory import load_inventory
from tasks.monitor_steps import check_cluster_health, emit_cluster_event


@flow(name="monitor", description="Cheap health check of every cluster; emits an event per cluster.")
def monitor_flow(config: str) -> list[dict[str, Any]]:
    logger = get_run_logger()
    clusters = load_inventory(config).clusters
    checks = [check_cluster_health.submit(cluster) for cluster in clusters]
    results = []
    for cluster, check in zip(clusters, checks, strict=True):
        diagnosis = check.result()
        event = emit_cluster_event(diagnosis)
        serious = [f.code for f in diagnosis.findings if f.severity in ("error", "critical")]
        (logger.info if diagnosis.healthy else logger.warning)(
            "%s: %s%s", cluster.name, event, f" ({', '.join(serious)})" if serious else ""
        )
        results.append(
            {
                "cluster": cluster.name,
                "healthy": diagnosis.healthy,
                "event": event,
                "findings": [f.code for f in diagnosis.findings],
            }
        )
    return results

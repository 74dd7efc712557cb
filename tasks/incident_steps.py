"""The last incidents of each cluster: a Prefect Variable per cluster (flink-incidents-NAME) and the
Incidents table artifact (key incidents-NAME) made from it when a recovery ends.

Written when an incident ends, not on every monitor tick: a 10 s tick would make 8,640 artifact
versions a day of a table that did not change.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact

from flink_runbook.records.variables import cluster_incidents, store_incidents
from flink_runbook.runbook.keeping.incidents import incident_row, with_incident
from flink_runbook.runbook.model import RecoveryResult


def record_incident(result: RecoveryResult) -> list[dict] | None:
    """Add this recovery to its cluster's incidents (when it was one); returns the rows kept."""
    row = incident_row(result)
    if row is None:
        return None
    rows = with_incident(cluster_incidents(result.cluster), row)
    store_incidents(result.cluster, rows)
    table = [{**r, "mttr_s": "-" if r["mttr_s"] is None else f"{r['mttr_s']:.1f}"} for r in rows]
    description = f"The last {len(rows)} incident(s) of Flink cluster {result.cluster}, newest first"
    create_table_artifact(key=f"incidents-{result.cluster}", table=table, description=description)
    get_run_logger().info("Incident recorded for %s: %s (%d kept)", result.cluster, row["result"], len(rows))
    return rows

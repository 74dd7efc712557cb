"""The last incidents of each cluster: a Prefect Variable per cluster (flink-incidents-NAME) and the
Incidents table artifact (key incidents-NAME) made from it when a recovery ends.

Written when an incident ends, not on every monitor tick: a 10 s tick would make 8,640 artifact
versions a day of a table that did not change.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.variables import Variable

from flink_runbook.runbook.incidents import incident_row, with_incident
from flink_runbook.runbook.recovery_report import RecoveryResult
from flink_runbook.tasks.monitor_steps import variables_by_cluster

INCIDENTS_PREFIX = "flink-incidents-"


def record_incident(result: RecoveryResult) -> list[dict] | None:
    """Add this recovery to its cluster's incidents (when it was one); returns the rows kept."""
    row = incident_row(result)
    if row is None:
        return None
    name = f"{INCIDENTS_PREFIX}{result.cluster}"
    rows = Variable.get(name, default=[])
    rows = with_incident(rows if isinstance(rows, list) else [], row)
    Variable.set(name, rows, overwrite=True)
    table = [{**r, "mttr_s": "-" if r["mttr_s"] is None else f"{r['mttr_s']:.1f}"} for r in rows]
    description = f"The last {len(rows)} incident(s) of Flink cluster {result.cluster}, newest first"
    create_table_artifact(key=f"incidents-{result.cluster}", table=table, description=description)
    get_run_logger().info("Incident recorded for %s: %s (%d kept)", result.cluster, row["result"], len(rows))
    return rows


def read_incidents(cluster_names: list[str]) -> dict[str, list[dict]]:
    """Each cluster's incidents, newest first (one query for the fleet)."""
    values = variables_by_cluster(INCIDENTS_PREFIX, cluster_names)
    return {name: value for name, value in values.items() if isinstance(value, list)}

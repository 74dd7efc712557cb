"""diagnose: the runbook's checks, read-only, with findings and an incident report per cluster."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flink_runbook.flows.run_labels import labelled
from flink_runbook.inventory import load_inventory
from flink_runbook.runbook.observing.observe import Depth
from flink_runbook.tasks.diagnose_steps import diagnose_cluster, write_incident_report


@flow(
    name="diagnose",
    flow_run_name=labelled("diagnose"),
    description="The runbook's checks (read-only): findings and an incident report per cluster.",
)
def diagnose_flow(config: str, cluster: str | None = None) -> list[dict[str, Any]]:
    """Diagnose every cluster of the inventory `config`, or the one named `cluster`."""
    results = []
    for spec in load_inventory(config).select(cluster):
        diagnosis = diagnose_cluster(spec, Depth.FULL)
        write_incident_report(spec, diagnosis)
        results.append(diagnosis.to_dict())
    return results

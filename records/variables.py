"""Prefect Variables that hold what a person must see and may delete in the UI: escalations, incidents."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.variables import Variable

from flink_runbook.records.paging import every_page
from flink_runbook.runbook.deciding.guard import Escalation

ESCALATION_PREFIX = "flink-escalation-"
INCIDENTS_PREFIX = "flink-incidents-"


def escalation_variable(cluster_name: str) -> str:
    """The Prefect Variable that holds a cluster's escalation (visible and deletable in the UI)."""
    return f"{ESCALATION_PREFIX}{cluster_name}"


def variables_by_cluster(prefix: str, cluster_names: list[str]) -> dict[str, Any]:
    """The values of the Prefect Variables named prefix + cluster name, for these clusters: one paged query."""
    wanted = {f"{prefix}{name}": name for name in cluster_names}
    with get_client(sync_client=True) as client:

        def read_page(limit: int, offset: int) -> list[dict]:
            body = {
                "variables": {"name": {"like_": f"{prefix}%"}},
                "sort": "NAME_ASC",
                "limit": limit,
                "offset": offset,
            }
            return client.request("POST", "/variables/filter", json=body).json()

        variables = every_page(read_page)
    return {wanted[v["name"]]: v.get("value") for v in variables if v.get("name") in wanted}


def read_escalations(cluster_names: list[str]) -> dict[str, Escalation]:
    """The escalated clusters among these (one query for the fleet: variables named flink-escalation-*)."""
    values = variables_by_cluster(ESCALATION_PREFIX, cluster_names)
    return {name: Escalation.from_dict(value) for name, value in values.items() if isinstance(value, dict)}


def store_escalation(cluster_name: str, escalation: Escalation | None) -> None:
    """Keep a cluster's escalation (None: it has none any more)."""
    name = escalation_variable(cluster_name)
    if escalation is None:
        Variable.unset(name)
    else:
        Variable.set(name, escalation.to_dict(), overwrite=True)


def clear_escalation(cluster_name: str) -> bool:
    """Forget a cluster's escalation; returns whether it had one."""
    return Variable.unset(escalation_variable(cluster_name))


def read_incidents(cluster_names: list[str]) -> dict[str, list[dict]]:
    """Each cluster's incidents, newest first (one query for the fleet)."""
    values = variables_by_cluster(INCIDENTS_PREFIX, cluster_names)
    return {name: value for name, value in values.items() if isinstance(value, list)}


def cluster_incidents(cluster_name: str) -> list[dict]:
    rows = Variable.get(f"{INCIDENTS_PREFIX}{cluster_name}", default=[])
    return rows if isinstance(rows, list) else []


def store_incidents(cluster_name: str, rows: list[dict]) -> None:
    Variable.set(f"{INCIDENTS_PREFIX}{cluster_name}", rows, overwrite=True)

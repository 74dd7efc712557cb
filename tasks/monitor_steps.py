"""The monitor's steps: a cheap health check per cluster, the guard's inputs from Prefect, the events."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import emit_event
from prefect.states import Cancelled, Crashed
from prefect.variables import Variable

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.events import RESUMED_EVENT, cluster_event, cluster_resource, escalation_events
from flink_runbook.runbook.fleet_check import ClusterCheck, check_fleet
from flink_runbook.runbook.guard import (
    Escalation,
    GuardDecision,
    RecoveryRun,
    dead_runs,
    decide_recovery,
    recovers_cluster,
)
from flink_runbook.runbook.host_lock import is_held, lock_file, read_holder
from flink_runbook.tasks.clients import secret_value
from flink_runbook.tasks.options import READ_ONLY

RECOVER_FLOW_NAME = "recover"


ESCALATION_PREFIX = "flink-escalation-"


def escalation_variable(cluster_name: str) -> str:
    """The Prefect Variable that holds a cluster's escalation (visible and deletable in the UI)."""
    return f"{ESCALATION_PREFIX}{cluster_name}"


# The most the Prefect API answers per page.
PAGE = 200


@task(name="check the clusters", task_run_name="check {n_clusters} cluster(s)", cache_policy=NO_CACHE)
def check_clusters(clusters: list[ClusterSpec], n_clusters: int) -> list[ClusterCheck]:
    """The runbook's cheap checks of every cluster at once (flink_runbook.runbook.fleet_check): a bounded
    pool, one look per Docker engine, a deadline per cluster. One task run per tick, whatever the fleet."""
    checks = check_fleet(clusters, secret=secret_value)
    logger = get_run_logger()
    for check in checks:
        if check.lineage_warning:
            logger.warning("Cluster %s: %s", check.cluster, check.lineage_warning)
    return checks


@task(name="read recovery history", **READ_ONLY)
def read_recovery_histories(clusters: list[ClusterSpec], config: Path) -> dict[str, list[RecoveryRun]]:
    """The recover flow runs acting on each cluster expected to start within its monitor window: one
    query (paged) for the whole fleet, not one per cluster."""
    now = datetime.now(UTC)
    since = now - timedelta(seconds=max(c.monitor.window_s for c in clusters))
    runs = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[RECOVER_FLOW_NAME])),
                flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since)),
                sort=FlowRunSort.ID_DESC,  # a stable order, so pages neither overlap nor skip
                limit=PAGE,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < PAGE:
                break
    runs = list({run.id: run for run in runs}.values())  # a run created while paging may come twice
    histories = {}
    recorded = [
        (
            run.parameters,
            RecoveryRun(
                name=run.name,
                state=run.state_type.value if run.state_type else "UNKNOWN",
                expected_start=(run.expected_start_time or run.created or since).timestamp(),
                ended_at=run.end_time.timestamp() if run.end_time else None,
                id=str(run.id),
                state_name=run.state_name or "",
            ),
        )
        for run in runs
    ]
    for cluster in clusters:
        window_start = (now - timedelta(seconds=cluster.monitor.window_s)).timestamp()
        histories[cluster.name] = [
            recovery
            for parameters, recovery in recorded
            if recovery.expected_start >= window_start and recovers_cluster(parameters, cluster.name, config)
        ]
    return histories


@task(name="mark dead recoveries", cache_policy=NO_CACHE)
def mark_dead_recoveries(
    clusters: list[ClusterSpec], histories: dict[str, list[RecoveryRun]]
) -> dict[str, list[RecoveryRun]]:
    """A recover run SIGKILLed mid-way stays RUNNING in Prefect; the host lock it held was freed by the
    kernel. Such a run is set Crashed (so the guard neither waits an hour for it nor cools down from it).
    Across hosts the zombie automation does the same from missing heartbeats (deployments/scale_up.py)."""
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
        with get_client(sync_client=True) as client:
            for run_id in dead:
                client.set_flow_run_state(run_id, Crashed(message=message), force=True)
        get_run_logger().warning(
            "Cluster %s: recover run(s) %s marked Crashed: %s", cluster.name, sorted(dead), message
        )
        marked[cluster.name] = [replace(r, state="CRASHED", ended_at=time.time()) if r.id in dead else r for r in runs]
    return marked


@task(name="read escalations", task_run_name="read escalations", **READ_ONLY)
def read_escalations(cluster_names: list[str]) -> dict[str, Escalation]:
    """The escalated clusters among these (one query for the fleet: variables named flink-escalation-*)."""
    values = variables_by_cluster(ESCALATION_PREFIX, cluster_names)
    return {name: Escalation.from_dict(value) for name, value in values.items() if isinstance(value, dict)}


def variables_by_cluster(prefix: str, cluster_names: list[str]) -> dict[str, Any]:
    """The values of the Prefect Variables named prefix + cluster name, for these clusters: one paged query."""
    wanted = {f"{prefix}{name}": name for name in cluster_names}
    found: dict[str, Any] = {}
    offset = 0
    with get_client(sync_client=True) as client:
        while True:
            body = {"variables": {"name": {"like_": f"{prefix}%"}}, "limit": PAGE, "offset": offset}
            page = client.request("POST", "/variables/filter", json=body).json()
            for variable in page:
                if variable.get("name") in wanted:
                    found[wanted[variable["name"]]] = variable.get("value")
            offset += len(page)
            if len(page) < PAGE:
                return found


@task(name="store escalation", task_run_name="store escalation of {cluster_name}", cache_policy=NO_CACHE)
def store_escalation(cluster_name: str, escalation: Escalation | None) -> None:
    name = escalation_variable(cluster_name)
    if escalation is None:
        Variable.unset(name)
    else:
        Variable.set(name, escalation.to_dict(), overwrite=True)


def guard_decision_now(cluster: ClusterSpec, config: Path, own_run_id: str | None = None) -> GuardDecision:
    """What the guard rails say about recovering this unhealthy cluster now (escalation, a recovery in
    flight, cooldown, flap limit), from Prefect's record; `own_run_id` is the asking run, not counted."""
    runs = [r for r in read_recovery_histories.fn([cluster], config)[cluster.name] if r.id != own_run_id]
    escalation = read_escalations.fn([cluster.name]).get(cluster.name)
    return decide_recovery(False, runs, escalation, cluster.monitor, time.time())


@task(name="emit cluster events", task_run_name="emit events for {n_clusters} cluster(s)", cache_policy=NO_CACHE)
def emit_cluster_events(verdicts: list[tuple[Diagnosis, GuardDecision]], n_clusters: int) -> dict[str, list[str]]:
    """Each cluster's health event (and escalation events); returns the event names by cluster."""
    emitted = {}
    for diagnosis, decision in verdicts:
        events = [cluster_event(diagnosis, decision), *escalation_events(diagnosis, decision)]
        for event in events:
            emit_event(event=event.event, resource=event.resource, payload=event.payload)
        emitted[diagnosis.cluster] = [event.event for event in events]
    return emitted


@task(name="skip the late backlog", cache_policy=NO_CACHE)
def skip_late_backlog(deployment_id: str, own_run_id: str) -> int:
    """Skip (cancel) this deployment's runs still waiting from the past: after downtime, one tick is enough."""
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        late = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=now),
                id=FlowRunFilterId(not_any_=[own_run_id]),
            ),
            limit=200,  # the API maximum
        )
        for run in late:
            client.set_flow_run_state(
                run.id, Cancelled(name="Skipped", message="late after downtime; a newer monitor tick ran instead")
            )
    return len(late)


@task(name="reset escalation", task_run_name="reset escalation of {cluster.name}", cache_policy=NO_CACHE)
def reset_escalation(cluster: ClusterSpec, by: str) -> bool:
    """A human says the monitor may act on the cluster again; returns whether it was escalated."""
    was_escalated = Variable.unset(escalation_variable(cluster.name))
    emit_event(
        event=RESUMED_EVENT,
        resource=cluster_resource(cluster.name, cluster.rest.url, "resume"),
        payload={"reason": f"escalation reset by {by}", "was_escalated": was_escalated},
    )
    return was_escalated

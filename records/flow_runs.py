"""Flow runs as Prefect records them: recovery history, monitor ticks, open and scheduled runs, their states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterEndTime,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Crashed

from flink_runbook.inventory import ClusterSpec
from flink_runbook.records.paging import every_page
from flink_runbook.runbook.deciding.guard import RecoveryRun, recovers_cluster

RECOVER_FLOW_NAME = "recover"
MONITOR_FLOW_NAME = "monitor"
# States in which a run may hold a slot or a lock (PAUSED: a recovery waiting for a person's approval).
OPEN_STATES = ("PENDING", "RUNNING", "CANCELLING")
HOLDING_STATES = (*OPEN_STATES, "PAUSED")
FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass(frozen=True)
class OpenRun:
    """A flow run in an open state, as Prefect and this host's process table see it."""

    id: str
    name: str
    deployment_id: str
    state: str
    state_since: float  # epoch seconds of its current state
    has_process: bool


@dataclass(frozen=True)
class ScheduledRun:
    """A run waiting to start, with the parameters it will run with."""

    id: str
    name: str
    deployment_id: str
    parameters: dict


@dataclass(frozen=True)
class Tick:
    """One monitor run: its state, when it ended (epoch s, None while open) and its state message."""

    name: str
    state: str
    ended_at: float | None
    message: str = ""


@dataclass(frozen=True)
class MonitorDeployment:
    """What the monitor's health is judged against: its schedule, and since when it is served."""

    id: str
    paused: bool
    interval_s: float | None  # the shortest active interval schedule; None: none
    served_since: float  # epoch s of the deployment's last update (a serving process updates it at start)


def flow_runs(client: SyncPrefectClient, **filters) -> list[FlowRun]:
    """Every flow run matching Prefect's filters (paged, in a stable order; a run created while paging
    may come twice: kept once)."""
    runs = every_page(
        lambda limit, offset: client.read_flow_runs(**filters, sort=FlowRunSort.ID_DESC, limit=limit, offset=offset)
    )
    return list({run.id: run for run in runs}.values())


def _state_types(states: tuple[str, ...] | list[str]) -> FlowRunFilterState:
    return FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in states]))


def _of_deployments(deployment_ids: list[str]) -> FlowRunFilterDeploymentId:
    return FlowRunFilterDeploymentId(any_=[UUID(d) for d in deployment_ids])


# --- recovery history ---------------------------------------------------------------------------------------


def recovery_histories(clusters: list[ClusterSpec], config: Path) -> dict[str, list[RecoveryRun]]:
    """The recover runs acting on each cluster expected to start within its monitor window: one paged
    query for the whole fleet, not one per cluster."""
    now = datetime.now(UTC)
    since = now - timedelta(seconds=max(c.monitor.window_s for c in clusters))
    with get_client(sync_client=True) as client:
        runs = flow_runs(
            client,
            flow_filter=FlowFilter(name=FlowFilterName(any_=[RECOVER_FLOW_NAME])),
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since)),
        )
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
                started_at=run.start_time.timestamp() if run.start_time else None,
            ),
        )
        for run in runs
    ]
    histories = {}
    for cluster in clusters:
        window_start = (now - timedelta(seconds=cluster.monitor.window_s)).timestamp()
        histories[cluster.name] = [
            recovery
            for parameters, recovery in recorded
            if recovery.expected_start >= window_start and recovers_cluster(parameters, cluster.name, config)
        ]
    return histories


def recover_runs_holding_or_ended_since(ended_after: datetime) -> list[FlowRun]:
    """Recover runs (of any deployment, or none: the CLI's) that may hold a recovery lock now, or that
    ended after `ended_after` (whose lease may not have expired yet)."""
    recover = FlowFilter(name=FlowFilterName(any_=[RECOVER_FLOW_NAME]))
    with get_client(sync_client=True) as client:
        holding = flow_runs(
            client, flow_filter=recover, flow_run_filter=FlowRunFilter(state=_state_types(HOLDING_STATES))
        )
        ended = flow_runs(
            client,
            flow_filter=recover,
            flow_run_filter=FlowRunFilter(end_time=FlowRunFilterEndTime(after_=ended_after)),
        )
    return holding + ended


# --- runs of served deployments -----------------------------------------------------------------------------


def open_runs(deployment_ids: list[str], live_run_ids: set[str]) -> list[OpenRun]:
    """The open runs of these deployments; `live_run_ids`: the runs with a process on this host."""
    with get_client(sync_client=True) as client:
        runs = flow_runs(
            client,
            flow_run_filter=FlowRunFilter(
                deployment_id=_of_deployments(deployment_ids), state=_state_types(OPEN_STATES)
            ),
        )
    return [
        OpenRun(
            id=str(r.id),
            name=r.name,
            deployment_id=str(r.deployment_id),
            state=r.state_type.value,
            state_since=(r.state.timestamp if r.state and r.state.timestamp else datetime.now(UTC)).timestamp(),
            has_process=str(r.id) in live_run_ids,
        )
        for r in runs
    ]


def scheduled_runs(deployment_ids: list[str]) -> list[ScheduledRun]:
    with get_client(sync_client=True) as client:
        runs = flow_runs(
            client,
            flow_run_filter=FlowRunFilter(
                deployment_id=_of_deployments(deployment_ids), state=_state_types(["SCHEDULED"])
            ),
        )
    return [ScheduledRun(str(r.id), r.name, str(r.deployment_id), dict(r.parameters or {})) for r in runs]


def deployment_parameters(deployment_ids: list[str]) -> dict[str, dict]:
    with get_client(sync_client=True) as client:
        return {d: dict(client.read_deployment(UUID(d)).parameters or {}) for d in deployment_ids}


# Three cleaners find dead runs; all mark them here. Prefect's heartbeat + zombie automation (scale_up.py)
# alone would not do: heartbeats come every 30 s at best (90 s to notice), serve's runner sends none, a CLI
# run none at all. So the monitor's host-lock check (a recover run of any origin on this host, at once: the
# kernel frees the lock of a dead process) and serve's /proc scan at start (the embedded shape, after a
# SIGKILL of serve and its server) stay; the automation covers what those cannot see, another host's workers.
def mark_crashed(run_ids: list[str] | set[str], message: str) -> None:
    """Runs whose process is gone: Crashed, so Prefect frees their deployment slot and the guard stops waiting."""
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            client.set_flow_run_state(UUID(str(run_id)), Crashed(message=message), force=True)


def cancel(run_ids: list[str], message: str) -> None:
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            client.set_flow_run_state(UUID(run_id), Cancelled(message=message), force=True)


def skip_late_runs(deployment_id: str, own_run_id: str) -> int:
    """Skip (cancel) this deployment's runs still waiting from the past: after downtime, one tick is enough."""
    with get_client(sync_client=True) as client:
        late = flow_runs(
            client,
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                state=_state_types(["SCHEDULED"]),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=datetime.now(UTC)),
                id=FlowRunFilterId(not_any_=[own_run_id]),
            ),
        )
        for run in late:
            client.set_flow_run_state(
                run.id, Cancelled(name="Skipped", message="late after downtime; a newer monitor tick ran instead")
            )
    return len(late)


def run_has_ended(flow_run_id: str) -> bool:
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
    except (ObjectNotFound, ValueError):
        return True  # deleted, or not a run id
    return run.state_type is not None and run.state_type.value in FINAL_STATES


# --- monitor ticks ------------------------------------------------------------------------------------------


def newest_ticks(deployment_id: str, newest: int = 50) -> list[Tick]:
    """The monitor deployment's `newest` runs due by now, newest first: the watchdog's window, on purpose
    not the whole history."""
    # Due by now: the scheduler keeps up to 100 future runs, which would fill any page sorted newest first.
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=_of_deployments([deployment_id]),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=datetime.now(UTC)),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=newest,
        )
    return [
        Tick(
            name=r.name,
            state=r.state_type.value if r.state_type else "UNKNOWN",
            ended_at=r.end_time.timestamp() if r.end_time else None,
            message=(r.state.message or "") if r.state else "",
        )
        for r in runs
        if r.state_type is None or r.state_type.value != "SCHEDULED"
    ]


def monitor_deployment(name: str) -> MonitorDeployment:
    """The monitor deployment `name` (ObjectNotFound when the server has none)."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
    intervals_s = [
        s.schedule.interval.total_seconds()
        for s in deployment.schedules
        if s.active and getattr(s.schedule, "interval", None) is not None
    ]
    return MonitorDeployment(
        id=str(deployment.id),
        paused=bool(deployment.paused),
        interval_s=min(intervals_s) if intervals_s else None,
        served_since=(deployment.updated or deployment.created or datetime.now(UTC)).timestamp(),
    )

"""Reconcile at start: what an unclean stop left behind must not blind the monitor.

A serving process killed with SIGKILL (or a host reboot, an OOM kill of its
group, a power cut) leaves its runs PENDING or RUNNING in the Prefect
database with nothing behind them. Each holds its deployment's only
concurrency slot, so every later tick of a `limit=1, CANCEL_NEW` deployment is
cancelled; a dead recover run also keeps the guard saying "a recovery is
running" and may hold the cluster's recovery lock. At start (and again
whenever the watchdog finds the monitor stalled) the serving process:

1. marks Crashed every open run of the deployments it serves that has no live
   process on this host (Prefect starts each run's process with
   PREFECT__FLOW_RUN_ID in its environment) and was opened before this process
   started (or, while running, longer ago than a grace period): Prefect then
   frees the run's deployment slot;
2. lowers a deployment limit's active slots to the runs that still hold one
   (a slot whose lease was lost with Prefect's in-memory lease storage is
   otherwise held forever);
3. frees a recovery lock `flink-recover-<cluster>` that no open recover run can
   hold: a lease of a finished run is released through Prefect (when the local
   server's lease files can be read), and a slot left with no lease at all is
   lowered to zero;
4. cancels scheduled runs of its deployments whose parameters are not the
   deployment's any more (an earlier serve scheduled them with another
   inventory): run now, a monitor tick would check the clusters of an old
   inventory and its events would start recoveries of clusters this one does
   not have. The schedule makes fresh runs; the trigger asks again if a
   cluster is still unhealthy.

The decisions are pure functions of plain facts, tested on their own; the
functions at the bottom read and write through the Prefect API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

OPEN_STATES = ("PENDING", "RUNNING", "CANCELLING")
STALE_MESSAGE = (
    "Scheduled by an earlier serve with other parameters (another inventory); cancelled by flink-runbook serve "
    "at start so that it does not act on clusters of an old inventory. The schedule creates fresh runs."
)
RECOVERY_LOCK_PREFIX = "flink-recover-"
CRASH_MESSAGE = (
    "No process runs this flow run any more: the process that ran it stopped uncleanly (SIGKILL, reboot, "
    "OOM kill). Marked Crashed by flink-runbook serve so that its concurrency slot is freed."
)


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
class SlotCount:
    """A concurrency limit's active slots, and how many of them something alive can still hold."""

    name: str
    active_slots: int
    holders: int


@dataclass(frozen=True)
class RecoveryLock:
    name: str
    active_slots: int
    # Leases of this limit found in the server's lease storage: lease id -> holder flow run id (or None).
    leases: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduledRun:
    """A run waiting to start, with the parameters it will run with."""

    id: str
    name: str
    deployment_id: str
    parameters: dict


def runs_with_stale_parameters(runs: Iterable[ScheduledRun], current: dict[str, dict]) -> list[ScheduledRun]:
    """Runs whose value of one of their deployment's parameters is not the deployment's now.

    Only the deployment's own keys count: a triggered recover run adds `cluster`, and is stale only if
    its `config` is another inventory.
    """
    return [
        run
        for run in runs
        if run.deployment_id in current
        and any(run.parameters.get(key) != value for key, value in current[run.deployment_id].items())
    ]


@dataclass
class ReconcileReport:
    crashed: list[OpenRun] = field(default_factory=list)
    stale: list[ScheduledRun] = field(default_factory=list)
    lowered: list[tuple[str, int, int]] = field(default_factory=list)  # (limit, from, to)
    released_leases: list[tuple[str, str]] = field(default_factory=list)  # (limit, lease id)
    left_alone: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        said = [
            f"marked run {r.name} ({r.state} since {_clock(r.state_since)}) Crashed: no process runs it any more"
            for r in self.crashed
        ]
        said += [f"cancelled run {r.name}: scheduled with another inventory ({r.parameters.get('config')})"
                 for r in self.stale]  # fmt: skip
        said += [f"lowered {name} from {before} to {after} active slot(s): nothing alive holds them" for name, before,
                 after in self.lowered]  # fmt: skip
        said += [f"released lease {lease} of {name}: its holder has ended" for name, lease in self.released_leases]
        return said + self.left_alone


def _clock(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%H:%M:%S UTC")


def runs_without_a_process(runs: Iterable[OpenRun], opened_before: float) -> list[OpenRun]:
    """Open runs with no live process that were opened before `opened_before` (pure).

    A run opened later may be one this process is just starting: its process
    may not exist yet.
    """
    return [r for r in runs if not r.has_process and r.state_since < opened_before]


def slots_to_lower(counts: Iterable[SlotCount]) -> list[tuple[str, int, int]]:
    """Limits holding more active slots than there are live holders: (name, from, to) (pure)."""
    return [(c.name, c.active_slots, c.holders) for c in counts if c.active_slots > c.holders]


def leases_to_release(lock: RecoveryLock, ended_holders: set[str], recover_runs_open: bool) -> list[str]:
    """Leases of a recovery lock that nothing alive holds (pure): the holder run has ended, or the
    lease names no holder and no recover run is open at all."""
    return [
        lease
        for lease, holder in lock.leases.items()
        if (holder in ended_holders if holder is not None else not recover_runs_open)
    ]


def read_lease_files(leases_dir: Path | None) -> dict[str, tuple[list[str], str | None]]:
    """Prefect's filesystem lease storage: lease id -> (limit ids, holder flow run id or None)."""
    if leases_dir is None or not leases_dir.is_dir():
        return {}
    leases = {}
    for path in leases_dir.glob("*.json"):
        if path.name == "expirations.json":
            continue
        try:
            data = json.loads(path.read_text())
            holder = ((data.get("metadata") or {}).get("holder") or {}).get("id")
            leases[str(data["id"])] = ([str(i) for i in data.get("resource_ids", [])], str(holder) if holder else None)
        except (OSError, ValueError, KeyError, AttributeError):
            continue  # written or removed while we read: the next pass sees it
    return leases


# --- Prefect I/O ------------------------------------------------------------------------------------------

FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def _run_has_ended(client, flow_run_id: str) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        run = client.read_flow_run(UUID(flow_run_id))
    except (ObjectNotFound, ValueError):
        return True  # deleted, or not a run id: nothing can hold the lease through it
    return run.state_type is not None and run.state_type.value in FINAL_STATES


def _runs_in(client, deployment_ids: list[str], states: Iterable[str]) -> list:
    """The runs of these deployments in these states (Prefect's API reads at most 200 at a time)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[UUID(d) for d in deployment_ids]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in states])),
        ),
        limit=200,
    )


def _open_runs(client, deployment_ids: list[str], live: set[str]) -> list[OpenRun]:
    return [
        OpenRun(
            id=str(r.id),
            name=r.name,
            deployment_id=str(r.deployment_id),
            state=r.state_type.value,
            state_since=(r.state.timestamp if r.state and r.state.timestamp else datetime.now(UTC)).timestamp(),
            has_process=str(r.id) in live,
        )
        for r in _runs_in(client, deployment_ids, OPEN_STATES)
    ]


def _scheduled_runs(client, deployment_ids: list[str]) -> list[ScheduledRun]:
    return [
        ScheduledRun(str(r.id), r.name, str(r.deployment_id), dict(r.parameters or {}))
        for r in _runs_in(client, deployment_ids, ["SCHEDULED"])
    ]


def reconcile_served_runs(
    deployment_ids: list[str],
    recover_deployment_ids: list[str],
    opened_before: float,
    leases_dir: Path | None,
    live_run_ids: Callable[[], set[str]],
) -> ReconcileReport:
    """Crash the dead runs of these deployments, then free the slots and recovery locks nothing alive holds."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.states import Cancelled, Crashed

    report = ReconcileReport()
    with get_client(sync_client=True) as client:
        current = {d: dict(client.read_deployment(UUID(d)).parameters or {}) for d in deployment_ids}
        for run in runs_with_stale_parameters(_scheduled_runs(client, deployment_ids), current):
            client.set_flow_run_state(UUID(run.id), Cancelled(message=STALE_MESSAGE), force=True)
            report.stale.append(run)
        for run in runs_without_a_process(_open_runs(client, deployment_ids, live_run_ids()), opened_before):
            client.set_flow_run_state(UUID(run.id), Crashed(message=CRASH_MESSAGE), force=True)
            report.crashed.append(run)

        # Limits and leases first, then the runs: a run that takes a slot in between is counted as a holder.
        limits = {d: client.read_deployment(UUID(d)).global_concurrency_limit for d in deployment_ids}
        locks = [
            limit
            for limit in client.read_global_concurrency_limits(limit=200)
            if limit.name.startswith(RECOVERY_LOCK_PREFIX) and limit.active_slots > 0
        ]
        leases = read_lease_files(leases_dir)
        still_open = _open_runs(client, deployment_ids, live_run_ids())
        counts = [
            SlotCount(limit.name, limit.active_slots, sum(1 for r in still_open if r.deployment_id == deployment_id))
            for deployment_id, limit in limits.items()
            if limit is not None
        ]

        open_recover = {r.id for r in still_open if r.deployment_id in recover_deployment_ids}
        for limit in locks:
            lock = RecoveryLock(
                limit.name,
                limit.active_slots,
                {lease: holder for lease, (ids, holder) in leases.items() if str(limit.id) in ids},
            )
            ended = {h for h in lock.leases.values() if h is not None and _run_has_ended(client, h)}
            released = leases_to_release(lock, ended, bool(open_recover))
            for lease in released:
                client.release_concurrency_slots_with_lease(UUID(lease))
                report.released_leases.append((limit.name, lease))
            if open_recover:
                report.left_alone.append(f"{limit.name} stays held: recover run(s) still open")
            elif leases_dir is not None and leases_dir.is_dir():
                active = client.read_global_concurrency_limit_by_name(limit.name).active_slots
                counts.append(SlotCount(limit.name, active, len(lock.leases) - len(released)))
            else:
                # The server's leases cannot be read from here: its own lease expiry (60 s) frees the lock.
                report.left_alone.append(f"{limit.name} held by a lease this host cannot see; it expires by itself")

        for name, before, after in slots_to_lower(counts):
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=after))
            report.lowered.append((name, before, after))
    return report

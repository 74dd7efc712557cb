"""Reconcile what an unclean stop (SIGKILL, reboot, OOM kill) left, so it does not blind the monitor.

Such a stop leaves runs PENDING or RUNNING with no process behind them; each holds its deployment's only
slot (every later `limit=1, CANCEL_NEW` tick is cancelled) and a dead recover run keeps the guard waiting.
At start, and whenever the watchdog finds the monitor stalled, the serving process cancels scheduled runs
of an old inventory, marks Crashed the open runs with no process on this host, and gives back slots that
nothing alive holds. A dead recovery's lock is freed by Prefect's own lease expiry (records.slots); only a
slot no lease can free (lost with a server's in-memory lease storage) is given back here, once no recover
run can hold it. Pure decisions first; the records module does the reading and writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Prefect is imported only once needed: serve sets its environment first
    from flink_runbook.records.flow_runs import OpenRun, ScheduledRun
    from flink_runbook.records.slots import Slots

STALE_MESSAGE = (
    "Scheduled by an earlier serve with other parameters (another inventory); cancelled by flink-runbook serve "
    "at start so that it does not act on clusters of an old inventory. The schedule creates fresh runs."
)
CRASH_MESSAGE = (
    "No process runs this flow run any more: the process that ran it stopped uncleanly (SIGKILL, reboot, "
    "OOM kill). Marked Crashed by flink-runbook serve so that its concurrency slot is freed."
)


@dataclass(frozen=True)
class SlotCount:
    """A concurrency limit's active slots, and how many of them something alive can still hold."""

    name: str
    active_slots: int
    holders: int


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
    left_alone: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        said = [
            f"marked run {r.name} ({r.state} since {_clock(r.state_since)}) Crashed: no process runs it any more"
            for r in self.crashed
        ]
        said += [f"cancelled run {r.name}: scheduled with another inventory ({r.parameters.get('config')})"
                 for r in self.stale]
        said += [f"lowered {name} from {before} to {after} active slot(s): nothing alive holds them" for name, before,
                 after in self.lowered]
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


def recovery_lock_counts(
    locks: Iterable[Slots], may_hold: list[str], watched_s: float | None = None
) -> tuple[list[SlotCount], list[str]]:
    """The held recovery locks as slot counts, and what is left alone (pure).

    While a recover run may hold a lock (`may_hold`: open, or ended so recently that its lease may not
    have expired), every lock stays: a dead run's lease is freed by Prefect, and a slot given back early
    would be taken twice once that lease expires. With none, a taken slot has no lease left (lost with a
    server's in-memory lease storage) and nothing else would ever free it. `watched_s`: how long the
    server has been seen up by this process; a lease it kept on disk while it was down is revoked by it
    after a restart, so before LEASE_GONE_AFTER_S every lock stays too (else both would give it back).
    """
    from flink_runbook.records.slots import LEASE_GONE_AFTER_S

    locks = list(locks)
    if watched_s is not None and watched_s < LEASE_GONE_AFTER_S:
        return [], [f"{lock.name} stays held: Prefect revokes a lease it kept while it was down within "
                    f"{LEASE_GONE_AFTER_S:.0f}s of starting, this process has seen it up {watched_s:.0f}s"
                    for lock in locks]
    if not may_hold:
        return [SlotCount(lock.name, lock.active_slots, 0) for lock in locks], []
    named = ", ".join(sorted(may_hold)[:3]) + (" ..." if len(may_hold) > 3 else "")
    return [], [f"{lock.name} stays held: recover run(s) {named} may hold it (a dead run's lease expires by itself)"
                for lock in locks]


def reconcile_served_runs(
    deployment_ids: list[str],
    opened_before: float,
    live_run_ids: Callable[[], set[str]],
    watched_s: float | None = None,
) -> ReconcileReport:
    """Crash the dead runs of these deployments, then give back the slots and recovery locks nothing alive holds."""
    from flink_runbook.records import flow_runs, slots

    report = ReconcileReport()
    current = flow_runs.deployment_parameters(deployment_ids)
    report.stale = runs_with_stale_parameters(flow_runs.scheduled_runs(deployment_ids), current)
    flow_runs.cancel([r.id for r in report.stale], STALE_MESSAGE)
    report.crashed = runs_without_a_process(flow_runs.open_runs(deployment_ids, live_run_ids()), opened_before)
    flow_runs.mark_crashed([r.id for r in report.crashed], CRASH_MESSAGE)

    # Slots first, then the runs: a run that takes a slot in between is counted as a holder.
    deployment_slots = slots.deployment_slots(deployment_ids)
    locks = slots.held_recovery_locks()
    still_open = flow_runs.open_runs(deployment_ids, live_run_ids())
    recent = datetime.now(UTC) - timedelta(seconds=slots.LEASE_GONE_AFTER_S)
    may_hold = [r.name for r in flow_runs.recover_runs_holding_or_ended_since(recent)] if locks else []
    counts = [
        SlotCount(limit.name, limit.active_slots, sum(1 for r in still_open if r.deployment_id == deployment_id))
        for deployment_id, limit in deployment_slots.items()
    ]
    lock_counts, report.left_alone = recovery_lock_counts(locks, may_hold, watched_s)
    for name, before, after in slots_to_lower(counts + lock_counts):
        slots.free_slots(name, before - after)
        report.lowered.append((name, before, after))
    return report

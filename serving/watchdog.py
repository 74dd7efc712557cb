"""The watchdog's own dead man's switch: say so loudly when monitor ticks stop completing.

A monitor that silently stops ticking is worse than none: nobody looks any
more. The serving process runs this watchdog on its own thread (it does not
depend on the runner's event loop) and checks, every interval, when a monitor
tick last ran to the end. After `intervals` intervals without one it logs at
error, emits `flink.monitor.stalled` (the escalation notification automation
matches it) and tries to free what a dead run holds (serving.reconcile);
when ticks complete again it emits `flink.monitor.resumed`.

`flink-runbook monitor health` asks the same question from outside, for a
supervisor (systemd, a Docker health check, the user's own alerting): exit 0
while ticks complete, 1 when stalled or when Prefect cannot be asked.

A tick "ran to the end" when it is COMPLETED, or FAILED only because a cluster
is escalated (the monitor fails such ticks on purpose, to be seen).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Prefect is imported only once needed: serve sets its environment first
    from flink_runbook.records.flow_runs import Tick

STALLED_EVENT = "flink.monitor.stalled"
RESUMED_EVENT = "flink.monitor.resumed"
MONITOR_RESOURCE_ID = "flink-runbook.monitor"
DEFAULT_STALLED_AFTER = 3  # intervals
# The exception a monitor tick fails with, on purpose, while a cluster is escalated and unhealthy.
ESCALATED_TICK = "ClustersNeedAHuman"

log = logging.getLogger("flink_runbook.watchdog")


def ran_to_the_end(tick: Tick) -> bool:
    return tick.state == "COMPLETED" or (tick.state == "FAILED" and ESCALATED_TICK in tick.message)


@dataclass(frozen=True)
class MonitorHealth:
    stalled: bool
    summary: str
    last_tick_at: float | None
    silent_s: float


def monitor_health(
    ticks: Iterable[Tick], watching_since: float, now: float, interval_s: float, intervals: int = DEFAULT_STALLED_AFTER
) -> MonitorHealth:
    """Stalled when no tick ran to the end within `intervals` intervals (pure).

    Counted from the last tick that did, or from `watching_since` (the serving
    process's start) when none did since.
    """
    ticks = list(ticks)
    ended = [t.ended_at for t in ticks if ran_to_the_end(t) and t.ended_at is not None]
    last = max(ended) if ended else None
    silent_s = now - max(last or watching_since, watching_since)
    allowed_s = intervals * interval_s
    if silent_s <= allowed_s:
        when = f"{now - last:.0f}s ago" if last else "none yet since the start"
        return MonitorHealth(False, f"monitor ticking: last tick ran to the end {when} (every {interval_s:.0f}s)",
                             last, silent_s)
    since_last = [t for t in ticks if last is None or (t.ended_at or now) > last]
    return MonitorHealth(
        True,
        f"monitor STALLED: no tick ran to the end for {silent_s:.0f}s ({intervals} intervals of {interval_s:.0f}s "
        f"allowed); since then {why_ticks_did_not_finish(since_last)}",
        last,
        silent_s,
    )


def why_ticks_did_not_finish(ticks: list[Tick]) -> str:
    """`4 ticks CANCELLED ("Deployment concurrency limit reached."), 1 tick PENDING` (pure)."""
    if not ticks:
        return "no tick was even started (schedule paused, or no serving process or worker picks them up)"
    counted = Counter((t.state, t.message[:120]) for t in ticks)
    parts = []
    for (state, message), n in counted.most_common(4):
        parts.append(f"{n} tick{'s' if n > 1 else ''} {state}" + (f' ("{message}")' if message else ""))
    return ", ".join(parts)


# --- Prefect I/O ------------------------------------------------------------------------------------------


def read_monitor_health(
    deployment_name: str = "monitor/monitor", intervals: int = DEFAULT_STALLED_AFTER
) -> MonitorHealth:
    """Ask the Prefect server (PREFECT_API_URL) whether the monitor deployment's ticks still complete.

    The interval is the deployment's own schedule; the watch counts from the
    deployment's last update (a serving process updates it when it starts).
    """
    from flink_runbook.records.flow_runs import monitor_deployment, newest_ticks

    monitor = monitor_deployment(deployment_name)
    if monitor.paused:
        return MonitorHealth(
            True, f"monitor STALLED: {deployment_name} is paused (a serving process pauses it when it stops)", None, 0
        )
    if monitor.interval_s is None:
        return MonitorHealth(True, f"monitor STALLED: {deployment_name} has no active interval schedule", None, 0)
    return monitor_health(newest_ticks(monitor.id), monitor.served_since, time.time(), monitor.interval_s, intervals)


def post_monitor_event(name: str, health: MonitorHealth, deployment_name: str) -> None:
    from flink_runbook.records import events
    from flink_runbook.runbook.reporting.events import ClusterEvent

    resource = {"prefect.resource.id": MONITOR_RESOURCE_ID, "prefect.resource.name": deployment_name}
    payload = {"summary": health.summary, "silent_s": round(health.silent_s, 1), "last_tick_at": health.last_tick_at}
    events.post([ClusterEvent(name, resource, payload)])


class MonitorWatchdog(threading.Thread):
    """Checks every interval whether monitor ticks still complete; on a stall: log, event, and repair."""

    def __init__(
        self,
        deployment_id: str,
        deployment_name: str,
        interval_s: float,
        intervals: int,
        repair: Callable[[], list[str]],
    ) -> None:
        super().__init__(name="monitor-watchdog", daemon=True)
        self.deployment_id, self.deployment_name = deployment_id, deployment_name
        self.interval_s, self.intervals = interval_s, intervals
        self.repair = repair
        self.started_at = time.time()
        self.stalled = False
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # a watchdog that dies on one bad answer is no watchdog
                log.error("watchdog: could not ask Prefect about the monitor's ticks: %s", exc)

    def check(self) -> MonitorHealth:
        from flink_runbook.records.flow_runs import newest_ticks

        health = monitor_health(
            newest_ticks(self.deployment_id), self.started_at, time.time(), self.interval_s, self.intervals
        )
        if health.stalled and not self.stalled:
            log.error("watchdog: %s. Emitting %s; freeing what dead runs hold", health.summary, STALLED_EVENT)
            post_monitor_event(STALLED_EVENT, health, self.deployment_name)
        elif not health.stalled and self.stalled:
            log.warning("watchdog: monitor ticks complete again (%s); emitting %s", health.summary, RESUMED_EVENT)
            post_monitor_event(RESUMED_EVENT, health, self.deployment_name)
        self.stalled = health.stalled
        if health.stalled:
            for line in self.repair():
                log.warning("watchdog: %s", line)
        return health

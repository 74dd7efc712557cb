"""The monitor's check of a whole fleet at once: a bounded pool, one look per Docker engine, a deadline
per cluster (no Prefect here; the monitor flow calls it as one task).

A tick costs the same per cluster for 10 clusters as for 500: no task run, no
client and no Docker ping per cluster; each engine's containers are listed
once. A cluster whose JobManager hangs is cut at its deadline (its REST calls
are bounded by it) and never holds up the others: a worker thread stuck past
the deadline (a Docker engine that hangs) is replaced, and the check of that
cluster says so instead of guessing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from flink_runbook.inventory import ClusterSpec, DockerEngine
from flink_runbook.runbook.clients import ClusterClients, connect
from flink_runbook.runbook.keeping.lineage import remember_job_ids
from flink_runbook.runbook.keeping.person_stops import (
    read_stops,
    remember_container_stops,
    remember_stops,
    unreadable_stops,
)
from flink_runbook.runbook.observing.diagnosis import Diagnosis, diagnose
from flink_runbook.runbook.observing.observe import Depth, EngineLook, look_at_engine, observe_cluster

# Checks running at once: enough that clusters hanging until their deadline do not hold up the rest,
# few enough that a healthy check's share of one interpreter stays far inside its deadline.
DEFAULT_PARALLEL = 32
# What a check may overrun its deadline by (its last call ending) before it is called timed out.
GRACE_S = 1.0


@dataclass(frozen=True)
class ClusterCheck:
    """One cluster's check: its diagnosis, or why there is none (the check failed or ran out of time)."""

    cluster: str
    diagnosis: Diagnosis | None
    error: str | None = None
    seconds: float = 0.0
    # Set when the job ids could not be remembered (the check still counts).
    lineage_warning: str | None = None


def observe_and_diagnose(
    cluster: ClusterSpec, clients: ClusterClients, depth: Depth, engine: EngineLook | None = None
) -> tuple[Diagnosis, str | None]:
    """The runbook's checks and their findings; the ids the configured jobs run under are remembered on this
    host (their lineage: after a JobManager restart forgets them, a recovery restores each job from its own
    checkpoints). Returns the diagnosis and, if the ids could not be written, why."""
    seen = observe_cluster(cluster, clients, depth, engine)
    warning = None
    jobs = [v for v in seen.jobs if not v.duplicate_ids]
    looked_at = seen.observed_at_ms / 1000
    stops, containers = {}, seen.containers.containers
    try:
        remember_job_ids(cluster.state_dir, cluster.name, {v.name: v.info.id for v in jobs if v.info})
        # A person's stop outlives Flink's memory of the job: kept now, read when Flink has forgotten it.
        stops = remember_stops(
            cluster.state_dir, cluster.name, [(v.name, v.info) for v in jobs], cluster.jobs_by_name, looked_at
        )
        if not seen.containers.error:  # no look at the engine: nothing learned, nothing forgotten
            containers = remember_container_stops(cluster.state_dir, cluster.name, containers)
    except OSError as exc:  # a recovery after a JobManager restart will refuse to guess
        warning = f"cannot remember its job ids and stopped jobs in {cluster.state_dir}: {exc}"
        try:
            stops = read_stops(cluster.state_dir, cluster.name)
        except OSError as unreadable:  # a stop may stand that cannot be read: no missing job is resubmitted
            stops = unreadable_stops(cluster.jobs_by_name, f"its record cannot be read ({unreadable})")
    seen = replace(
        seen,
        jobs=tuple(replace(v, remembered_stop=stops.get(v.name)) for v in seen.jobs),
        containers=replace(seen.containers, containers=containers),
    )
    return diagnose(cluster, seen), warning


class EngineLooks:
    """Each engine looked at once per fleet check, by the first cluster's thread; the others wait for it."""

    def __init__(self, oom_lookback_s: dict[DockerEngine, float]) -> None:
        self._lookback = oom_lookback_s
        self._lock = threading.Lock()
        self._looks: dict[DockerEngine, EngineLook] = {}
        self._engine_locks: dict[DockerEngine, threading.Lock] = {}

    def look(self, cluster: ClusterSpec, clients: ClusterClients) -> EngineLook:
        if clients.engine_mismatch is not None:  # not this cluster's engine: its own verdict, never the shared look
            return look_at_engine(clients, cluster)
        with self._lock:
            engine_lock = self._engine_locks.setdefault(cluster.docker, threading.Lock())
        with engine_lock:
            if cluster.docker not in self._looks:
                self._looks[cluster.docker] = look_at_engine(clients, cluster, self._lookback[cluster.docker])
            return self._looks[cluster.docker]


def engine_looks(clusters: Sequence[ClusterSpec]) -> EngineLooks:
    """One look per Docker engine of these clusters (its OOM and stop events over its clusters' longest lookback),
    taken by the first cluster that asks: the fleet check's, and each round of the fault watcher's glance."""
    lookback: dict[DockerEngine, float] = {}
    for cluster in clusters:
        lookback[cluster.docker] = max(lookback.get(cluster.docker, 0.0), cluster.thresholds.oom_lookback_s)
    return EngineLooks(lookback)


def check_fleet(
    clusters: Sequence[ClusterSpec],
    *,
    parallel: int = DEFAULT_PARALLEL,
    secret: Callable[[str], str] | None = None,
) -> list[ClusterCheck]:
    """Check every cluster (QUICK depth), at most `parallel` at a time, each within its monitor's
    check_deadline_s of its start. Results in the inventory's order; never raises for what one cluster does."""
    looks = engine_looks(clusters)
    cut_at = [c.monitor.check_deadline_s + GRACE_S for c in clusters]
    todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    for index in range(len(clusters)):
        todo.put(index)
    done = threading.Condition()
    results: dict[int, ClusterCheck] = {}
    started: dict[int, float] = {}

    def check(index: int) -> ClusterCheck:
        cluster = clusters[index]
        begun = started[index]
        try:
            clients = connect(cluster, secret)
            clients = replace(clients, rest=clients.rest.until(begun + cluster.monitor.check_deadline_s))
            diagnosis, warning = observe_and_diagnose(cluster, clients, Depth.QUICK, looks.look(cluster, clients))
            return ClusterCheck(cluster.name, diagnosis, None, time.monotonic() - begun, warning)
        except Exception as exc:  # one cluster's failure must not blind the monitor to the others
            error = f"the health check failed: {type(exc).__name__}: {str(exc)[:500]}"
            return ClusterCheck(cluster.name, None, error, time.monotonic() - begun)

    def work() -> None:
        while (index := todo.get()) is not None:
            with done:
                started[index] = time.monotonic()
            result = check(index)
            with done:
                results.setdefault(index, result)  # a result after its timeout was called is dropped
                done.notify_all()

    def spawn() -> None:
        threading.Thread(target=work, name="fleet check", daemon=True).start()

    workers = min(parallel, len(clusters))
    for _ in range(workers):
        spawn()
    with done:
        while len(results) < len(clusters):
            now = time.monotonic()
            overdue = [i for i, t in started.items() if i not in results and now > t + cut_at[i]]
            for index in overdue:
                name, deadline_s = clusters[index].name, clusters[index].monitor.check_deadline_s
                error = f"the health check did not finish within {deadline_s:g}s (a Docker engine or JobManager hangs)"
                results[index] = ClusterCheck(name, None, error, now - started[index])
                spawn()  # its thread is stuck: the pool keeps its size for the clusters still to check
            running = [t + cut_at[i] for i, t in started.items() if i not in results]
            done.wait(timeout=max(0.05, min(running) - now) if running else 0.5)
    for _ in range(workers + len(clusters)):
        todo.put(None)  # every live worker stops; a stuck one finds the queue closed when it wakes
    return [results[i] for i in range(len(clusters))]

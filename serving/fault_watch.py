"""The fault watcher of the serving process: a door into the runbook, pushed where Docker pushes.

One thread per Docker engine of the inventory follows its event stream (reconnecting with backoff);
one thread glances at every cluster every few seconds (the runbook's own observation at
`Depth.GLANCE` and its diagnosis). A fault (flink_runbook.runbook.observing.fault_watch: findings) goes through
the guard rails the monitor uses; when they allow a recovery, the recover flow runs at once in this
process (a flow run like any other in the UI, with no automation, runner poll or subprocess start in
front of it), and the event says "started" so the trigger does not start a second one. Otherwise the
event carries the guard's decision and the scheduled monitor goes on as before: it is what sees a
frozen-but-running JVM, a partition, a stuck job, and what workers run when scaled out.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import docker
import docker.errors

from flink_runbook.containers.docker_events import docker_events
from flink_runbook.containers.engines import engine_client, engine_id, forget_engine
from flink_runbook.containers.states import (
    ContainerState,
    DockerUnavailable,
    container_state,
    container_states,
    engine_view,
)
from flink_runbook.flink.rest import FlinkRestClient, rest_client
from flink_runbook.inventory import ClusterSpec, DockerEngine, load_inventory
from flink_runbook.runbook.clients import connect
from flink_runbook.runbook.deciding.guard import GuardAction
from flink_runbook.runbook.keeping.person_stops import asks_to_stop, expected_taskmanagers, persons_stop, standing_stops
from flink_runbook.runbook.observing.diagnosis import Diagnosis, diagnose
from flink_runbook.runbook.observing.engine_identity import EngineMismatch, engine_mismatch
from flink_runbook.runbook.observing.fault_watch import (
    Fault,
    FaultDeduper,
    WatchedContainer,
    container_fault,
    fault_persists,
    glance_fault,
    restarts_by_itself,
    watched_containers,
)
from flink_runbook.runbook.observing.findings import FindingCode
from flink_runbook.runbook.observing.fleet_check import EngineLooks, engine_looks
from flink_runbook.runbook.observing.observe import Depth, observe_cluster
from flink_runbook.runbook.reporting.events import fault_event
from flink_runbook.runbook.reporting.run_labels import Door

DEFAULT_REST_INTERVAL_S = 2.0
REFRESH_CONTAINERS_S = 30.0  # containers recreated by `compose up` get new ids
MAX_BACKOFF_S = 30.0
# Docker's restart policy starts a crashed container within about half a second (then backs off).
POLICY_RESTART_WAIT_S = 3.0


class FaultWatcher:
    def __init__(
        self,
        config: Path,
        say: Callable[[str], None],
        rest_interval_s: float = DEFAULT_REST_INTERVAL_S,
        recheck_s: float = 30.0,
    ) -> None:
        self.inventory = load_inventory(config)
        self.say = say
        self.rest_interval_s = rest_interval_s
        self.deduper = FaultDeduper(recheck_s)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watched: dict[str, WatchedContainer] = {}
        self._threads: list[threading.Thread] = []
        self._recoveries: dict[str, threading.Thread] = {}
        self._rest: dict[str, FlinkRestClient] = {}  # the glance's clients, kept between rounds
        self._mismatched: set[str] = set()  # clusters whose engine is not theirs (said once, until it is again)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        engines = sorted({c.docker for c in self.inventory.clusters}, key=lambda e: e.host or "")
        for engine in engines:
            self._spawn(f"watch docker {engine.host or 'local'}", self._follow_docker, engine)
        self._spawn("watch rest", self._glance_every_interval)
        self.say(
            f"watching {len(self.inventory.clusters)} cluster(s): Docker events of {len(engines)} engine(s), "
            f"a glance every {self.rest_interval_s:g}s; a fault the guard rails allow is recovered in this process"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for name, thread in list(self._recoveries.items()):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.say(f"watch: the recovery of {name} still runs as serve stops; the next monitor tick sees it")

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    # -- Docker's events -----------------------------------------------------

    def _mismatch(self, cluster: ClusterSpec, found_id: str) -> EngineMismatch | None:
        """Whether the engine is not the cluster's; said once when it starts (and again after it ended)."""
        mismatch = engine_mismatch(cluster, found_id)
        with self._lock:
            told = cluster.name in self._mismatched
            (self._mismatched.discard if mismatch is None else self._mismatched.add)(cluster.name)
        if mismatch is not None and not told:
            self.say(f"watch: {cluster.name}: its containers are not watched there: {mismatch.describe()}")
        return mismatch

    def _refresh_containers(self, engine: DockerEngine, client: docker.DockerClient) -> None:
        found, view, found_id = {}, engine_view(client, oom_lookback_s=0), engine_id(engine)
        clusters = [c for c in self.inventory.clusters if c.docker == engine]
        for cluster in clusters:
            if self._mismatch(cluster, found_id) is None:  # another host's engine: its events are not our faults
                found |= watched_containers(cluster.name, container_states(view, cluster.containers))
        names = {c.name for c in clusters}
        with self._lock:
            self._watched = {cid: w for cid, w in self._watched.items() if w.cluster not in names} | found

    def _follow_docker(self, engine: DockerEngine) -> None:
        """Docker's events, from the moment the watcher started; a broken stream is followed again from
        the last event seen (events of that second come twice and are told apart)."""
        since, backoff, refreshed = time.time(), 1.0, 0.0
        seen: deque[tuple[str, str, float]] = deque(maxlen=512)
        stop_asked: dict[str, float] = {}  # container id -> when SIGTERM was asked (docker stop)
        where = engine.host or "the local Docker engine"
        while not self._stopping.is_set():
            try:
                client = engine_client(engine)
                self._refresh_containers(engine, client)
                refreshed = time.monotonic()
                for event in docker_events(client, since):
                    key = (event.container_id, event.action, event.at)
                    if key in seen:
                        continue
                    seen.append(key)
                    since = max(since, event.at)
                    backoff = 1.0
                    if self._stopping.is_set():
                        return
                    if event.action in ("start", "restart") or time.monotonic() - refreshed > REFRESH_CONTAINERS_S:
                        self._refresh_containers(engine, client)
                        refreshed = time.monotonic()
                    if asks_to_stop(event):
                        stop_asked[event.container_id] = event.at
                    asked_at = stop_asked.pop(event.container_id, None) if event.action == "die" else None
                    watched = self._watched.get(event.container_id)
                    fault = container_fault(event, watched)
                    if fault is None:
                        continue
                    (cluster,) = self.inventory.select(fault.cluster)
                    if persons_stop(event, asked_at, watched.role, cluster.restart_stopped):
                        self.say(f"watch: {fault.cluster}: {fault.what} after `docker stop`: a person's stop, "
                                 "left stopped (restart_stopped: true to restart it)")
                    else:
                        self._on_fault(fault)
            except (DockerUnavailable, docker.errors.DockerException, OSError, ValueError) as exc:
                if self._stopping.is_set():
                    return
                forget_engine(engine)
                self.say(f"watch: the event stream of {where} broke ({str(exc)[:200]}); again in {backoff:.0f}s")
                self._stopping.wait(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF_S)

    def _docker(self, cluster: ClusterSpec) -> docker.DockerClient:
        """The cluster's engine client, shared with its event thread (one per engine, no ping per fault);
        DockerUnavailable when the engine there is not the cluster's."""
        client = engine_client(cluster.docker)
        mismatch = engine_mismatch(cluster, engine_id(cluster.docker))
        if mismatch is not None:
            raise DockerUnavailable(mismatch.describe())
        return client

    # -- the glance ----------------------------------------------------------

    def _glance(self, cluster: ClusterSpec, secret: Callable[[str], str], looks: EngineLooks) -> Diagnosis | None:
        """The runbook's look at a glance, cut at the monitor's check_deadline_s: a JobManager that hangs
        costs its own cluster a glance, not the others theirs. None: the look itself could not be made."""
        try:
            if cluster.name not in self._rest:  # one REST client per cluster for the watch, as the monitor's tick
                self._rest[cluster.name] = rest_client(cluster.rest, secret=secret)
                self._rest[cluster.name].read_retries = 0  # the next glance is a few seconds away
            clients = connect(cluster, secret, self._rest[cluster.name])
            clients = replace(clients, rest=clients.rest.until(time.monotonic() + cluster.monitor.check_deadline_s))
            return diagnose(cluster, observe_cluster(cluster, clients, Depth.GLANCE, looks.look(cluster, clients)))
        except Exception as exc:  # a broken client (a secret that cannot be read) must not stop the watch
            self.say(f"watch: cannot glance at {cluster.name} ({cluster.rest.url}): {str(exc)[:200]}")
            return None

    def _glance_every_interval(self) -> None:
        """Every cluster whose recovery does not run, each interval, at most 32 at once."""
        from flink_runbook.tasks.clients import secret_value

        secret = functools.cache(secret_value)  # a Secret block read once, not every few seconds
        with ThreadPoolExecutor(
            max_workers=min(32, len(self.inventory.clusters)), thread_name_prefix="watch rest"
        ) as pool:
            while not self._stopping.wait(self.rest_interval_s):
                due = [c for c in self.inventory.clusters if not self.deduper.running(c.name)]
                # Each engine's containers listed once a round, whatever number of clusters run there.
                glance = functools.partial(self._glance, secret=secret, looks=engine_looks(due))
                for cluster, diagnosis in zip(due, pool.map(glance, due), strict=True):
                    if diagnosis is None:
                        continue
                    # A person's decisions, as the recovery reads them: not faults, so not a recovery every recheck.
                    stops, expected = standing_stops(cluster.state_dir, cluster.name), expected_taskmanagers(cluster)
                    fault = glance_fault(diagnosis, time.time(), stops, expected)
                    if fault is not None:
                        self._on_fault(fault)

    # -- acting --------------------------------------------------------------

    def _on_fault(self, fault: Fault) -> None:
        with self._lock:
            if not self.deduper.admit(fault, time.time()):
                return
            self.deduper.recovery_started(fault.cluster)  # held while the guard decides: one fault, one recovery
        thread = threading.Thread(target=self._recover, args=(fault,), name=f"recover {fault.cluster}", daemon=True)
        self._recoveries[fault.cluster] = thread
        thread.start()

    def _container_now(self, cluster: ClusterSpec, name: str) -> ContainerState | None:
        """The container's state now; None when it is gone, or the engine is (the recovery or the tick sees it)."""
        try:
            return container_state("", "", self._docker(cluster).containers.get(name))
        except (DockerUnavailable, docker.errors.DockerException):
            return None

    def _let_the_restart_policy_act(self, cluster: ClusterSpec, fault: Fault) -> None:
        """A container whose restart policy restarts it is Docker's to start (within a second): observed
        before that, it would look stopped and be restarted twice, killing the JVM Docker just started."""
        state = self._container_now(cluster, fault.container)
        deadline = time.monotonic() + POLICY_RESTART_WAIT_S
        while state is not None and restarts_by_itself(state) and state.state not in ("running", "restarting"):
            if time.monotonic() > deadline or self._stopping.wait(0.1):
                return
            state = self._container_now(cluster, fault.container)

    def _recover(self, fault: Fault) -> None:
        from flink_runbook.flows.recover import recover_flow
        from flink_runbook.flows.run_labels import started_by
        from flink_runbook.records.events import post
        from flink_runbook.tasks.monitor_steps import guard_decision_now

        (cluster,) = self.inventory.select(fault.cluster)
        late = max(0.0, time.time() - fault.at)
        try:
            if fault.code in (FindingCode.CONTAINER_EXITED, FindingCode.CONTAINER_OOM_KILLED):
                self._let_the_restart_policy_act(cluster, fault)
            decision = guard_decision_now(cluster, self.inventory.path)
            event = fault_event(fault, cluster.rest.url, decision)
            post([event])
            if decision.action != GuardAction.RECOVER:
                self.say(f"watch: {fault.cluster}: {fault.what}; not recovering: {decision.action}: {decision.reason}")
                return
            self.say(f"watch: {fault.cluster}: {fault.what} ({late:.1f}s ago, {fault.source}); recovering now")
            started = time.monotonic()
            with started_by(Door.WATCHER, f"fault:{fault.code.lower()}"):  # the run's tags (flows/run_labels.py)
                state = recover_flow(
                    config=str(self.inventory.path), cluster=cluster.name, guarded=True, return_state=True
                )
            self.say(
                f"watch: {fault.cluster}: recovery {state.type.value} after {time.monotonic() - started:.1f}s"
                + (f": {state.message}" if state.message else "")
            )
        except Exception as exc:  # the watcher outlives one failed recovery; the monitor tick is still there
            self.say(f"watch: {fault.cluster}: the recovery could not run: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            with self._lock:
                pending = self.deduper.recovery_ended(fault.cluster, time.time())
                self._recoveries.pop(fault.cluster, None)
            if pending is not None and not self._stopping.is_set() and self._still_holds(cluster, pending):
                self.say(f"watch: {fault.cluster}: {pending.what} while it recovered, and it still holds")
                self._on_fault(pending)

    def _still_holds(self, cluster: ClusterSpec, fault: Fault) -> bool:
        state = self._container_now(cluster, fault.container)
        return state is not None and fault_persists(fault, state)

"""The fault watcher of the serving process: push where Docker pushes, a cheap REST watch in between.

One thread per Docker engine of the inventory follows its event stream (reconnecting with backoff);
one thread reads each cluster's `/taskmanagers` and `/jobs/overview` every few seconds. A fault
(flink_runbook.runbook.fault_watch) goes through the guard rails the monitor uses; when they allow a
recovery, the recover flow runs at once in this process (a flow run like any other in the UI, with
no automation, runner poll or subprocess start in front of it), and the event says "started" so the
trigger does not start a second one. Otherwise the event carries the guard's decision and the
scheduled monitor goes on as before: it is what sees a frozen-but-running JVM, a partition, a stuck
job, and what workers run when scaled out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors

from flink_runbook.containers.docker_events import docker_events
from flink_runbook.containers.engines import engine_client, engine_id, forget_engine
from flink_runbook.containers.states import DockerUnavailable, container_state, engine_view, find_containers
from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.inventory import ClusterSpec, DockerEngine, load_inventory
from flink_runbook.runbook.engine_identity import EngineMismatch, engine_mismatch
from flink_runbook.runbook.events import fault_event
from flink_runbook.runbook.fault_watch import (
    Fault,
    FaultDeduper,
    WatchedContainer,
    asks_to_stop,
    container_fault,
    died_when_asked_to_stop,
    fault_persists,
    rest_fault,
    restarts_by_itself,
)
from flink_runbook.runbook.guard import GuardAction
from flink_runbook.runbook.person_stops import expected_taskmanagers, standing_stops

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
        self._mismatched: set[str] = set()  # clusters whose engine is not theirs (said once, until it is again)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        engines = sorted({c.docker for c in self.inventory.clusters}, key=lambda e: e.host or "")
        for engine in engines:
            self._spawn(f"watch docker {engine.host or 'local'}", self._follow_docker, engine)
        self._spawn("watch rest", self._watch_rest)
        self.say(
            f"watching {len(self.inventory.clusters)} cluster(s): Docker events of {len(engines)} engine(s), "
            f"REST every {self.rest_interval_s:g}s; a fault the guard rails allow is recovered in this process"
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

    # -- sources -------------------------------------------------------------

    def _clusters_on(self, engine: DockerEngine) -> list[ClusterSpec]:
        return [c for c in self.inventory.clusters if c.docker == engine]

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
        found = {}
        view = engine_view(client, oom_lookback_s=0)
        found_id = engine_id(engine)
        for cluster in self._clusters_on(engine):
            if self._mismatch(cluster, found_id) is not None:
                continue  # another host's engine: its events are not this cluster's faults
            for role, containers in find_containers(view, cluster.containers).items():
                for container in containers:
                    found[container.id] = WatchedContainer(cluster.name, role, container.name)
        names = {c.name for c in self._clusters_on(engine)}
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
                    fault = container_fault(event, self._watched)
                    if fault is not None and died_when_asked_to_stop(event, stop_asked.pop(event.container_id, None)):
                        (cluster,) = self.inventory.select(fault.cluster)
                        watched = self._watched.get(event.container_id)
                        if watched is not None and watched.role == "taskmanager" and not cluster.restart_stopped:
                            self.say(f"watch: {fault.cluster}: {fault.what} after `docker stop`: a person's stop, "
                                     "left stopped (restart_stopped: true to restart it)")  # fmt: skip
                            continue
                    if fault is not None:
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

    def _watch_rest(self) -> None:
        """/taskmanagers and /jobs/overview of every cluster each interval, at most 32 at once, each cut at
        its monitor's check_deadline_s: a JobManager that hangs costs its own cluster a reading, not the
        others theirs."""
        from flink_runbook.tasks.clients import cluster_rest

        clients: dict[str, FlinkRestClient] = {}

        def read(cluster: ClusterSpec) -> tuple[list | None, list | None, str | None] | None:
            try:
                if cluster.name not in clients:
                    clients[cluster.name] = cluster_rest(cluster)
                    clients[cluster.name].read_retries = 0  # the next reading is a few seconds away
                rest = clients[cluster.name].until(time.monotonic() + cluster.monitor.check_deadline_s)
                return rest.taskmanagers(), rest.jobs_overview(), None
            except FlinkRestError as exc:
                return None, None, str(exc)
            except Exception as exc:  # a broken client (a secret that cannot be read) must not stop the watch
                self.say(f"watch: cannot read {cluster.rest.url} of {cluster.name}: {str(exc)[:200]}")
                return None

        with ThreadPoolExecutor(
            max_workers=min(32, len(self.inventory.clusters)), thread_name_prefix="watch rest"
        ) as pool:
            while not self._stopping.wait(self.rest_interval_s):
                due = [c for c in self.inventory.clusters if not self.deduper.running(c.name)]
                for cluster, reading in zip(due, pool.map(read, due), strict=True):
                    if reading is None:
                        continue
                    fault = rest_fault(cluster, *reading, time.time(), *self._persons_decisions(cluster))
                    if fault is not None:
                        self._on_fault(fault)

    def _persons_decisions(self, cluster: ClusterSpec) -> tuple[frozenset[str], int]:
        """The jobs whose stop by a person stands, and the TaskManagers expected without those a person stopped
        (what diagnose remembered): not faults, so not a recovery every recheck."""
        return standing_stops(cluster.state_dir, cluster.name), expected_taskmanagers(cluster)

    # -- acting --------------------------------------------------------------

    def _on_fault(self, fault: Fault) -> None:
        with self._lock:
            if not self.deduper.admit(fault, time.time()):
                return
            self.deduper.recovery_started(fault.cluster)  # held while the guard decides: one fault, one recovery
        thread = threading.Thread(target=self._recover, args=(fault,), name=f"recover {fault.cluster}", daemon=True)
        self._recoveries[fault.cluster] = thread
        thread.start()

    def _let_the_restart_policy_act(self, cluster: ClusterSpec, fault: Fault) -> None:
        """A container whose restart policy restarts it is Docker's to start (within a second): observed
        before that, it would look stopped and be restarted twice, killing the JVM Docker just started."""
        try:
            container = self._docker(cluster).containers.get(fault.container)
        except (DockerUnavailable, docker.errors.DockerException):
            return  # the recovery observes it and says what it finds
        policy = ((container.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        if not restarts_by_itself(policy, container.attrs.get("State", {}).get("ExitCode")):
            return
        deadline = time.monotonic() + POLICY_RESTART_WAIT_S
        while time.monotonic() < deadline and not self._stopping.is_set():
            container.reload()
            if container.status in ("running", "restarting"):
                return
            time.sleep(0.1)

    def _recover(self, fault: Fault) -> None:
        from prefect.events import emit_event

        from flink_runbook.flows.recover import recover_flow
        from flink_runbook.tasks.monitor_steps import guard_decision_now

        (cluster,) = self.inventory.select(fault.cluster)
        late = max(0.0, time.time() - fault.at)
        try:
            if fault.code in ("CONTAINER_EXITED", "CONTAINER_OOM_KILLED"):
                self._let_the_restart_policy_act(cluster, fault)
            decision = guard_decision_now(cluster, self.inventory.path)
            event = fault_event(fault, cluster.rest.url, decision)
            emit_event(event=event.event, resource=event.resource, payload=event.payload)
            if decision.action != GuardAction.RECOVER:
                self.say(f"watch: {fault.cluster}: {fault.what}; not recovering: {decision.action}: {decision.reason}")
                return
            self.say(f"watch: {fault.cluster}: {fault.what} ({late:.1f}s ago, {fault.source}); recovering now")
            started = time.monotonic()
            # Named, not tagged: a tag is inherited by every task, and each tagged task asks the server for
            # tag concurrency limits first (one more call that a busy SQLite server answers 503, retried in 2 s).
            # One word, like Prefect's own run names (logs and scripts take a run name to end at a space).
            name = f"fault-watch-{cluster.name}-{fault.code.lower()}".replace("{", "(").replace("}", ")")
            state = recover_flow.with_options(flow_run_name=name)(
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
        try:
            container = self._docker(cluster).containers.get(fault.container)
        except (DockerUnavailable, docker.errors.DockerException):
            return False  # gone, or the engine is: the monitor's tick sees it
        return fault_persists(fault, container_state("", "", container))

"""The runbook's incident, replayed against served deployments, and timed.

Used by the demo (`make demo`) and the end-to-end tests. Only the fault is
injected; detection and recovery are left entirely to the monitor, the
recover trigger and the recover flow. Times are measured from the injection:

    detect   the first flink.cluster.unhealthy event of the cluster
    recover  the end of the first recover run that started after the fault
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

from flink_runbook.infrastructure.local_server import TELEMETRY_OFF
from flink_runbook.polling import wait_until
from flink_runbook.records.flow_runs import RECOVER_FLOW_NAME, flow_runs
from flink_runbook.runbook.deciding.guard import recovers_cluster
from flink_runbook.runbook.reporting.events import cluster_resource_id
from flink_runbook.serving.processes import die_with_parent, flow_run_processes

REPO = Path(__file__).resolve().parent.parent
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class ServeExited(RuntimeError):
    pass


@dataclass
class ServedDeployments:
    """`python -m flink_runbook.serving.serve` as a child process: against a given Prefect API, or
    (api_url None) its own local server in `prefect_home` on `port`. It dies with the process that started it."""

    process: subprocess.Popen
    log_path: Path

    @classmethod
    def start(
        cls,
        config: Path,
        api_url: str | None,
        log_path: Path,
        interval_s: float,
        limit: int = 4,
        prefect_home: Path | None = None,
        port: int | None = None,
        watch: bool = True,
    ) -> ServedDeployments:
        env = {**os.environ, **TELEMETRY_OFF}
        env.pop("PREFECT_API_URL", None)
        if api_url:
            env["PREFECT_API_URL"] = api_url
        command = [sys.executable, "-m", "flink_runbook.serving.serve", "--config", str(config)]
        command += ["--interval", str(interval_s), "--limit", str(limit)]
        command += ["--prefect-home", str(prefect_home)] if prefect_home else []
        command += ["--port", str(port)] if port else []
        command += [] if watch else ["--no-watch"]
        log = log_path.open("ab")
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        log.close()
        return cls(process, log_path)

    def stop(self, timeout_s: float = 45) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # serve cancels runs in flight and frees their slots
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_until_serving(self, timeout_s: float = 120) -> None:
        """Until the log says it serves (its deployments registered, what an unclean stop left reconciled)."""

        def serving() -> bool:
            log = self.log_path.read_text(errors="replace")
            if self.process.poll() is not None:
                raise ServeExited(f"the serving process exited with {self.process.returncode}: {log[-2000:]}")
            return "serve: serving " in log

        wait_until(
            serving, bool, timeout=timeout_s, interval=0.5, what=f"the serving process to serve ({self.log_path})"
        )


def cluster_events(cluster: str, names: list[str], since: datetime | None) -> list:
    """The cluster's events of these names since `since` (None: the last day), oldest first."""
    return resource_events(cluster_resource_id(cluster), names, since)


def resource_events(resource_id: str, names: list[str], since: datetime | None) -> list:
    """A resource's events of these names since `since` (None: the last day), oldest first."""
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=names),
                resource=EventResourceFilter(id=[resource_id]),
                occurred=EventOccurredFilter(since=since) if since else EventOccurredFilter(),
                order="ASC",
            ),
            limit=50,
        )
    return page.events


def recover_runs(cluster: str, since: datetime | None, config: Path | None = None) -> list[FlowRun]:
    """Recover runs of this cluster that started at or after `since` (None: any), oldest first.

    A run counts when it names the cluster (as every triggered run does) or, given `config`, when
    it recovers every cluster of that inventory; a run of another inventory never counts.
    """
    with get_client(sync_client=True) as client:
        runs = flow_runs(
            client,
            flow_filter=FlowFilter(name=FlowFilterName(any_=[RECOVER_FLOW_NAME])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)) if since else None,
        )
    runs = [
        r
        for r in runs
        if (recovers_cluster(r.parameters, cluster, config) if config else r.parameters.get("cluster") == cluster)
    ]
    return sorted(runs, key=lambda r: r.start_time or r.expected_start_time or datetime.now(UTC))


def running_recovery(clusters: list[str], since: datetime) -> tuple[str, FlowRun, int] | None:
    """A recover run of one of these clusters that is RUNNING with its process on this host and whose first
    heartbeat the server has: (cluster, run, pid), or None (for drills that kill a recovery's worker)."""
    processes = flow_run_processes()
    for cluster in clusters:
        for run in recover_runs(cluster, since):
            pids = [pid for pid, run_id in processes.items() if run_id == str(run.id)]
            running = run.state_type is not None and run.state_type.value == "RUNNING" and pids
            if running and resource_events(f"prefect.flow-run.{run.id}", ["prefect.flow-run.heartbeat"], since):
                return cluster, run, pids[0]
    return None


def wait_for_event(cluster: str, name: str, since: datetime | None, timeout_s: float):
    return wait_until(
        lambda: cluster_events(cluster, [name], since),
        bool,
        timeout=timeout_s,
        interval=1,
        what=f"a {name} event for {cluster}",
    )[0]


@dataclass(frozen=True)
class DrillResult:
    injected_at: datetime
    detect_s: float
    recover_s: float
    recover_run: str
    recover_run_id: str
    recover_state: str
    findings: list[str]


def _quiet(message: str) -> None:
    pass


def run_drill(
    cluster: str, inject: Callable[[], None], timeout_s: float = 300, say: Callable[[str], None] = _quiet
) -> DrillResult:
    """Inject the fault, then only watch: the monitor must detect it and the trigger must recover it.

    `say` hears each step as it happens: the detection, the recover run's start, its end.
    """
    injected_at = datetime.now(UTC)
    inject()
    started = time.monotonic()
    detected = wait_for_event(cluster, "flink.cluster.unhealthy", injected_at, timeout_s)
    detect_s = (detected.occurred - injected_at).total_seconds()
    findings = [f["code"] for f in detected.payload.get("findings", [])]
    say(f"Detected after {detect_s:.1f}s: {', '.join(findings)} (the guard says {detected.payload.get('decision')})")

    def remaining() -> float:
        return max(1.0, timeout_s - (time.monotonic() - started))

    def started_runs() -> list[FlowRun]:
        # Two ticks may both ask for a recovery before the first run exists (the trigger's action takes a few
        # seconds), or the trigger and the fault watcher both start one; the later queues behind the first's
        # lock and ends Cancelled.
        return [r for r in recover_runs(cluster, injected_at) if r.start_time is not None]

    first = wait_until(
        started_runs,
        bool,
        timeout=remaining(),
        interval=0.5,
        what=f"a recover run for {cluster}",
    )[0]
    door = "the trigger" if first.deployment_id else "the fault watcher, in the serving process"
    say(f"Recover run {first.name} started {_seconds_since(first, injected_at):.1f}s after the fault ({door})")
    runs = wait_until(
        started_runs,
        lambda found: bool(found) and all(r.state_type and r.state_type.value in FINAL_STATES for r in found),
        timeout=remaining(),
        interval=1,
        what=f"finished recover runs for {cluster}",
    )
    # The recovery is the run that did not stand aside (a duplicate queued behind it ends Cancelled).
    run = next((r for r in runs if r.state_type.value != "CANCELLED"), runs[0])
    recover_s = ((run.end_time or datetime.now(UTC)) - injected_at).total_seconds()
    say(f"Recover run {run.name} ended {run.state_type.value} {recover_s:.1f}s after the fault")
    return DrillResult(
        injected_at=injected_at,
        detect_s=detect_s,
        recover_s=recover_s,
        recover_run=run.name,
        recover_run_id=str(run.id),
        recover_state=run.state_type.value,
        findings=findings,
    )


def _seconds_since(run: FlowRun, since: datetime) -> float:
    started = run.start_time or run.expected_start_time or datetime.now(UTC)
    return max(0.0, (started - since).total_seconds())

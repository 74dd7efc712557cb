"""The watchdog must never go blind: unclean stops of the serving process and its server, and stalled ticks.

Real `prefect server start` processes, real served deployments, real stacks,
real SIGKILLs. Before the fix, a SIGKILL of both left the in-flight run
holding its deployment's only slot forever (in-memory lease storage): every
later tick was cancelled. Not sensitive to the Flink release: one version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

from flink_runbook.demo import faults
from flink_runbook.demo.drill import ServedDeployments, run_drill, wait_for_event
from flink_runbook.demo.job import build_demo_job_jar, committed_ids
from flink_runbook.infrastructure.local_server import (
    PID_FILE,
    PrefectServerError,
    our_server_pid,
    server_is_up,
    start_local_server,
)
from flink_runbook.polling import wait_until
from flink_runbook.serving.processes import is_alive, stop_process
from flink_runbook.serving.watchdog import MONITOR_RESOURCE_ID, RESUMED_EVENT, STALLED_EVENT

from .conftest import ONE_VERSION, assert_every_id_exactly_once, free_local_port, run_demo_job, write_inventory

REPO = Path(__file__).resolve().parents[2]
INTERVAL_S = 5
FAST = {
    "recovery": {"stabilization_s": 5, "verify_timeout_s": 90, "registration_grace_s": 20},
    "monitor": {"cooldown_s": 5, "max_recoveries": 5, "window_s": 900, "resume_after_healthy_s": 600},
}


class ServeWithItsOwnServer:
    """serve without PREFECT_API_URL: it starts its own local server, as `make serve` does."""

    def __init__(self, inventory: Path, home: Path, logs: Path) -> None:
        self.inventory, self.home, self.logs = inventory, home, logs
        self.port = free_local_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.starts = 0
        self.served: ServedDeployments | None = None

    def start(self) -> float:
        """Start and wait until it serves; returns when (epoch s) it said so."""
        self.starts += 1
        log = self.logs / f"serve-{self.starts}.log"
        self.served = ServedDeployments.start(
            self.inventory,
            None,
            log,
            INTERVAL_S,
            prefect_home=self.home,
            port=self.port,
            watch=False,  # the runner's own runs are what this reconciles
        )
        self.served.wait_until_serving(timeout_s=180)
        return time.time()

    def server_pid(self) -> int:
        return int((self.home / PID_FILE).read_text().split()[0])

    def sigkill_everything(self) -> None:
        """What a reboot or an OOM kill of the whole group does: the serving process, its runs, its server."""
        server_pid = self.server_pid()
        for group in (os.getpgid(self.served.process.pid), os.getpgid(server_pid)):
            os.killpg(group, signal.SIGKILL)
        self.served.process.wait()
        wait_until(lambda: not is_alive(server_pid), bool, timeout=30, what=f"server pid {server_pid} gone")

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            for path in sorted(self.logs.glob("serve-*.log"))
        )


@contextmanager
def serving_with_its_own_server(inventory: Path, tmp_path: Path) -> Iterator[ServeWithItsOwnServer]:
    serve = ServeWithItsOwnServer(inventory, tmp_path / "prefect-home", tmp_path)
    try:
        with temporary_settings(updates={PREFECT_API_URL: serve.api_url}):
            yield serve
    finally:
        serve.stop()
        print(serve.log_tail())


def monitor_runs_since(since: datetime) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["monitor"])),
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since)),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )


def first_completed_tick_after(since: datetime, timeout_s: float) -> tuple[float, list[str]]:
    """Seconds from `since` until a monitor tick due after it completed, and the ticks' states until then."""
    done = wait_until(
        lambda: monitor_runs_since(since),
        lambda runs: any(r.state_type.value == "COMPLETED" for r in runs),
        timeout=timeout_s,
        what=f"a completed monitor tick after {since:%H:%M:%S}",
    )
    completed = next(r for r in done if r.state_type.value == "COMPLETED")
    return (completed.end_time - since).total_seconds(), [r.state_type.value for r in done if r.start_time]


def wait_for_a_run_in_flight(flow: str) -> object:
    def running() -> list:
        with get_client(sync_client=True) as client:
            return client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["RUNNING"]))),
                limit=5,
            )

    return wait_until(running, bool, timeout=180, interval=0.2, what=f"a {flow} run in flight")[0]


@pytest.fixture
def stack_with_job(start_stack):
    stack = start_stack(ONE_VERSION)
    jar = build_demo_job_jar(ONE_VERSION)
    run_demo_job(stack, jar)
    try:
        yield stack, jar
    finally:
        stack.down()


@pytest.mark.parametrize("in_flight", ["monitor", "recover"])
def test_sigkill_of_serve_and_its_server_mid_run_then_the_next_start_monitors_and_recovers(
    stack_with_job, tmp_path, in_flight
):
    stack, jar = stack_with_job
    cluster = stack.settings.project
    inventory = write_inventory(stack, tmp_path, jar, **FAST)
    with serving_with_its_own_server(inventory, tmp_path) as serve:
        serve.start()
        wait_for_event(cluster, "flink.cluster.healthy", since=None, timeout_s=120)
        if in_flight == "recover":
            faults.freeze(stack.taskmanager())
        killed_run = wait_for_a_run_in_flight(in_flight)
        if in_flight == "recover":
            time.sleep(3)  # into its steps: the recovery lock is held, the TaskManager restart under way
        serve.sigkill_everything()
        print(f"\nSIGKILLed serve, its runs and its server while {in_flight} run {killed_run.name} was RUNNING")

        serve.start()
        serving = datetime.now(UTC)
        # Before the fix: every tick CANCELLED ("Deployment concurrency limit reached"), for good. Within 2
        # intervals, plus what starting a flow-run process takes on this 2-core machine.
        took_s, ticks = first_completed_tick_after(serving, timeout_s=2 * INTERVAL_S + 20)
        print(f"first completed tick {took_s:.1f}s after serve was back; ticks until then: {ticks}")
        restarted_at = serving
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(killed_run.id).state_type.value == "CRASHED"
        reconciled = (tmp_path / "serve-2.log").read_text()
        assert "left by an earlier stop: marked run " + killed_run.name in reconciled
        if in_flight == "recover":
            # Its recovery lock is freed by Prefect when its lease expires (60 s, nothing renews it), never given
            # back early: a slot given back while that lease lives would be taken twice. The wait for health below
            # needs the next recovery to get the lock.
            assert f"lowered flink-recover-{cluster}" not in reconciled

        # Whatever the killed run left half done is finished: the cluster is healthy again, one copy of the job.
        wait_for_event(cluster, "flink.cluster.healthy", since=restarted_at, timeout_s=300)
        running = [j for j in stack.rest.jobs_overview() if j.state in ("RUNNING", "CREATED", "INITIALIZING")]
        assert len(running) == 1, running

        # And the next fault is recovered as if nothing had happened.
        result = run_drill(cluster, lambda: faults.freeze(stack.taskmanager()), timeout_s=300, say=print)
        assert result.recover_state == "COMPLETED", result
        assert_every_id_exactly_once(stack, at_least=len(committed_ids(stack.output_dir)) + 40)


def test_sigkill_of_serve_alone_and_the_next_start_succeeds(tmp_path):
    inventory = unreachable_cluster_inventory(tmp_path)
    with serving_with_its_own_server(inventory, tmp_path) as serve:
        serve.start()
        first_server = serve.server_pid()
        os.kill(serve.served.process.pid, signal.SIGKILL)  # its server is not killed: it must not outlive it
        serve.served.process.wait()
        serve.start()  # before the fix: "something already answers on http://127.0.0.1:PORT/api"
        assert not is_alive(first_server) and serve.server_pid() != first_server
        took_s, ticks = first_completed_tick_after(datetime.now(UTC), timeout_s=2 * INTERVAL_S + 20)
        print(f"\nfirst completed tick {took_s:.1f}s after the second start; ticks until then: {ticks}")


def unreachable_cluster_inventory(tmp_path: Path, **top_level) -> Path:
    name = f"unreachable-{uuid.uuid4().hex[:6]}"
    cluster = {"name": name, "rest": {"url": "http://127.0.0.1:9"}, "containers": {"compose_project": name}}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"clusters": [cluster], **top_level}))
    return inventory


def orphaned_prefect_server(home: Path, port: int) -> int:
    """A `prefect server start` whose parent is gone (handed to init): what a hung shutdown leaves. Its pid."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    prefect = Path(sys.executable).parent / "prefect"
    started = subprocess.run(
        ["sh", "-c", f"'{prefect}' server start --host 127.0.0.1 --port {port} >/dev/null 2>&1 </dev/null & echo $!"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    pid = int(started.stdout.split()[0])
    wait_until(lambda: server_is_up(f"http://127.0.0.1:{port}/api"), bool, timeout=120, what=f"a server on {port}")
    return pid


def test_an_orphaned_server_of_ours_is_stopped_at_start_and_anything_else_on_the_port_is_refused(tmp_path):
    home, port = tmp_path / "ours", free_local_port()
    home.mkdir()
    orphan = orphaned_prefect_server(home, port)
    (home / PID_FILE).write_text(f"{orphan}\n")
    assert our_server_pid(home) == orphan
    server = start_local_server(home, port)
    try:
        assert not is_alive(orphan) and server.process.pid != orphan
        assert server_is_up(server.api_url)
        # While its parent (this test) lives, our server is nobody's orphan: a second start leaves it alone.
        with pytest.raises(PrefectServerError, match="something already answers"):
            start_local_server(home, port)
        assert server.process.poll() is None
    finally:
        server.stop()

    other_home, other_port = tmp_path / "someone-else", free_local_port()
    foreign = orphaned_prefect_server(other_home, other_port)
    try:
        # A pid file naming that process does not make it ours: it serves another home.
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / PID_FILE).write_text(f"{foreign}\n")
        with pytest.raises(PrefectServerError, match="something already answers"):
            start_local_server(tmp_path / "mine", other_port)
        assert is_alive(foreign)
    finally:
        stop_process(foreign)


def test_stalled_ticks_raise_the_alarm_and_the_watchdog_frees_the_leaked_slot(prefect_server, webhook_inbox, tmp_path):
    url, received = webhook_inbox
    inventory = unreachable_cluster_inventory(tmp_path, notifications={"escalation_webhook_url": url})
    served = ServedDeployments.start(
        inventory,
        prefect_server.api_url,
        tmp_path / "serve.log",
        INTERVAL_S,
        prefect_home=prefect_server.home,
        watch=False,
    )
    try:
        served.wait_until_serving()
        first_completed_tick_after(datetime.now(UTC), timeout_s=60)
        assert monitor_health_cli(prefect_server.api_url).returncode == 0
        # A slot held by nothing, as a dead run with a lost lease leaves it: every tick is now cancelled.
        with get_client(sync_client=True) as client:
            limit = client.read_deployment_by_name("monitor/monitor").global_concurrency_limit
            client.update_global_concurrency_limit(
                limit.name, GlobalConcurrencyLimitUpdate(active_slots=limit.active_slots + 1)
            )
        leaked_at = datetime.now(UTC)
        stalled = wait_until(lambda: monitor_events(STALLED_EVENT, leaked_at), bool, timeout=120, what=STALLED_EVENT)[0]
        print(f"\n{stalled.payload['summary']} ({(stalled.occurred - leaked_at).total_seconds():.1f}s after the leak)")
        assert "CANCELLED" in stalled.payload["summary"]
        notification = wait_until(lambda: list(received), bool, timeout=60, what="the stalled-monitor webhook")[0]
        assert "the monitor has stopped watching" in notification["subject"]
        # The watchdog lowers the slot nothing holds; ticks complete again.
        wait_until(lambda: monitor_events(RESUMED_EVENT, stalled.occurred), bool, timeout=120, what=RESUMED_EVENT)
        first_completed_tick_after(datetime.now(UTC), timeout_s=60)
        log = (tmp_path / "serve.log").read_text()
        assert "watchdog: monitor STALLED" in log and "lowered deployment:" in log
        # The webhook URL (often a token) is in the block's secret field, never in a plain one nor the log.
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        from flink_runbook.serving.notifications import WEBHOOK_BLOCK_NAME

        block = CustomWebhookNotificationBlock.load(WEBHOOK_BLOCK_NAME)
        assert block.url == "{{webhook_url}}" and block.secrets.get_secret_value() == {"webhook_url": url}
        assert url not in log
        assert monitor_health_cli(prefect_server.api_url).returncode == 0
    finally:
        served.stop()
    # Stopped cleanly, the monitor deployment is paused: a supervisor asking now hears "not healthy".
    stopped = monitor_health_cli(prefect_server.api_url)
    assert stopped.returncode == 1 and "paused" in stopped.stdout, stopped


def monitor_events(name: str, since: datetime) -> list:
    with get_client(sync_client=True) as client:
        return client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[name]),
                resource=EventResourceFilter(id=[MONITOR_RESOURCE_ID]),
                occurred=EventOccurredFilter(since=since),
                order="ASC",
            ),
            limit=10,
        ).events


def monitor_health_cli(api_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "monitor", "health"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(f"monitor health: exit {result.returncode}: {result.stdout.strip()} {result.stderr.strip()[-300:]}")
    assert "Traceback" not in result.stderr
    return result

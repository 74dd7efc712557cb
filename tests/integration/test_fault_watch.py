"""The serving process's fault watcher, end to end: Docker's events pushed, the early action, the in-process start.

The monitor ticks only once a minute here, so what detects and recovers within the test is the watcher.
Each test checks the sink: every id exactly once.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
import yaml

from flink_runbook.demo import faults
from flink_runbook.demo.drill import cluster_events, recover_runs, run_drill
from flink_runbook.demo.job import build_demo_job_jar, committed_ids
from flink_runbook.polling import wait_until

from .conftest import ONE_VERSION, assert_every_id_exactly_once, run_demo_job, write_inventory

FAST_RECOVERY = {"stabilization_s": 5, "verify_timeout_s": 90, "registration_grace_s": 20}
QUIET_MONITOR_S = 60  # no scheduled tick sees the fault before the watcher does


def serve_with_the_watcher(stack, jar, serve, tmp_path, **overrides):
    job_id = run_demo_job(stack, jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    inventory = write_inventory(stack, tmp_path, jar, recovery=FAST_RECOVERY, **overrides)
    served = serve(inventory, interval_s=QUIET_MONITOR_S, watch=True)
    served.wait_until_serving()
    wait_until(
        lambda: served.log_path.read_text(errors="replace"),
        lambda log: "serve: watching 1 cluster(s)" in log,
        timeout=30,
        what="the fault watcher to start",
    )
    return job_id, served


def only_the_watchers_recovery(cluster: str, since: datetime):
    """The recover runs of the fault: exactly one, started by the watcher in the serving process (no deployment:
    the trigger did not start a second one)."""
    runs = recover_runs(cluster, since)
    assert len(runs) == 1, [(r.name, r.state_type, r.deployment_id) for r in runs]
    run = runs[0]
    assert run.deployment_id is None and run.name.startswith(f"recover-{cluster}-"), (run.name, run.deployment_id)
    assert {"flink-runbook", f"cluster:{cluster}", "trigger:watcher"} <= set(run.tags), run.tags
    assert any(tag.startswith("fault:") for tag in run.tags), run.tags
    return run


@pytest.fixture
def stack_with_a_production_heartbeat(start_stack, flink_version, tmp_path):
    """The demo's 5 s heartbeat timeout is shorter than a loaded CI worker takes to start a flow run; a
    production cluster's is 50 s by default. 20 s keeps what is tested (undone before Flink notices) honest."""
    override = tmp_path / "heartbeat.yml"
    heartbeat = {"environment": {"FLINK_PROPERTIES": "heartbeat.timeout: 20000"}}
    override.write_text(yaml.safe_dump({"services": {"jobmanager": heartbeat, "taskmanager": heartbeat}}))
    return start_stack(flink_version, compose_override=override)


def test_a_paused_taskmanager_is_undone_before_flink_times_it_out(
    stack_with_a_production_heartbeat, demo_job_jar, serve, tmp_path, docker_client
):
    stack = stack_with_a_production_heartbeat
    job_id, _ = serve_with_the_watcher(stack, demo_job_jar, serve, tmp_path)
    cluster = stack.settings.project
    registered_before = {tm.id for tm in stack.rest.taskmanagers()}

    result = run_drill(cluster, lambda: faults.freeze(stack.taskmanager()), timeout_s=180)
    print(f"\nFlink {stack.settings.flink_version}: watcher saw it in {result.detect_s:.2f}s, run ended in "
          f"{result.recover_s:.1f}s ({result.recover_state})")

    assert result.recover_state == "COMPLETED"
    assert result.findings == ["CONTAINER_PAUSED"]
    seen = cluster_events(cluster, ["flink.cluster.unhealthy"], result.injected_at)[0]
    assert seen.payload["seen_by"] == "watch:docker" and seen.resource["flink.recovery"] == "started"
    only_the_watchers_recovery(cluster, result.injected_at)
    # Undone before the heartbeat timeout: Flink never dropped the TaskManager (same registration) and the
    # job was never replaced (same id, still RUNNING), so no restart attempt was spent and nothing resubmitted.
    assert {tm.id for tm in stack.rest.taskmanagers()} == registered_before
    assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == [(job_id, "RUNNING")]
    stack.taskmanager().reload()
    assert stack.taskmanager().status == "running"
    assert_every_id_exactly_once(stack, at_least=len(committed_ids(stack.output_dir)) + 40)


def test_a_crashed_and_a_disconnected_taskmanager_are_recovered_by_the_watcher_exactly_once(
    start_stack, serve, tmp_path, docker_client
):
    # On one release: what differs between releases here (REST answers, restarts) is covered by the pause test.
    stack = start_stack(ONE_VERSION)
    serve_with_the_watcher(stack, build_demo_job_jar(ONE_VERSION), serve, tmp_path, monitor={"cooldown_s": 0})
    cluster = stack.settings.project

    # kill -9 of the JVM from the host: Docker sees a crash, its restart policy starts the container again
    # (unless-stopped); the watcher must not restart it a second time, only see the job through.
    tm = stack.taskmanager()
    tm.reload()
    crash = run_drill(cluster, lambda: subprocess.run(["kill", "-9", str(tm.attrs["State"]["Pid"])], check=True))
    assert crash.recover_state == "COMPLETED" and crash.findings == ["CONTAINER_EXITED"]
    run = only_the_watchers_recovery(cluster, crash.injected_at)
    starts = docker_client.events(
        since=crash.injected_at, until=datetime.now(UTC), decode=True, filters={"container": tm.id, "event": "start"}
    )
    assert len(list(starts)) == 1, "Docker's restart policy started it once; the recovery must not restart it again"
    wait_until(stack.rest.jobs_overview, lambda jobs: any(j.state == "RUNNING" for j in jobs), timeout=60,
               what="the job RUNNING")
    print(f"\ncrash: seen in {crash.detect_s:.2f}s, {run.name} ended in {crash.recover_s:.1f}s")
    assert_every_id_exactly_once(stack, at_least=len(committed_ids(stack.output_dir)) + 40)
    only_the_watchers_recovery(cluster, crash.injected_at)  # still one: nothing was left for a second one

    # Cut off the network: a restart would not attach it again; the recovery reconnects it.
    since = datetime.now(UTC)
    network = docker_client.networks.get(f"{cluster}_default")
    cut = run_drill(cluster, lambda: network.disconnect(stack.taskmanager()), timeout_s=180)
    assert cut.recover_state == "COMPLETED" and cut.findings == ["CONTAINER_DISCONNECTED"]
    only_the_watchers_recovery(cluster, since)
    tm = stack.taskmanager()
    tm.reload()
    assert f"{cluster}_default" in tm.attrs["NetworkSettings"]["Networks"]
    wait_until(stack.rest.jobs_overview, lambda jobs: [j.state for j in jobs if j.live] == ["RUNNING"], timeout=60,
               what="one live job, RUNNING")
    print(f"partition: seen in {cut.detect_s:.2f}s, recovered in {cut.recover_s:.1f}s")
    assert_every_id_exactly_once(stack, at_least=len(committed_ids(stack.output_dir)) + 40)

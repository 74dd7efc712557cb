"""End to end: a real `prefect server start`, the served deployments, a real stack; only the fault is injected.

The test process injects the fault and watches. Detection is the monitor's,
the decision the guard's, the start of recovery the deployment trigger's
(an automation on the server), the recovery the recover flow's.
"""

from __future__ import annotations

import threading
from uuid import UUID

from prefect.client.orchestration import get_client

from flink_runbook.demo import faults
from flink_runbook.demo.drill import recover_runs, run_drill, wait_for_event
from flink_runbook.demo.job import committed_ids, wait_for_job_state
from flink_runbook.demo.versions import DEFAULT_FLINK_VERSION
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, one_release, run_demo_job, write_inventory

FAST_RECOVERY = {"stabilization_s": 5, "verify_timeout_s": 90, "registration_grace_s": 20}


@one_release  # our own logic, whatever the release (README: Tests)
def test_frozen_taskmanager_is_detected_and_recovered_by_the_served_deployments(
    disposable_stack, demo_job_jar, serve, tmp_path
):
    stack = disposable_stack
    old_job = run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    inventory = write_inventory(stack, tmp_path, demo_job_jar, recovery=FAST_RECOVERY)
    cluster = stack.settings.project
    serve(inventory)
    # The monitor runs and sees the cluster healthy before anything breaks.
    wait_for_event(cluster, "flink.cluster.healthy", since=None, timeout_s=120)

    result = run_drill(cluster, lambda: faults.freeze(stack.taskmanager()), timeout_s=300)
    print(
        f"\nFlink {stack.settings.flink_version}: detected in {result.detect_s:.1f}s "
        f"({', '.join(result.findings)}), recovered by {result.recover_run} in {result.recover_s:.1f}s"
    )

    assert result.recover_state == "COMPLETED"
    # The trigger's run, named and tagged for what it did (the UI's run list says so).
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(result.recover_run_id))
    assert run.name.startswith(f"recover-{cluster}-"), run.name
    assert {"flink-runbook", f"cluster:{cluster}", "trigger:monitor"} <= set(run.tags), run.tags
    jobs = [j for j in stack.rest.jobs_overview() if j.state == "RUNNING"]
    assert len(jobs) == 1, jobs  # one live copy
    # Usually Flink has given the job up (heartbeat timeout, then 3 restarts 1 s apart) before the recovery
    # acts, and the job is resubmitted from its checkpoint. A recovery that unpauses the TaskManager sooner
    # leaves the job restarting in place under its own id: nothing to resubmit, and none was.
    restored = stack.rest.job_checkpoints(jobs[0].id).latest_restored
    if jobs[0].id != old_job:
        assert restored and restored.external_path.startswith("file:"), restored
    else:
        assert len([j for j in stack.rest.jobs_overview() if j.name == "realtime-cdc-demo"]) == 1
    assert_every_id_exactly_once(stack, at_least=len(committed_ids(stack.output_dir)) + 40)
    wait_for_job_state(stack.rest, jobs[0].id, {"RUNNING"}, timeout=10)


def refreeze_after_every_restart(stack, stop: threading.Event) -> None:
    """A TaskManager that hangs again a few seconds after each start or unpause, however often it is brought
    back (a recovery unpauses a frozen one first, and restarts it only if that does not help)."""
    container = stack.taskmanager()
    container.reload()
    last_start, was_paused = container.attrs["State"]["StartedAt"], container.status == "paused"
    while not stop.wait(0.5):
        container.reload()
        started = container.attrs["State"]["StartedAt"]
        if container.status == "running" and (started != last_start or was_paused):
            last_start = started
            if not stop.wait(3):
                faults.freeze(container)
        was_paused = container.status == "paused"


def test_taskmanager_that_fails_after_every_restart_escalates_instead_of_looping(
    start_stack, serve, webhook_inbox, tmp_path
):
    from flink_runbook.demo.job import build_demo_job_jar

    url, received = webhook_inbox
    stack = start_stack(DEFAULT_FLINK_VERSION)
    jar = build_demo_job_jar(DEFAULT_FLINK_VERSION)
    run_demo_job(stack, jar)
    inventory = write_inventory(
        stack,
        tmp_path,
        jar,
        recovery={**FAST_RECOVERY, "taskmanager_timeout_s": 15, "verify_timeout_s": 15},  # each fails: sooner
        monitor={"cooldown_s": 5, "max_recoveries": 2, "window_s": 900, "resume_after_healthy_s": 600},
    )
    text = inventory.read_text() + f"notifications:\n  escalation_webhook_url: {url}\n"
    inventory.write_text(text)
    cluster = stack.settings.project
    serve(inventory)
    wait_for_event(cluster, "flink.cluster.healthy", since=None, timeout_s=120)

    stop = threading.Event()
    saboteur = threading.Thread(target=refreeze_after_every_restart, args=(stack, stop), daemon=True)
    try:
        saboteur.start()
        faults.freeze(stack.taskmanager())
        escalated = wait_for_event(cluster, "flink.cluster.escalated", since=None, timeout_s=600)
        # The same webhook also gets the watchdog's "monitor has stopped watching" when ticks fall 3 intervals
        # (15 s here) behind on a loaded machine: that one is not the escalation.
        notification = wait_until(
            lambda: [n for n in received if cluster in n.get("subject", "")], bool, timeout=60,
            what="the escalation webhook call",
        )[0]
        # Two more ticks: the monitor holds, no third recovery starts.
        wait_until(
            lambda: monitor_states_since(escalated.occurred), lambda s: len(s) >= 2, timeout=60, what="2 more ticks"
        )
    finally:
        stop.set()
        saboteur.join(10)
        faults.thaw(stack.taskmanager())

    runs = recover_runs(cluster, since=None, config=inventory)
    acted = [r for r in runs if r.state_type and r.state_type.value != "CANCELLED"]
    print(f"\nrecover runs: {[(r.name, r.state_type.value) for r in runs]}; webhook got: {notification['subject']}")
    assert len(acted) == 2, [(r.name, r.state_type) for r in runs]
    assert all(r.state_type.value == "FAILED" for r in acted)
    assert escalated.payload["recent_recoveries"] == 2
    assert cluster in notification["subject"] and "2 recoveries within 900s" in notification["body"]
    assert "flink-runbook monitor reset" in notification["body"]
    assert set(monitor_states_since(escalated.occurred)) == {"FAILED"}


def monitor_states_since(since) -> list[str]:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["monitor"])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
        )
    return [r.state_type.value for r in runs if r.state_type and r.state_type.value in ("COMPLETED", "FAILED")]

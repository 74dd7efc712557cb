"""recover on real Flink stacks: the incident, fixed without losing or duplicating a record.

Each failure scenario ends with the demo job RUNNING again, restored from its
retained checkpoint, and the CSV sink holding every id exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flink_runbook.demo import faults
from flink_runbook.demo.job import build_demo_job_jar, committed_ids, wait_for_job_state
from flink_runbook.demo.versions import DEFAULT_FLINK_VERSION
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, one_release, recover_as_json, run_demo_job, write_inventory

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}


def recover_one(inventory, dry_run: bool = False) -> dict:
    (result,) = recover_as_json(config=str(inventory), dry_run=dry_run, all_clusters=True)  # the one cluster it has
    return result


def failed_with_checkpoint(stack, jar, break_it) -> tuple[str, str, int]:
    """Run the demo job, let the sink commit, break the cluster, wait for FAILED.

    Returns (old job id, its latest retained checkpoint, ids committed before the failure).
    """
    job_id = run_demo_job(stack, jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    break_it(stack)
    wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
    checkpoint = stack.rest.job_checkpoints(job_id).latest_completed.external_path
    return job_id, checkpoint, len(committed_ids(stack.output_dir))


def assert_recovered(result: dict, old_job_id: str, checkpoint: str) -> str:
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    assert result["verified"] is True
    (job,) = result["jobs"]
    assert job["old_id"] == old_job_id and job["new_id"] not in (None, old_job_id)
    assert job["restored_from"] == checkpoint
    assert result["findings_after"] == [] or all(f["severity"] == "info" for f in result["findings_after"])
    by_action = {a["action"]: a for a in result["actions"]}
    assert by_action["resubmit_job"]["status"] == "done"
    assert all(a["status"] == "done" for a in result["actions"])
    assert all(a["started_at"] and a["duration_s"] is not None for a in result["actions"])
    return job["new_id"]


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda stack: faults.freeze(stack.taskmanager()), id="frozen"),
        pytest.param(lambda stack: faults.kill(stack.taskmanager()), id="killed"),
    ],
)
def test_taskmanager_failure_is_recovered_exactly_once(disposable_stack, demo_job_jar, tmp_path, break_it, request):
    stack = disposable_stack
    old_job, checkpoint, committed_before = failed_with_checkpoint(stack, demo_job_jar, break_it)
    old_taskmanager = stack.taskmanager().attrs["State"]["StartedAt"]

    started = time.monotonic()
    result = recover_one(write_inventory(stack, tmp_path, demo_job_jar, **FAST))
    print(f"\nFlink {stack.settings.flink_version}: recover took {time.monotonic() - started:.1f}s")
    for action in result["actions"]:
        print(f"  {action['action']:<24} {action['duration_s']:6.1f}s {action['status']}")
    new_job = assert_recovered(result, old_job, checkpoint)
    actions = [a["action"] for a in result["actions"]]
    container = stack.taskmanager()
    assert container.status == "running"
    if "frozen" in request.node.name:
        # Paused is not crashed: unpaused, never restarted while it registers again within the grace period.
        assert actions[0] == "unpause_containers" and "resubmit_job" in actions
        if "restart_taskmanagers" not in actions:
            assert container.attrs["State"]["StartedAt"] == old_taskmanager
    else:
        assert actions[:3] == ["restart_taskmanagers", "wait_for_taskmanagers", "resubmit_job"]
        assert set(result["taskmanagers_after"]).isdisjoint(result["taskmanagers_before"])
        assert container.attrs["State"]["StartedAt"] != old_taskmanager

    restored = stack.rest.job_checkpoints(new_job).latest_restored.external_path
    assert restored == checkpoint
    assert_every_id_exactly_once(stack, at_least=committed_before + 60)


@one_release  # Docker says it (exit code, OOM event): whatever the release (README: Tests)
def test_taskmanager_out_of_memory_is_recovered_exactly_once(disposable_stack, demo_job_jar, tmp_path):
    stack = disposable_stack
    run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    committed_before = len(committed_ids(stack.output_dir))
    old_ids = {tm.id for tm in stack.rest.taskmanagers()}
    faults.exhaust_memory(stack.taskmanager())
    wait_until(lambda: stack.taskmanager().attrs["RestartCount"], lambda n: n >= 1, timeout=60, what="OOM restart")
    # Act on what an operator would see: the JobManager has dropped the killed TaskManager.
    wait_until(
        lambda: {tm.id for tm in stack.rest.taskmanagers()},
        lambda ids: not ids & old_ids,
        timeout=60,
        what="the JobManager to drop the OOM-killed TaskManager",
    )
    result = recover_one(write_inventory(stack, tmp_path, demo_job_jar, **FAST))
    # Docker's restart policy brought the TaskManager back; Flink may have restored the job itself
    # (then nothing is resubmitted) or the job failed (then recover resubmits it).
    assert result["status"] in ("recovered", "healthy"), json.dumps(result, indent=1)[-3000:]
    assert "CONTAINER_OOM_KILLED" in {f["code"] for f in result["findings_before"]}
    assert len([j for j in stack.rest.jobs_overview() if j.state == "RUNNING"]) == 1
    assert_every_id_exactly_once(stack, at_least=committed_before + 60)


def test_jobmanager_restart_is_recovered_from_the_checkpoint_directory(disposable_stack, demo_job_jar, tmp_path):
    stack = disposable_stack
    old_job = run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    stack.jobmanager().restart(timeout=5)
    # Without HA the new JobManager forgets every job.
    wait_until(
        stack.rest.jobs_overview,
        lambda jobs: jobs == [],
        timeout=90,
        what="a JobManager with no job",
        tolerate=(Exception,),
    )
    committed_before = len(committed_ids(stack.output_dir))
    result = recover_one(write_inventory(stack, tmp_path, demo_job_jar, **FAST))
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    (job,) = result["jobs"]
    assert job["old_id"] is None and job["new_id"]
    assert job["restored_from"].startswith(f"file:/data/checkpoints/{old_job}/chk-")
    assert_every_id_exactly_once(stack, at_least=committed_before + 60)


@one_release  # our own logic, whatever the release (README: Tests)
def test_recover_on_a_healthy_cluster_changes_nothing(running_stack, demo_job_jar, tmp_path):
    stack = running_stack
    jobs_before = [(j.id, j.state) for j in stack.rest.jobs_overview()]
    started_before = {c.name: c.attrs["State"]["StartedAt"] for c in stack.containers()}
    tms_before = {tm.id for tm in stack.rest.taskmanagers()}
    result = recover_one(write_inventory(stack, tmp_path, demo_job_jar, **FAST))
    assert result["status"] == "healthy" and result["actions"] == [] and result["verified"] is True
    assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == jobs_before
    assert {c.name: c.attrs["State"]["StartedAt"] for c in stack.containers()} == started_before
    assert {tm.id for tm in stack.rest.taskmanagers()} == tms_before


@one_release
def test_the_clis_temporary_prefect_server_keeps_its_output_in_a_log(running_stack, demo_job_jar, tmp_path):
    """No PREFECT_API_URL: the command's own temporary server writes to a log, never to the operator's terminal
    (a busy SQLite server's `database is locked` traceback once appeared in the middle of a recover)."""
    inventory = write_inventory(running_stack, tmp_path, demo_job_jar, **FAST)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(inventory), "--all", "--dry-run"]
    cli = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "Traceback" not in cli.stderr and "Traceback" not in cli.stdout, cli.stderr[-3000:]
    assert "temporary-server.log" not in cli.stderr  # said only when the server fails
    assert (tmp_path / "home" / "temporary-server.log").read_text().startswith("--- ")
    assert "Flow run 'recover-" in cli.stderr  # the run's own lines still reach the terminal


@one_release
def test_dry_run_plans_and_changes_nothing(disposable_stack, demo_job_jar, tmp_path):
    stack = disposable_stack
    old_job, checkpoint, _ = failed_with_checkpoint(stack, demo_job_jar, lambda s: faults.freeze(s.taskmanager()))
    result = recover_one(write_inventory(stack, tmp_path, demo_job_jar, **FAST), dry_run=True)
    assert result["status"] == "planned"
    # A paused TaskManager is unpaused first; the rest is planned from what is seen after.
    assert [a["action"] for a in result["actions"]] == ["unpause_containers"]
    assert all(a["status"] == "planned" for a in result["actions"])
    # Nothing changed: the TaskManager is still frozen, the job still FAILED, no new job.
    assert stack.taskmanager().status == "paused"
    assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == [(old_job, "FAILED")]


@one_release
def test_two_simultaneous_recoveries_leave_one_copy(disposable_stack, demo_job_jar, tmp_path, prefect_server):
    stack = disposable_stack
    failed_with_checkpoint(stack, demo_job_jar, lambda s: faults.freeze(s.taskmanager()))
    inventory = write_inventory(stack, tmp_path, demo_job_jar, **FAST)
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    command = [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(inventory), "--all", "--json"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    results = [json.loads(out)[0] for out, _ in outputs]
    assert sorted(r["status"] for r in results) == ["healthy", "recovered"], [err[-2000:] for _, err in outputs]
    live = [j for j in stack.rest.jobs_overview() if j.state not in ("FAILED", "CANCELED", "FINISHED")]
    assert len(live) == 1 and live[0].name == "realtime-cdc-demo"


def test_resubmit_command_like_the_runbook_script(start_stack, tmp_path):
    """A job that names its own resubmit command: run as an argument list, output in the report."""
    version = DEFAULT_FLINK_VERSION
    stack = start_stack(version)
    try:
        jar = build_demo_job_jar(version)
        old_job, checkpoint, committed_before = failed_with_checkpoint(
            stack, jar, lambda s: faults.freeze(s.taskmanager())
        )
        script = Path(__file__).with_name("restart_flink_cdc_job.py")
        inventory = write_inventory(stack, tmp_path, **FAST)
        data = yaml.safe_load(inventory.read_text())
        data["clusters"][0]["jobs"][0]["resubmit_command"] = [
            sys.executable,
            str(script),
            stack.settings.rest_url,
            str(jar),
            "{restore_path}",
        ]
        # Like the runbook's script it takes no {job_id}: its resubmission is risky (Safety II case 10), warned
        # at load; here the inventory's policy approves it.
        data["clusters"][0]["approval"] = "never"
        inventory.write_text(yaml.safe_dump(data))
        result = recover_one(inventory)
        assert_recovered(result, old_job, checkpoint)
        resubmit = next(a for a in result["actions"] if a["action"] == "resubmit_job")
        assert f"submitted job {result['jobs'][0]['new_id']} from {checkpoint}" in resubmit["detail"]
        assert_every_id_exactly_once(stack, at_least=committed_before + 60)
    finally:
        stack.down()


def test_refused_recovery_is_a_failed_run_that_still_carries_its_results(tmp_path):
    import pickle
    import re
    import uuid

    from prefect.client.orchestration import get_client

    from flink_runbook.flows.recover import recover_flow
    from flink_runbook.runbook.deciding.verdict import RecoveryNotDone

    name = f"absent-{uuid.uuid4().hex[:6]}"
    inventory = tmp_path / "inventory.yaml"
    cluster = {"name": name, "rest": {"url": "http://127.0.0.1:9"}, "containers": {"compose_project": name}}
    inventory.write_text(yaml.safe_dump({"clusters": [cluster]}))

    state = recover_flow(config=str(inventory), cluster=name, return_state=True)
    assert state.is_failed() and f"{name} refused" in state.message, state
    # Named and tagged for what it did, on which cluster, from which door (the UI's run list says so).
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert re.fullmatch(rf"recover-{name}-\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ", run.name), run.name
    assert sorted(run.tags) == ["cluster:" + name, "flink-runbook", "trigger:cli"], run.tags
    outcome = state.result(raise_on_failure=False)
    # Prefect resolves a failed state's data into an exception; a plain list made the served run log a TypeError.
    assert isinstance(outcome, RecoveryNotDone)
    assert pickle.loads(pickle.dumps(outcome)).results == outcome.results
    (result,) = [r.to_dict() for r in outcome.results]
    assert result["status"] == "refused" and result["actions"] == []
    assert "does not exist" in result["refusals"][0]
    assert [r["status"] for r in recover_as_json(config=str(inventory), cluster=name)] == ["refused"]

"""Safety II on real Flink: a person's decision stands, after Flink forgets it and while a recovery runs.

Each test fails on the code before Safety II (the closing note says how) and checks the sink: every id
exactly once. A cancel forgotten by a restarted JobManager, and a stop-with-savepoint, run on both
releases (what Flink keeps and forgets of a stopped job is the release's); a cancel during a recovery
and a `docker stop` of a TaskManager run on one.
"""

from __future__ import annotations

import contextvars
import json
import threading
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client

from flink_runbook.cli.main import main as cli
from flink_runbook.demo import faults
from flink_runbook.demo.job import build_demo_job_jar, committed_ids, wait_for_job_state
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.flows.recover import recover_flow
from flink_runbook.polling import wait_until
from flink_runbook.runbook.deciding.guard import NOTHING_DONE

from .conftest import (
    ONE_VERSION,
    assert_every_id_exactly_once,
    cancel_job,
    recover_as_json,
    run_demo_job,
    write_inventory,
)

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}
SAVEPOINTS = "file:///data/checkpoints/savepoints"  # inside the demo's checkpoint volume


def recover(inventory: Path) -> dict:
    (result,) = recover_as_json(config=str(inventory), all_clusters=True)
    return result


def codes(findings: list[dict]) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in findings}


def live_jobs(stack) -> list[str]:
    return [j.id for j in stack.rest.jobs_overview() if j.live]


def cancel(stack, job_id: str) -> None:
    cancel_job(stack, job_id)
    wait_for_job_state(stack.rest, job_id, {"CANCELED"}, timeout=60)


def restart_jobmanager_without_ha(stack) -> None:
    """A session JobManager without HA restarts and forgets every job (as after jobstore.expiration-time)."""
    stack.jobmanager().restart(timeout=10)
    wait_until(
        lambda: (stack.rest.taskmanagers(), stack.rest.jobs_overview()),
        lambda seen: len(seen[0]) >= 1 and seen[1] == [],
        timeout=120,
        what="the restarted JobManager with its TaskManager and no job",
        tolerate=(Exception,),
    )


def release(inventory: Path, stack) -> None:
    from flink_runbook.demo.job import DEMO_JOB_NAME

    argv = ["stopped", "release", "--config", str(inventory), "--cluster", stack.settings.project]
    assert cli([*argv, "--job", DEMO_JOB_NAME]) == 0


def test_a_persons_cancel_and_stop_with_savepoint_outlive_the_jobmanagers_memory(
    disposable_stack, demo_job_jar, tmp_path
):
    stack = disposable_stack
    inventory = write_inventory(stack, tmp_path, demo_job_jar, **FAST)
    job_id = run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 30, timeout=60, what="30 ids")
    cancel(stack, job_id)
    committed = len(committed_ids(stack.output_dir))
    (seen,) = diagnose_flow(config=str(inventory))  # the tool sees the cancel once
    assert codes(seen["findings"]).get("JOB_CANCELED") == "info", seen["findings"]

    restart_jobmanager_without_ha(stack)
    result = recover(inventory)
    # Before Safety II: JOB_MISSING, and the cancelled job was resubmitted from its own checkpoint.
    assert result["status"] == "healthy" and result["actions"] == [], json.dumps(result, indent=1)[-2000:]
    assert codes(result["findings_before"]) == {"JOB_STOPPED_BY_PERSON": "info"}
    assert live_jobs(stack) == []

    # An operator releases it: back from its own checkpoint, every id exactly once.
    release(inventory, stack)
    result = recover(inventory)
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    (job,) = result["jobs"]
    assert job["restored_from"] and f"/{job_id}/chk-" in job["restored_from"]
    assert_every_id_exactly_once(stack, at_least=committed + 30)

    # A stop-with-savepoint is a person's stop too: left alone, and recover says ok (it exited 1 before).
    running = job["new_id"]
    stack.rest.post(f"/jobs/{running}/stop", json={"drain": False, "targetDirectory": SAVEPOINTS})
    wait_for_job_state(stack.rest, running, {"FINISHED"}, timeout=120)
    # Flink's REST caches a job's checkpoint statistics for a few seconds (web.refresh-interval).
    savepoint = wait_until(
        lambda: stack.rest.job_checkpoints(running).latest_savepoint,
        bool,
        timeout=30,
        what=f"the savepoint of job {running} in its checkpoint statistics",
    ).external_path
    committed = len(committed_ids(stack.output_dir))
    assert cli(["recover", "--config", str(inventory), "--all"]) == 0
    restart_jobmanager_without_ha(stack)
    result = recover(inventory)
    assert result["status"] == "healthy" and result["actions"] == [], json.dumps(result, indent=1)[-2000:]
    assert live_jobs(stack) == []
    # Released, it comes back from that savepoint, not from an older checkpoint.
    release(inventory, stack)
    result = recover(inventory)
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    (job,) = result["jobs"]
    assert job["restored_from"] == savepoint
    restored = wait_until(
        lambda: stack.rest.job_checkpoints(job["new_id"]).latest_restored,
        bool,
        timeout=30,
        what=f"the restore of job {job['new_id']} in its checkpoint statistics",
    )
    assert restored.external_path == savepoint
    assert_every_id_exactly_once(stack, at_least=committed + 30)


def test_a_cancel_while_the_recovery_waits_for_taskmanagers_stands(start_stack, tmp_path):
    # Flink keeps restarting the job (waiting for slots) all through the recovery, as with the 1.19+ default.
    override = tmp_path / "override.yml"
    restarts = {"environment": {"FLINK_PROPERTIES": "restart-strategy.fixed-delay.attempts: 1000"}}
    override.write_text(yaml.safe_dump({"services": {"jobmanager": restarts}}))
    stack = start_stack(ONE_VERSION, compose_override=override)
    jar = build_demo_job_jar(stack.settings.flink_version)
    inventory = write_inventory(stack, tmp_path, jar, **FAST)
    job_id = run_demo_job(stack, jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 30, timeout=60, what="30 ids")
    taskmanager = stack.taskmanager()
    faults.kill(taskmanager)  # a crash: the job restarts, waiting for slots that do not come
    wait_for_job_state(stack.rest, job_id, {"RESTARTING"}, timeout=60)
    results: list[dict] = []
    # In this test's context: the session's Prefect server is a context-local setting.
    in_this_context = contextvars.copy_context().run
    recovering = threading.Thread(target=in_this_context, args=(lambda: results.append(recover(inventory)),))
    recovering.start()
    # The recovery restarts the TaskManager, then waits for it to register: a person cancels the job then.
    wait_until(lambda: stack.taskmanager().status, lambda status: status == "running", timeout=60,
               what="the TaskManager restarted by the recovery", interval=0.2)
    cancel(stack, job_id)
    recovering.join(timeout=300)
    (result,) = results
    resubmit = next(a for a in result["actions"] if a["action"] == "resubmit_job")
    # Before Safety II the executor took CANCELED as resubmittable: the job ran again under a new id.
    assert resubmit["status"] == "skipped" and "by a person" in resubmit["detail"], json.dumps(result, indent=1)
    assert live_jobs(stack) == []
    assert codes(result["findings_after"]).get("JOB_CANCELED") == "info"
    stack.down()


@pytest.mark.parametrize("flink_version", [ONE_VERSION], indirect=True)
def test_a_taskmanager_stopped_by_a_person_is_left_stopped_unless_the_inventory_says_restart(
    disposable_stack, tmp_path
):
    stack = disposable_stack
    jar = build_demo_job_jar(stack.settings.flink_version)
    job_id = run_demo_job(stack, jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 30, timeout=60, what="30 ids")
    faults.stop(stack.taskmanager())  # docker stop: maintenance (a crash, docker kill, is test_recover's "killed")
    wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
    committed = len(committed_ids(stack.output_dir))
    result = recover(write_inventory(stack, tmp_path, jar, **FAST))
    # Before Safety II: restart_taskmanagers, and the maintenance stop was undone within seconds.
    assert "restart_taskmanagers" not in [a["action"] for a in result["actions"]], json.dumps(result, indent=1)
    assert codes(result["findings_before"])["CONTAINER_STOPPED_BY_HAND"] == "warning"
    assert result["status"] == "refused" and any("stopped by a person" in r for r in result["refusals"])
    assert stack.taskmanager().status == "exited"

    result = recover(write_inventory(stack, tmp_path, jar, restart_stopped=True, **FAST))
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    assert stack.taskmanager().status == "running"
    assert_every_id_exactly_once(stack, at_least=committed + 30)


@pytest.mark.parametrize("flink_version", [ONE_VERSION], indirect=True)
def test_a_guarded_run_that_finds_the_cluster_healthy_spends_no_flap_budget(running_stack, demo_job_jar, tmp_path):
    from flink_runbook.records.flow_runs import recovery_histories

    inventory = write_inventory(running_stack, tmp_path, demo_job_jar)
    data = yaml.safe_load(inventory.read_text())
    name = data["clusters"][0]["name"]
    state = recover_flow(config=str(inventory), cluster=name, guarded=True, return_state=True)
    # Before Safety II it ended plain Completed, counted toward max_recoveries and restarted the cooldown.
    assert state.is_completed() and state.name == NOTHING_DONE, state
    from flink_runbook.inventory import load_inventory

    (cluster,) = load_inventory(inventory).select(name)
    runs = recovery_histories([cluster], inventory)[name]
    assert runs and all(not r.counted for r in runs), runs
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).state_name == NOTHING_DONE

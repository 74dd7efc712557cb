"""Application mode on real Flink: the JobManager runs the demo job itself (`standalone-job`,
stack/application-mode.yml). Nothing can be submitted to it: a frozen TaskManager is brought back and Flink
restarts the job in place (no jar uploaded or run, the same job id); a stopped JobManager without high
availability is refused, not started (started again, it would run the job from scratch); with it, it is started
and restores its job, unless the job ended (a person's cancel: exit code 0, left as it is) and HA storage forgot
it. The sink holds every id exactly once each time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from flink_runbook.demo import faults
from flink_runbook.demo.image import ensure_zookeeper_image
from flink_runbook.demo.job import DEMO_JOB_NAME, committed_ids
from flink_runbook.demo.stack import APPLICATION_MODE_FILE, HIGH_AVAILABILITY_FILE, DemoStack
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, cancel_job, one_release, recover_as_json, write_inventory

pytestmark = [pytest.mark.usefixtures("prefect_server"), one_release]

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}


@pytest.fixture
def application_stack(start_stack: Callable[..., DemoStack], flink_version: str, demo_job_jar: Path) -> DemoStack:
    """The demo stack in application mode, its job running with 40 committed ids; removed after the test."""
    stack = start_stack(flink_version, compose_override=APPLICATION_MODE_FILE, job_jar=demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=90, what="40 committed ids")
    return stack


def the_job(stack: DemoStack) -> str:
    (job,) = stack.rest.jobs_overview()
    assert job.name == DEMO_JOB_NAME
    return job.id


def test_a_frozen_taskmanager_is_brought_back_in_place_and_a_stopped_jobmanager_without_ha_is_refused(
    application_stack, tmp_path
):
    """One stack, two faults in turn (a stack start each would cost a minute of CI): a frozen TaskManager, then
    the JobManager stopped."""
    stack = application_stack
    job_id = the_job(stack)
    inventory = write_inventory(stack, tmp_path, **FAST)  # no jar: nothing could be submitted anyway
    (diagnosis,) = diagnose_flow(config=str(inventory), cluster=stack.settings.project)
    assert diagnosis["healthy"] and diagnosis["application_mode"] is True
    (finding,) = [f for f in diagnosis["findings"] if f["code"] == "APPLICATION_MODE"]
    assert "execution.target: embedded" in finding["evidence"], finding

    committed = len(committed_ids(stack.output_dir))
    faults.freeze(stack.taskmanager())
    # The heartbeat timeout (5 s) passes: the job restarts, waiting for a slot, and never gives up.
    wait_until(lambda: stack.rest.jobs_overview()[0].state, lambda s: s == "RESTARTING", timeout=60,
               what="the job RESTARTING")
    (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)

    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    for action in result["actions"]:
        print(f"  {action['action']:<24} {action['duration_s']:6.1f}s {action['status']} {action['detail'][:120]}")
    actions = {a["action"]: a for a in result["actions"]}
    assert actions["unpause_containers"]["status"] == "done"
    # Found running again by Flink: followed, never submitted (no jar was uploaded or run; /jars is 404 here).
    assert actions["resubmit_job"]["status"] == "skipped", actions["resubmit_job"]
    assert result["jobs"] == [{"name": DEMO_JOB_NAME, "old_id": job_id, "new_id": job_id, "restored_from": None}]
    assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == [(job_id, "RUNNING")]
    assert_every_id_exactly_once(stack, at_least=committed + 60)

    # The JobManager stopped, without high availability: refused whatever the approval, nothing started.
    inventory = write_inventory(stack, tmp_path, approval="never", **FAST)
    taskmanager_started = stack.taskmanager().attrs["State"]["StartedAt"]
    faults.stop(stack.jobmanager())
    committed = len(committed_ids(stack.output_dir))

    (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)

    assert result["status"] == "refused", json.dumps(result, indent=1)[-3000:]
    assert result["actions"] == []
    (refusal,) = result["refusals"]
    assert "application mode without high availability" in refusal and "from scratch" in refusal
    assert "high-availability.type: zookeeper" in refusal
    assert "APPLICATION_MODE" in {f["code"] for f in result["findings_before"]}
    # Nothing was restarted: the JobManager stays stopped, the TaskManager is the same process.
    assert stack.jobmanager().status == "exited"
    assert stack.taskmanager().attrs["State"]["StartedAt"] == taskmanager_started
    assert_every_id_exactly_once(stack, at_least=committed)


def test_with_ha_a_stopped_jobmanager_is_started_and_restores_its_job_from_its_checkpoint(
    docker_client, start_stack, flink_version, demo_job_jar, tmp_path
):
    ensure_zookeeper_image(docker_client)
    stack = start_stack(
        flink_version, compose_override=(APPLICATION_MODE_FILE, HIGH_AVAILABILITY_FILE), job_jar=demo_job_jar
    )
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=90, what="40 committed ids")
    job_id = the_job(stack)
    inventory = write_inventory(stack, tmp_path, approval="never", **FAST)  # starting a JobManager asks by default
    faults.stop(stack.jobmanager())
    committed = len(committed_ids(stack.output_dir))

    (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)

    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    for action in result["actions"]:
        print(f"  {action['action']:<24} {action['duration_s']:6.1f}s {action['status']} {action['detail'][:160]}")
    start, *rest = result["actions"]
    assert start["action"] == "start_jobmanager" and start["status"] == "done"
    assert f"{DEMO_JOB_NAME} listed as {job_id}" in start["detail"]  # HA's fixed id of the application's job
    assert all(a["status"] == "skipped" for a in rest if a["action"] == "resubmit_job"), rest
    assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == [(job_id, "RUNNING")]
    restored = stack.rest.job_checkpoints(job_id).latest_restored
    assert restored is not None and restored.external_path.startswith(f"file:/data/checkpoints/{job_id}/chk-")
    assert_every_id_exactly_once(stack, at_least=committed + 40)

    # Then a person cancels the job: the application ends, its JobManager exits 0 (ApplicationStatus.CANCELED)
    # and HA storage forgets the job. Started again it would run the job from scratch: the cancel stands.
    cancel_job(stack, job_id)
    jobmanager = wait_until(stack.jobmanager, lambda c: c.status == "exited", timeout=90,
                            what="the application's JobManager to exit after the cancel")
    assert jobmanager.attrs["State"]["ExitCode"] == 0, jobmanager.attrs["State"]
    committed = len(committed_ids(stack.output_dir))

    # A decision, not a fault: healthy with a warning (the monitor neither recovers it nor pages anyone).
    (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)

    assert result["status"] == "healthy" and result["actions"] == [], json.dumps(result, indent=1)[-3000:]
    (ended,) = [f for f in result["findings_before"] if f["code"] == "APPLICATION_ENDED"]
    assert ended["severity"] == "warning" and "exited 0" in ended["summary"], ended
    assert stack.jobmanager().status == "exited"
    assert_every_id_exactly_once(stack, at_least=committed)

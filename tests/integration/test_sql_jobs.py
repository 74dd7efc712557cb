"""A Flink SQL job beside the jar job, on real Flink: a frozen TaskManager fails both, one recovery brings
both back from their own checkpoints, and each sink holds every id exactly once.

The SQL job (stack/sql/realtime-sql-demo.sql) is run by the SQL runner in the demo job's jar, submitted
through POST /jars/:id/run like the jar job (docs/sql-jobs.md).
"""

from __future__ import annotations

import json
import time

import pytest

from flink_runbook.demo import faults
from flink_runbook.demo.job import (
    DEMO_JOB_NAME,
    SQL_JOB_NAME,
    committed_ids,
    committed_sql_ids,
    start_sql_job,
    wait_for_job_state,
)
from flink_runbook.flink.answers import JobState
from flink_runbook.polling import wait_until
from flink_runbook.runbook.deciding.plan import recovery_job_id

from .conftest import assert_every_id_exactly_once, recover_as_json, run_demo_job, write_inventory

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_frozen_taskmanager_recovers_the_sql_job_and_the_jar_job_exactly_once(
    disposable_stack, demo_job_jar, tmp_path
):
    stack = disposable_stack
    jar_job = run_demo_job(stack, demo_job_jar)
    sql_job = start_sql_job(stack)
    # The name is the inventory's (pipeline.name, set by the runner): the runbook finds the job by it.
    assert {j.name for j in stack.rest.jobs_overview() if j.id == sql_job} == {SQL_JOB_NAME}
    sinks = {
        DEMO_JOB_NAME: lambda: committed_ids(stack.output_dir),
        SQL_JOB_NAME: lambda: committed_sql_ids(stack.sql_output_dir),
    }
    for name, read in sinks.items():
        wait_until(read, lambda ids: len(ids) >= 40, timeout=90, what=f"40 committed ids of {name}")

    faults.freeze(stack.taskmanager())
    for job_id in (jar_job, sql_job):
        wait_for_job_state(stack.rest, job_id, {JobState.FAILED}, timeout=120)
    checkpoints = {
        DEMO_JOB_NAME: stack.rest.job_checkpoints(jar_job).latest_completed.external_path,
        SQL_JOB_NAME: stack.rest.job_checkpoints(sql_job).latest_completed.external_path,
    }
    # Each job's restore point is in its own directory: the SQL file sets it, the inventory says it.
    assert checkpoints[SQL_JOB_NAME].startswith("file:/data/sql-checkpoints/")
    before = {name: len(read()) for name, read in sinks.items()}

    inventory = write_inventory(
        stack, tmp_path, demo_job_jar, sql=True, recovery={"stabilization_s": 5, "verify_timeout_s": 90}
    )
    (result,) = recover_as_json(config=str(inventory), all_clusters=True)

    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    jobs = {job["name"]: job for job in result["jobs"]}
    assert set(jobs) == {DEMO_JOB_NAME, SQL_JOB_NAME}
    for name, job in jobs.items():
        assert job["new_id"] not in (None, job["old_id"])
        assert job["restored_from"] == checkpoints[name]
        assert stack.rest.job_checkpoints(job["new_id"]).latest_restored.external_path == checkpoints[name]
    resubmitted = [a for a in result["actions"] if a["action"] == "resubmit_job"]
    assert {a["target"] for a in resubmitted} == {DEMO_JOB_NAME, SQL_JOB_NAME}
    assert all(a["status"] == "done" for a in resubmitted)
    # The SQL job runs under the recovery's job id (jobId of the run: Flink refuses it twice), found by its name.
    (sql_now,) = [j for j in stack.rest.jobs_overview() if j.name == SQL_JOB_NAME and j.live]
    assert sql_now.id == jobs[SQL_JOB_NAME]["new_id"] == recovery_job_id(stack.settings.project, SQL_JOB_NAME, sql_job)

    assert_every_id_exactly_once(stack, at_least=before[DEMO_JOB_NAME] + 60)
    assert_every_id_exactly_once(
        stack, at_least=before[SQL_JOB_NAME] + 60, output_dir=stack.sql_output_dir, read=committed_sql_ids
    )

    # The drill's case: unpaused soon after the heartbeat timed out, Flink restarts both jobs into the
    # TaskManager's two slots by itself (or they fail and are resubmitted): recovered either way.
    before = {name: len(read()) for name, read in sinks.items()}
    faults.freeze(stack.taskmanager())
    time.sleep(6)  # past heartbeat.timeout (5 s)
    (again,) = recover_as_json(config=str(inventory), all_clusters=True)
    assert again["status"] == "recovered", json.dumps(again, indent=1)[-3000:]
    assert_every_id_exactly_once(stack, at_least=before[DEMO_JOB_NAME] + 40)
    assert_every_id_exactly_once(
        stack, at_least=before[SQL_JOB_NAME] + 40, output_dir=stack.sql_output_dir, read=committed_sql_ids
    )

"""Safety II, case 9 on real Flink with a real ZooKeeper: a stopped JobManager with high availability, started
by `recover`, restores its job from HA storage under its old id; nothing is resubmitted, one copy runs, and the
sink holds every id exactly once.

The ZooKeeper is Debian's zookeeper package in an image built like the Flink one (mmdebstrap,
flink_runbook.demo.image.ensure_zookeeper_image); stack/high-availability.yml lays it over the demo stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import docker
import pytest

from flink_runbook.demo import faults
from flink_runbook.demo.image import ensure_zookeeper_image
from flink_runbook.demo.job import DEMO_JOB_NAME, committed_ids
from flink_runbook.demo.stack import DemoStack
from flink_runbook.demo.versions import STACK_DIR
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, recover_as_json, run_demo_job, write_inventory

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}
HA_OVERRIDE = STACK_DIR / "high-availability.yml"


@pytest.fixture
def ha_stack(
    docker_client: docker.DockerClient, start_stack: Callable[..., DemoStack], flink_version: str
) -> DemoStack:
    """The demo stack with ZooKeeper high availability, removed right after the test (start_stack)."""
    ensure_zookeeper_image(docker_client)
    return start_stack(flink_version, compose_override=HA_OVERRIDE)


def test_a_started_ha_jobmanager_restores_its_job_under_its_old_id_and_nothing_is_resubmitted(
    ha_stack, demo_job_jar, tmp_path
):
    stack = ha_stack
    old_job = run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    # approval: never: starting a stopped JobManager asks a human by default; this test is about what follows.
    inventory = write_inventory(stack, tmp_path, demo_job_jar, approval="never", **FAST)
    diagnose_flow(config=str(inventory), cluster=stack.settings.project)  # a monitor tick: the id is remembered
    committed = len(committed_ids(stack.output_dir))

    faults.stop(stack.jobmanager())
    started = time.monotonic()
    (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)
    took = time.monotonic() - started

    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    start, *rest = result["actions"]
    print(f"\nFlink {stack.settings.flink_version}: recover took {took:.1f}s; start_jobmanager: {start['detail']}")
    for action in result["actions"]:
        print(f"  {action['action']:<24} {action['duration_s']:6.1f}s {action['status']} {action['detail'][:160]}")
    assert start["action"] == "start_jobmanager" and start["status"] == "done"
    assert "high-availability.type: zookeeper" in start["detail"]
    assert f"{DEMO_JOB_NAME} listed as {old_job} (its old id)" in start["detail"]
    # Found running by name, under its old id: left to Flink (or adopted, never submitted).
    assert all(a["status"] == "skipped" for a in rest if a["action"] == "resubmit_job"), rest
    assert all(job["new_id"] == old_job for job in result["jobs"]), result["jobs"]
    live = [(job.id, job.name) for job in stack.rest.jobs_overview() if job.live]
    assert live == [(old_job, DEMO_JOB_NAME)]
    assert_every_id_exactly_once(stack, at_least=committed + 40)

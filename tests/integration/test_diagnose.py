"""diagnose on real Flink stacks in Docker, run as Prefect flows against a real Prefect server.

Each scenario asserts the exact set of findings: the right ones and no false ones.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flink_runbook.demo import faults
from flink_runbook.demo.job import wait_for_job_state
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.polling import wait_until

from .conftest import one_release, run_demo_job, write_inventory

pytestmark = pytest.mark.usefixtures("prefect_server")


def codes(result: dict) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in result["findings"]}


def diagnose_one(inventory) -> dict:
    (result,) = diagnose_flow(config=str(inventory))
    return result


def test_healthy_cluster(running_stack, tmp_path):
    result = diagnose_one(write_inventory(running_stack, tmp_path))
    assert result["healthy"] is True
    assert result["findings"] == []
    assert result["flink_version"] == running_stack.settings.flink_version
    assert [c["state"] for c in result["containers"]] == ["running", "running"]
    (tm,) = result["taskmanagers"]
    assert tm["heartbeat_age_ms"] < 3000 and tm["slots_total"] == 2
    (job,) = result["jobs"]
    assert (job["name"], job["state"], job["exceptions"]) == ("realtime-cdc-demo", "RUNNING", 0)


async def _artifact_keys(prefix: str) -> set[str]:
    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix)))
    return {a.key for a in artifacts}


@one_release  # our own logic, whatever the release (README: Tests)
def test_report_artifacts_are_in_prefect(running_stack, tmp_path):
    import asyncio

    diagnose_one(write_inventory(running_stack, tmp_path))
    name = running_stack.settings.project
    keys = asyncio.run(_artifact_keys(f"diagnose-{name}"))
    assert {f"diagnose-{name}", f"diagnose-{name}-taskmanagers", f"diagnose-{name}-jobs"} <= keys


def test_frozen_taskmanager_before_and_after_the_heartbeat_timeout(disposable_stack, demo_job_jar, tmp_path):
    stack = disposable_stack
    job_id = run_demo_job(stack, demo_job_jar)
    inventory = write_inventory(stack, tmp_path, thresholds={"heartbeat_stale_ms": 1500})
    faults.freeze(stack.taskmanager())
    # Before heartbeat.timeout (5 s): still registered, heartbeat getting old.
    wait_until(
        stack.rest.taskmanagers,
        lambda tms: tms and (tms[0].heartbeat_age_ms or 0) > 1600,
        timeout=10,
        interval=0.1,
        what="a stale heartbeat",
    )
    before = diagnose_one(inventory)
    assert codes(before) == {"TASKMANAGER_HEARTBEAT_STALE": "warning", "CONTAINER_NOT_RUNNING": "error"}
    assert before["healthy"] is False

    wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
    after = diagnose_one(inventory)
    assert codes(after) == {
        "NO_TASKMANAGERS": "critical",
        "JOB_FAILED": "critical",
        "CONTAINER_NOT_RUNNING": "error",
        "TASKMANAGER_HEARTBEAT_TIMEOUT": "error",
        "RESTARTS_EXHAUSTED": "error",
    }
    (job,) = after["jobs"]
    assert job["state"] == "FAILED" and job["exceptions"] == 4
    assert "Recovery is suppressed by FixedDelayRestartBackoffTimeStrategy" in job["root_cause"]
    assert job["latest_checkpoint"].startswith(f"file:/data/checkpoints/{job_id}/chk-")


@one_release  # Docker says it (exit code, OOM event): whatever the release (README: Tests)
def test_killed_taskmanager(disposable_stack, demo_job_jar, tmp_path):
    stack = disposable_stack
    job_id = run_demo_job(stack, demo_job_jar)
    faults.kill(stack.taskmanager())
    wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
    result = diagnose_one(write_inventory(stack, tmp_path))
    assert codes(result) == {
        "NO_TASKMANAGERS": "critical",
        "JOB_FAILED": "critical",
        "CONTAINER_NOT_RUNNING": "error",
        "TASKMANAGER_HEARTBEAT_TIMEOUT": "error",
        "RESTARTS_EXHAUSTED": "error",
    }
    taskmanager = next(c for c in result["containers"] if c["service"] == "taskmanager")
    assert (taskmanager["state"], taskmanager["exit_code"]) == ("exited", 137)


@one_release  # Docker says it (exit code, OOM event): whatever the release (README: Tests)
def test_taskmanager_out_of_memory(disposable_stack, demo_job_jar, tmp_path):
    stack = disposable_stack
    run_demo_job(stack, demo_job_jar)
    old_ids = {tm.id for tm in stack.rest.taskmanagers()}
    faults.exhaust_memory(stack.taskmanager())
    # The restart policy brings the container back; a new TaskManager registers.
    wait_until(
        stack.rest.taskmanagers,
        lambda tms: len(tms) == 1 and tms[0].id not in old_ids,
        timeout=90,
        what="a new TaskManager after the OOM kill",
    )
    result = diagnose_one(write_inventory(stack, tmp_path))
    found = codes(result)
    # Docker restarted it already: a warning (the memory limit), not an outage by itself.
    assert found["CONTAINER_OOM_KILLED"] == "warning"
    taskmanager = next(c for c in result["containers"] if c["service"] == "taskmanager")
    assert taskmanager["oom_killed"] is True and taskmanager["restart_count"] >= 1
    # Whatever the job did meanwhile, nothing claims the new TaskManager is lost or stale.
    assert not {"NO_TASKMANAGERS", "TASKMANAGER_HEARTBEAT_STALE", "JOBMANAGER_UNREACHABLE"} & set(found)


@one_release
def test_jobmanager_down(disposable_stack, tmp_path):
    stack = disposable_stack
    faults.stop(stack.jobmanager())
    result = diagnose_one(write_inventory(stack, tmp_path))
    assert codes(result) == {"JOBMANAGER_UNREACHABLE": "critical", "CONTAINER_NOT_RUNNING": "critical"}
    assert result["taskmanagers"] == [] and result["flink_version"] is None
    jobmanager = next(c for c in result["containers"] if c["service"] == "jobmanager")
    assert jobmanager["state"] == "exited"


class _NotFlink(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def not_flink_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFlink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@one_release  # our own logic, whatever the release (README: Tests)
def test_rest_answering_garbage(running_stack, tmp_path, not_flink_url):
    result = diagnose_one(write_inventory(running_stack, tmp_path, rest={"url": not_flink_url}))
    assert codes(result) == {"JOBMANAGER_REST_INVALID": "critical"}
    (finding,) = result["findings"]
    assert not_flink_url in finding["evidence"] and "not JSON" in finding["evidence"]


@one_release  # our own logic, whatever the release (README: Tests)
def test_cli_json_and_exit_codes(running_stack, tmp_path, prefect_server):
    inventory = write_inventory(running_stack, tmp_path)
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    healthy = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "diagnose", "--config", str(inventory), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert healthy.returncode == 0, healthy.stderr[-2000:]
    (result,) = json.loads(healthy.stdout)
    assert result["cluster"] == running_stack.settings.project and result["healthy"] is True

    broken = write_inventory(running_stack, tmp_path, rest={"url": "http://127.0.0.1:9"})
    unhealthy = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "diagnose", "--config", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert unhealthy.returncode == 1
    assert "JOBMANAGER_UNREACHABLE" in unhealthy.stdout
    assert "Traceback" not in unhealthy.stderr

"""flink-runbook's own image, run as stack/flink-runbook.yml runs it beside a Flink stack: in the stack's
Compose project and network, the Docker socket and the inventory mounted, its state on a named volume, the
UI published on 127.0.0.1. Only the fault is injected from here; the container detects and recovers it.
Then `docker restart` of the container must lose nothing: the recovery's run, an escalation and a person's
stop are still there, and the monitor ticks again.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime
from prefect.settings import PREFECT_API_URL, temporary_settings

from flink_runbook.demo import faults
from flink_runbook.demo.drill import run_drill, wait_for_event
from flink_runbook.demo.job import committed_ids, wait_for_job_state
from flink_runbook.demo.runbook_image import ensure_runbook_image
from flink_runbook.demo.stack import DemoStack, demo_inventory
from flink_runbook.demo.versions import STACK_DIR
from flink_runbook.infrastructure.local_server import server_is_up
from flink_runbook.polling import wait_until
from flink_runbook.records.variables import read_escalations, store_escalation
from flink_runbook.runbook.deciding.guard import Escalation

from .conftest import assert_every_id_exactly_once, build_lock, free_local_port, one_release, run_demo_job

SERVICE = "flink-runbook"
INVENTORY_IN_CONTAINER = "/etc/flink-runbook/inventory.yaml"
JOBS_IN_CONTAINER = Path("/etc/flink-runbook/jobs")
API_IN_CONTAINER = "http://127.0.0.1:4200/api"
FAST_RECOVERY = {"stabilization_s": 5, "verify_timeout_s": 90, "registration_grace_s": 20}
SAVEPOINTS = "file:///data/checkpoints/savepoints"


def inventory_as_the_container_sees_it(stack: DemoStack, jar_name: str) -> dict:
    """The demo inventory with the paths and URL of stack/flink-runbook-inventory.yaml: the REST API by service
    name on the stack's network, checkpoints and jars where they are mounted; state in the image's volume."""
    data = demo_inventory(stack.settings, JOBS_IN_CONTAINER / jar_name)
    cluster = data["clusters"][0]
    cluster["rest"] = {"url": "http://jobmanager:8081"}
    cluster["jobs"][0]["checkpoint_dir"]["host"] = "/data/checkpoints"
    cluster["recovery"] = FAST_RECOVERY
    del cluster["audit"]  # the stack's files are not mounted into the container
    return data


def in_container(container, *command: str) -> str:
    """A command in the container, against its serving process's Prefect server (docs/docker-image.md)."""
    exit_code, output = container.exec_run(list(command), environment={"PREFECT_API_URL": API_IN_CONTAINER})
    text = output.decode(errors="replace")
    assert exit_code == 0, f"{' '.join(command)} exited {exit_code}: {text[-2000:]}"
    return text


def monitor_ends_since(since: datetime) -> list[str]:
    """Final states of monitor ticks that started after `since`."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["monitor"])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
        )
    return [r.state_type.value for r in runs if r.state_type and r.state_type.value in ("COMPLETED", "FAILED")]


@one_release
@pytest.mark.timeout(1500)  # a fresh machine builds the image first (wheels, a Debian root): minutes
def test_the_image_recovers_a_frozen_taskmanager_and_a_restart_loses_nothing(
    start_stack, flink_version, demo_job_jar, docker_client, tmp_path, monkeypatch
):
    # Built here, not before the first test: the other workers do not wait for it (a cache lookup when built).
    with build_lock():
        image = ensure_runbook_image(docker_client)
    stack = start_stack(flink_version)
    run_demo_job(stack, demo_job_jar)
    cluster = stack.settings.project
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    shutil.copy(demo_job_jar, jobs_dir / demo_job_jar.name)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(inventory_as_the_container_sees_it(stack, demo_job_jar.name)))
    port = free_local_port()
    for name, value in {
        "FLINK_RUNBOOK_IMAGE": image,
        "FLINK_RUNBOOK_UI_PORT": str(port),
        "FLINK_RUNBOOK_INVENTORY": str(inventory),
        "FLINK_RUNBOOK_JOBS_DIR": str(jobs_dir),
        "FLINK_RUNBOOK_INTERVAL": "10",
    }.items():
        monkeypatch.setenv(name, value)
    api_url = f"http://127.0.0.1:{port}/api"
    with_runbook = DemoStack(
        dataclasses.replace(stack.settings, compose_override=STACK_DIR / "flink-runbook.yml"), docker_client
    )
    try:
        with_runbook.start_service(SERVICE)
        container = with_runbook.container(SERVICE)
        wait_until(lambda: server_is_up(api_url), bool, timeout=180, interval=1, what=f"the container's API {api_url}")
        # The UI is published too, and sends the browser to the API on the published port, not the container's.
        assert requests.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()["api_url"] == api_url
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            # The monitor in the container looks at the cluster by its service name and finds it healthy.
            wait_for_event(cluster, "flink.cluster.healthy", since=None, timeout_s=180)

            result = run_drill(cluster, lambda: faults.freeze(stack.taskmanager()), timeout_s=300)
            print(f"\nthe container recovered with {result.recover_run} in {result.recover_s:.1f}s ({result.findings})")
            assert result.recover_state == "COMPLETED"
            (job,) = [j for j in stack.rest.jobs_overview() if j.state == "RUNNING"]
            assert_every_id_exactly_once(stack, at_least=len(committed_ids(stack.output_dir)) + 40)

            # What must survive the restart: a person's stop (state dir) and an escalation (Prefect's database).
            stack.rest.post(f"/jobs/{job.id}/stop", json={"drain": False, "targetDirectory": SAVEPOINTS})
            wait_for_job_state(stack.rest, job.id, {"FINISHED"}, timeout=120)
            stopped = ["flink-runbook", "stopped", "list", "--config", INVENTORY_IN_CONTAINER]
            wait_until(
                lambda: in_container(container, *stopped),
                lambda text: "savepoint" in text,
                timeout=60,
                interval=2,
                what="the person's stop in the container's state dir",
            )
            store_escalation(cluster, Escalation(time.time(), "set by the image test before a restart"))

            container.restart(timeout=45)
            restarted_at = datetime.now(UTC)
            wait_until(lambda: server_is_up(api_url), bool, timeout=180, interval=1, what="the API after the restart")
            with get_client(sync_client=True) as client:
                assert client.read_flow_run(result.recover_run_id).state_type.value == "COMPLETED"
            assert "savepoint" in in_container(container, *stopped)
            wait_until(lambda: monitor_ends_since(restarted_at), bool, timeout=120, interval=2, what="a monitor tick")
            # The escalation still stands after that tick (a healthy cluster is let go only after
            # resume_after_healthy_s), until an operator resets it with the container's CLI.
            assert read_escalations([cluster])[cluster].reason == "set by the image test before a restart"
            reset = ["flink-runbook", "monitor", "reset", "--config", INVENTORY_IN_CONTAINER, "--cluster", cluster]
            assert "escalation reset" in in_container(container, *reset)
            assert read_escalations([cluster]) == {}
            print(in_container(container, "flink-runbook", "monitor", "health"))
            assert [j for j in stack.rest.jobs_overview() if j.live] == []  # the person's stop stood throughout
    finally:
        print(f"--- {SERVICE} container log, last lines ---")
        for container in with_runbook.containers(SERVICE):
            print(container.logs(tail=80).decode(errors="replace"))
        with_runbook.down()  # its container, the stack's, and the named volume with the state
    assert not docker_client.volumes.list(filters={"name": f"{cluster}_flink-runbook-state"})

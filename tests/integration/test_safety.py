"""Issue 12 on real Flink: configurations other than the demo's, and recoveries through different doors.

Each test fails on the code before issue 12 (the closing note says how) and checks the sinks: every id
exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flink_runbook.containers.states import ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL, container_states, engine_view
from flink_runbook.demo import faults
from flink_runbook.demo.drill import recover_runs, wait_for_event
from flink_runbook.demo.image import flink_image_tag
from flink_runbook.demo.job import DEMO_ENTRY_CLASS, committed_ids, demo_job_args, wait_for_job_state
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.inventory import ContainerSelector
from flink_runbook.polling import wait_until

from .conftest import (
    ONE_VERSION,
    assert_every_id_exactly_once,
    cancel_job,
    one_release,
    recover_as_json,
    run_demo_job,
    write_inventory,
)

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}
# Scenarios whose logic does not depend on the Flink release run on one (README: what runs on both).
# A TaskManager known to Flink by its hostname, and one by a resource id (the RPC path still has its IP).
BY_HOSTNAME = {"hostname": "taskmanager", "environment": {"FLINK_PROPERTIES": "taskmanager.host: taskmanager"}}
BY_RESOURCE_ID = {"environment": {"FLINK_PROPERTIES": "taskmanager.resource-id: tm-resource-1"}}


@pytest.mark.parametrize("taskmanager", [BY_HOSTNAME, BY_RESOURCE_ID], ids=["taskmanager.host", "resource-id"])
def test_an_unrelated_error_never_restarts_a_healthy_taskmanager(
    start_stack, flink_version, demo_job_jar, tmp_path, taskmanager
):
    override = tmp_path / "override.yml"
    override.write_text(yaml.safe_dump({"services": {"taskmanager": taskmanager}}))
    stack = start_stack(flink_version, compose_override=override)
    try:
        job_id = run_demo_job(stack, demo_job_jar)
        (registered,) = stack.rest.taskmanagers()
        assert stack.taskmanager().attrs["NetworkSettings"]["Networks"]  # it has an IP, which the id does not carry
        assert registered.id.startswith("taskmanager:") or registered.id == "tm-resource-1", registered
        started = stack.taskmanager().attrs["State"]["StartedAt"]
        committed = len(committed_ids(stack.output_dir))
        inventory = write_inventory(stack, tmp_path, demo_job_jar, **FAST)
        data = yaml.safe_load(inventory.read_text())
        # A second configured job the JobManager does not know (policy fail): an error finding, and no grace
        # period to hide behind (the old plan restarted the TaskManager it could not match by IP).
        data["clusters"][0]["jobs"].append({"name": "another-job"})
        data["clusters"][0]["recovery"]["registration_grace_s"] = 0
        inventory.write_text(yaml.safe_dump(data))

        (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)
        assert result["status"] == "refused", json.dumps(result, indent=1)[-2000:]
        assert not [a for a in result["actions"] if a["action"] == "restart_taskmanagers"]
        assert stack.taskmanager().attrs["State"]["StartedAt"] == started
        assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == [(job_id, "RUNNING")]
        assert_every_id_exactly_once(stack, at_least=committed + 40)
    finally:
        stack.down()


def test_two_jobs_sharing_a_checkpoint_directory_are_each_restored_from_their_own(
    disposable_stack, demo_job_jar, tmp_path
):
    """Case 2 (own lineage) and case 15 (after starting the JobManager the same run plans the rest)."""
    stack = disposable_stack
    names = ["cdc-orders", "cdc-payments"]
    jar_id = stack.rest.upload_jar(demo_job_jar)
    jobs = {}
    for name in names:
        args = demo_job_args(name=name, output=f"/data/output-{name}")
        jobs[name] = stack.rest.run_jar(jar_id, entry_class=DEMO_ENTRY_CLASS, program_args=args, parallelism=1)
    for name, job_id in jobs.items():
        wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
        wait_until(
            lambda d=stack.settings.data_dir / f"output-{name}": len(committed_ids(d)),
            lambda n: n >= 30,
            timeout=90,
            what=f"30 committed ids of {name}",
        )
    # approval: never: this test is about restore points; starting a stopped JobManager asks a human by default
    inventory = write_inventory(stack, tmp_path, demo_job_jar, approval="never", **FAST)
    data = yaml.safe_load(inventory.read_text())
    (template,) = data["clusters"][0]["jobs"]
    data["clusters"][0]["jobs"] = [
        {**template, "name": name, "args": demo_job_args(name=name, output=f"/data/output-{name}")} for name in names
    ]
    inventory.write_text(yaml.safe_dump(data))
    diagnose_flow(config=str(inventory), cluster=stack.settings.project)  # what a monitor tick sees: the job ids
    committed = {name: len(committed_ids(stack.settings.data_dir / f"output-{name}")) for name in names}

    faults.stop(stack.jobmanager())  # the JobManager gone: without HA it forgets both jobs
    (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    actions = [a["action"] for a in result["actions"]]
    assert actions[0] == "start_jobmanager" and actions.count("resubmit_job") == 2  # one run, not two
    for job in result["jobs"]:
        assert job["restored_from"].startswith(f"file:/data/checkpoints/{jobs[job['name']]}/chk-"), job
    live = [j for j in stack.rest.jobs_overview() if j.live]
    assert sorted(j.name for j in live) == names
    for name in names:
        sink = stack.settings.data_dir / f"output-{name}"
        assert_every_id_exactly_once(stack, at_least=committed[name] + 40, output_dir=sink)


@one_release
def test_two_recoveries_through_different_prefect_servers_leave_one_copy(disposable_stack, demo_job_jar, tmp_path):
    """Two CLIs, each with its own PREFECT_HOME (and so its own temporary Prefect server and its own
    concurrency limit): the host lock lets one act; the other then finds the cluster healthy."""
    stack = disposable_stack
    run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    old = stack.rest.jobs_overview()[0].id
    faults.kill(stack.taskmanager())
    wait_for_job_state(stack.rest, old, {"FAILED"}, timeout=120)
    committed = len(committed_ids(stack.output_dir))
    inventory = write_inventory(stack, tmp_path, demo_job_jar, **FAST)
    command = [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(inventory)]
    command += ["--cluster", stack.settings.project, "--json"]
    runs = []
    for home in ("home-a", "home-b"):
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env["PREFECT_HOME"] = str(tmp_path / home)
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = [run.communicate(timeout=600) for run in runs]
    results = [json.loads(out)[0] for out, _ in outputs]
    assert sorted(r["status"] for r in results) == ["healthy", "recovered"], [err[-2000:] for _, err in outputs]
    live = [j for j in stack.rest.jobs_overview() if j.live]
    assert len(live) == 1, live
    assert_every_id_exactly_once(stack, at_least=committed + 60)


@one_release  # our own logic, whatever the release (README: Tests)
def test_oneoff_containers_and_id_prefixes_are_not_the_clusters(running_stack, docker_client):
    stack = running_stack
    project = stack.settings.project
    labels = {PROJECT_LABEL: project, SERVICE_LABEL: "taskmanager", ONEOFF_LABEL: "True"}
    oneoff = docker_client.containers.run(
        flink_image_tag(stack.settings.flink_version), ["sleep", "300"], labels=labels, detach=True,
        name=f"{project}-taskmanager-run-0a1b2c",
    )
    try:
        states = container_states(engine_view(docker_client, 0), ContainerSelector(compose_project=project))
        assert oneoff.name not in {s.name for s in states}
        assert [s.name for s in states if s.role == "taskmanager"] == [stack.taskmanager().name]
        # An explicit name that is only a prefix of a container's id is no match: reported missing.
        prefix = stack.taskmanager().id[:12]
        by_name = container_states(
            engine_view(docker_client, 0),
            ContainerSelector(jobmanager_names=(stack.jobmanager().name,), taskmanager_names=(prefix,)),
        )
        assert [(s.name, s.state) for s in by_name if s.role == "taskmanager"] == [(prefix, "missing")]
    finally:
        oneoff.remove(force=True)


@one_release  # our own logic, whatever the release (README: Tests)
def test_a_state_dir_that_cannot_be_written_refuses_the_recovery_with_exit_2(
    running_stack, demo_job_jar, tmp_path, prefect_server
):
    """Safety II case 6: what was a failed run (exit 1, after a temporary server and a flow run) is refused
    before anything runs: exit 2, one line naming the directory, nothing changed."""
    inventory = write_inventory(running_stack, tmp_path, demo_job_jar)
    data = yaml.safe_load(inventory.read_text())
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    data["state_dir"] = str(blocker)
    inventory.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    done = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(inventory), "--all"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    said = [line for line in done.stderr.splitlines() if line.startswith("flink-runbook: ")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(said) == 1 and "not-a-directory" in said[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert Path(blocker).read_text().startswith("a file")


@one_release
def test_a_served_recovery_and_a_cli_recovery_started_together_leave_one_copy(
    disposable_stack, demo_job_jar, serve, prefect_server, tmp_path
):
    stack = disposable_stack
    cluster = stack.settings.project
    old = run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    inventory = write_inventory(stack, tmp_path, demo_job_jar, **FAST)
    serve(inventory)
    wait_for_event(cluster, "flink.cluster.healthy", since=None, timeout_s=120)
    faults.kill(stack.taskmanager())
    wait_for_job_state(stack.rest, old, {"FAILED"}, timeout=120)
    committed = len(committed_ids(stack.output_dir))
    # The served monitor sees it within one 5 s tick and its trigger starts a recovery; the CLI starts now,
    # with its own temporary Prefect server (no PREFECT_API_URL), so only the host lock stands between them.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "cli-home")
    command = [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(inventory), "--cluster", cluster]
    cli = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env, timeout=600)
    (cli_result,) = json.loads(cli.stdout)

    def served_runs_finished() -> list:
        return [r for r in recover_runs(cluster, since=None, config=inventory) if r.state and r.state.is_final()]

    served = wait_until(served_runs_finished, bool, timeout=300, what="a finished served recover run")
    print(f"\nCLI: {cli_result['status']}; served: {[(r.name, r.state_type.value) for r in served]}")
    assert cli_result["status"] in ("recovered", "healthy"), cli.stderr[-2000:]
    named = [j for j in stack.rest.jobs_overview() if j.name == "realtime-cdc-demo"]
    assert len([j for j in named if j.live]) == 1 and len(named) == 2, named  # the failed one and one new copy
    assert_every_id_exactly_once(stack, at_least=committed + 60)


def test_a_recover_run_killed_while_holding_the_lock_is_marked_crashed_by_the_next_tick(
    start_stack, prefect_server, tmp_path
):
    from prefect.client.orchestration import get_client

    from flink_runbook.demo.job import build_demo_job_jar
    from flink_runbook.flows.monitor import monitor_flow
    from flink_runbook.runbook.keeping.host_lock import is_held, lock_file, read_holder

    stack = start_stack(ONE_VERSION)
    try:
        jar = build_demo_job_jar(ONE_VERSION)
        run_demo_job(stack, jar)
        faults.freeze(stack.taskmanager())
        cluster = stack.settings.project
        inventory = write_inventory(stack, tmp_path, jar, **FAST)
        state_dir = Path(yaml.safe_load(inventory.read_text())["state_dir"])
        env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
        command = [
            sys.executable,
            "-m",
            "flink_runbook.cli",
            "recover",
            "--config",
            str(inventory),
            "--cluster",
            cluster,
        ]
        cli = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_until(
            lambda: is_held(state_dir, cluster), bool, timeout=120, interval=0.2, what="the recovery's host lock"
        )
        cli.kill()  # SIGKILL mid-recovery: Prefect still shows the run RUNNING
        cli.wait()
        run_id = read_holder(lock_file(state_dir, cluster)).flow_run_id
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run_id).state_type.value == "RUNNING"
        (tick,) = monitor_flow(config=str(inventory))
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run_id).state_type.value == "CRASHED"
        assert tick["decision"] == "recover", tick  # not "wait" for an hour
    finally:
        faults.thaw(stack.taskmanager())
        stack.down()


def test_a_cancelled_job_is_left_cancelled(start_stack, tmp_path):
    from flink_runbook.demo.job import build_demo_job_jar

    stack = start_stack(ONE_VERSION)
    try:
        jar = build_demo_job_jar(ONE_VERSION)
        job_id = run_demo_job(stack, jar)
        cancel_job(stack, job_id)
        wait_for_job_state(stack.rest, job_id, {"CANCELED"}, timeout=60)
        inventory = write_inventory(stack, tmp_path, jar, **FAST)
        (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)
        assert result["status"] == "healthy" and result["actions"] == [], json.dumps(result, indent=1)[-2000:]
        assert {"code": "JOB_CANCELED", "severity": "info"}.items() <= result["findings_before"][0].items()
        assert [(j.id, j.state) for j in stack.rest.jobs_overview()] == [(job_id, "CANCELED")]
    finally:
        stack.down()


def test_a_paused_jobmanager_is_unpaused_never_restarted(start_stack, tmp_path):
    from flink_runbook.demo.job import build_demo_job_jar

    stack = start_stack(ONE_VERSION)
    try:
        jar = build_demo_job_jar(ONE_VERSION)
        run_demo_job(stack, jar)
        wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 30, timeout=60, what="30 ids")
        started = stack.jobmanager().attrs["State"]["StartedAt"]
        faults.freeze(stack.jobmanager())
        committed = len(committed_ids(stack.output_dir))
        inventory = write_inventory(stack, tmp_path, jar, **FAST)
        (result,) = recover_as_json(config=str(inventory), cluster=stack.settings.project)
        assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
        first = result["actions"][0]
        assert first["action"] == "start_jobmanager" and "docker unpause" in first["detail"], first
        assert stack.jobmanager().attrs["State"]["StartedAt"] == started  # the same JobManager process
        assert len([j for j in stack.rest.jobs_overview() if j.live]) == 1
        assert_every_id_exactly_once(stack, at_least=committed + 40)
    finally:
        faults.thaw(stack.jobmanager())
        stack.down()

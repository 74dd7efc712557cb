"""README's first command, end to end: `python -m flink_runbook.demo --once`, side by side with anything else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from flink_runbook.containers.states import PROJECT_LABEL
from flink_runbook.polling import wait_until
from flink_runbook.serving.processes import environment, is_alive

from .conftest import FLINK_TEST_VERSIONS, free_local_port

REPO = Path(__file__).resolve().parents[2]
DEMO_ENV = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the demo starts its own server


def demo_command(project: str, flink_version: str, tmp_path: Path) -> list[str]:
    """A demo side by side with anything else: its own compose project, ports, data and Prefect home."""
    return [
        sys.executable, "-m", "flink_runbook.demo",
        "--flink-version", flink_version,
        "--project", project,
        "--rest-port", str(free_local_port()),
        "--port", str(free_local_port()),
        "--data-dir", str(tmp_path / "data"),
        "--prefect-home", str(tmp_path / "prefect-home"),
    ]


def test_demo_refuses_bad_input_without_starting_anything(tmp_path):
    bad = tmp_path / "inventory.yaml"
    bad.write_text("clusters: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.demo", "--config", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"demo: {bad}: clusters: needs at least one cluster")
    assert "Traceback" not in result.stderr


def flow_run_processes_of(api_url: str) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and "PREFECT__FLOW_RUN_ID" in (env := environment(int(entry.name)))
        and env.get("PREFECT_API_URL") == api_url
    ]


def test_a_demo_after_a_sigkilled_one_starts_afresh(docker_client, tmp_path):
    """A demo killed mid-drill takes its server and serving process with it; the next one cleans up and runs the
    README's main job to the end (the fault injected, detected, recovered, every id exactly once, all removed):
    one test for both, since each demo run costs minutes of CI."""
    project = f"frtest-demo-{uuid.uuid4().hex[:6]}"
    command = demo_command(project, FLINK_TEST_VERSIONS[0], tmp_path)
    first_out = tmp_path / "first.out"
    with first_out.open("w") as out:
        first = subprocess.Popen(command, cwd=REPO, env=DEMO_ENV, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: re.search(r"Recover run \S+ started", first_out.read_text()),
            bool,
            timeout=600,
            what="the first demo's recovery to start",
        )
    finally:
        first.kill()  # SIGKILL: no cleanup of its own runs
        first.wait()
    print(first_out.read_text())
    server_pid = int((tmp_path / "prefect-home" / "server.pid").read_text())
    wait_until(lambda: not is_alive(server_pid), bool, timeout=30, what="the killed demo's server to die with it")
    # Nor may its runs go on acting (a recovery of the old stack would act on the next demo's).
    api_url = f"http://127.0.0.1:{command[command.index('--port') + 1]}/api"
    wait_until(
        lambda: flow_run_processes_of(api_url), lambda pids: not pids, timeout=45, what="the killed demo's runs to end"
    )
    assert docker_client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}"}), "its stack is left up"

    second = subprocess.run(command + ["--once"], cwd=REPO, env=DEMO_ENV, capture_output=True, text=True, timeout=900)
    print(second.stdout)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Removing the demo stack {project} that an earlier demo left behind" in second.stdout
    assert "The monitor sees " + project + " healthy" in second.stdout
    assert "ended COMPLETED" in second.stdout
    assert "Time to detect" in second.stdout
    assert "0 duplicated, 0 missing: every id exactly once" in second.stdout
    assert docker_client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}) == []

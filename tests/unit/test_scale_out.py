"""The scale-out path's pure parts: docker.host in the inventory, the rendered prefect.yaml, the engine
client cache, a recovery that queued behind another, and the superseded verdict."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

from flink_runbook.containers.engines import engine_client
from flink_runbook.containers.states import DockerUnavailable
from flink_runbook.infrastructure.scale_up import REPO, render_prefect_yaml
from flink_runbook.inventory import DockerEngine, InventoryError, load_inventory
from flink_runbook.runbook.keeping.host_lock import cluster_lock
from flink_runbook.runbook.model import RecoveryResult, RecoveryStatus
from flink_runbook.runbook.reporting.recovery_report import next_steps, recovery_report

CLUSTER = """
clusters:
  - name: far
    rest: {url: "http://127.0.0.1:18081"}
    containers: {compose_project: far}
    docker: %s
"""


def inventory(tmp_path: Path, docker: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(CLUSTER % docker))
    return path


def test_a_tls_docker_host_is_typed(tmp_path):
    path = inventory(
        tmp_path, "{host: 'tcp://10.0.0.5:2376', tls: {ca_cert: ca.pem, client_cert: c.pem, client_key: k.pem}}"
    )
    (cluster,) = load_inventory(path).clusters
    assert cluster.docker == DockerEngine("tcp://10.0.0.5:2376", tmp_path / "ca.pem", tmp_path / "c.pem",
                                          tmp_path / "k.pem")
    assert cluster.docker.tls and cluster.monitor.check_deadline_s == 2.0


@pytest.mark.parametrize(
    ("docker", "message"),
    [
        ("{host: '10.0.0.5:2376'}", r"docker\.host: '10.0.0.5:2376' is not a Docker host"),
        ("{host: 'ssh://ops@h', tls: {ca_cert: ca.pem}}", r"docker\.tls: TLS certificates are for a tcp:// host"),
        ("{host: 'tcp://h:2376', tls: {client_cert: c.pem}}", r"docker\.tls: client_cert and client_key go together"),
        ("{host: 'tcp://h:2376', tls: {cert: c.pem}}", r"docker\.tls\.cert: unknown key"),
    ],
)
def test_a_bad_docker_section_names_the_key(tmp_path, docker, message):
    path = inventory(tmp_path, docker)
    with pytest.raises(InventoryError, match=message) as error:
        load_inventory(path)
    assert str(error.value).startswith(f"{path}: clusters[0].")


def test_the_rendered_prefect_yaml_is_the_file_with_the_inventory_filled_in(tmp_path):
    config = tmp_path / "mine.yaml"
    rendered = yaml.safe_load(render_prefect_yaml(config, tmp_path / "out.yaml", 12).read_text())
    original = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert [d["name"] for d in rendered["deployments"]] == [d["name"] for d in original["deployments"]]
    for deployment in rendered["deployments"]:
        assert deployment["parameters"]["config"] == str(config)
        assert deployment["work_pool"]["name"] == "flink-runbook"  # the anchor expanded
        for trigger in deployment.get("triggers") or []:
            assert trigger["parameters"]["config"] == str(config)
            assert trigger["parameters"]["guarded"] is True
    by_name = {d["name"]: d for d in rendered["deployments"]}
    assert by_name["monitor"]["schedules"] == [{"interval": 12}]
    assert (
        by_name["audit"]["schedules"] == next(d for d in original["deployments"] if d["name"] == "audit")["schedules"]
    )
    assert "concurrency_limit" not in by_name["recover"]  # clusters recover in parallel
    assert rendered["pull"] == original["pull"]


def test_an_engine_that_is_down_is_said_and_not_kept(tmp_path):
    engine = DockerEngine(f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(DockerUnavailable, match=f"cannot reach the Docker engine at unix://{tmp_path}/nothing.sock"):
        engine_client(engine)
    (tmp_path / "nothing.sock").touch()  # still no engine: asked again, not answered from a cache
    with pytest.raises(DockerUnavailable):
        engine_client(engine)


def test_a_second_recovery_knows_it_waited_for_the_first(tmp_path):
    held, release, seen = threading.Event(), threading.Event(), {}

    def first() -> None:
        with cluster_lock(tmp_path, "c", "run-1", timeout_s=10) as holder:
            seen["first"] = holder.waited
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    with cluster_lock(tmp_path, "c", "run-2", timeout_s=10, poll_s=0.05) as holder:
        seen["second"] = holder.waited
    thread.join()
    assert seen == {"first": False, "second": True}


def test_a_superseded_recovery_needs_nobody_and_says_whose_report_to_read():
    result = RecoveryResult(cluster="c", status=RecoveryStatus.SUPERSEDED, started_at="now")
    assert RecoveryStatus.SUPERSEDED.ok
    assert "another recovery ran first" in recovery_report(result)
    assert next_steps(result) == [
        "Nothing: another recovery of this cluster ran first (this run waited for it); see that run's report."
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "no/such/inventory.yaml"], "no/such/inventory.yaml"),
        (["--workers", "0"], "--workers must be 1 to 32"),
        (["--deploy-only"], "--deploy-only needs PREFECT_API_URL"),
    ],
)
def test_scale_up_refuses_bad_input_before_starting_anything(tmp_path, args, message):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.infrastructure.scale_up", "--home", str(tmp_path / "home"), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()  # nothing was started or written

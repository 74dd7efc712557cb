"""The monitor's fleet check against loopback JobManagers replaying answers recorded from real Flink 1.20.3
and 2.2.0 (tests/fixtures/rest/): every cluster judged, in order, each within its deadline, whatever the
others do (a JobManager that hangs, one that refuses, a Docker engine that never answers)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from flink_runbook.flink.rest import FlinkRestClient
from flink_runbook.inventory import load_inventory
from flink_runbook.runbook.observing.fleet_check import check_fleet
from tests.unit.replay_jobmanagers import Endpoint, ReplayFleet


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fleet_inventory(tmp_path: Path, clusters: list[tuple[str, int, str]], deadline_s: float) -> Path:
    """(name, REST port, Docker host) per cluster; the demo job's name, as recorded."""
    path = tmp_path / "fleet.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "clusters": [
                    {
                        "name": name,
                        "rest": {"url": f"http://127.0.0.1:{port}", "connect_timeout_s": 1, "read_timeout_s": 5},
                        "docker": {"host": host},
                        "containers": {"compose_project": name},
                        "jobs": [{"name": "realtime-cdc-demo"}],
                        "monitor": {"check_deadline_s": deadline_s},
                    }
                    for name, port, host in clusters
                ],
            }
        )
    )
    return path


@pytest.fixture
def silent_engine(tmp_path):
    """A Docker 'engine' that accepts connections and never answers (a hung daemon)."""
    path = tmp_path / "hung-docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(64)
    yield f"unix://{path}"
    server.close()


def codes(check) -> set[str]:
    return {f.code for f in check.diagnosis.findings}


def test_every_cluster_is_judged_in_order_and_a_hanging_one_is_cut_at_its_deadline(tmp_path):
    ports = [free_port() for _ in range(6)]
    refused = free_port()  # nothing listens there
    no_engine = f"unix://{tmp_path}/no-docker.sock"
    endpoints = [
        Endpoint(ports[0], "2.2.0", "healthy"),
        Endpoint(ports[1], "1.20.3", "healthy"),
        Endpoint(ports[2], "1.20.3", "failed-heartbeat-timeout"),
        Endpoint(ports[3], "2.2.0", "healthy", hang=True),
        # Slow, not too slow: a healthy check asks ~8 questions, 0.8 s of delay within the 4 s deadline even on a
        # loaded machine (0.2 s each, 1.6 s of 2 s, was cut at 2.14 s in a CI run).
        Endpoint(ports[4], "2.2.0", "healthy", delay_s=0.1),
        Endpoint(ports[5], "2.2.0", "failed-heartbeat-timeout"),
    ]
    names = ["ok-22", "ok-120", "failed-120", "hangs", "slow", "failed-22", "refuses"]
    inventory = load_inventory(
        fleet_inventory(tmp_path, [(n, p, no_engine) for n, p in zip(names, [*ports, refused], strict=True)], 4.0)
    )
    with ReplayFleet(endpoints):
        checks = check_fleet(inventory.clusters, parallel=3)
    assert [c.cluster for c in checks] == names
    by_name = {c.cluster: c for c in checks}
    for name in names:
        assert by_name[name].diagnosis is not None, by_name[name].error
        assert "DOCKER_UNREACHABLE" in codes(by_name[name])  # the engine's failure is its clusters' finding
    for name in ("ok-22", "ok-120", "slow"):
        assert not codes(by_name[name]) & {"JOBMANAGER_UNREACHABLE", "JOB_FAILED", "JOB_MISSING"}, name
        assert by_name[name].diagnosis.observation.jobs[0].info.state == "RUNNING"
    for name in ("failed-120", "failed-22"):
        assert by_name[name].diagnosis.observation.jobs[0].info.state == "FAILED"
    for name in ("hangs", "refuses"):
        assert "JOBMANAGER_UNREACHABLE" in codes(by_name[name]), name
    assert "deadline" in by_name["hangs"].diagnosis.observation.jobmanager.error  # cut, not waited out


def test_a_docker_engine_that_never_answers_costs_its_clusters_only(tmp_path, silent_engine):
    ports = [free_port() for _ in range(4)]
    no_engine = f"unix://{tmp_path}/no-docker.sock"
    hosts = [silent_engine, no_engine, no_engine, no_engine]
    inventory = load_inventory(
        fleet_inventory(tmp_path, [(f"c{i}", p, h) for i, (p, h) in enumerate(zip(ports, hosts, strict=True))], 1.5)
    )
    with ReplayFleet([Endpoint(p) for p in ports]):
        checks = check_fleet(inventory.clusters, parallel=1)  # one thread: it must be replaced
    assert checks[0].diagnosis is None
    assert "did not finish within 1.5s" in checks[0].error
    for check in checks[1:]:
        assert check.diagnosis is not None, check.error
        assert check.diagnosis.observation.jobmanager.reachable


def test_no_retry_is_started_that_cannot_finish_before_the_deadline():
    import time

    client = FlinkRestClient("http://127.0.0.1:9", backoff_seconds=5.0).until(time.monotonic() + 1.0)
    assert not client._may_retry(1)  # a 5 s backoff does not fit in the 1 s left
    past = FlinkRestClient("http://127.0.0.1:9").until(time.monotonic() - 1)
    with pytest.raises(Exception, match="deadline had passed"):
        past.get("/overview")

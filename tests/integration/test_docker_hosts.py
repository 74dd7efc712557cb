"""docker.host per cluster, against a second Docker daemon this test starts (its own socket, data and exec
roots, and a TLS-only tcp:// listener on 127.0.0.1 with certificates made here): the engine's client is
made once and reused across ticks, an engine that is down is a finding of its own clusters only, and one
that comes back is reconnected. The clusters on the second engine answer REST from replayed recordings of
real Flink 2.2.0; the local cluster is the shared real demo stack.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import docker
import pytest
import yaml

from flink_runbook.containers.engines import engine_client
from flink_runbook.demo.stack import demo_inventory
from flink_runbook.inventory import load_inventory
from flink_runbook.polling import wait_until
from flink_runbook.runbook.observing.fleet_check import check_fleet
from tests.unit.replay_jobmanagers import Endpoint, ReplayFleet

from .conftest import ONE_VERSION, free_local_port, recover_as_json

# One pytest-xdist worker runs this module: its second daemon (module fixture) has one bridge name, BRIDGE.
pytestmark = pytest.mark.xdist_group("second-docker-daemon")


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
                "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return {n: directory / f"{n}.pem" for n in ("ca", "server", "server-key", "client", "client-key")}


# The second daemon's own bridge. Never `--bridge none`: dockerd then deletes docker0 from the host's
# network, which is the first daemon's (its containers on the default bridge could not start any more).
BRIDGE = "frtest-br0"
BRIDGE_ADDRESS = "10.231.0.1/24"


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


class SecondDaemon:
    def __init__(self, root: Path, certs: dict[str, Path], tcp_port: int) -> None:
        self.root, self.certs, self.tcp_port = root, certs, tcp_port
        self.socket = root / "docker.sock"
        self.process: subprocess.Popen | None = None
        ip("link", "del", BRIDGE, check=False)  # left by an earlier run
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")

    def remove_bridge(self) -> None:
        ip("link", "del", BRIDGE, check=False)

    def start(self) -> None:
        config = self.root / "daemon.json"
        # Its own engine ID, as another host has: Docker before 24 derives it from a key file, by default the
        # first daemon's /etc/docker/key.json (later releases keep one in the data root, and ignore this key).
        config.write_text(json.dumps({"deprecated-key-path": str(self.root / "key.json")}))
        self.process = subprocess.Popen(
            [
                "dockerd", "--config-file", str(config), "--host", f"unix://{self.socket}",
                "--host", f"tcp://127.0.0.1:{self.tcp_port}", "--tlsverify", f"--tlscacert={self.certs['ca']}",
                f"--tlscert={self.certs['server']}", f"--tlskey={self.certs['server-key']}",
                "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "docker.pid"), "--bridge", BRIDGE, "--iptables=false",
            ],
            stdout=(self.root / "dockerd.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(lambda: self.answers(), bool, timeout=60, what=f"the second Docker daemon on {self.socket}")

    def answers(self) -> bool:
        try:
            return docker.DockerClient(base_url=f"unix://{self.socket}", timeout=3).ping()
        except docker.errors.DockerException:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


@pytest.fixture(scope="module")
def second_daemon():
    root = Path(tempfile.mkdtemp(prefix="frd-", dir="/tmp"))  # a unix socket path must stay short
    certs_dir = root / "certs"
    certs_dir.mkdir()
    daemon = SecondDaemon(root, make_certificates(certs_dir), free_local_port())
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.remove_bridge()
        shutil.rmtree(root, ignore_errors=True)


def empty_image(client: docker.DockerClient) -> str:
    """An image made here (the daemon can pull none): one file, enough to create containers from."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    client.api.import_image_from_data(data.getvalue(), repository="frtest-empty", tag="1")
    return "frtest-empty:1"


def sleep_image(client: docker.DockerClient) -> str:
    """An image made here that runs: this host's `sleep` and the libraries `ldd` says it loads (the daemon
    can pull none, and the Flink images are too big to copy for a container that only has to run)."""
    linked = subprocess.run(["ldd", "/bin/sleep"], capture_output=True, text=True, check=True).stdout
    files = ["/bin/sleep"] + [w for line in linked.splitlines() for w in line.split() if w.startswith("/")]
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name in files:
            tar.add(str(Path(name).resolve()), arcname=name.lstrip("/"))  # the file itself, under the name asked for
    client.api.import_image_from_data(data.getvalue(), repository="frtest-sleep", tag="1")
    return "frtest-sleep:1"


def codes(check) -> set[str]:
    return {f.code for f in check.diagnosis.findings}


@pytest.mark.parametrize("flink_version", [ONE_VERSION], indirect=True)  # nothing here depends on the release
def test_clusters_on_another_engine_over_unix_and_tls(running_stack, second_daemon, tmp_path):
    on_b = docker.DockerClient(base_url=f"unix://{second_daemon.socket}")
    image = empty_image(on_b)
    for name in ("beta-jobmanager", "beta-taskmanager"):
        on_b.containers.create(image, command=["/marker"], name=name)
    rest_ports = [free_local_port(), free_local_port()]
    local = demo_inventory(running_stack.settings)["clusters"][0]
    certs = second_daemon.certs

    def on_engine_b(name: str, port: int, docker_section: dict) -> dict:
        return {
            "name": name,
            "rest": {"url": f"http://127.0.0.1:{port}"},
            "docker": docker_section,
            "containers": {"names": {"jobmanager": ["beta-jobmanager"], "taskmanager": ["beta-taskmanager"]}},
            "jobs": [{"name": "realtime-cdc-demo"}],
        }

    tls = {"ca_cert": str(certs["ca"]), "client_cert": str(certs["client"]), "client_key": str(certs["client-key"])}
    inventory_file = tmp_path / "hosts.yaml"
    inventory_file.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "clusters": [
                    local,
                    on_engine_b("beta-unix", rest_ports[0], {"host": f"unix://{second_daemon.socket}"}),
                    on_engine_b(
                        "beta-tls", rest_ports[1], {"host": f"tcp://127.0.0.1:{second_daemon.tcp_port}", "tls": tls}
                    ),
                ],
            }
        )
    )
    clusters = load_inventory(inventory_file).clusters
    with ReplayFleet([Endpoint(p, "2.2.0", "healthy") for p in rest_ports]):
        first = check_fleet(clusters)
        by_name = {c.cluster: c for c in first}
        assert by_name[local["name"]].diagnosis.healthy, codes(by_name[local["name"]])
        for name in ("beta-unix", "beta-tls"):
            seen = {c.name: c.state for c in by_name[name].diagnosis.observation.containers.containers}
            error = by_name[name].diagnosis.observation.containers.error
            assert seen == {"beta-jobmanager": "created", "beta-taskmanager": "created"}, (name, seen, error)
            assert "DOCKER_UNREACHABLE" not in codes(by_name[name])
        clients = {c.docker: engine_client(c.docker) for c in clusters}
        check_fleet(clusters)
        assert all(engine_client(engine) is client for engine, client in clients.items())  # reused, not remade

        second_daemon.stop()  # engine B goes down: its clusters' finding, nobody else's
        down = {c.cluster: c for c in check_fleet(clusters)}
        assert down[local["name"]].diagnosis.healthy, codes(down[local["name"]])
        for name in ("beta-unix", "beta-tls"):
            assert "DOCKER_UNREACHABLE" in codes(down[name]), codes(down[name])
            assert down[name].diagnosis.observation.jobmanager.reachable  # its REST was still judged

        second_daemon.start()  # back: the next tick reconnects
        again = {c.cluster: c for c in check_fleet(clusters)}
        for name in ("beta-unix", "beta-tls"):
            assert "DOCKER_UNREACHABLE" not in codes(again[name]), codes(again[name])


def test_the_first_daemons_default_bridge_is_left_alone(second_daemon, docker_client):
    """Starting (and restarting) a second daemon never takes the first one's network away."""
    assert b"docker0" in subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).stdout
    network = docker_client.networks.get("bridge")
    assert network.attrs["Options"].get("com.docker.network.bridge.name", "docker0") == "docker0"


def test_a_tls_host_without_the_clients_certificate_is_refused_by_the_engine(second_daemon, tmp_path):
    inventory_file = tmp_path / "no-cert.yaml"
    inventory_file.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "clusters": [
                    {
                        "name": "beta-no-cert",
                        "rest": {"url": f"http://127.0.0.1:{free_local_port()}"},
                        "docker": {
                            "host": f"tcp://127.0.0.1:{second_daemon.tcp_port}",
                            "tls": {"ca_cert": str(second_daemon.certs["ca"])},
                        },
                        "containers": {"compose_project": "beta"},
                    }
                ],
            }
        )
    )
    (check,) = check_fleet(load_inventory(inventory_file).clusters)
    assert "DOCKER_UNREACHABLE" in codes(check)
    assert f"127.0.0.1:{second_daemon.tcp_port}" in check.diagnosis.observation.containers.error


def states_of(containers: dict) -> dict[str, dict]:
    """Each container's State now (status, pid, started and finished times)."""
    for container in containers.values():
        container.reload()
    return {name: container.attrs["State"] for name, container in containers.items()}


@pytest.mark.parametrize("flink_version", [ONE_VERSION], indirect=True)  # nothing here depends on the release
def test_a_cluster_is_never_acted_on_through_an_engine_that_is_not_its_own(
    running_stack, second_daemon, prefect_server, docker_client, tmp_path
):
    """A recovery on a worker whose engine is another host's: the same compose project and container names are
    there, one of its TaskManagers stopped. Nothing there is started or restarted, by a recovery or by the
    fault watcher; the finding names both engines."""
    from flink_runbook.containers.states import PROJECT_LABEL, SERVICE_LABEL
    from flink_runbook.serving.fault_watch import FaultWatcher

    project = running_stack.settings.project
    on_a_id = docker_client.info()["ID"]
    on_b = docker.DockerClient(base_url=f"unix://{second_daemon.socket}")
    on_b_id = on_b.info()["ID"]
    assert on_a_id != on_b_id
    image = sleep_image(on_b)
    twins = {}
    for service in ("jobmanager", "taskmanager"):
        name = running_stack.container(service).name
        labels = {PROJECT_LABEL: project, SERVICE_LABEL: service}
        twins[service] = on_b.containers.run(image, ["/bin/sleep", "3600"], name=name, labels=labels, detach=True)
    twins["taskmanager"].kill()  # a crashed TaskManager of the same name: what a recovery restarts
    try:
        cluster = demo_inventory(running_stack.settings)["clusters"][0]
        cluster["approval"] = "never"  # nothing waits for a human here: whatever is planned runs
        cluster["recovery"] = {"stabilization_s": 0, "registration_grace_s": 0, "taskmanager_timeout_s": 30}
        state = tmp_path / "state"

        def inventory(file: str, **docker_section) -> str:
            data = {"state_dir": str(state), "clusters": [{**cluster, **({"docker": docker_section} if docker_section
                                                                          else {})}]}
            (tmp_path / file).write_text(yaml.safe_dump(data))
            return str(tmp_path / file)

        # The first successful look, on the cluster's own engine (the local socket): its engine is learned.
        (first,) = check_fleet(load_inventory(inventory("own.yaml")).clusters)
        assert first.diagnosis.healthy, codes(first)

        # The same cluster through another engine, as a worker on another host would reach "the local socket".
        elsewhere = inventory("elsewhere.yaml", host=f"unix://{second_daemon.socket}")
        before = states_of(twins)
        (result,) = recover_as_json(config=elsewhere, cluster=project)
        assert states_of(twins) == before, f"containers on the other engine were acted on: {result['actions']}"
        assert result["status"] == "refused" and result["actions"] == [], result
        (mismatch,) = [f for f in result["findings_before"] if f["code"] == "DOCKER_ENGINE_MISMATCH"]
        assert mismatch["severity"] == "critical"
        said = mismatch["summary"]
        assert on_a_id in said and on_b_id in said and str(second_daemon.socket) in said, mismatch
        assert any(on_a_id in r and on_b_id in r for r in result["refusals"]), result["refusals"]
        (tick,) = check_fleet(load_inventory(elsewhere).clusters)  # the monitor's look says so too
        assert "DOCKER_ENGINE_MISMATCH" in codes(tick) and not tick.diagnosis.observation.containers.containers
        kept = json.loads((state / "engines" / f"{project}.json").read_text())
        assert kept["engine_id"] == on_a_id, kept  # the other engine was not learned instead

        # The fault watcher does not follow the other engine's containers of the cluster either.
        lines: list[str] = []
        watcher = FaultWatcher(Path(elsewhere), lines.append, rest_interval_s=1.0)
        watcher.start()
        try:
            wait_until(lambda: "\n".join(lines), lambda text: on_b_id in text, timeout=30,
                       what="the watcher to say it does not watch the cluster there")
            twins["jobmanager"].kill()  # a fault the watcher would recover (start the JobManager) on its own engine
            time.sleep(5)
        finally:
            watcher.stop()
        assert not [line for line in lines if "exited with code" in line or "recovering now" in line], lines
        twins["jobmanager"].reload()
        assert twins["jobmanager"].status == "exited"
    finally:
        for twin in twins.values():
            twin.remove(force=True)

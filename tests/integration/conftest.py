"""Real Flink stacks in real Docker containers for the integration tests.

Docker must be reachable: a missing engine is an error here, never a skip
(.ci/run installs and starts one). FLINK_TEST_VERSIONS picks the Flink
releases (default: both supported ones).

`make test` runs these on several pytest-xdist workers at once: every fixture here
is per worker (each has its own Prefect server and shared stacks), every stack,
server and directory gets its own name, port and tmp dir, and the images and jars
all workers share are built by one worker at a time (build_lock).
"""

from __future__ import annotations

import fcntl
import http.server
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings

from flink_runbook.demo.drill import ServedDeployments
from flink_runbook.demo.image import ensure_flink_image, ensure_zookeeper_image
from flink_runbook.demo.job import (
    build_demo_job_jar,
    committed_ids,
    sink_integrity,
    submit_demo_job,
    wait_for_job_state,
)
from flink_runbook.demo.stack import COMPOSE_FILE, DemoStack, StackSettings, demo_inventory
from flink_runbook.demo.versions import (
    DEFAULT_FLINK_VERSION,
    TESTED_FLINK_VERSIONS,
    cache_dir,
    resolve_flink_version,
)
from flink_runbook.infrastructure.local_server import LocalPrefectServer, start_local_server
from flink_runbook.polling import wait_until

FLINK_TEST_VERSIONS = [
    resolve_flink_version(v)
    for v in os.environ.get("FLINK_TEST_VERSIONS", ",".join(TESTED_FLINK_VERSIONS)).split(",")
]
# Scenarios whose outcome does not depend on the release run on this one only (README says which).
ONE_VERSION = FLINK_TEST_VERSIONS[0]
# Marks such a scenario (the fixtures that take `flink_version` then give it that release only).
one_release = pytest.mark.parametrize("flink_version", [ONE_VERSION], indirect=True)


@contextmanager
def build_lock() -> Iterator[None]:
    """One builder at a time of the images and jars in .cache, across pytest workers and other runs: two
    builds of one image or jar at once race on the same tag and files."""
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_not_ready: str | None = None  # why no integration test can run (said by docker_client, in each)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every image and job jar the collected integration tests use, built (or found cached) before the first
    test, outside its timeout (a fresh machine takes minutes), under build_lock: the demo's for each release
    a test runs (DEFAULT_FLINK_VERSION: the escalation test's) and test_high_availability.py's ZooKeeper.
    (test_runbook_image.py builds its flink-runbook image itself: only its worker waits for it.)
    Afterwards ensure_*_image and build_demo_job_jar are cache lookups, whichever worker calls them.

    On a pytest-xdist worker with --dist loadgroup, first: the xdist_group tests are grouped (xdist marks
    their node ids), or else nothing runs (on pytest 9.2 they are silently not, pytest-xdist issue 1386)."""
    global _not_ready
    here = Path(__file__).parent
    items = [item for item in session.items if here in item.path.parents]
    if not items or session.config.option.collectonly:
        return
    if getattr(session.config.option, "loadgroup", False) and any(
        item.get_closest_marker("xdist_group") and "@" not in item.nodeid for item in items
    ):
        _not_ready = (
            f"pytest-xdist's --dist loadgroup does not group the xdist_group tests on pytest {pytest.__version__} "
            "(pytest-xdist issue 1386): they would run on several workers at once; pytest < 9.2 groups them"
        )
        return
    try:
        client = docker.from_env()
        with build_lock():
            for version in dict.fromkeys([*FLINK_TEST_VERSIONS, DEFAULT_FLINK_VERSION]):
                ensure_flink_image(client, version)
                build_demo_job_jar(version)
            if any(item.path.name == "test_high_availability.py" for item in items):
                ensure_zookeeper_image(client)
    except Exception as exc:
        _not_ready = f"building the test images and jars failed: {type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine reachable ({exc}); run scripts/bootstrap", pytrace=False)
    if _not_ready:
        pytest.fail(_not_ready, pytrace=False)
    return client


def free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=FLINK_TEST_VERSIONS, scope="session")
def flink_version(request: pytest.FixtureRequest) -> str:
    return request.param


def _new_stack(
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
    flink_version: str,
    compose_override: Path | tuple[Path, ...] | None = None,
    job_jar: Path | None = None,
    compose_file: Path = COMPOSE_FILE,
) -> DemoStack:
    """A new, isolated demo stack (own project, port and data dir), started."""
    name = f"frtest-{flink_version.replace('.', '')}-{uuid.uuid4().hex[:6]}"
    settings = StackSettings(
        data_dir=tmp_path_factory.mktemp(name),
        project=name,
        flink_version=flink_version,
        rest_port=free_local_port(),
        compose_override=compose_override,
        job_jar=job_jar,
        compose_file=compose_file,
    )
    stack = DemoStack(settings, docker_client)
    try:
        stack.up()
    except BaseException:
        stack.down()
        raise
    return stack


@pytest.fixture
def start_stack(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., DemoStack]]:
    """Factory: new, isolated demo stacks of this test, all removed when it ends. An idle Flink stack left
    up until the session ends costs every later test on this 2-core machine CPU and memory."""
    started: list[DemoStack] = []

    def start(
        flink_version: str,
        compose_override: Path | tuple[Path, ...] | None = None,
        job_jar: Path | None = None,
        compose_file: Path = COMPOSE_FILE,
    ) -> DemoStack:
        stack = _new_stack(docker_client, tmp_path_factory, flink_version, compose_override, job_jar, compose_file)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.down()


@pytest.fixture
def disposable_stack(start_stack: Callable[[str], DemoStack], flink_version: str) -> DemoStack:
    """A stack of its own for a test that breaks it; removed right after the test (start_stack)."""
    return start_stack(flink_version)


@pytest.fixture(scope="session")
def demo_job_jar(flink_version: str) -> Path:
    return build_demo_job_jar(flink_version)  # built before the first test (pytest_collection_finish): a lookup


def run_demo_job(stack: DemoStack, jar: Path) -> str:
    """Submit the demo job and wait until it runs and has completed a checkpoint."""
    job_id = submit_demo_job(stack.rest, jar)
    wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
    wait_until(
        lambda: stack.rest.job_checkpoints(job_id).completed,
        lambda completed: completed >= 1,
        timeout=60,
        what=f"a completed checkpoint of job {job_id}",
    )
    return job_id


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    """A real `prefect server start` (SQLite, telemetry off), the one the demo runs, on its own port.

    Flows run by the tests, and the served deployments, talk to it.
    """
    server = start_local_server(tmp_path_factory.mktemp("prefect-home"), port=free_local_port())
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def running_stack(
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
    flink_version: str,
    demo_job_jar: Path,
) -> Iterator[DemoStack]:
    """A shared healthy stack with the demo job running, one per release for the whole run; tests must not
    break it."""
    stack = _new_stack(docker_client, tmp_path_factory, flink_version)
    try:
        run_demo_job(stack, demo_job_jar)
        yield stack
    finally:
        stack.down()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup` (make test), the tests of each release's running_stack go to one worker
    together: one shared stack per release for the whole run, not one per worker. A test in a group of its
    own (test_docker_hosts.py) stays there."""
    for item in items:
        if "running_stack" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(f"running-stack-{item.callspec.params['flink_version']}"))


def write_inventory(
    stack: DemoStack, directory: Path, jar: Path | None = None, sql: bool = False, **cluster_overrides
) -> Path:
    """An inventory file for this stack (its demo job, with `jar` to resubmit it; `sql`: the demo SQL job too,
    which needs the jar), with cluster-level overrides."""
    data = demo_inventory(stack.settings, jar, sql=sql)
    data["clusters"][0].update(cluster_overrides)
    data["state_dir"] = str(directory / "state")  # locks and job lineage of this test only
    path = directory / f"{stack.settings.project}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def assert_every_id_exactly_once(
    stack: DemoStack,
    at_least: int,
    timeout: float = 90,
    output_dir: Path | None = None,
    read: Callable[[Path], list[int]] = committed_ids,
) -> list[int]:
    """Wait until the sink (the stack's, or `output_dir`; `read`: committed_sql_ids for the SQL job's) has
    committed `at_least` ids, then: 1..N, no gap, no duplicate."""
    sink = output_dir or stack.output_dir
    ids = wait_until(
        lambda: read(sink),
        lambda found: len(found) >= at_least,
        timeout=timeout,
        what=f"{at_least} committed ids in {sink}",
    )
    duplicated, missing = sink_integrity(ids)
    assert duplicated == 0, f"{duplicated} duplicated id(s)"
    assert missing == 0 and min(ids) == 1, f"{missing} id(s) missing: max {max(ids)}, count {len(ids)}"
    return ids


class _WebhookInbox(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []
    paths: list[str] = []  # the path each one was posted to, in the same order

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).paths.append(self.path)
        type(self).received.append(json.loads(body or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_inbox() -> Iterator[tuple[str, list[dict]]]:
    """A local HTTP endpoint standing in for the on-call webhook."""
    _WebhookInbox.received, _WebhookInbox.paths = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WebhookInbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/on-call", _WebhookInbox.received
    finally:
        server.shutdown()


@pytest.fixture
def serve(prefect_server: LocalPrefectServer, tmp_path: Path) -> Iterator[Callable[..., ServedDeployments]]:
    """Factory: the served deployments of an inventory, on the session's Prefect server; stopped at the end."""
    started: list[ServedDeployments] = []

    def start(inventory: Path, interval_s: float = 5, watch: bool = False) -> ServedDeployments:
        # watch=False: the scheduled monitor and the trigger are the door these tests are about (a worker has no
        # other); the fault watcher's door is tests/integration/test_fault_watch.py.
        served = ServedDeployments.start(
            inventory, prefect_server.api_url, tmp_path / "serve.log", interval_s, prefect_home=prefect_server.home,
            watch=watch,
        )
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
        print(f"--- serve log ({served.log_path}), last lines ---")
        print("\n".join(served.log_path.read_text(errors="replace").splitlines()[-60:]))


def cancel_job(stack: DemoStack, job_id: str) -> None:
    """A person's cancel, as `flink cancel` sends it; the caller waits for what it expects to follow."""
    answer = stack.rest.session.patch(stack.rest.url(f"/jobs/{job_id}"), params={"mode": "cancel"}, timeout=10)
    assert answer.status_code == 202, (answer.status_code, answer.text[:300])


def recover_as_json(**parameters) -> list[dict]:
    """The recover flow run in this process, its results as the CLI's --json prints them."""
    from flink_runbook.flows.recover_run import run_recover

    return [result.to_dict() for result in run_recover(**parameters)]

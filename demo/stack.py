"""Bring the demo realtime-pipeline up and down with Docker Compose.

The containers carry the labels Compose sets (com.docker.compose.project /
.service), which is how the runbook flows find containers on a user's stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from flink_runbook.containers.states import ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL
from flink_runbook.demo.image import ensure_flink_image, flink_image_tag
from flink_runbook.demo.versions import STACK_DIR, config_file_name, resolve_flink_version
from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.polling import WaitTimeout, wait_until

COMPOSE_FILE = STACK_DIR / "docker-compose.yml"
# Variants laid over COMPOSE_FILE (StackSettings.compose_override).
HIGH_AVAILABILITY_FILE = STACK_DIR / "high-availability.yml"
# The JobManager runs the demo job itself (`standalone-job`): needs StackSettings.job_jar.
APPLICATION_MODE_FILE = STACK_DIR / "application-mode.yml"
# The demo configured only through FLINK_PROPERTIES, no config file mounted (a compose file of its own).
FLINK_PROPERTIES_COMPOSE_FILE = STACK_DIR / "flink-properties.yml"


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class StackSettings:
    """One demo stack. Two stacks with different project, port and data dir run side by side."""

    data_dir: Path
    project: str = "realtime-pipeline"
    flink_version: str = field(default_factory=resolve_flink_version)
    rest_port: int = 8081
    # Any image with the official entrypoint contract, e.g. flink:1.20-java17.
    image: str | None = None
    # Compose file(s) laid over compose_file, in order (other configurations than the demo's).
    compose_override: Path | tuple[Path, ...] | None = None
    # The demo job's jar, mounted into the JobManager by the application-mode variant.
    job_jar: Path | None = None
    # The stack itself: the demo's, or FLINK_PROPERTIES_COMPOSE_FILE (Flink configured by FLINK_PROPERTIES only).
    compose_file: Path = COMPOSE_FILE

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


def compose_variables(settings: StackSettings, image: str) -> dict[str, str]:
    """The ${VARS} of stack/docker-compose.yml for this stack (the rest come from stack/.env)."""
    return {
        "COMPOSE_PROJECT_NAME": settings.project,
        "FLINK_IMAGE": image,
        "FLINK_CONF_FILE": config_file_name(settings.flink_version),
        "FLINK_REST_PORT": str(settings.rest_port),
        "STACK_DATA_DIR": str(settings.data_dir.resolve()),
        **({"DEMO_JOB_JAR": str(settings.job_jar.resolve())} if settings.job_jar else {}),
    }


def compose_command() -> list[str]:
    """Compose v2 plugin if the docker CLI has it, else the standalone docker-compose."""
    docker_cli = shutil.which("docker")
    if docker_cli and subprocess.run([docker_cli, "compose", "version"], capture_output=True).returncode == 0:
        return [docker_cli, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        return [standalone]
    raise StackError("neither 'docker compose' nor 'docker-compose' is installed")


class DemoStack:
    def __init__(self, settings: StackSettings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        self.client = client or docker.from_env()
        self.rest = FlinkRestClient(settings.rest_url, read_retries=0)

    # -- compose -------------------------------------------------------------

    def _compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        settings = self.settings
        env = dict(os.environ)
        env.update(
            compose_variables(settings, settings.image or ensure_flink_image(self.client, settings.flink_version))
        )
        override = settings.compose_override or ()
        files = [settings.compose_file, *((override,) if isinstance(override, Path) else override)]
        command = [*compose_command(), "--project-name", settings.project, *(f"--file={f}" for f in files), *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=STACK_DIR)
        if result.returncode != 0:
            raise StackError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result

    def up(self, ready_timeout: float = 120) -> None:
        """Start JobManager and TaskManager and wait until the TaskManager has registered."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._compose("--compatibility", "up", "--detach")
        self.wait_until_ready(ready_timeout)

    def start_service(self, service: str) -> None:
        """Start one service alone, the running ones left as they are: stack/flink-runbook.yml's beside a stack."""
        self._compose("up", "--detach", "--no-deps", service)

    def down(self) -> None:
        """Remove the containers and network; paused containers are thawed first so they can stop."""
        for container in self.containers():
            if container.status == "paused":
                container.unpause()
        self._compose("down", "--volumes", "--remove-orphans", "--timeout", "5")

    def wait_until_ready(self, timeout: float = 120, taskmanagers: int = 1) -> None:
        """Wait until the REST API answers and enough TaskManagers have registered with a free slot."""
        try:
            wait_until(
                self.rest.cluster_overview,
                lambda overview: overview.taskmanagers >= taskmanagers and overview.slots_available > 0,
                timeout=timeout,
                what=f"{taskmanagers} TaskManager(s) with a free slot at {self.settings.rest_url}",
                tolerate=(FlinkRestError,),
            )
        except WaitTimeout as exc:
            raise StackError(f"stack {self.settings.project} not ready: {exc}") from exc

    # -- containers ----------------------------------------------------------

    def containers(self, service: str | None = None) -> list[Container]:
        labels = [f"{PROJECT_LABEL}={self.settings.project}"]
        if service:
            labels.append(f"{SERVICE_LABEL}={service}")
        listed = self.client.containers.list(all=True, filters={"label": labels})
        return [c for c in listed if c.labels.get(ONEOFF_LABEL, "False") != "True"]  # not `compose run` ones

    def container(self, service: str) -> Container:
        found = self.containers(service)
        if len(found) != 1:
            raise StackError(f"expected one {service} container in project {self.settings.project}, found {len(found)}")
        return found[0]

    def jobmanager(self) -> Container:
        return self.container("jobmanager")

    def taskmanager(self) -> Container:
        return self.container("taskmanager")

    @property
    def output_dir(self) -> Path:
        return self.settings.data_dir / "output"

    @property
    def checkpoint_dir(self) -> Path:
        return self.settings.data_dir / "checkpoints"

    @property
    def sql_output_dir(self) -> Path:
        return self.settings.data_dir / "sql-output"

    @property
    def sql_checkpoint_dir(self) -> Path:
        return self.settings.data_dir / "sql-checkpoints"


def sql_job_entry(settings: StackSettings, jar: Path | None) -> dict:
    """The inventory's entry of the demo SQL job (stack/sql/realtime-sql-demo.sql)."""
    from flink_runbook.demo.job import SQL_CONTAINER_CHECKPOINT_DIR, SQL_JOB_FILE, SQL_JOB_NAME

    job: dict = {
        "name": SQL_JOB_NAME,
        "sql": str(SQL_JOB_FILE),
        "parallelism": 1,
        "checkpoint_dir": {
            "host": str(settings.data_dir / "sql-checkpoints"),
            "container": SQL_CONTAINER_CHECKPOINT_DIR,
        },
    }
    if jar:
        job["jar"] = str(jar)
    return job


def demo_inventory(settings: StackSettings, jar: Path | None = None, sql: bool = False) -> dict:
    """Inventory (as YAML-ready data) of one demo stack and its demo job (and, `sql`, the demo SQL job: it
    needs the jar, whose SQL runner runs it)."""
    from flink_runbook.demo.job import DEMO_ENTRY_CLASS, DEMO_JOB_NAME, demo_job_args

    job: dict = {
        "name": DEMO_JOB_NAME,
        "entry_class": DEMO_ENTRY_CLASS,
        "args": demo_job_args(),
        "parallelism": 1,
        "checkpoint_dir": {"host": str(settings.data_dir / "checkpoints"), "container": "/data/checkpoints"},
    }
    if jar:
        job["jar"] = str(jar)
    return {
        "clusters": [
            {
                "name": settings.project,
                "rest": {"url": settings.rest_url},
                "containers": {"compose_project": settings.project},
                "expected_taskmanagers": 1,
                "jobs": [job, *([sql_job_entry(settings, jar)] if sql else [])],
                "audit": demo_audit_sources(settings),
            }
        ]
    }


def demo_audit_sources(settings: StackSettings) -> dict:
    """The inventory's audit section of a demo stack: its compose file, and the config files it mounts (the
    FLINK_PROPERTIES variant mounts none)."""
    sources = {
        "compose_file": str(settings.compose_file),
        "compose_variables": compose_variables(settings, settings.image or flink_image_tag(settings.flink_version)),
    }
    if settings.compose_file == COMPOSE_FILE:
        conf = config_file_name(settings.flink_version)
        for role in ("jobmanager", "taskmanager"):
            sources[f"{role}_config"] = str(STACK_DIR / "docker" / role / conf)
    return sources


def drill_inventory(settings: StackSettings, jar: Path, state_dir: Path, job_args: list[str] | None = None) -> dict:
    """The demo inventory for back-to-back drills (benchmarks): no cooldown and no flap limit in the way,
    the demo's 5 s stabilisation window, locks and lineage in `state_dir`; `job_args` for another sink dir."""
    data = demo_inventory(settings, jar)
    cluster = data["clusters"][0]
    if job_args is not None:
        cluster["jobs"][0]["args"] = job_args
    cluster["monitor"] = {"cooldown_s": 0, "max_recoveries": 100}
    cluster["recovery"] = {"stabilization_s": 5}
    data["state_dir"] = str(state_dir)
    return data

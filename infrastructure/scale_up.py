"""The scaled shape on one machine: PostgreSQL, a Prefect server on it, the deployments from prefect.yaml,
and N process workers on the flink-runbook pool; `make scale-up WORKERS=2`.

    python -m flink_runbook.infrastructure.scale_up [--workers 2] [--config stack/inventory.yaml]

It is what several hosts run, on one: the server (and its database) on one host; on every host that
has Docker access to clusters, workers pointed at that server's API. Each flow run of a worker emits a
heartbeat every 30 s; an automation (ZOMBIE_AUTOMATION) marks a run Crashed after 90 s without one, so
a recovery whose worker died is finished by the next monitor tick on another worker, on any host.
`make serve` (one process, SQLite) stays the embedded default. Ctrl-C or SIGTERM stops everything it
started; the database stays in --home for the next start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml

from flink_runbook.infrastructure.local_server import (
    TELEMETRY_OFF,
    LocalPrefectServer,
    PrefectServerError,
    start_local_server,
)
from flink_runbook.infrastructure.postgres import LocalPostgres, PostgresError, start_postgres
from flink_runbook.inventory import inventory_problem
from flink_runbook.serving.processes import die_with_parent, flow_run_children, stop_process

REPO = Path(__file__).resolve().parents[1]
POOL = "flink-runbook"
ZOMBIE_AUTOMATION = "flink-runbook: crash runs that stopped beating"
HEARTBEAT_S = 30  # Prefect's minimum
SILENT_FOR_S = 90  # three heartbeats missed
# Every flow run a worker starts beats this often (Prefect's default is 180 s); the automation's window
# holds for runs of the flink-runbook deployments only (their tag), so a run started elsewhere is never
# crashed for beating at another rate.
WORKER_ENVIRONMENT = {
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
    "PREFECT_WORKER_QUERY_SECONDS": "5",  # a triggered recovery starts within 5 s, not 10
}
EXIT_USAGE, EXIT_FAILED = 2, 1


def say(message: str) -> None:
    print(f"scale-up: {message}", flush=True)


def render_prefect_yaml(config: Path, out: Path, monitor_interval_s: float | None = None) -> Path:
    """prefect.yaml with every deployment's (and trigger's) inventory set to `config`, and optionally the
    monitor's interval; the same file otherwise (what `prefect deploy --all` reads)."""
    project = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in project["deployments"]:
        deployment.setdefault("parameters", {})["config"] = str(config)
        for trigger in deployment.get("triggers") or []:
            trigger.setdefault("parameters", {})["config"] = str(config)
        if monitor_interval_s and deployment["name"] == "monitor":
            deployment["schedules"] = [{"interval": monitor_interval_s}]
    project.pop("definitions", None)  # only anchors; expanded above
    out.write_text(yaml.safe_dump(project, sort_keys=False))
    return out


def prefect_command(api_url: str, *args: str, timeout_s: float = 300) -> str:
    prefect = str(Path(sys.executable).parent / "prefect")
    env = {**os.environ, **TELEMETRY_OFF, "PREFECT_API_URL": api_url}
    result = subprocess.run(
        [prefect, "--no-prompt", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    if result.returncode != 0:
        raise PrefectServerError(f"prefect {' '.join(args)} failed ({result.returncode}): {result.stderr[-1500:]}")
    return result.stdout


def deploy_everything(api_url: str, prefect_file: Path) -> None:
    """The work pool (once) and every deployment of the rendered prefect.yaml, with its trigger."""
    pools = prefect_command(api_url, "work-pool", "ls")
    if POOL not in pools:
        prefect_command(api_url, "work-pool", "create", POOL, "--type", "process")
    prefect_command(api_url, "deploy", "--all", "--prefect-file", str(prefect_file))


def ensure_zombie_automation(api_url: str) -> None:
    """Mark a flink-runbook flow run Crashed when it sent no heartbeat for SILENT_FOR_S (Prefect's documented
    zombie-run automation, limited to the runs of these deployments by their tag, and extended to a run
    left Pending or Running without a first heartbeat: the guard would wait for either forever)."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            Automation.read(name=ZOMBIE_AUTOMATION)
            return
        except ValueError:
            pass
        Automation(
            name=ZOMBIE_AUTOMATION,
            description=f"A run of a flink-runbook deployment that sent no heartbeat for {SILENT_FOR_S}s lost its "
            "process (worker killed, host down): Crashed, so the monitor's guard lets the next recovery start.",
            # After Pending (a worker is starting its process), Running (the first heartbeat follows at
            # once) or a heartbeat, the next sign of life is due within the window: a run whose process
            # died before it ever beat is caught too.
            trigger=EventTrigger(
                after={"prefect.flow-run.heartbeat", "prefect.flow-run.Pending", "prefect.flow-run.Running"},
                expect={
                    "prefect.flow-run.heartbeat",
                    "prefect.flow-run.Running",
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed",
                },
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={"prefect.resource.id": f"prefect.tag.{POOL}"},
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=SILENT_FOR_S),
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"no heartbeat for {SILENT_FOR_S}s: its process is gone (worker killed or host down)",
                )
            ],
        ).create()


def start_worker(
    api_url: str, home: Path, name: str, limit: int, environment: dict[str, str] | None = None
) -> subprocess.Popen:
    """`prefect worker start` on the pool; `environment` over this process's (its flow runs inherit it)."""
    prefect = str(Path(sys.executable).parent / "prefect")
    env = {**os.environ, **TELEMETRY_OFF, **WORKER_ENVIRONMENT, "PREFECT_API_URL": api_url, **(environment or {})}
    env["PREFECT_HOME"] = str(home / name)
    log = (home / f"{name}.log").open("ab")
    return subprocess.Popen(
        [prefect, "worker", "start", "--pool", POOL, "--type", "process", "--name", name, "--limit", str(limit)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM),
    )


@dataclass
class ScaledPrefect:
    home: Path
    database: LocalPostgres
    server: LocalPrefectServer
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def add_worker(self, name: str, limit: int = 4, environment: dict[str, str] | None = None) -> subprocess.Popen:
        self.workers[name] = start_worker(self.api_url, self.home, name, limit, environment)
        return self.workers[name]

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL a worker and the flow runs it started, at once (a host that dies); returns their pids."""
        worker = self.workers.pop(name)
        pids = [worker.pid, *flow_run_children(worker.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(10)
        return pids

    def stop(self) -> None:
        for name, worker in list(self.workers.items()):
            for child in flow_run_children(worker.pid):
                stop_process(child, timeout_s=10)
            stop_process(worker.pid, timeout_s=15)
            worker.wait(5)
            self.workers.pop(name)
        self.server.stop()
        self.database.stop()


def scale_up(
    home: Path,
    config: Path,
    workers: int = 2,
    limit: int = 4,
    port: int = 4300,
    database_port: int = 54329,
    monitor_interval_s: float | None = None,
) -> ScaledPrefect:
    """Bring the scaled shape up; the caller stops it (ScaledPrefect.stop)."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    database = start_postgres(home / "postgres", database_port)
    server = start_local_server(home / "prefect-server", port=port, timeout_s=240, database_url=database.url)
    scaled = ScaledPrefect(home, database, server)
    try:
        deploy_everything(
            server.api_url, render_prefect_yaml(config.resolve(), home / "prefect.yaml", monitor_interval_s)
        )
        ensure_zombie_automation(server.api_url)
        for number in range(1, workers + 1):
            scaled.add_worker(f"flink-runbook-worker-{number}", limit)
    except BaseException:
        scaled.stop()
        raise
    return scaled


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scale-up", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="process workers on this host (default 2)")
    parser.add_argument("--limit", type=int, default=4, help="flow runs each worker runs at once (default 4)")
    parser.add_argument("--config", type=Path, default=REPO / "stack" / "inventory.yaml", help="inventory YAML file")
    parser.add_argument("--home", type=Path, default=REPO / ".cache" / "scale-up", help="database, logs, state")
    parser.add_argument("--port", type=int, default=4300, help="the Prefect server's port (default 4300)")
    parser.add_argument("--database-port", type=int, default=54329, help="PostgreSQL's port (default 54329)")
    parser.add_argument("--interval", type=float, default=None, help="the monitor's interval (default prefect.yaml's)")
    parser.add_argument(
        "--deploy-only",
        action="store_true",
        help="only deploy prefect.yaml (for --config) and the zombie automation to the server at PREFECT_API_URL",
    )
    return parser


def deploy_only(api_url: str, home: Path, config: Path, interval: float | None) -> int:
    """The several-hosts set-up: deploy to a server that runs elsewhere; workers are started per host."""
    home.mkdir(parents=True, exist_ok=True)
    deploy_everything(api_url, render_prefect_yaml(config.resolve(), home / "prefect.yaml", interval))
    ensure_zombie_automation(api_url)
    say(f"deployed prefect.yaml for {config} and automation {ZOMBIE_AUTOMATION!r} to {api_url}")
    say(f"on each host: PREFECT_API_URL={api_url} PREFECT_FLOWS_HEARTBEAT_FREQUENCY={HEARTBEAT_S} "
        f"prefect worker start --pool {POOL} --limit 4")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.workers <= 32 or args.limit < 1 or (args.interval is not None and args.interval < 5):
        print("scale-up: --workers must be 1 to 32, --limit at least 1, --interval at least 5 s", file=sys.stderr)
        return EXIT_USAGE
    if problem := inventory_problem(args.config):
        print(f"scale-up: {problem}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.update(TELEMETRY_OFF)
    if args.deploy_only:
        api_url = os.environ.get("PREFECT_API_URL")
        if not api_url:
            print("scale-up: --deploy-only needs PREFECT_API_URL (the shared server's API)", file=sys.stderr)
            return EXIT_USAGE
        try:
            return deploy_only(api_url, args.home, args.config, args.interval)
        except PrefectServerError as exc:
            print(f"scale-up: {exc}", file=sys.stderr)
            return EXIT_FAILED
    try:
        scaled = scale_up(
            args.home, args.config, args.workers, args.limit, args.port, args.database_port, args.interval
        )
    except (PostgresError, PrefectServerError, OSError) as exc:
        print(f"scale-up: {exc}", file=sys.stderr)
        return EXIT_FAILED
    say(f"PostgreSQL on 127.0.0.1:{args.database_port} (data in {scaled.database.data})")
    say(f"Prefect server {scaled.api_url} on it; UI {scaled.server.ui_url}")
    say(f"deployed prefect.yaml for {args.config}; automation {ZOMBIE_AUTOMATION!r}")
    say(f"{args.workers} worker(s) on pool {POOL} (logs in {scaled.home}); Ctrl-C or SIGTERM stops them all")
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        while not stopping.wait(5):
            for name, worker in scaled.workers.items():
                if worker.poll() is not None:
                    say(
                        f"worker {name} exited ({worker.returncode}); starting it again (log: {scaled.home}/{name}.log)"
                    )
                    scaled.add_worker(name, args.limit)
                    break
    finally:
        say("stopping the workers, the server and PostgreSQL")
        scaled.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

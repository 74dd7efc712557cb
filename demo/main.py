"""The main job: the runbook's incident, detected and recovered by the served deployments, live.

    python -m flink_runbook.demo [--no-fault] [--config FILE] [--interval 10] [--port 4200] [--once]

Brings up the demo realtime-pipeline stack with its job, a local Prefect server
(SQLite, UI on 127.0.0.1:PORT) and the served deployments; freezes the
TaskManager (`docker pause`, the runbook's heartbeat timeout) and touches
nothing else: the monitor detects it, the trigger starts recover, the job comes
back from its checkpoint. Prints what happens and the time to detect and to
recover, then keeps everything running for the UI until Ctrl-C, and removes
what it started. With --config it watches your clusters instead and never
injects a fault into them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import yaml

from flink_runbook.demo.image import ImageBuildError
from flink_runbook.demo.job import (
    STABLE_DEMO_JAR,
    JobBuildError,
    committed_ids,
    committed_sql_ids,
    sink_integrity,
    start_demo_job,
    start_sql_job,
)
from flink_runbook.demo.stack import DemoStack, StackError, StackSettings, demo_inventory
from flink_runbook.demo.versions import REPO_ROOT, UnsupportedFlinkVersion, resolve_flink_version
from flink_runbook.infrastructure.local_server import (
    TELEMETRY_OFF,
    PrefectServerError,
    server_is_up,
    start_local_server,
    stop_orphaned_server,
)
from flink_runbook.inventory import InventoryError, load_inventory
from flink_runbook.polling import WaitTimeout
from flink_runbook.serving.processes import command_line, is_alive, is_orphan
from flink_runbook.serving.serve import STOP_DEADLINE_S, serving_pid

EXIT_FAILED, EXIT_USAGE = 1, 2
OWNER_FILE = "demo.pid"  # in the data dir: which demo runs its stack


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make demo ARGS=...", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="watch the clusters of this inventory instead of the demo stack")
    parser.add_argument("--no-fault", action="store_true", help="do not inject the failure; just watch")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between monitor ticks (default 10)")
    parser.add_argument("--port", type=int, default=4200, help="port of the local Prefect server (default 4200)")
    parser.add_argument("--flink-version", default=None, help="1.18 ... 2.3 (default 1.20) or a full release")
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="serve without the fault watcher: the monitor detects, the trigger recovers (what a worker does)",
    )
    parser.add_argument("--once", action="store_true", help="exit after the drill instead of running until Ctrl-C")
    parser.add_argument(
        "--sql", action="store_true", help="run the demo Flink SQL job beside the jar job; the drill recovers both"
    )
    # A second demo side by side (the tests use these): its own compose project, ports and data.
    parser.add_argument("--project", default="realtime-pipeline", help=argparse.SUPPRESS)
    parser.add_argument("--rest-port", type=int, default=8081, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "stack" / "data", help=argparse.SUPPRESS)
    parser.add_argument("--prefect-home", type=Path, default=REPO_ROOT / ".prefect-demo", help=argparse.SUPPRESS)
    return parser


def exactly_once_summary(output_dir: Path, read: Callable[[Path], list[int]] = committed_ids) -> str:
    ids = read(output_dir)
    duplicated, missing = sink_integrity(ids)
    verdict = "every id exactly once" if not duplicated and not missing else "LOST OR DUPLICATED RECORDS"
    return f"{len(ids)} ids committed, {duplicated} duplicated, {missing} missing: {verdict}"


def live_demo_owner(data_dir: Path) -> int | None:
    """The pid of the demo that runs the stack of this data dir, if that demo still runs."""
    try:
        pid = int((data_dir / OWNER_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if is_alive(pid) and "flink_runbook.demo" in " ".join(command_line(pid)) else None


def claim_demo(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")


def start_afresh(home: Path, port: int) -> None:
    """Each drill starts from a clean Prefect database: an earlier drill's recoveries would otherwise count
    against this one's cooldown and flap limit (4 demos within an hour would end escalated)."""
    holder = serving_pid(home)
    if holder and is_orphan(holder):
        # The serving process of a demo that was killed: it got SIGTERM with its parent and is stopping.
        say(f"Waiting for the serving process (pid {holder}) of the earlier demo to finish stopping ...")
        deadline = time.monotonic() + 2 * STOP_DEADLINE_S + 10
        while is_alive(holder) and time.monotonic() < deadline:
            time.sleep(0.5)
        holder = serving_pid(home)
    if holder is not None:
        raise StackError(f"a demo or serve (pid {holder or 'unknown'}) still runs from {home}; stop it first")
    orphan = stop_orphaned_server(home, f"http://127.0.0.1:{port}/api")
    if orphan is not None:
        say(f"Stopped the Prefect server (pid {orphan}) an earlier demo left running")
    if home.exists():
        say(f"Clearing the last demo's Prefect database in {home}")
        shutil.rmtree(home)


def run(args: argparse.Namespace, cleanup: ExitStack) -> int:
    stack = None
    config = args.config
    if config is None:
        settings = StackSettings(
            data_dir=args.data_dir, project=args.project, flink_version=args.flink_version, rest_port=args.rest_port
        )
        stack = DemoStack(settings)
        if stack.containers():
            owner = live_demo_owner(args.data_dir)
            if owner is not None:
                # A second copy of the job would write the same sink: refuse rather than duplicate records.
                raise StackError(
                    f"the demo stack {settings.project} is already up, run by demo pid {owner}; "
                    "stop that demo (or `make demo-down`) first"
                )
            say(f"Removing the demo stack {settings.project} that an earlier demo left behind (it no longer runs) ...")
            stack.down()
        claim_demo(args.data_dir)
        # The last demo's records are not this one's.
        for old in (stack.output_dir, stack.checkpoint_dir, stack.sql_output_dir, stack.sql_checkpoint_dir):
            shutil.rmtree(old, ignore_errors=True)
        say(f"Starting the demo stack {settings.project} (Flink {stack.settings.flink_version}) ...")
        stack.up()
        cleanup.callback(lambda: (say(f"Removing the demo stack {settings.project} ..."), stack.down()))
        say(f"Demo job RUNNING as {start_demo_job(stack)}; Flink UI {stack.settings.rest_url}")
        if args.sql:
            say(f"SQL job RUNNING as {start_sql_job(stack)} (stack/sql/realtime-sql-demo.sql)")
        # stack/inventory.yaml describes the default demo stack; this one says the same of this stack.
        config = args.data_dir / "inventory.yaml"
        inventory = demo_inventory(settings, STABLE_DEMO_JAR, sql=args.sql)
        config.write_text(yaml.safe_dump(inventory, sort_keys=False))
    clusters = [c.name for c in load_inventory(config).clusters]

    api_url = os.environ.get("PREFECT_API_URL")
    if api_url and not server_is_up(api_url):
        raise PrefectServerError(f"no Prefect server answers at PREFECT_API_URL={api_url}")
    if not api_url:
        start_afresh(args.prefect_home, args.port)
        say("Starting a local Prefect server (SQLite, telemetry off) ...")
        server = start_local_server(args.prefect_home, args.port)
        cleanup.callback(lambda: (say("Stopping the Prefect server ..."), server.stop()))
        api_url = os.environ["PREFECT_API_URL"] = server.api_url
    ui = api_url.removesuffix("/api")

    # Prefect is imported only now, so it sees the server chosen above.
    from flink_runbook.demo import faults
    from flink_runbook.demo.drill import ServedDeployments, run_drill, wait_for_event

    log = args.prefect_home / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    earlier_log = log.stat().st_size if log.exists() else 0
    serving_since = datetime.now(UTC)  # an event from before this demo says nothing about this one
    served = ServedDeployments.start(
        config, api_url, log, args.interval, prefect_home=args.prefect_home, watch=not args.no_watch
    )
    cleanup.callback(lambda: (say("Stopping the served deployments ..."), served.stop()))
    served.wait_until_serving()
    with log.open("rb") as lines:  # what this start of serve said about an earlier unclean stop
        lines.seek(earlier_log)
        for line in lines.read().decode(errors="replace").splitlines():
            if "left by an earlier stop" in line:
                say(line.partition("serve: ")[2])
    watcher = "off" if args.no_watch else "on: Docker's events and a REST watch every 2 s, recovering in process"
    say(f"Serving monitor (every {args.interval:.0f}s), recover (triggered) and diagnose; log {log}")
    say(f"Fault watcher {watcher}")
    say(f"Prefect UI: {ui}/deployments  automations: {ui}/automations  events: {ui}/events")
    for name in clusters:
        wait_for_event(name, "flink.cluster.healthy", since=serving_since, timeout_s=180)
        say(f"The monitor sees {name} healthy")

    if stack is not None and not args.no_fault:
        cluster = clusters[0]
        say(f"Freezing TaskManager {stack.taskmanager().name} (docker pause); touching nothing else ...")
        result = run_drill(cluster, lambda: faults.freeze(stack.taskmanager()), timeout_s=420, say=say)
        time.sleep(10)  # let the new job commit a few checkpoints' worth of output
        say(f"Sink: {exactly_once_summary(stack.output_dir)}")
        if args.sql:
            say(f"SQL job's sink: {exactly_once_summary(stack.sql_output_dir, committed_sql_ids)}")
        say(f"Recover run and its report: {ui}/runs/flow-run/{result.recover_run_id}")
        say(f"Time to detect {result.detect_s:.1f}s, time to recover {result.recover_s:.1f}s")
        if result.recover_state != "COMPLETED":
            say("The recovery did not complete: read the recover run's report in the UI")
    elif args.config is not None and not args.no_fault:
        say("No fault injected: faults are only ever injected into the demo stack, never into your clusters")

    if args.once:
        return 0
    say("Running; open the UI above. Ctrl-C stops and cleans up.")
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stack"]:  # the demo stack by hand: up, down, fault
        from flink_runbook.demo.stack_commands import main as stack_main

        return stack_main(argv[1:])
    if argv[:1] == ["compat"]:  # every supported release through the incident, one stack at a time
        from flink_runbook.demo.compat import main as compat_main

        return compat_main(argv[1:])
    if argv[:1] == ["image"]:  # flink-runbook's own image (make image)
        from flink_runbook.demo.runbook_image import main as image_main

        return image_main(argv[1:])
    args = build_parser().parse_args(argv)
    os.environ.update(TELEMETRY_OFF)
    if args.interval < 5:
        print("demo: --interval must be at least 5 seconds", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.config is not None:
            load_inventory(args.config)
        args.flink_version = resolve_flink_version(args.flink_version)
    except (InventoryError, UnsupportedFlinkVersion) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with ExitStack() as cleanup:
        try:
            return run(args, cleanup)
        except KeyboardInterrupt:
            return 130
        except (StackError, ImageBuildError, JobBuildError, PrefectServerError, WaitTimeout) as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())

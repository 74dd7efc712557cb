"""Serve every flink-runbook deployment from one process: the embedded default.

    python -m deployments.serve --config stack/inventory.yaml [--interval 30] [--limit 4]

With PREFECT_API_URL set it serves against that server; without, it starts a
local Prefect server (SQLite under --prefect-home, telemetry off, UI on
127.0.0.1:--port) and stops it on exit. --limit caps the runs this process
executes at once; late monitor ticks are skipped (flows/monitor.py), so a
backlog after downtime does not become a storm of runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from deployments.local_server import TELEMETRY_OFF, PrefectServerError, server_is_up, start_local_server
from flink_runbook.inventory import InventoryError, load_inventory

REPO = Path(__file__).resolve().parent.parent
EXIT_FAILED, EXIT_USAGE = 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "stack" / "inventory.yaml", help="inventory YAML file")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between monitor ticks (default 30)")
    parser.add_argument("--limit", type=int, default=4, help="runs this process executes at once (default 4)")
    parser.add_argument("--port", type=int, default=4200, help="port of the local Prefect server (default 4200)")
    parser.add_argument("--prefect-home", type=Path, default=REPO / ".prefect-home", help="local server's data")
    return parser


def serve_deployments(config: Path, interval_s: float, limit: int) -> None:
    """Register the deployments, their trigger and the escalation notification; run them until interrupted."""
    from deployments.definitions import build_deployments
    from deployments.notifications import ensure_escalation_notification

    inventory = load_inventory(config)
    if inventory.escalation_webhook_url:
        ensure_escalation_notification(inventory.escalation_webhook_url)
        print(f"serve: escalations are posted to {inventory.escalation_webhook_url}", flush=True)
    asyncio.run(serve_until_stopped(build_deployments(config, interval_s), limit))


async def serve_until_stopped(deployments: list, limit: int) -> None:
    """Run the deployments until SIGINT or SIGTERM, then stop cleanly.

    Prefect's own serve() leaves a run that is in flight at Ctrl-C in Pending
    or Running; it keeps its deployment's concurrency slot until the lease
    expires (300 s), and every monitor tick until then is cancelled. Stopping
    the runner instead marks in-flight runs Cancelled, which frees the slots;
    the next monitor tick after a restart looks at the clusters afresh.
    """
    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        await runner.aadd_deployment(deployment)
    serving = asyncio.create_task(runner.start())
    while not runner.started and not serving.done():  # start() installs its own SIGTERM handler first
        await asyncio.sleep(0.1)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)
    print(f"serve: serving {', '.join(d.name for d in deployments)}; Ctrl-C or SIGTERM stops", flush=True)
    stopping = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not serving.done():
        print("serve: stopping; runs in flight are marked Cancelled, schedules paused", flush=True)
        await runner.astop()
        await serving
    stopping.cancel()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.interval < 5 or args.limit < 1:
        print("serve: --interval must be at least 5 seconds and --limit at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        load_inventory(args.config)
    except InventoryError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.update(TELEMETRY_OFF)
    # Pick up a triggered recover run within 5 s instead of Prefect's default 10 s.
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")
    server = None
    api_url = os.environ.get("PREFECT_API_URL")
    try:
        if api_url:
            if not server_is_up(api_url):
                print(f"serve: no Prefect server answers at PREFECT_API_URL={api_url}", file=sys.stderr)
                return EXIT_FAILED
        else:
            server = start_local_server(args.prefect_home, args.port)
            os.environ["PREFECT_API_URL"] = api_url = server.api_url
            print(f"serve: local Prefect server (SQLite in {args.prefect_home}); UI {server.ui_url}", flush=True)
        serve_deployments(args.config, args.interval, args.limit)
        return 0
    except PrefectServerError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())

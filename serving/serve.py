"""Serve every flink-runbook deployment from one process: the embedded default.

    flink-runbook serve --config inventory.yaml [--interval 30] [--limit 4]
    flink-runbook serve --config inventory.yaml --api http://prefect:4200/api

With --api (default: $PREFECT_API_URL) it serves against that Prefect server
and starts none; without, it starts a local Prefect server (SQLite under
--prefect-home, telemetry off, UI on --host:--port, 127.0.0.1 unless in a
container) and stops it on exit. --limit caps the runs this process
executes at once; late monitor ticks are skipped (flows/monitor.py), so a
backlog after downtime does not become a storm of runs.

At start it reconciles what an unclean stop left behind (serving/reconcile.py):
runs of its deployments with no process behind them are marked Crashed and
the slots nothing alive holds are given back. While it runs, a watchdog
thread (serving/watchdog.py) says loudly when monitor ticks stop
completing for --stalled-after intervals. One serving process per
--prefect-home at a time (a lock file there).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from flink_runbook.infrastructure.local_server import (
    TELEMETRY_OFF,
    PrefectServerError,
    server_is_up,
    start_local_server,
)
from flink_runbook.inventory import inventory_problem, load_inventory
from flink_runbook.redaction import redact_urls
from flink_runbook.serving.fault_watch import DEFAULT_REST_INTERVAL_S
from flink_runbook.serving.watchdog import DEFAULT_STALLED_AFTER

EXIT_FAILED, EXIT_USAGE = 1, 2
HOME_ENV = "FLINK_RUNBOOK_HOME"
STOP_DEADLINE_S = 15  # a stop that hangs (the server already gone) must not keep the process alive


def default_home() -> Path:
    """Where the local server keeps its data and serve its lock: $FLINK_RUNBOOK_HOME, else the user's data
    directory (XDG), so an installed tool writes nothing into its working directory."""
    if home := os.environ.get(HOME_ENV):
        return Path(home).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "flink-runbook"


def api_url_problem(url: str) -> str | None:
    """Why `url` cannot be a Prefect API's address; None: it can."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        return f"the Prefect API {redact_urls(repr(url))} (--api, else $PREFECT_API_URL) is not a URL: {exc}"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return (
            f"the Prefect API {redact_urls(repr(url))} (--api, else $PREFECT_API_URL) is not an http:// or https:// "
            "URL with a host, like http://127.0.0.1:4200/api"
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flink-runbook serve", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, required=True, help="inventory YAML file")
    parser.add_argument(
        "--api",
        default=os.environ.get("PREFECT_API_URL") or None,
        metavar="URL",
        help="serve against this Prefect server's API and start none (default: $PREFECT_API_URL; unset: a local "
        "server of its own)",
    )
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between monitor ticks (default 30)")
    parser.add_argument("--limit", type=int, default=4, help="runs this process executes at once (default 4)")
    parser.add_argument("--port", type=int, default=4200, help="port of the local Prefect server (default 4200)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the local Prefect server listens on (default 127.0.0.1; 0.0.0.0 in a container, so that "
        "a published port reaches it)",
    )
    parser.add_argument(
        "--prefect-home",
        type=Path,
        default=default_home(),
        help=f"local server's data, and serve's lock file (default ${HOME_ENV}, else ~/.local/share/flink-runbook)",
    )
    parser.add_argument(
        "--stalled-after",
        type=int,
        default=DEFAULT_STALLED_AFTER,
        help=f"monitor intervals without a completed tick before the watchdog raises the alarm "
        f"(default {DEFAULT_STALLED_AFTER})",
    )
    parser.add_argument(
        "--watch-interval",
        type=float,
        default=DEFAULT_REST_INTERVAL_S,
        help=f"seconds between the fault watcher's REST readings (default {DEFAULT_REST_INTERVAL_S:g})",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="no fault watcher: only the scheduled monitor detects (Docker events and the REST watch are off)",
    )
    return parser


class AlreadyServing(RuntimeError):
    pass


def hold_serve_lock(home: Path) -> IO[str]:
    """One serving process per home: what it reconciles at start must not be another live process's runs."""
    home.mkdir(parents=True, exist_ok=True)
    lock = (home / "serve.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise AlreadyServing(
            f"another serving process (pid {holder}) already serves from {home}; stop it first"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def serving_pid(home: Path) -> int | None:
    """The pid of a serving process that holds `home`'s lock now (None: nobody serves from it)."""
    path = home / "serve.lock"
    if not path.exists():
        return None
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            written = lock.read().split()
            return int(written[0]) if written and written[0].isdigit() else 0  # 0: held, pid not written yet
        fcntl.flock(lock, fcntl.LOCK_UN)
        return None


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} serve: {redact_urls(message)}", flush=True)  # its log: no credentials


def stop_flow_run_processes() -> None:
    """No run of ours may go on acting after we are gone (a killed demo's recovery on the next demo's stack)."""
    from flink_runbook.serving.processes import flow_run_children, stop_process

    for pid in flow_run_children(os.getpid()):
        say(f"stopping flow-run process {pid}, still running as serve exits")
        stop_process(pid, timeout_s=5)


def exit_now(why: str) -> None:
    say(f"{why}; exiting now (the next start reconciles whatever is left)")
    stop_flow_run_processes()
    os._exit(EXIT_FAILED)


def serve_deployments(
    config: Path,
    interval_s: float,
    limit: int,
    stalled_after: int,
    watch_interval_s: float | None = DEFAULT_REST_INTERVAL_S,
) -> None:
    """Register the deployments, their trigger and the escalation notification; run them until interrupted."""
    from flink_runbook.deployments.definitions import build_deployments
    from flink_runbook.serving.notifications import WEBHOOK_BLOCK_NAME, ensure_escalation_notification

    inventory = load_inventory(config)
    for warning in inventory.warnings:
        say(f"warning: {warning}")
    if inventory.escalation_webhook_url:
        ensure_escalation_notification(inventory.escalation_webhook_url)
        say(
            "escalations and a stalled monitor are posted to the inventory's webhook "
            f"(kept in Prefect block {WEBHOOK_BLOCK_NAME})"
        )
    watcher = None
    if watch_interval_s is not None:
        from flink_runbook.serving.fault_watch import FaultWatcher

        watcher = FaultWatcher(config, say, rest_interval_s=watch_interval_s)
    asyncio.run(serve_until_stopped(build_deployments(config, interval_s), limit, interval_s, stalled_after, watcher))


def watch_over_the_monitor(ids: dict[str, str], started_at: float, interval_s: float, stalled_after: int):
    """Reconcile what an unclean stop left, then start the watchdog thread; returns the thread."""
    from flink_runbook.serving.processes import flow_run_ids_with_a_process
    from flink_runbook.serving.reconcile import reconcile_served_runs
    from flink_runbook.serving.watchdog import MonitorWatchdog

    def reconcile(opened_before: float) -> list[str]:
        watched_s = time.time() - started_at  # the server this process serves against, up at least so long
        return reconcile_served_runs(list(ids.values()), opened_before, flow_run_ids_with_a_process, watched_s).lines()

    try:
        for line in reconcile(started_at):
            say(f"at start, left by an earlier stop: {line}")
    except Exception as exc:  # serving must not depend on it: the watchdog tries again if ticks stall
        say(f"could not reconcile what an earlier stop left (the watchdog retries if ticks stall): {exc}")
    # While running, a run may be between PENDING and its process for a moment: only older ones count as dead.
    watchdog = MonitorWatchdog(
        ids["monitor"], "monitor/monitor", interval_s, stalled_after, lambda: reconcile(time.time() - 60)
    )
    watchdog.start()
    return watchdog


async def serve_until_stopped(
    deployments: list,
    limit: int,
    interval_s: float = 30.0,
    stalled_after: int = DEFAULT_STALLED_AFTER,
    watcher=None,
) -> None:
    """Run the deployments (and the fault watcher, if any) until SIGINT or SIGTERM, then stop cleanly.

    Prefect's own serve() leaves a run that is in flight at Ctrl-C in Pending
    or Running; it keeps its deployment's concurrency slot until the lease
    expires (300 s), and every monitor tick until then is cancelled. Stopping
    the runner instead marks in-flight runs Cancelled, which frees the slots;
    the next monitor tick after a restart looks at the clusters afresh.
    """
    from prefect.runner import Runner

    started_at = time.time()
    # Prefect's runner starts every run due within prefetch_seconds (default 10) at once; with a monitor
    # tick every 5-10 s that started two ticks per poll and CANCEL_NEW cancelled one of them, every time.
    runner = Runner(pause_on_shutdown=True, limit=limit, prefetch_seconds=1)
    ids = {deployment.name: str(await runner.aadd_deployment(deployment)) for deployment in deployments}
    watchdog = await asyncio.to_thread(watch_over_the_monitor, ids, started_at, interval_s, stalled_after)
    serving = asyncio.create_task(runner.start())
    while not runner.started and not serving.done():  # start() installs its own SIGTERM handler first
        await asyncio.sleep(0.1)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    # However the stop goes (its server already gone, Prefect's log and event workers retrying at exit),
    # the process is gone within this deadline: a supervisor or the next demo must not wait on it.
    last_word = threading.Timer(2 * STOP_DEADLINE_S, exit_now, args=(f"not stopped after {2 * STOP_DEADLINE_S}s",))
    last_word.daemon = True

    def request_stop(signum: int, frame: object) -> None:
        if not last_word.is_alive():
            last_word.start()
        loop.call_soon_threadsafe(stop_requested.set)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    if watcher is not None:
        watcher.start()
    say(f"serving {', '.join(d.name for d in deployments)}; Ctrl-C or SIGTERM stops")
    stopping = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    watchdog.stop()
    if watcher is not None:
        watcher.stop(timeout_s=STOP_DEADLINE_S / 3)
    if not serving.done():
        say("stopping; runs in flight are marked Cancelled, schedules paused")
        try:
            await asyncio.wait_for(runner.astop(), STOP_DEADLINE_S)
            await asyncio.wait_for(serving, STOP_DEADLINE_S)
        except TimeoutError:
            say(f"the runner did not stop within {STOP_DEADLINE_S}s; exiting anyway (the next start reconciles)")
    stop_flow_run_processes()
    stopping.cancel()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (
        args.interval < 5 or args.limit < 1 or args.stalled_after < 2 or not 0.5 <= args.watch_interval <= 3600
        or not 1 <= args.port <= 65535
    ):
        print(
            "serve: --interval must be at least 5 seconds, --limit at least 1, --stalled-after at least 2, "
            "--watch-interval between 0.5 and 3600 seconds and --port between 1 and 65535",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.api and (problem := api_url_problem(args.api)):
        print(f"serve: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if problem := inventory_problem(args.config):
        print(f"serve: {problem}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.update(TELEMETRY_OFF)
    # Pick up a triggered recover run within 5 s instead of Prefect's default 10 s.
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")
    watchdog_log = logging.getLogger("flink_runbook")
    watchdog_log.addHandler(logging.StreamHandler(sys.stdout))
    watchdog_log.setLevel(logging.INFO)
    server = None
    api_url = args.api
    try:
        lock = hold_serve_lock(args.prefect_home)  # noqa: F841 - held until the process ends
    except AlreadyServing as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if api_url:
            if not server_is_up(api_url):
                print(f"serve: no Prefect server answers at {redact_urls(api_url)}", file=sys.stderr)
                return EXIT_FAILED
            os.environ["PREFECT_API_URL"] = api_url  # before Prefect is imported: its client reads it
        else:
            server = start_local_server(args.prefect_home, args.port, host=args.host)
            os.environ["PREFECT_API_URL"] = api_url = server.api_url
            listening = "" if args.host == "127.0.0.1" else f", listening on {args.host}"
            say(
                f"local Prefect server (SQLite in {args.prefect_home}); UI {server.ui_url}{listening}; for status and "
                f"the CLI: export PREFECT_API_URL={server.api_url}"
            )
        watch_interval = None if args.no_watch else args.watch_interval
        serve_deployments(args.config, args.interval, args.limit, args.stalled_after, watch_interval)
        return 0
    except PrefectServerError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        if server:
            server.stop()
        say("stopped" + (": the local Prefect server too" if server else ""))


if __name__ == "__main__":
    sys.exit(main())

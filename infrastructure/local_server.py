"""The embedded default Prefect server: `prefect server start` on 127.0.0.1 with SQLite, telemetry off.

In a container it listens on every interface instead (`host="0.0.0.0"`), or a published port reaches nothing;
this process still talks to it on the loopback address.

No Prefect import here: the server is a child process, and callers set
PREFECT_API_URL before they import Prefect themselves.

It never outlives the process that started it (a parent-death signal), and it
leaves a pid file in its home: a server of ours that an earlier run left
behind (its parent SIGKILLed before the signal could be armed, or a hung
shutdown) is stopped at the next start; anything else on the port is refused.
Concurrency leases live on disk (Prefect's filesystem lease storage), so a
slot held by a run that died is reaped after a restart as before it: with
Prefect's default in-memory storage such a slot is held forever.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from flink_runbook.serving.processes import (
    command_line,
    die_with_parent,
    environment,
    is_alive,
    is_orphan,
    stop_process,
)

TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
DURABLE_LEASES = {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem"}
PID_FILE = "server.pid"


class PrefectServerError(RuntimeError):
    pass


@dataclass
class LocalPrefectServer:
    process: subprocess.Popen
    api_url: str
    ui_url: str
    log_path: Path
    home: Path

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        (self.home / PID_FILE).unlink(missing_ok=True)


def server_is_up(api_url: str) -> bool:
    try:
        return requests.get(f"{api_url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def our_server_pid(home: Path) -> int | None:
    """The pid in `home`'s pid file, if that process still runs and is a Prefect server on this very home."""
    try:
        pid = int((home / PID_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    command = " ".join(command_line(pid))
    if not is_alive(pid) or "server start" not in command:
        return None
    if Path(environment(pid).get("PREFECT_HOME", "/nonexistent")).resolve() != home.resolve():
        return None
    return pid


def stop_orphaned_server(home: Path, api_url: str) -> int | None:
    """Stop a server an earlier run of ours left on this home, whose parent is gone; returns its pid.

    A server of ours whose parent still runs (another demo, another serve) is not an orphan: left alone.
    """
    pid = our_server_pid(home)
    if pid is None or not is_orphan(pid):
        return None
    stop_process(pid)
    deadline = time.monotonic() + 20
    while server_is_up(api_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pid


ALL_INTERFACES = ("0.0.0.0", "::")


def start_local_server(
    home: Path, port: int = 4200, timeout_s: float = 120, database_url: str | None = None, host: str = "127.0.0.1"
) -> LocalPrefectServer:
    """Start a Prefect server whose database lives in `home` (SQLite), or at `database_url` (PostgreSQL:
    postgresql+asyncpg://...), listening on `host`; wait until it answers."""
    local_host = "127.0.0.1" if host in ALL_INTERFACES else host
    api_url = f"http://{local_host}:{port}/api"
    home.mkdir(parents=True, exist_ok=True)
    orphan = stop_orphaned_server(home, api_url)
    if orphan is not None:
        print(f"local server: stopped Prefect server pid {orphan} that an earlier run left on {home}", flush=True)
    if server_is_up(api_url):
        raise PrefectServerError(
            f"something already answers on {api_url}; stop it, or set PREFECT_API_URL={api_url} to use it"
        )
    log_path = home / "server.log"
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        **DURABLE_LEASES,
        "PREFECT_HOME": str(home),
        # A run that dies before its engine starts (serving process killed mid-submission) holds its
        # deployment's slot until this lease ends; Prefect's default 300 s would blind the monitor that long.
        "PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION": "60",
    }
    env.pop("PREFECT_API_URL", None)
    # The UI asks the API where this says; Prefect's default is port 4200 whatever port the server is on,
    # so on any other port the UI would load and then wait forever on a server that is not there. A container
    # whose port is published on another one says where the browser finds it (PREFECT_UI_API_URL).
    env["PREFECT_UI_API_URL"] = os.environ.get("PREFECT_UI_API_URL") or api_url
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", host, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop the server in order
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
    (home / PID_FILE).write_text(f"{process.pid}\n")
    server = LocalPrefectServer(process, api_url, f"http://{local_host}:{port}", log_path, home)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrefectServerError(f"the Prefect server exited with {process.returncode}; see {log_path}")
        if server_is_up(api_url):
            return server
        time.sleep(0.5)
    server.stop()
    raise PrefectServerError(f"the Prefect server did not answer on {api_url} within {timeout_s:.0f}s; see {log_path}")

"""The embedded default Prefect server: `prefect server start` on 127.0.0.1 with SQLite, telemetry off.

No Prefect import here: the server is a child process, and callers set
PREFECT_API_URL before they import Prefect themselves.
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

TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


class PrefectServerError(RuntimeError):
    pass


@dataclass
class LocalPrefectServer:
    process: subprocess.Popen
    api_url: str
    ui_url: str
    log_path: Path

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_is_up(api_url: str) -> bool:
    try:
        return requests.get(f"{api_url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def start_local_server(home: Path, port: int = 4200, timeout_s: float = 120) -> LocalPrefectServer:
    """Start a Prefect server whose database lives in `home` (SQLite); wait until it answers."""
    api_url = f"http://127.0.0.1:{port}/api"
    if server_is_up(api_url):
        raise PrefectServerError(
            f"something already answers on {api_url}; stop it, or set PREFECT_API_URL={api_url} to use it"
        )
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        "PREFECT_HOME": str(home),
        # A run that dies before its engine starts (serving process killed mid-submission) holds its
        # deployment's slot until this lease ends; Prefect's default 300 s would blind the monitor that long.
        "PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION": "60",
    }
    env.pop("PREFECT_API_URL", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop the server in order
        )
    server = LocalPrefectServer(process, api_url, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrefectServerError(f"the Prefect server exited with {process.returncode}; see {log_path}")
        if server_is_up(api_url):
            return server
        time.sleep(0.5)
    server.stop()
    raise PrefectServerError(f"the Prefect server did not answer on {api_url} within {timeout_s:.0f}s; see {log_path}")

"""The command line's temporary Prefect server, with its output in a log file instead of the operator's terminal.

With no PREFECT_API_URL, Prefect starts a temporary server for the command (`SubprocessASGIServer`, one per
process) when a flow first asks for an API, as a child that writes to our terminal: a busy SQLite server's
`database is locked` traceback then reached an operator in the middle of an ordinary `recover`. Started
here first, the same server (the instance Prefect's clients then use) has its stdout and stderr in
`<PREFECT_HOME>/temporary-server.log`, which the operator is told about only when the server fails.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOG_NAME = "temporary-server.log"
LOG_KEPT_BYTES = 5_000_000  # a longer log starts afresh: the CLI may run from cron for years


class TemporaryServerError(RuntimeError):
    """The temporary Prefect server did not start; the message names its log."""


def quiet_temporary_server() -> Path | None:
    """Start Prefect's temporary server for this command, its output in a log file; the log's path, or None
    when a Prefect server is configured (nothing is started then)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE

    if PREFECT_API_URL.value() or not PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    log_path = Path(PREFECT_HOME.value()).expanduser() / LOG_NAME
    server = SubprocessASGIServer()  # no port: the very instance Prefect's clients start and use
    if server.running:
        return log_path
    with _output_to(log_path):
        try:
            server.start()
        except Exception as exc:
            raise TemporaryServerError(
                f"the temporary Prefect server did not start ({type(exc).__name__}: {str(exc)[:300]}); "
                f"its log: {log_path}"
            ) from None
    # Registered after Prefect's own stop (atexit runs last-in first): it sees the server as the command left it.
    atexit.register(_say_if_it_died, server, log_path)
    return log_path


@contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """This process's stdout and stderr go to the log while the server starts, so the server inherits them."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if log_path.exists() and log_path.stat().st_size > LOG_KEPT_BYTES else "ab"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with log_path.open(mode) as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} pid {os.getpid()}: {' '.join(sys.argv)}\n".encode())
            log.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _say_if_it_died(server, log_path: Path) -> None:
    process = getattr(server, "server_process", None)
    if process is not None and process.poll() is not None:
        print(f"flink-runbook: the temporary Prefect server stopped during the command (exit {process.returncode}); "
              f"its log: {log_path}", file=sys.stderr)

"""Facts about local processes, from /proc (Linux): liveness, identity, and dying with a parent.

No Prefect import: the serving process and the local server's launcher both use it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PROC = Path("/proc")


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A Popen preexec_fn: the child gets `signum` when the process that started it dies, even by SIGKILL.

    Without it a SIGKILLed serving process leaves its Prefect server behind as an
    orphan holding the port, and the next start is refused.
    """

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return arm


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        return (PROC / str(pid) / "stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def parent_pid(pid: int) -> int | None:
    try:
        return int((PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def is_orphan(pid: int) -> bool:
    """Its parent died: it was handed to init (or to a subreaper that is not its parent)."""
    parent = parent_pid(pid)
    return parent is None or parent <= 1 or not is_alive(parent) or "python" not in " ".join(command_line(parent))


def command_line(pid: int) -> list[str]:
    try:
        return [
            part.decode(errors="replace") for part in (PROC / str(pid) / "cmdline").read_bytes().split(b"\0") if part
        ]
    except OSError:
        return []


def environment(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0") if b"=" in entry)
    return {key: value for key, _, value in pairs}


def flow_run_processes() -> dict[int, str]:
    """Live processes on this host that run a Prefect flow run: pid -> flow run id. Prefect's runner and
    workers start each run's process with PREFECT__FLOW_RUN_ID in its environment."""
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            run_id = environment(int(entry.name)).get("PREFECT__FLOW_RUN_ID")
            if run_id and is_alive(int(entry.name)):
                found[int(entry.name)] = run_id
    return found


def flow_run_ids_with_a_process() -> set[str]:
    return set(flow_run_processes().values())


def flow_run_children(pid: int) -> list[int]:
    """Live child processes of `pid` that run a Prefect flow run."""
    return [child for child in flow_run_processes() if parent_pid(child) == pid]


def stop_process(pid: int, timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; returns once it is gone."""
    for signum, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not is_alive(pid):
                return
            time.sleep(0.2)

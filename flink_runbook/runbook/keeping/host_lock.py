"""One recovery per cluster per host, whichever Prefect server or door it came through (fcntl, no Prefect).

The Prefect concurrency limit lives in one Prefect server: a CLI with its own
temporary server, or a second PREFECT_HOME, holds "the" limit too. An
exclusive `flock` on <state_dir>/locks/<cluster>.lock is held by the kernel for
the process: a second recovery waits for it, and a holder that dies (SIGKILL)
frees it at once. The file says who holds it (pid, flow run), so the monitor can
tell a recover run that is RUNNING in Prefect but whose process is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from flink_runbook.runbook.keeping.state_files import UnsafeStateFile, open_no_follow, read_state_file


class RecoveryLockTimeout(RuntimeError):
    """Another recovery of the cluster held the host lock for the whole wait."""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    flow_run_id: str | None
    since: float
    released: bool = False  # let go on the way out; a dead holder never says so
    # Whether another recovery held the lock when this one asked (it waited for it to end).
    waited: bool = False


def lock_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "locks" / f"{cluster}.lock"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    # It is truncated and written: never via a link. Group-writable as far as the umask lets it: a state dir
    # shared by an operators' group (README, "The state directory") needs every user to take the same lock.
    return open_no_follow(path, os.O_RDWR | os.O_CREAT, 0o660)


@contextlib.contextmanager
def cluster_lock(
    state_dir: Path, cluster: str, flow_run_id: str | None, timeout_s: float, poll_s: float = 0.5
) -> Iterator[LockHolder]:
    """Hold the cluster's host lock; wait up to timeout_s for another holder to finish."""
    path = lock_file(state_dir, cluster)
    fd = _open(path)
    holder = None
    try:
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = True
                if time.monotonic() >= deadline:
                    other = read_holder(path)
                    who = f"pid {other.pid} (flow run {other.flow_run_id})" if other else "another process"
                    raise RecoveryLockTimeout(
                        f"cluster {cluster}: {path} stayed locked by {who} for {timeout_s:.0f}s; another recovery "
                        "is still running, not starting a second one"
                    ) from None
                time.sleep(poll_s)
        holder = LockHolder(os.getpid(), socket.gethostname(), flow_run_id, time.time(), waited=waited)
        _write(fd, holder)
        yield holder
    finally:
        if holder is not None:
            _write(fd, replace(holder, released=True))
        os.close(fd)  # closing releases the flock


def _write(fd: int, holder: LockHolder) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder.__dict__).encode(), 0)


def read_holder(path: Path) -> LockHolder | None:
    """Who last took the lock (it may have let go since: see is_held)."""
    try:
        data = json.loads(read_state_file(path) or "{}")
        return LockHolder(
            int(data["pid"]),
            str(data["host"]),
            data.get("flow_run_id"),
            float(data["since"]),
            bool(data.get("released")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_held(state_dir: Path, cluster: str) -> bool:
    """Whether a live process holds the cluster's lock now (a dead one's lock is already free)."""
    path = lock_file(state_dir, cluster)
    if not path.exists():
        return False
    try:
        fd = _open(path)
    except UnsafeStateFile:
        return True  # a planted link: the monitor marks no run dead on its word (the recovery itself refuses it)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)

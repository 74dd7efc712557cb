"""The host's state directory, checked before a recovery starts: one lock and one lineage per host (no Prefect).

A recovery keeps its host lock (<state_dir>/locks), the jobs' lineage (<state_dir>/lineage) and the
cluster's engine (<state_dir>/engines) there. A recovery that could not write them would run unguarded
next to another one, or pick job ids from a lineage the other does not share; so it is refused before
anything is done, naming the directory, the user and why.
"""

from __future__ import annotations

import os
import pwd
import tempfile
from pathlib import Path

from flink_runbook.inventory import describe_state_dir
from flink_runbook.runbook.keeping.host_lock import lock_file
from flink_runbook.runbook.keeping.lineage import lineage_file
from flink_runbook.runbook.keeping.state_files import open_no_follow

# What the runbook writes under the state dir during a recovery.
STATE_SUBDIRS = ("locks", "lineage", "engines", "stops")
# A missing state dir is made readable to all (who holds a lock, for `status`), writable by its owner only;
# a directory shared by an operators' group is made by hand (README, "The state directory").
STATE_DIR_MODE = 0o755


class StateDirError(RuntimeError):
    """The state directory cannot be written by this process: no recovery is started."""


def _user() -> str:
    uid = os.geteuid()
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _prove_writable(directory: Path) -> None:
    """A file made and removed there: what access() cannot tell (root, read-only mounts, ACLs)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
    except OSError as exc:  # said of the directory, not of the probe's random name
        raise OSError(exc.errno, exc.strerror, str(directory)) from None
    os.close(fd)
    os.unlink(probe)


def check_state_dir(state_dir: Path, cluster: str, inventory: Path | None = None) -> None:
    """Make the state dir if it is missing and prove this process can write what a recovery of `cluster`
    writes there (a file in it and in each subdirectory, the cluster's lock and lineage lock if they exist),
    then make the missing subdirectories; raises StateDirError naming the inventory, the key, the directory
    and the reason."""
    try:
        if not state_dir.is_dir():
            state_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        # Everything is tried before anything is made: a refused recovery leaves the directory as it was.
        subdirs = [state_dir / sub for sub in STATE_SUBDIRS]
        for directory in [state_dir, *(d for d in subdirs if d.is_dir())]:
            _prove_writable(directory)
        for existing in (lock_file(state_dir, cluster), lineage_file(state_dir, cluster).with_suffix(".lock")):
            if existing.exists():  # made by another user: it must be writable by this one too
                os.close(open_no_follow(existing, os.O_RDWR))
        for directory in subdirs:
            directory.mkdir(exist_ok=True)
    except OSError as exc:
        where = f"{inventory}: state_dir: " if inventory else "state_dir: "
        reason = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        raise StateDirError(
            f"{where}{describe_state_dir(state_dir)} cannot be written by {_user()}: {reason}. A recovery keeps "
            f"its host lock and the jobs' lineage there, so the recovery of {cluster} is not started. Every user "
            "and service that recovers on this host must be able to write it (README, 'The state directory')"
        ) from None

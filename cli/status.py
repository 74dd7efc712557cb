"""`flink-runbook status`: every cluster of the inventory on one screen, for a person at night.

The clusters are checked live (the monitor's cheap checks); the guard's state and the last incident
come from the Prefect server the monitor runs on (PREFECT_API_URL). Without one, only the live part.
"""

from __future__ import annotations

import json
import os
import sys
import time

from flink_runbook.inventory import ClusterSpec, load_inventory
from flink_runbook.runbook.deciding.guard import RecoveryRun, dead_runs
from flink_runbook.runbook.keeping.host_lock import is_held, lock_file, read_holder
from flink_runbook.runbook.observing.fleet_check import check_fleet
from flink_runbook.runbook.reporting.status import ClusterStatus, cluster_status, status_lines

CLEAR_SCREEN = "\033[H\033[2J"


def read_statuses(config: str, cluster: str | None) -> tuple[list[ClusterStatus], str]:
    """Each cluster's status, and a note on what could not be read (empty when everything was)."""
    inventory = load_inventory(config)
    clusters = list(inventory.select(cluster))
    runs, escalations, incidents, note = {}, {}, {}, ""
    secret = None
    if os.environ.get("PREFECT_API_URL"):
        from flink_runbook.records.flow_runs import recovery_histories
        from flink_runbook.records.variables import read_escalations, read_incidents
        from flink_runbook.tasks.clients import secret_value

        secret = secret_value
        try:
            runs = recovery_histories(clusters, inventory.path)
            escalations = read_escalations([c.name for c in clusters])
            incidents = read_incidents([c.name for c in clusters])
        except Exception as exc:  # the clusters are still shown: that is what matters at 3 a.m.
            note = f"guard state and incidents not read from {os.environ['PREFECT_API_URL']}: {exc}"
    else:
        note = "guard state and incidents come from the monitor's Prefect server: set PREFECT_API_URL"
    checks = check_fleet(clusters, secret=secret)
    gone = {c.name: runs_whose_process_is_gone(c, runs.get(c.name, [])) for c in clusters}
    statuses = [
        cluster_status(
            c,
            check.diagnosis,
            check.error,
            runs.get(c.name, []),
            escalations.get(c.name),
            incidents.get(c.name, []),
            history_known=not note,  # no record read: the guard's state is not guessed from nothing
            gone=gone[c.name],
        )
        for c, check in zip(clusters, checks, strict=True)
    ]
    return statuses, note


def runs_whose_process_is_gone(cluster: ClusterSpec, runs: list[RecoveryRun]) -> frozenset[str]:
    """The runs Prefect shows RUNNING whose process no longer holds the cluster's host lock (read only: the
    monitor's tick is what marks them Crashed); none when the state dir cannot be read by this user."""
    try:
        held = is_held(cluster.state_dir, cluster.name)
        return frozenset(dead_runs(runs, read_holder(lock_file(cluster.state_dir, cluster.name)), held))
    except OSError:
        return frozenset()


def show_status(config: str, cluster: str | None, as_json: bool, watch_s: float | None) -> int:
    """Print once (exit 0 when every cluster is healthy, else 1), or refresh every watch_s until Ctrl-C."""
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    while True:
        statuses, note = read_statuses(config, cluster)
        if as_json:
            print(json.dumps({"clusters": [s.to_dict() for s in statuses], "note": note}, indent=2))
        else:
            if watch_s and colour:
                print(CLEAR_SCREEN, end="")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            print(f"flink-runbook status  {stamp}  ({len(statuses)} cluster(s), {config})")
            print("\n".join(status_lines(statuses, colour)))
            if note:
                print(f"note: {note}")
        if not watch_s:
            return 0 if all(s.health == "healthy" for s in statuses) else 1
        sys.stdout.flush()
        time.sleep(watch_s)

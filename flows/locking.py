"""One recovery per cluster at a time: a host-level lock and a Prefect global concurrency limit.

The host lock (flink_runbook.runbook.keeping.host_lock) holds whichever Prefect server a run talks to (a CLI
with its own temporary server, another PREFECT_HOME, a worker); the Prefect limit makes the wait
visible in the UI and spans hosts that share the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from flink_runbook.inventory import ClusterSpec
from flink_runbook.records.slots import LOCK_LEASE_S, ensure_recovery_lock
from flink_runbook.runbook.deciding.recovery import RecoveryTurn
from flink_runbook.runbook.keeping.host_lock import cluster_lock
from flink_runbook.runbook.keeping.host_state import check_state_dir

# Taking a free Prefect slot is one API call; longer means another recovery held it (on another host).
FREE_SLOT_S = 2.0


@contextmanager
def one_recovery_at_a_time(cluster: ClusterSpec, timeout_s: float = 900) -> Iterator[RecoveryTurn]:
    """Hold the cluster's host lock, then its Prefect recovery slot (limit 1); a second recovery waits.

    Always in this order, so two recoveries never hold one each. strict=True: if the limit cannot be
    found, the recovery fails instead of running unguarded. Both name the flow run that holds them, so
    a holder that died can be told from a live one.
    """
    run_id = str(flow_run.id) if flow_run.id else None
    # A lock this process cannot take in the host's one state dir is no lock: refused (StateDirError) first.
    inventory = (flow_run.parameters or {}).get("config") if flow_run.id else None
    check_state_dir(cluster.state_dir, cluster.name, Path(inventory) if inventory else None)
    with cluster_lock(cluster.state_dir, cluster.name, run_id, timeout_s) as host_turn:
        name = ensure_recovery_lock(cluster.name)
        holder = ConcurrencyLeaseHolder(type="flow_run", id=flow_run.id) if flow_run.id else None
        asked = time.monotonic()
        with concurrency(name, occupy=1, strict=True, timeout_seconds=timeout_s, lease_duration=LOCK_LEASE_S,
                         holder=holder):
            yield RecoveryTurn(waited=host_turn.waited or time.monotonic() - asked > FREE_SLOT_S)

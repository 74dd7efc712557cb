"""One recovery per cluster at a time, enforced by a Prefect global concurrency limit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.runtime import flow_run

# The lease is renewed every 45 s while the recovery runs; a recovery whose process died frees the
# lock 60 s later (Prefect's default, 300 s, kept a cluster unrecoverable for five minutes).
LOCK_LEASE_S = 60


def recovery_lock_name(cluster_name: str) -> str:
    return f"flink-recover-{cluster_name}"


@contextmanager
def one_recovery_at_a_time(cluster_name: str, timeout_s: float = 900) -> Iterator[None]:
    """Hold the cluster's recovery slot (limit 1); a second recovery waits for the first.

    strict=True: if the limit cannot be found, the recovery fails instead of
    running unguarded. The lease names the flow run that holds it, so the
    serving process can tell a lease of a dead run from a live one at start.
    """
    name = recovery_lock_name(cluster_name)
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):  # a concurrent run created it first
        client.upsert_global_concurrency_limit_by_name(name, 1)
    holder = ConcurrencyLeaseHolder(type="flow_run", id=flow_run.id) if flow_run.id else None
    with concurrency(name, occupy=1, strict=True, timeout_seconds=timeout_s, lease_duration=LOCK_LEASE_S,
                     holder=holder):  # fmt: skip
        yield

"""One recovery per cluster at a time, enforced by a Prefect global concurrency limit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists


def recovery_lock_name(cluster_name: str) -> str:
    return f"flink-recover-{cluster_name}"


@contextmanager
def one_recovery_at_a_time(cluster_name: str, timeout_s: float = 900) -> Iterator[None]:
    """Hold the cluster's recovery slot (limit 1); a second recovery waits for the first.

    strict=True: if the limit cannot be found, the recovery fails instead of
    running unguarded.
    """
    name = recovery_lock_name(cluster_name)
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):  # a concurrent run created it first
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with concurrency(name, occupy=1, strict=True, timeout_seconds=timeout_s):
        yield

"""Concurrency slots as Prefect keeps them: deployment limits and each cluster's recovery lock."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectAlreadyExists

from flink_runbook.records.paging import every_page

RECOVERY_LOCK_PREFIX = "flink-recover-"
# A recovery renews its lock's lease every 45 s; a recovery whose process died frees the lock 60 s
# later through Prefect's own lease expiry (Prefect's default, 300 s, kept a cluster unrecoverable for five minutes).
LOCK_LEASE_S = 60
# How often Prefect's repossessor revokes expired leases (PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS,
# default 15), with room for a slow server: a lease of a run that ended longer ago than LEASE_GONE_AFTER_S is gone.
LEASE_GONE_AFTER_S = LOCK_LEASE_S + 2 * 15


@dataclass(frozen=True)
class Slots:
    """A concurrency limit's name and the slots Prefect counts as taken."""

    name: str
    active_slots: int


def recovery_lock_name(cluster_name: str) -> str:
    """The Prefect global concurrency limit (limit 1) that lets one recovery of a cluster run at a time."""
    return f"{RECOVERY_LOCK_PREFIX}{cluster_name}"


def ensure_recovery_lock(cluster_name: str) -> str:
    """Create the cluster's recovery lock if it is missing; returns its name."""
    name = recovery_lock_name(cluster_name)
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):  # a concurrent run made it
        client.upsert_global_concurrency_limit_by_name(name, 1)
    return name


def held_recovery_locks() -> list[Slots]:
    """Every recovery lock with a slot taken (all limits read, paged)."""
    with get_client(sync_client=True) as client:
        limits = every_page(lambda limit, offset: client.read_global_concurrency_limits(limit=limit, offset=offset))
    return [Slots(x.name, x.active_slots) for x in limits if x.name.startswith(RECOVERY_LOCK_PREFIX) and x.active_slots]


def deployment_slots(deployment_ids: list[str]) -> dict[str, Slots]:
    """Each deployment's concurrency limit, for those that have one."""
    with get_client(sync_client=True) as client:
        limits = {d: client.read_deployment(UUID(d)).global_concurrency_limit for d in deployment_ids}
    return {d: Slots(limit.name, limit.active_slots) for d, limit in limits.items() if limit is not None}


def free_slots(name: str, slots: int) -> None:
    """Give back `slots` taken slots of a limit that nothing alive holds.

    A decrement (Prefect's public /v2/concurrency_limits/decrement), not a new count: a slot taken by a
    run that starts meanwhile stays taken.
    """
    with get_client(sync_client=True) as client:
        client.request("POST", "/v2/concurrency_limits/decrement", json={"names": [name], "slots": slots})

"""flink_runbook.records against a real Prefect server: nothing cut at a page, a lock given back only when free.

No Flink stack: the records are Prefect's, so a real `prefect server start` is all they need.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.states import Crashed, Running, Scheduled

from flink_runbook.inventory import load_inventory
from flink_runbook.records import flow_runs, slots
from flink_runbook.records.paging import PAGE


@flow(name=flow_runs.RECOVER_FLOW_NAME)
def recover_stand_in(config: str, cluster: str) -> None:
    """Never run: its runs are records only."""


def one_cluster_inventory(tmp_path: Path) -> Path:
    name = f"paged-{uuid.uuid4().hex[:6]}"
    cluster = {"name": name, "rest": {"url": "http://127.0.0.1:9"}, "containers": {"compose_project": name}}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"clusters": [cluster]}))
    return inventory


def test_a_recovery_history_longer_than_a_page_is_read_whole(prefect_server, tmp_path):
    inventory = load_inventory(one_cluster_inventory(tmp_path))
    (cluster,) = inventory.clusters
    with get_client(sync_client=True) as client:
        created = {
            client.create_flow_run(
                recover_stand_in, parameters={"config": str(inventory.path), "cluster": cluster.name}, state=Scheduled()
            ).id
            for _ in range(PAGE + 5)
        }
    history = flow_runs.recovery_histories([cluster], inventory.path)[cluster.name]
    assert {r.id for r in history} == {str(run_id) for run_id in created}


def test_a_recovery_lock_is_seen_held_while_a_recover_run_may_hold_it_and_given_back_by_a_decrement(
    prefect_server, tmp_path
):
    cluster = f"locked-{uuid.uuid4().hex[:6]}"
    name = slots.ensure_recovery_lock(cluster)
    assert name == slots.recovery_lock_name(cluster) == f"flink-recover-{cluster}"
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
        run = client.create_flow_run(recover_stand_in, parameters={"config": "x", "cluster": cluster}, state=Running())
    assert slots.Slots(name, 1) in slots.held_recovery_locks()

    recent = datetime.now(UTC) - timedelta(seconds=slots.LEASE_GONE_AFTER_S)
    assert run.name in [r.name for r in flow_runs.recover_runs_holding_or_ended_since(recent)]
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message="its process is gone"), force=True)  # as reconcile does
    # Ended just now: its lease may still live, so it may still hold the lock.
    assert run.name in [r.name for r in flow_runs.recover_runs_holding_or_ended_since(recent)]
    assert flow_runs.run_has_ended(str(run.id))

    slots.free_slots(name, 2)  # more than are taken: Prefect stops at zero
    assert slots.Slots(name, 1) not in slots.held_recovery_locks()
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
        client.delete_global_concurrency_limit_by_name(name)


def test_every_concurrency_limit_is_read_past_one_page(prefect_server):
    prefix = f"flink-recover-many-{uuid.uuid4().hex[:6]}-"
    names = [f"{prefix}{i:03d}" for i in range(PAGE + 3)]
    with get_client(sync_client=True) as client:
        for name in names:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1, active_slots=1))
    try:
        held = {lock.name for lock in slots.held_recovery_locks()}
        assert set(names) <= held
    finally:
        with get_client(sync_client=True) as client:
            for name in names:
                client.delete_global_concurrency_limit_by_name(name)

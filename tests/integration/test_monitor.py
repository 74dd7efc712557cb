"""monitor on a real stack and a real Prefect server: one event per cluster per tick."""

from __future__ import annotations

import uuid

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from flink_runbook.demo.stack import demo_inventory
from flink_runbook.flows.monitor import monitor_flow
from flink_runbook.polling import wait_until

pytestmark = pytest.mark.usefixtures("prefect_server")


def read_cluster_events(resource_ids: list[str]) -> list:
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(prefix=["flink.cluster."]), resource=EventResourceFilter(id=resource_ids)
            ),
            limit=50,
        )
    return page.events


def test_monitor_emits_healthy_and_unhealthy_events(running_stack, tmp_path):
    healthy = demo_inventory(running_stack.settings)["clusters"][0]
    gone = f"gone-{uuid.uuid4().hex[:6]}"
    broken = {
        "name": gone,
        "rest": {"url": "http://127.0.0.1:9"},
        "containers": {"compose_project": gone},
        "jobs": [{"name": "realtime-cdc-demo"}],
    }
    inventory = tmp_path / "two-clusters.yaml"
    inventory.write_text(yaml.safe_dump({"clusters": [healthy, broken]}))

    results = monitor_flow(config=str(inventory))

    assert [(r["cluster"], r["healthy"], r["decision"], r["events"]) for r in results] == [
        (healthy["name"], True, "none", ["flink.cluster.healthy"]),
        (gone, False, "recover", ["flink.cluster.unhealthy"]),
    ]
    assert {"JOBMANAGER_UNREACHABLE", "CONTAINER_NOT_RUNNING"} <= set(results[1]["findings"])
    ids = [f"flink.cluster.{healthy['name']}", f"flink.cluster.{gone}"]
    events = wait_until(
        lambda: read_cluster_events(ids),
        lambda found: len(found) >= 2,
        timeout=30,
        what="the monitor's events in Prefect",
    )
    by_cluster = {e.resource.id: e for e in events}
    assert by_cluster[ids[0]].event == "flink.cluster.healthy"
    assert by_cluster[ids[0]].payload["jobs"] == [{"name": "realtime-cdc-demo", "state": "RUNNING"}]
    unhealthy = by_cluster[ids[1]]
    assert unhealthy.event == "flink.cluster.unhealthy"
    assert unhealthy.resource["prefect.resource.name"] == gone
    # The label the recover trigger matches, and why.
    assert unhealthy.resource["flink.recovery"] == "recover"
    assert unhealthy.payload["reason"] == "unhealthy; recovery 1 of at most 3 in the window"
    assert by_cluster[ids[0]].resource["flink.recovery"] == "none"
    assert "JOBMANAGER_UNREACHABLE" in {f["code"] for f in unhealthy.payload["findings"]}


def test_late_monitor_backlog_is_skipped_not_run(tmp_path):
    """After downtime the server holds many late ticks; the first tick that runs skips the rest."""
    from datetime import UTC, datetime, timedelta

    from prefect.states import Scheduled

    from flink_runbook.deployments.definitions import build_deployments
    from flink_runbook.tasks.monitor_steps import skip_late_backlog

    inventory = tmp_path / "inventory.yaml"
    cluster = {"name": "c", "rest": {"url": "http://127.0.0.1:9"}, "containers": {"compose_project": "c"}}
    inventory.write_text(yaml.safe_dump({"clusters": [cluster]}))
    monitor = build_deployments(inventory)[0]
    monitor.name = f"monitor-backlog-{uuid.uuid4().hex[:6]}"
    monitor.schedules = []  # only the runs made below
    deployment_id = monitor.apply()
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:

        def scheduled(at):
            return client.create_flow_run_from_deployment(deployment_id, state=Scheduled(scheduled_time=at)).id

        late = [scheduled(now - timedelta(minutes=m)) for m in (30, 20, 10)]
        own, future = scheduled(now - timedelta(seconds=1)), scheduled(now + timedelta(hours=1))

        assert skip_late_backlog(str(deployment_id), str(own)) == 3

        states = {run_id: client.read_flow_run(run_id).state for run_id in [*late, own, future]}
    assert {(states[r].type.value, states[r].name) for r in late} == {("CANCELLED", "Skipped")}
    assert states[own].type.value == "SCHEDULED" and states[future].type.value == "SCHEDULED"

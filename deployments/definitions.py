"""The deployments of flink-runbook, built in code for `serve` (prefect.yaml says the same for workers).

monitor   every 30 s (interval configurable); one at a time, a tick that overlaps is cancelled
recover   on demand and from the trigger on flink.cluster.unhealthy (flink.recovery=recover);
          no deployment limit (Prefect cannot key one on a parameter, and one limit would
          serialise every cluster): one recovery per cluster is the flow's own global
          concurrency limit flink-recover-<cluster> plus the host lock, and a triggered run
          that queued behind another recovery of its cluster with nothing left ends Cancelled.
diagnose  on demand
audit     daily at 06:00 UTC, report only (fix=False); --fix stays a human's decision
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from flink_runbook.flows.audit import audit_flow
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.flows.monitor import monitor_flow
from flink_runbook.flows.recover import recover_flow
from flink_runbook.runbook.reporting.events import RECOVERY_LABEL, RESOURCE_PREFIX, UNHEALTHY_EVENT

RECOVER_TRIGGER_NAME = "flink-runbook: recover an unhealthy cluster"
AUDIT_CRON = "0 6 * * *"  # daily, UTC
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def recover_trigger(config: Path) -> DeploymentEventTrigger:
    """Start recover for the cluster named by an unhealthy event whose guard said "recover"."""
    return DeploymentEventTrigger(
        name=RECOVER_TRIGGER_NAME,
        description="The monitor saw the cluster unhealthy and its guard rails allow a recovery.",
        expect={UNHEALTHY_EVENT},
        match={"prefect.resource.id": f"{RESOURCE_PREFIX}*", RECOVERY_LABEL: "recover"},
        # The config is fixed here, never taken from the event: an event cannot point recover elsewhere.
        # An event without a cluster name makes a run that refuses (no all_clusters), and every triggered
        # run checks the guard rails itself (guarded), so a forged event cannot skip them.
        parameters={"config": str(config), "cluster": "{{ event.resource.name }}", "guarded": True},
    )


def build_deployments(config: Path, monitor_interval_s: float = 30.0) -> list[RunnerDeployment]:
    config = config.resolve()
    return [
        monitor_flow.to_deployment(
            name="monitor",
            interval=timedelta(seconds=monitor_interval_s),
            parameters={"config": str(config)},
            concurrency_limit=ONE_AT_A_TIME,
            tags=["flink-runbook"],
        ),
        recover_flow.to_deployment(
            name="recover",
            parameters={"config": str(config)},
            triggers=[recover_trigger(config)],
            tags=["flink-runbook"],
        ),
        diagnose_flow.to_deployment(name="diagnose", parameters={"config": str(config)}, tags=["flink-runbook"]),
        audit_flow.to_deployment(
            name="audit", cron=AUDIT_CRON, parameters={"config": str(config)}, tags=["flink-runbook"]
        ),
    ]

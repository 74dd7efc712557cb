"""The events the monitor emits, one per cluster per tick (pure).

    flink.cluster.healthy    no finding is error or worse
    flink.cluster.unhealthy  at least one is; recover is triggered by this event

Resource: prefect.resource.id = flink.cluster.<name>, prefect.resource.name = <name>.
Payload: flink_version, taskmanagers, jobs (name, state), findings (code, severity, summary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flink_runbook.diagnosis import Diagnosis

HEALTHY_EVENT = "flink.cluster.healthy"
UNHEALTHY_EVENT = "flink.cluster.unhealthy"
RESOURCE_PREFIX = "flink.cluster."


@dataclass(frozen=True)
class ClusterEvent:
    event: str
    resource: dict[str, str]
    payload: dict[str, Any]


def cluster_resource_id(cluster_name: str) -> str:
    return f"{RESOURCE_PREFIX}{cluster_name}"


def cluster_event(diagnosis: Diagnosis) -> ClusterEvent:
    seen = diagnosis.observation
    return ClusterEvent(
        event=HEALTHY_EVENT if diagnosis.healthy else UNHEALTHY_EVENT,
        resource={
            "prefect.resource.id": cluster_resource_id(diagnosis.cluster),
            "prefect.resource.name": diagnosis.cluster,
            "flink.rest-url": seen.rest_url,
        },
        payload={
            "flink_version": seen.jobmanager.flink_version,
            "taskmanagers": len(seen.taskmanagers),
            "jobs": [{"name": j.name, "state": j.info.state if j.info else "MISSING"} for j in seen.jobs],
            "findings": [{"code": f.code, "severity": f.severity, "summary": f.summary} for f in diagnosis.findings],
        },
    )

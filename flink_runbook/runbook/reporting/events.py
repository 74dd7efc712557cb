"""The events the monitor emits, one per cluster per tick, plus escalations (pure).

    flink.cluster.healthy     no finding is error or worse
    flink.cluster.unhealthy   at least one is; the recover deployment's trigger matches it
                              when the resource label flink.recovery is "recover"
    flink.cluster.escalated   too many recoveries within the window; the notification
                              automation matches it
    flink.cluster.resumed     the monitor acts on the cluster again (healthy long enough, or reset)

Resource: prefect.resource.id = flink.cluster.<name>, prefect.resource.name = <name>,
flink.rest-url, flink.recovery = the guard's decision (none, recover, wait, escalate, hold, resume),
or "started" when the serving process's fault watcher saw the fault and started the recovery itself
(the trigger matches only "recover", so one fault starts one recovery).
Payload: flink_version, taskmanagers, jobs (name, state), findings (code, severity, summary),
decision, reason, recent_recoveries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flink_runbook.flink.answers import JobState
from flink_runbook.redaction import redact_urls, redacted
from flink_runbook.runbook.deciding.guard import GuardAction, GuardDecision
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.fault_watch import Fault

HEALTHY_EVENT = "flink.cluster.healthy"
UNHEALTHY_EVENT = "flink.cluster.unhealthy"
ESCALATED_EVENT = "flink.cluster.escalated"
RESUMED_EVENT = "flink.cluster.resumed"
RESOURCE_PREFIX = "flink.cluster."
# The label the recover trigger matches: only ticks whose guard said "recover" start one.
RECOVERY_LABEL = "flink.recovery"
STARTED_BY_WATCHER = "started"


@dataclass(frozen=True)
class ClusterEvent:
    event: str
    resource: dict[str, str]
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        # Findings and reasons quote REST errors, and those their URLs: no credential leaves in an event.
        object.__setattr__(self, "resource", redacted(self.resource))
        object.__setattr__(self, "payload", redacted(self.payload))


def cluster_resource_id(cluster_name: str) -> str:
    return f"{RESOURCE_PREFIX}{cluster_name}"


def cluster_resource(cluster_name: str, rest_url: str, decision: str) -> dict[str, str]:
    return {
        "prefect.resource.id": cluster_resource_id(cluster_name),
        "prefect.resource.name": cluster_name,
        "flink.rest-url": redact_urls(rest_url),
        RECOVERY_LABEL: str(decision),
    }


def cluster_event(diagnosis: Diagnosis, decision: GuardDecision) -> ClusterEvent:
    seen = diagnosis.observation
    return ClusterEvent(
        event=HEALTHY_EVENT if diagnosis.healthy else UNHEALTHY_EVENT,
        resource=cluster_resource(diagnosis.cluster, seen.rest_url, decision.action),
        payload={
            "flink_version": seen.jobmanager.flink_version,
            "taskmanagers": len(seen.taskmanagers),
            "jobs": [{"name": j.name, "state": j.info.state if j.info else JobState.MISSING} for j in seen.jobs],
            "findings": [{"code": f.code, "severity": f.severity, "summary": f.summary} for f in diagnosis.findings],
            "decision": str(decision.action),
            "reason": decision.reason,
            "recent_recoveries": decision.recent_recoveries,
        },
    )


def escalation_events(diagnosis: Diagnosis, decision: GuardDecision) -> list[ClusterEvent]:
    """The escalated or resumed event this tick's decision calls for, if any."""
    names = {GuardAction.ESCALATE: ESCALATED_EVENT, GuardAction.RESUME: RESUMED_EVENT}
    if decision.action not in names:
        return []
    seen = diagnosis.observation
    serious = [f"{f.code}: {f.summary}" for f in diagnosis.serious]
    return [
        ClusterEvent(
            event=names[decision.action],
            resource=cluster_resource(diagnosis.cluster, seen.rest_url, decision.action),
            payload={"reason": decision.reason, "findings": serious, "recent_recoveries": decision.recent_recoveries},
        )
    ]


def fault_event(fault: Fault, rest_url: str, decision: GuardDecision) -> ClusterEvent:
    """The unhealthy event of a fault the watcher saw (Docker's event stream or its glance): the
    monitor's event with the guard's decision, "started" when the watcher recovers it at once."""
    label = STARTED_BY_WATCHER if decision.action == GuardAction.RECOVER else decision.action
    return ClusterEvent(
        event=UNHEALTHY_EVENT,
        resource=cluster_resource(fault.cluster, rest_url, label),
        payload={
            "seen_by": f"watch:{fault.source}",
            "fault_at": fault.at,
            "findings": [{"code": f.code, "severity": f.severity, "summary": f.summary} for f in fault.findings],
            "decision": str(decision.action),
            "reason": decision.reason,
            "recent_recoveries": decision.recent_recoveries,
        },
    )

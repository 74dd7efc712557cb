"""A cluster's diagnosis: what was seen, the findings, and the machine-readable result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flink_runbook.flink.answers import JobState
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.observing.findings import Finding, Severity, classify, is_healthy
from flink_runbook.runbook.observing.observe import ClusterObservation


@dataclass(frozen=True)
class Diagnosis:
    cluster: str
    healthy: bool
    observation: ClusterObservation
    findings: tuple[Finding, ...]

    @property
    def serious(self) -> tuple[Finding, ...]:
        """The findings that make the cluster unhealthy (error, critical)."""
        return tuple(f for f in self.findings if Severity(f.severity).unhealthy)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the CLI prints for one cluster (`flink-runbook diagnose --json`)."""
        seen = self.observation
        return {
            "cluster": self.cluster,
            "healthy": self.healthy,
            "rest_url": seen.rest_url,
            "observed_at_ms": seen.observed_at_ms,
            "flink_version": seen.jobmanager.flink_version,
            "application_mode": seen.jobmanager.application_mode,
            "containers": [
                {
                    "name": c.name,
                    "service": c.service,
                    "role": c.role,
                    "state": c.state,
                    "exit_code": c.exit_code,
                    "oom_killed": c.oom_killed or bool(seen.containers.oom_kills.get(c.name)),
                    "restart_count": c.restart_count,
                    "health": c.health,
                }
                for c in seen.containers.containers
            ],
            "taskmanagers": [
                {
                    "id": tm.id,
                    "heartbeat_age_ms": tm.heartbeat_age_ms,
                    "slots_total": tm.slots_total,
                    "slots_free": tm.slots_free,
                }
                for tm in seen.taskmanagers
            ],
            "jobs": [
                {
                    "name": job.name,
                    "id": job.info.id if job.info else None,
                    "state": job.info.state if job.info else JobState.MISSING,
                    "exceptions": job.info.failures if job.info else 0,
                    "root_cause": job.info.root_cause if job.info else None,
                    "latest_checkpoint": (
                        job.info.checkpoints.latest_completed.external_path
                        if job.info and job.info.checkpoints.latest_completed
                        else None
                    ),
                }
                for job in seen.jobs
            ],
            "findings": [
                {k: v for k, v in asdict(f).items() if k in ("code", "severity", "summary", "action", "evidence")}
                for f in self.findings
            ],
        }


def diagnose(cluster: ClusterSpec, observation: ClusterObservation) -> Diagnosis:
    findings = classify(cluster, observation)
    return Diagnosis(
        cluster=cluster.name, healthy=is_healthy(findings), observation=observation, findings=tuple(findings)
    )

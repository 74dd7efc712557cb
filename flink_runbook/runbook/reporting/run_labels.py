"""What a flow run is called and tagged, so a list of runs in the Prefect UI says what each did, on which
cluster and who started it (pure). Prefect's own names (`uptight-kagu`) say none of it.

A name is one word (logs and scripts take a run name to end at a space): `recover-<cluster>-<UTC time>`,
`monitor-<n>-clusters-<UTC time>`. Tags: `flink-runbook`, `cluster:<name>` for each cluster the run is about
(up to CLUSTER_TAGS_AT_MOST: a tick of a 500-cluster fleet is not tagged 500 times), and the door it came
through, `trigger:<door>`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

TOOL_TAG = "flink-runbook"
CLUSTER_TAGS_AT_MOST = 10


class Door(StrEnum):
    """Who started a run."""

    MONITOR = "monitor"  # the recover deployment's trigger, on the monitor's unhealthy event
    WATCHER = "watcher"  # the fault watcher in the serving process, on a Docker event or a glance
    SCHEDULE = "schedule"  # a deployment's schedule (the monitor's ticks, the daily audit)
    MANUAL = "manual"  # a person through the UI or the API (a deployment's Run)
    CLI = "cli"  # the command line, in its own process (and tests, benchmarks)


def door_of(told: str | None, deployment_id: str | None, created_by: str | None, auto_scheduled: bool) -> Door:
    """`told`: the door a caller in this process said (the watcher); `created_by`: Prefect's creator type of
    the run (AUTOMATION for a trigger's run)."""
    if told:
        return Door(told)
    if deployment_id is None:
        return Door.CLI
    if auto_scheduled:
        return Door.SCHEDULE
    return Door.MONITOR if created_by == "AUTOMATION" else Door.MANUAL


def run_name(flow: str, subject: str, at: float | None = None) -> str:
    """`<flow>-<subject>-<UTC time to the second>`; no subject: `<flow>-<time>`."""
    moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    words = [flow, subject, moment.strftime("%Y-%m-%dT%H:%M:%SZ")]
    return re.sub(r"\s+", "_", "-".join(w for w in words if w))


def clusters_subject(clusters: list[str]) -> str:
    """One cluster by its name, several counted, none (not known) left out."""
    if len(clusters) <= 1:
        return "".join(clusters)
    return f"{len(clusters)}-clusters"


def run_tags(clusters: list[str], door: Door, *more: str) -> list[str]:
    tags = [TOOL_TAG]
    if len(clusters) <= CLUSTER_TAGS_AT_MOST:
        tags += [f"cluster:{name}" for name in clusters]
    return [*tags, f"trigger:{door}", *more]

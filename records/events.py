"""The events flink-runbook posts to Prefect (automations and the UI's event feed read them)."""

from __future__ import annotations

from collections.abc import Iterable

from prefect.events import emit_event

from flink_runbook.runbook.reporting.events import ClusterEvent


def post(events: Iterable[ClusterEvent]) -> list[str]:
    """Post these events; returns their names."""
    posted = []
    for event in events:
        emit_event(event=event.event, resource=event.resource, payload=event.payload)
        posted.append(event.event)
    return posted

"""Docker's event stream, read for the faults it reports the moment they happen (docker SDK, no Prefect).

`docker events` says when a container is paused, dies, is OOM-killed, turns
unhealthy or is cut off its network, within milliseconds; the scheduled
monitor would see the same only at its next tick. This module turns the raw
event dicts into `DockerEvent`s; which of them are faults is
flink_runbook.runbook.observing.fault_watch's to decide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker

# What the watcher asks the engine for: container life and network attachment.
CONTAINER_ACTIONS = ("pause", "unpause", "die", "oom", "kill", "stop", "start", "restart", "health_status")
NETWORK_ACTIONS = ("disconnect", "connect")


@dataclass(frozen=True)
class DockerEvent:
    kind: str  # container | network
    action: str  # pause, die, oom, health_status: unhealthy, disconnect, ...
    container_id: str
    at: float  # seconds since the epoch, as the engine stamped it
    name: str = ""  # the container's name (container events only)
    exit_code: int | None = None
    network: str = ""  # the network's name (network events only)
    labels: dict[str, str] = field(default_factory=dict)


def docker_event(raw: dict) -> DockerEvent | None:
    """One decoded event of the engine's stream; None for what is not a container or network event."""
    kind = raw.get("Type")
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    at = raw.get("timeNano", 0) / 1e9 or float(raw.get("time") or time.time())
    action = str(raw.get("Action") or raw.get("status") or "")
    if kind == "container":
        exit_code = attributes.get("exitCode")
        return DockerEvent(
            kind="container",
            action=action,
            container_id=str(actor.get("ID") or raw.get("id") or ""),
            at=at,
            name=str(attributes.get("name", "")),
            exit_code=int(exit_code) if str(exit_code or "").lstrip("-").isdigit() else None,
            labels={k: str(v) for k, v in attributes.items() if k not in ("name", "image", "exitCode")},
        )
    if kind == "network" and attributes.get("container"):
        return DockerEvent(
            kind="network",
            action=action,
            container_id=str(attributes["container"]),
            at=at,
            network=str(attributes.get("name", "")),
        )
    return None


def docker_events(client: docker.DockerClient, since: float) -> Iterator[DockerEvent]:
    """The engine's container and network events from `since` on, as they happen (blocks between them).

    Ends (raises) when the connection to the engine breaks; the caller reconnects from the last event seen.
    """
    filters = {"type": ["container", "network"], "event": [*CONTAINER_ACTIONS, *NETWORK_ACTIONS]}
    for raw in client.events(since=int(since), decode=True, filters=filters):
        event = docker_event(raw)
        if event is not None:
            yield event

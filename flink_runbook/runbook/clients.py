"""The clients of one cluster, built once per look: what observing reads with and acting acts with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import docker

from flink_runbook.containers.engines import engine_client, engine_id
from flink_runbook.containers.states import DockerUnavailable
from flink_runbook.flink.rest import FlinkRestClient, rest_client
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.observing.engine_identity import EngineMismatch, engine_mismatch


@dataclass(frozen=True)
class ClusterClients:
    """The one REST client and the one Docker client of a cluster (no Docker client: docker_error says why)."""

    rest: FlinkRestClient
    docker: docker.DockerClient | None
    docker_error: str | None = None
    # The engine there is not the cluster's: no client, so nothing can act on it (docker_error says why).
    engine_mismatch: EngineMismatch | None = None


def connect(
    cluster: ClusterSpec, secret: Callable[[str], str] | None = None, rest: FlinkRestClient | None = None
) -> ClusterClients:
    """Build a cluster's clients, the one place this is done. `secret(name)` resolves a Secret block; `rest`:
    a REST client kept by the caller (one that looks every few seconds keeps its connections). The Docker
    client is the engine's, shared with every cluster there (flink_runbook.containers.engines)."""
    rest = rest or rest_client(cluster.rest, secret=secret)
    try:
        client = engine_client(cluster.docker)
        mismatch = engine_mismatch(cluster, engine_id(cluster.docker))
    except DockerUnavailable as exc:
        return ClusterClients(rest, None, str(exc))
    if mismatch is not None:  # another host's engine: no client to act with
        return ClusterClients(rest, None, mismatch.describe(), mismatch)
    return ClusterClients(rest, client)

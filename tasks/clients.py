"""Clients for a cluster, built inside each task (tasks return data, never clients)."""

from __future__ import annotations

import docker

from flink_runbook.containers.states import docker_client
from flink_runbook.flink.rest import FlinkRestClient
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.observe import rest_client


def secret_value(block_name: str) -> str:
    """A Prefect Secret block's value (the core takes this as a plain callable)."""
    from prefect.blocks.system import Secret

    return Secret.load(block_name).get()


def cluster_rest(cluster: ClusterSpec) -> FlinkRestClient:
    return rest_client(cluster.rest, secret=secret_value)


def cluster_docker(cluster: ClusterSpec) -> docker.DockerClient:
    return docker_client(cluster.docker_host)

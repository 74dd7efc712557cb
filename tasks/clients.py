"""A cluster's clients, built inside each task through the core's one constructor (tasks return data, never clients)."""

from __future__ import annotations

from flink_runbook.flink.rest import FlinkRestClient, rest_client
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.clients import ClusterClients, connect


def secret_value(block_name: str) -> str:
    """A Prefect Secret block's value (the core takes this as a plain callable)."""
    from prefect.blocks.system import Secret

    return Secret.load(block_name).get()


def cluster_clients(cluster: ClusterSpec) -> ClusterClients:
    return connect(cluster, secret=secret_value)


def cluster_rest(cluster: ClusterSpec) -> FlinkRestClient:
    return rest_client(cluster.rest, secret=secret_value)

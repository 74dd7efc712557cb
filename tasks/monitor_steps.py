"""The monitor's steps: a cheap health check per cluster and the event that reports it."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from flink_runbook.cluster_events import cluster_event
from flink_runbook.containers import DockerUnavailable
from flink_runbook.diagnosis import Diagnosis, diagnose
from flink_runbook.inventory import ClusterSpec
from flink_runbook.observation import observe_cluster_quickly
from tasks.clients import cluster_docker, cluster_rest


@task(name="check cluster health", task_run_name="check cluster {cluster.name}", cache_policy=NO_CACHE)
def check_cluster_health(cluster: ClusterSpec) -> Diagnosis:
    try:
        client, error = cluster_docker(cluster), None
    except DockerUnavailable as exc:
        client, error = None, str(exc)
    return diagnose(cluster, observe_cluster_quickly(cluster, cluster_rest(cluster), client, error))


@task(name="emit cluster event", task_run_name="emit event for {diagnosis.cluster}", cache_policy=NO_CACHE)
def emit_cluster_event(diagnosis: Diagnosis) -> str:
    event = cluster_event(diagnosis)
    emit_event(event=event.event, resource=event.resource, payload=event.payload)
    return event.event

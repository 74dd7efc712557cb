"""One Docker client per engine, made once and reused while the process lives (docker SDK, no Prefect).

The monitor's ticks, the fault watcher and the recoveries of every cluster on
an engine share its client (one ping, one connection pool), instead of a new
client and a ping per cluster per tick. A client that failed is forgotten, so
the next use reconnects; an engine that is down is a finding of its own
clusters only.
"""

from __future__ import annotations

import threading

import docker
import docker.errors
import docker.tls

from flink_runbook.containers.states import DockerUnavailable
from flink_runbook.inventory import DockerEngine

# Every call to an engine ends within this (a recovery's stop adds its own stop timeout, as the SDK does).
ENGINE_TIMEOUT_S = 30
# Concurrent calls per engine: the monitor checks many clusters of one engine at once.
ENGINE_POOL_SIZE = 32
# The API version a TLS client starts with, only to ask the engine for its own.
MIN_API_VERSION = "1.24"

_clients: dict[DockerEngine, docker.DockerClient] = {}
_lock = threading.Lock()


def _new_client(engine: DockerEngine) -> docker.DockerClient:
    options: dict = {"timeout": ENGINE_TIMEOUT_S, "max_pool_size": ENGINE_POOL_SIZE}
    if engine.host is None:
        return docker.from_env(**options)  # DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, or the socket
    if engine.tls:
        cert = (str(engine.client_cert), str(engine.client_key)) if engine.client_cert else None
        ca = str(engine.ca_cert) if engine.ca_cert else None
        options["tls"] = docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=engine.verify_tls)
    if engine.host.startswith("ssh://"):
        options["use_ssh_client"] = True  # the ssh binary, its config and agent (no paramiko needed)
    if not engine.tls:
        return docker.DockerClient(base_url=engine.host, **options)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA: the engine's own CA from the
    # inventory must win, so the environment is not read, from the first call (the API version) on.
    client = docker.DockerClient(base_url=engine.host, version=MIN_API_VERSION, **options)
    client.api.trust_env = False
    client.api._version = client.version(api_version=False)["ApiVersion"]
    return client


def engine_client(engine: DockerEngine) -> docker.DockerClient:
    """The engine's client, made (and pinged) on first use; raises DockerUnavailable saying which engine."""
    with _lock:
        client = _clients.get(engine)
    if client is not None:
        return client
    try:
        client = _new_client(engine)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise DockerUnavailable(f"cannot reach the Docker engine at {engine.where()}: {exc}") from exc
    with _lock:
        kept = _clients.setdefault(engine, client)
    if kept is not client:
        client.close()  # another thread made one at the same time
    return kept


def forget_engine(engine: DockerEngine) -> None:
    """Drop the engine's client after a failed call: the next use connects (and pings) again."""
    with _lock:
        client = _clients.pop(engine, None)
    if client is not None:
        client.close()

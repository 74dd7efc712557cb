"""One Docker client per engine, made once and reused while the process lives (docker SDK, no Prefect).

The monitor's ticks, the fault watcher and the recoveries of every cluster on
an engine share its client (one ping, one connection pool), instead of a new
client and a ping per cluster per tick. A client that failed is forgotten, so
the next use reconnects; an engine that is down is a finding of its own
clusters only.
"""

from __future__ import annotations

import threading
import time

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

# How long an engine's ID (`docker info`) is taken as known: an engine replaced behind the same address (a DNS
# name, a forwarded port) is noticed within it, and `docker info`, slower than a ping, is asked once a minute.
ENGINE_ID_TTL_S = 60.0

_clients: dict[DockerEngine, docker.DockerClient] = {}
_ids: dict[DockerEngine, tuple[str, float]] = {}  # engine -> (its ID, when asked: monotonic s)
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


def engine_id(engine: DockerEngine) -> str:
    """The ID the engine reports (`docker info`: ID; '' if it reports none), asked at most once a minute;
    raises DockerUnavailable saying which engine. It tells one engine from another where the same address
    (the local socket, a docker.host) reaches another host's engine on another worker."""
    client = engine_client(engine)
    with _lock:
        known = _ids.get(engine)
    if known is not None and time.monotonic() - known[1] < ENGINE_ID_TTL_S:
        return known[0]
    try:
        found = str(client.info().get("ID") or "")
    except (docker.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
        forget_engine(engine)
        raise DockerUnavailable(f"cannot ask the Docker engine at {engine.where()} for its ID: {exc}") from exc
    with _lock:
        _ids[engine] = (found, time.monotonic())
    return found


def forget_engine(engine: DockerEngine) -> None:
    """Drop the engine's client after a failed call: the next use connects (and pings) again."""
    with _lock:
        client = _clients.pop(engine, None)
        _ids.pop(engine, None)
    if client is not None:
        client.close()

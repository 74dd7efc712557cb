"""Restarting a cluster's containers (docker SDK, no Prefect): the runbook's `docker-compose restart`."""

from __future__ import annotations

import docker
import docker.errors

from flink_runbook.containers.states import SERVICE_LABEL, container_state


class ContainerRestartFailed(RuntimeError):
    """docker restart, start or unpause failed; says which container and what the engine answered."""


def restart_containers(client: docker.DockerClient, names: tuple[str, ...], stop_timeout_s: int) -> frozenset[str]:
    """docker restart each container (works on paused, exited and running ones); returns what names
    and addresses the restarted containers have now (to tell their old TaskManager registrations)."""
    identities: set[str] = set()
    for name in names:
        try:
            container = client.containers.get(name)
            container.restart(timeout=stop_timeout_s)
            container.reload()
        except docker.errors.DockerException as exc:
            raise ContainerRestartFailed(f"docker restart {name} failed: {exc}") from exc
        identities |= container_state("taskmanager", "", container).identities
    return frozenset(identities)


def start_or_unpause(client: docker.DockerClient, names: tuple[str, ...]) -> list[str]:
    """docker unpause a paused container, docker start a stopped one; a running one is left alone.

    Never a restart: this is how a JobManager is brought back without killing its jobs.
    Returns what was done, one line per container.
    """
    done = []
    for name in names:
        try:
            container = client.containers.get(name)
            if container.status == "paused":
                container.unpause()
                done.append(f"docker unpause {name}")
            elif container.status != "running":
                container.start()
                done.append(f"docker start {name}")
            else:
                done.append(f"{name} already running")
        except docker.errors.DockerException as exc:
            raise ContainerRestartFailed(f"docker start/unpause {name} failed: {exc}") from exc
    return done


def reconnect_networks(client: docker.DockerClient, names: tuple[str, ...]) -> list[str]:
    """docker network connect each container to the network it was created on and was cut off
    (under its Compose service name, as Compose attached it); returns what was done, one line each."""
    done = []
    for name in names:
        try:
            container = client.containers.get(name)
            state = container_state("", "", container)
            network = state.detached_from
            if network is None:
                done.append(f"{name} already attached to {state.network_mode or 'its network'}")
                continue
            service = container.labels.get(SERVICE_LABEL)
            client.networks.get(network).connect(container, aliases=[service] if service else None)
            done.append(f"docker network connect {network} {name}")
        except docker.errors.DockerException as exc:
            raise ContainerRestartFailed(f"docker network connect of {name} failed: {exc}") from exc
    return done

"""Restarting a cluster's containers (docker SDK, no Prefect): the runbook's `docker-compose restart`."""

from __future__ import annotations

import docker
import docker.errors


class ContainerRestartFailed(RuntimeError):
    """docker restart failed; says which container and what the engine answered."""


def restart_containers(client: docker.DockerClient, names: tuple[str, ...], stop_timeout_s: int) -> set[str]:
    """docker restart each container (works on paused, exited and running ones); returns their IPs."""
    addresses: set[str] = set()
    for name in names:
        try:
            container = client.containers.get(name)
            container.restart(timeout=stop_timeout_s)
            container.reload()
        except docker.errors.DockerException as exc:
            raise ContainerRestartFailed(f"docker restart {name} failed: {exc}") from exc
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        addresses |= {n["IPAddress"] for n in networks.values() if n.get("IPAddress")}
    return addresses

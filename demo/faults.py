"""Fault injection on real containers: the ways a TaskManager or JobManager dies.

Each takes a docker SDK container. They are for the demo and the tests; the
runbook flows never call them.
"""

from __future__ import annotations

import time

import docker.errors
from docker.models.containers import Container


def freeze(container: Container) -> None:
    """docker pause: the JVM stops answering heartbeats, a genuine heartbeat timeout. The kernel's cgroup
    freezer sometimes gives up on a busy machine ("OCI runtime pause failed: unable to freeze"): tried again."""
    for attempt in range(3):
        try:
            container.pause()
            return
        except docker.errors.APIError as exc:
            if "unable to freeze" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.5)


def thaw(container: Container) -> None:
    container.reload()
    if container.status == "paused":
        container.unpause()


def kill(container: Container) -> None:
    """SIGKILL the container's main process, like a crash."""
    container.kill()


def stop(container: Container, timeout: int = 5) -> None:
    """docker stop: the restart policy leaves a stopped container stopped."""
    container.stop(timeout=timeout)


def exhaust_memory(container: Container) -> None:
    """Make the container run out of memory so the kernel OOM-kills the Flink JVM.

    A helper process eats memory up to the container's limit. The JVM (PID 1 in
    the container) is first made the OOM killer's preferred victim by raising
    its oom_score_adj, which needs no extra capability (lowering would, and a
    privileged exec is refused on some engines). Docker then records OOMKilled.
    """
    container.exec_run(
        ["bash", "-c", "echo 1000 > /proc/1/oom_score_adj && exec tail /dev/zero"],
        detach=True,
    )

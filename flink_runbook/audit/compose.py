"""The runbook's container advice as checks on a compose file, against the Flink settings it must carry. Pure."""

from __future__ import annotations

from urllib.parse import urlparse

from flink_runbook.audit.compose_file import ComposeFile, ComposeService
from flink_runbook.audit.config import AuditFinding
from flink_runbook.flink.values import memory_bytes

RESTARTING = {"always", "unless-stopped", "on-failure"}


def audit_compose(
    compose: ComposeFile,
    services: dict[str, str],
    process_sizes: dict[str, str | None],
    checkpoint_dir: str | None,
    task_slots: int | None,
) -> list[AuditFinding]:
    """`services`: role (jobmanager, taskmanager) -> service name; `process_sizes`: role -> *.memory.process.size."""
    findings: list[AuditFinding] = []
    if compose.unresolved:
        findings.append(
            AuditFinding(
                "COMPOSE_VARIABLES_UNSET",
                "warning",
                ", ".join(sorted(compose.unresolved)),
                "set them in .env beside the compose file (or the inventory's audit.compose_variables)",
                "settings that use them could not be checked",
                str(compose.path),
            )
        )
    present = {}
    for role, name in services.items():
        service = compose.services.get(name)
        if service is None:
            findings.append(
                AuditFinding(
                    "COMPOSE_SERVICE_MISSING",
                    "error",
                    f"services: {', '.join(compose.services) or 'none'}",
                    f"a service named {name} (the inventory's containers.{role}_service)",
                    f"the {role} cannot be checked",
                    str(compose.path),
                )
            )
            continue
        present[role] = service
        findings += _restart_policy(compose, service)
        findings += _memory_limit(compose, service, role, process_sizes.get(role))
        if role == "taskmanager":
            findings += _cpu_limit(compose, service, task_slots)
    if len(present) == 2:
        findings += _same_image(compose, present["jobmanager"], present["taskmanager"])
        findings += _checkpoint_storage(compose, present["jobmanager"], present["taskmanager"], checkpoint_dir)
    return findings


def _setting(service: ComposeService, *paths: str) -> tuple[str | None, str]:
    """The first of `paths` (dotted) the service sets, and which one."""
    for path in paths:
        value: object = service.settings
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return str(value), path
    return None, paths[0]


def _restart_policy(compose: ComposeFile, service: ComposeService) -> list[AuditFinding]:
    policy, key = _setting(service, "restart", "deploy.restart_policy.condition")
    if policy and (policy in RESTARTING or policy.startswith("on-failure") or policy == "any"):
        return []
    return [
        AuditFinding(
            "RESTART_POLICY_MISSING",
            "warning",
            f"restart: {policy or 'not set (no)'}",
            "restart: unless-stopped",
            "a crashed or OOM-killed container stays down until someone starts it; the runbook's step 5",
            compose.where(service.name, key if policy else "restart"),
        )
    ]


def _memory_limit(compose: ComposeFile, service: ComposeService, role: str, process_size: str | None):
    limit, key = _setting(service, "deploy.resources.limits.memory", "mem_limit")
    if limit is None:
        return [
            AuditFinding(
                "MEMORY_LIMIT_MISSING",
                "info",
                "no memory limit",
                f"deploy.resources.limits.memory at least {role}.memory.process.size "
                f"({process_size or 'see the Flink config'})",
                "without a limit the container can take the host's memory and starve its neighbours",
                compose.where(service.name, "deploy.resources.limits.memory"),
            )
        ]
    if process_size is None:
        return []
    try:
        limit_bytes, process_bytes = memory_bytes(limit), memory_bytes(process_size)
    except ValueError as exc:
        return [
            AuditFinding(
                "MEMORY_SIZE_UNREADABLE",
                "warning",
                str(exc),
                "a size like 4G or 1728m",
                "the memory limit cannot be compared with Flink's process size",
                compose.where(service.name, key),
            )
        ]
    if limit_bytes >= process_bytes:
        return []
    return [
        AuditFinding(
            "MEMORY_LIMIT_BELOW_PROCESS_SIZE",
            "error",
            f"{key}: {limit} < {role}.memory.process.size: {process_size}",
            f"{key}: {process_size} or more (or lower {role}.memory.process.size)",
            f"the JVM grows to its configured process size; the kernel OOM-kills the {role} before it gets there",
            compose.where(service.name, key),
        )
    ]


def _cpu_limit(compose: ComposeFile, service: ComposeService, task_slots: int | None) -> list[AuditFinding]:
    cpus, key = _setting(service, "deploy.resources.limits.cpus", "cpus")
    if cpus is None:
        return []
    try:
        limit = float(cpus)
    except ValueError:
        return []
    wanted = max(1.0, float(task_slots or 1))
    if limit >= wanted:
        return []
    return [
        AuditFinding(
            "CPU_LIMIT_LOW",
            "warning",
            f"{key}: {cpus} for {task_slots or 1} task slot(s)",
            f"{key}: '{wanted:g}' or more (the runbook raised it to 4.0)",
            "a throttled TaskManager answers heartbeats late under load and GC pauses stretch; "
            "that is how the runbook's TaskManager was declared lost",
            compose.where(service.name, key),
        )
    ]


def _same_image(compose: ComposeFile, jobmanager: ComposeService, taskmanager: ComposeService):
    jm, tm = jobmanager.settings.get("image"), taskmanager.settings.get("image")
    if jm == tm:
        return []
    return [
        AuditFinding(
            "IMAGE_VERSIONS_DIFFER",
            "error",
            f"jobmanager {jm}, taskmanager {tm}",
            "the same image (and so the same Flink version) for both",
            "a TaskManager of another Flink version may not register, or fail tasks in ways that look random",
            compose.where(taskmanager.name, "image"),
        )
    ]


def _checkpoint_storage(
    compose: ComposeFile, jobmanager: ComposeService, taskmanager: ComposeService, checkpoint_dir: str | None
) -> list[AuditFinding]:
    if not checkpoint_dir:
        return []
    url = urlparse(checkpoint_dir)
    if url.scheme not in ("", "file"):
        return []  # s3://, hdfs://, ...: shared by nature
    path = url.path
    mounts = {
        role: _mount_for(service, path) for role, service in (("jobmanager", jobmanager), ("taskmanager", taskmanager))
    }
    missing = [role for role, mount in mounts.items() if mount is None]
    if missing:
        return [
            AuditFinding(
                "CHECKPOINT_DIR_NOT_PERSISTENT",
                "error",
                f"{checkpoint_dir}: no volume holds {path} in the {' and '.join(missing)}",
                f"mount one volume (or host directory) at {path} or above in both services",
                "checkpoints written inside a container are lost when it is recreated, and the JobManager "
                "cannot read what a TaskManager wrote in its own filesystem: no restore",
                compose.where((taskmanager if "taskmanager" in missing else jobmanager).name, "volumes"),
            )
        ]
    if mounts["jobmanager"] != mounts["taskmanager"]:
        return [
            AuditFinding(
                "CHECKPOINT_DIR_NOT_SHARED",
                "error",
                f"{path}: jobmanager mounts {mounts['jobmanager']}, taskmanager {mounts['taskmanager']}",
                "the same volume or host directory in both services",
                "the JobManager must read the checkpoint the TaskManagers wrote to restore a job",
                compose.where(taskmanager.name, "volumes"),
            )
        ]
    return []


def _mount_for(service: ComposeService, path: str) -> str | None:
    """The source (volume name or host path) of the mount that holds `path`, the deepest one."""
    best: tuple[int, str] | None = None
    for volume in service.settings.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
        else:
            parts = str(volume).split(":")
            source, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])
        target = target.rstrip("/") or "/"
        holds = path == target or path.startswith(target + "/") or target == "/"
        if source and holds and (best is None or len(target) > best[0]):
            best = (len(target), source)
    return best[1] if best else None

"""A starting inventory for a cluster nobody has described yet (`flink-runbook init`), pure.

What was found (flink_runbook.inventory.found) becomes the file's YAML text. Every line a person has to
decide carries `# DECIDE:`, every inference `# GUESSED:`, everything not found `# NOT FOUND:`, so that
nothing guessed passes for a fact.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import yaml

from flink_runbook.inventory.found import HA_KEYS, SETTINGS_SAID, FoundCluster, FoundJob, local_path
from flink_runbook.inventory.specs import HOST_STATE_DIR, STATE_DIR_ENV, ClusterSpec, JobSpec


@dataclass(frozen=True)
class StartingInventory:
    text: str  # the YAML file
    open_points: tuple[str, ...]  # what was not found out, or is guessed: said to the person who ran init


def _value(value: object) -> str:
    """One YAML scalar or flow list, quoted where YAML needs it."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _line(indent: int, key: str, value: object, comment: str | None = None) -> str:
    text = f"{' ' * indent}{key}: {_value(value)}"
    return f"{text}  # {comment}" if comment else text


def _settings_said(found: FoundCluster) -> str:
    said = [f"{key} {found.settings[key]}" for key in SETTINGS_SAID if found.settings.get(key)]
    if not any(found.settings.get(key) for key in HA_KEYS):
        said.append("no high availability")
    return ", ".join(said)


def _job_lines(job: FoundJob, open_points: list[str]) -> list[str]:
    out = [f"      - name: {_value(job.name)}  # {job.state} now as job {job.job_id}"]
    if job.jar_name:
        if job.jar_path:
            out.append(_line(8, "jar", job.jar_path, f"GUESSED: {job.jar_guess}; found beside this file"))
        else:
            out.append(_line(8, "jar", job.jar_name, f"DECIDE: the path of this jar on this host ({job.jar_guess})"))
            open_points.append(f"job {job.name}: put {job.jar_name} beside the inventory or write its path (jar)")
    else:
        uploaded = f"uploaded: {', '.join(job.uploaded_jars)}" if job.uploaded_jars else "none is uploaded"
        out.append(f"        # jar: PATH  # NOT FOUND: Flink does not say which jar a job runs ({uploaded})")
        open_points.append(f"job {job.name}: which jar it runs, and its entry class (jar, entry_class)")
    if job.entry_class:
        out.append(_line(8, "entry_class", job.entry_class, f"GUESSED: {job.jar_guess}"))
    elif job.jar_name:
        out.append("        # entry_class: CLASS  # NOT FOUND: the jar has no single entry class Flink knows of")
        open_points.append(f"job {job.name}: its entry class (entry_class)")
    out.append(_line(8, "args", [], "DECIDE: the program's arguments: Flink's REST API does not say them"))
    open_points.append(f"job {job.name}: its program arguments (args), which Flink's REST API does not say")
    if job.parallelism:
        out.append(_line(8, "parallelism", job.parallelism))
    out += _checkpoint_lines(job, open_points)
    out.append(_line(
        8, "no_checkpoint_policy", JobSpec.no_checkpoint_policy,
        "DECIDE: with no retained checkpoint: fail (a person decides) or fresh (start from nothing: its state "
        "is lost)",
    ))
    out.append(_line(
        8, "on_canceled", JobSpec.on_canceled, "DECIDE: a job a person cancelled: leave it, or resubmit it"
    ))
    return out


def _checkpoint_lines(job: FoundJob, open_points: list[str]) -> list[str]:
    if not job.checkpointing:
        open_points.append(f"job {job.name}: checkpointing is off: a recovery can only start it fresh")
        return ["        # checkpoint_dir: NOT FOUND: checkpointing is off for this job (nothing to restore from)"]
    if not job.checkpoint_dir:
        open_points.append(f"job {job.name}: its checkpoint directory (checkpoint_dir)")
        return ["        # checkpoint_dir: NOT FOUND: neither the job's nor the cluster's configuration names one"]
    out = []
    if job.retained_on_cancel is False:
        out.append("        # Its checkpoints are not retained when it is cancelled (externalized retention): a")
        out.append("        # cancelled job cannot be restored from them.")
    inside = local_path(job.checkpoint_dir)
    if inside is None:
        out.append(f"        # Checkpoints go to {job.checkpoint_dir}: not a local directory, so only Flink's REST")
        out.append("        # API says which is the latest (no checkpoint_dir needed).")
        return out
    out.append("        checkpoint_dir:")
    if job.checkpoint_dir_host:
        out.append(_line(10, "host", job.checkpoint_dir_host, "the JobManager container's mount of it"))
    else:
        out.append(_line(10, "host", inside, "GUESSED: no mount of it found: the same path as in the containers"))
        open_points.append(f"job {job.name}: where {inside} lies on this host (checkpoint_dir.host)")
    out.append(_line(10, "container", inside, f"Flink's checkpoint directory: {job.checkpoint_dir}"))
    out.append(_line(10, "exclusive", False, "DECIDE: true if only this job writes there"))
    return out


def starting_inventory(found: FoundCluster, command: str) -> StartingInventory:
    """The inventory's text for what was found, and the points a person has to settle; `command` is the init
    command line that wrote it (said in the file)."""
    open_points = list(found.not_found)
    head = [
        f"# Written by `{command}` from what the cluster's REST API and the Docker engine said.",
        "# Lines marked DECIDE are a person's choice, GUESSED ones were inferred, NOT FOUND ones are missing:",
        "# settle them, then `flink-runbook inventory check --config FILE` and `flink-runbook diagnose --config FILE`.",
        "# Every key: docs/inventory.md, or `flink-runbook inventory reference`.",
        f"# state_dir: {HOST_STATE_DIR}  # DECIDE: recovery locks and job lineage on this host (the default; "
        f"${STATE_DIR_ENV} overrides it)",
        "clusters:",
        f"  - name: {_value(found.name)}",
    ]
    version = f"Flink {found.flink_version}" if found.flink_version else "Flink (release not said)"
    said = f"{version}, {found.taskmanagers} TaskManager(s), {found.slots_total} slots; {_settings_said(found)} "
    said += "(`flink-runbook audit` judges them)"
    head += [f"    # {line}" for line in textwrap.wrap(said, 100)]
    out = head + ["    rest:", _line(6, "url", found.rest_url), "    containers:"]
    if found.compose_project and found.compose_project_guess:
        out.append(_line(6, "compose_project", found.compose_project, f"GUESSED: {found.compose_project_guess}"))
        open_points.append(f"the cluster's compose project (guessed {found.compose_project})")
    elif found.compose_project:
        out.append(_line(6, "compose_project", found.compose_project, "of the container publishing the REST port"))
        out.append(_line(6, "jobmanager_service", found.jobmanager_service or "jobmanager"))
    else:
        out.append(_line(
            6, "compose_project", found.name,
            "NOT FOUND: no container on this Docker engine publishes the REST port: the cluster's compose project "
            "(or names: {jobmanager: [...], taskmanager: [...]})",
        ))
        open_points.append("the cluster's containers (containers): no container here publishes the REST port")
    if found.compose_project and found.taskmanager_service and not found.taskmanager_service_guess:
        out.append(_line(6, "taskmanager_service", found.taskmanager_service, "the registered TaskManagers' service"))
    elif found.compose_project and found.taskmanager_service:
        out.append(_line(6, "taskmanager_service", found.taskmanager_service,
                         f"GUESSED: {found.taskmanager_service_guess}"))
        open_points.append(f"the TaskManagers' compose service (guessed {found.taskmanager_service})")
    elif found.compose_project:
        out.append(_line(6, "taskmanager_service", "taskmanager",
                         "NOT FOUND: no service of the project runs the registered TaskManagers"))
        open_points.append("the TaskManagers' compose service (taskmanager_service)")
    out.append(_line(
        4, "expected_taskmanagers", max(1, found.taskmanagers), "DECIDE: as many as are registered now"
    ))
    out.append(_line(
        4, "approval", ClusterSpec.approval.value,
        "DECIDE: never, risky (a person approves a fresh start, an older checkpoint, a JobManager start) or always",
    ))
    out.append(_line(
        4, "restart_stopped", ClusterSpec.restart_stopped,
        "DECIDE: true to start a TaskManager container a person stopped",
    ))
    if found.jobs:
        out.append("    jobs:")
        for job in found.jobs:
            out += _job_lines(job, open_points)
    else:
        out.append("    jobs: []  # no job runs now: add each one the runbook should bring back")
        open_points.append("no job runs now: add the jobs the runbook should bring back (jobs)")
    out += _audit_lines(found)
    return StartingInventory("\n".join(out) + "\n", tuple(open_points))


def _audit_lines(found: FoundCluster) -> list[str]:
    out = ["    audit:  # what `flink-runbook audit` reads"]
    if found.flink_version:
        out.append(_line(6, "flink_version", found.flink_version))
    if found.compose_file:
        out.append(_line(6, "compose_file", found.compose_file, "the compose project's file"))
    if found.jobmanager_config:
        out.append(_line(6, "jobmanager_config", found.jobmanager_config, "mounted into the JobManager container"))
    if found.taskmanager_config:
        out.append(_line(6, "taskmanager_config", found.taskmanager_config, "mounted into a TaskManager container"))
    return out if len(out) > 1 else ["    # audit: NOT FOUND: no compose file or Flink config file was found"]

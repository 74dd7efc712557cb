"""Reading an inventory file: YAML (a key written twice refused), validated by the model (every problem at
once), then the frozen specs the runbook uses: paths resolved against the file's directory, the state dir
and notifications settled, clusters checked against each other."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flink_runbook.flink import sql_statements
from flink_runbook.inventory import model, specs
from flink_runbook.inventory.errors import InventoryError, problems
from flink_runbook.text_files import load_yaml, read_text

# Where the docker SDK and CLI go when no host is given (and DOCKER_HOST is not set).
LOCAL_DOCKER_SOCKET = "unix:///var/run/docker.sock"


def load_inventory(path: str | Path) -> specs.Inventory:
    """Read and validate an inventory file; raises InventoryError naming file, key and reason of every
    problem found."""
    file = Path(path)
    data = load_yaml(read_text(file, InventoryError), file, InventoryError)
    found = _state_dir_problems(file, data)
    try:
        checked = model.InventoryFile.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(*problems(exc, file, model.InventoryFile), *found) from None
    if found:
        raise InventoryError(*found)
    base = file.resolve().parent
    state_dir = _path(checked.state_dir, base) or specs.default_state_dir()
    inherited = _notifications(checked.notifications, specs.Notifications())
    clusters = tuple(_cluster(cluster, base, state_dir, inherited) for cluster in checked.clusters)
    clusters, found = _with_sql_statements(file, clusters)
    if found:
        raise InventoryError(*found)
    if found := _selectors_shared(file, clusters):
        raise InventoryError(*found)
    return specs.Inventory(
        path=file,
        clusters=clusters,
        escalation_webhook_url=checked.notifications.escalation_webhook_url,
        warnings=_warnings(file, clusters),
    )


def inventory_problem(path: str | Path) -> str | None:
    """What is wrong with the inventory file, for a command to refuse it before it starts anything; None: fine."""
    try:
        load_inventory(path)
    except InventoryError as exc:
        return str(exc)
    return None


def inventory_schema() -> str:
    """The inventory file's JSON Schema, for editors that check YAML as it is typed."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.InventoryFile.model_json_schema()}
    return json.dumps(schema, indent=2)


def _state_dir_problems(file: Path, data: Any) -> list[str]:
    if isinstance(data, dict) and data.get("state_dir") is not None:
        return []  # the file's: resolved against its directory, always absolute
    state_dir = specs.default_state_dir()
    if state_dir.is_absolute():
        return []
    # Relative to each process's working directory: two processes, two states.
    variable = f"{specs.STATE_DIR_ENV}={str(state_dir)!r}"
    return [f"{file}: state_dir: the environment variable {variable} must be an absolute path"]


def _path(value: str | None, base: Path) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _notifications(section: model.ClusterNotifications, inherited: specs.Notifications) -> specs.Notifications:
    """A cluster's section replaces what it names and inherits the rest from the top level."""
    return specs.Notifications(
        blocks=tuple(section.blocks) if section.blocks is not None else inherited.blocks,
        events=frozenset(section.events) if section.events is not None else inherited.events,
    )


def _cluster(section: model.Cluster, base: Path, state_dir: Path, inherited: specs.Notifications) -> specs.ClusterSpec:
    rest, docker, containers, audit = section.rest, section.docker, section.containers, section.audit
    return specs.ClusterSpec(
        name=section.name,
        rest=specs.RestSettings(
            url=rest.url.rstrip("/"),
            auth=specs.RestAuth(
                kind=rest.auth.type,
                username_env=rest.auth.username_env,
                password_env=rest.auth.password_env,
                token_env=rest.auth.token_env,
                token_secret_block=rest.auth.token_secret_block,
            ),
            verify_tls=rest.tls.verify,
            ca_bundle=_path(rest.tls.ca_bundle, base),
            client_cert=_path(rest.tls.client_cert, base),
            client_key=_path(rest.tls.client_key, base),
            connect_timeout_s=rest.connect_timeout_s,
            read_timeout_s=rest.read_timeout_s,
        ),
        containers=specs.ContainerSelector(
            compose_project=containers.compose_project,
            jobmanager_service=containers.jobmanager_service,
            taskmanager_service=containers.taskmanager_service,
            jobmanager_names=tuple(containers.names.jobmanager),
            taskmanager_names=tuple(containers.names.taskmanager),
        ),
        docker=specs.DockerEngine(
            host=docker.host,
            ca_cert=_path(docker.tls.ca_cert, base),
            client_cert=_path(docker.tls.client_cert, base),
            client_key=_path(docker.tls.client_key, base),
            verify_tls=docker.tls.verify,
            engine_id=docker.engine_id,
        ),
        expected_taskmanagers=section.expected_taskmanagers,
        jobs=tuple(_job(job, base) for job in section.jobs),
        thresholds=specs.Thresholds(**section.thresholds.model_dump()),
        recovery=specs.RecoverySettings(**section.recovery.model_dump()),
        monitor=specs.MonitorSettings(**section.monitor.model_dump()),
        audit=specs.AuditSources(
            compose_file=_path(audit.compose_file, base),
            jobmanager_config=_path(audit.jobmanager_config, base),
            taskmanager_config=_path(audit.taskmanager_config, base),
            compose_variables=dict(audit.compose_variables),
            flink_version=audit.flink_version,
        ),
        approval=specs.ApprovalPolicy(section.approval),
        approval_timeout_s=section.approval_timeout_s,
        notifications=_notifications(section.notifications, inherited),
        restart_stopped=section.restart_stopped,
        state_dir=state_dir,
    )


def _job(section: model.Job, base: Path) -> specs.JobSpec:
    return specs.JobSpec(
        name=section.name,
        jar=_path(section.jar, base),
        # A SQL job's jar is the SQL runner's: its class unless the inventory names another.
        entry_class=section.entry_class or (sql_statements.SQL_RUNNER_ENTRY_CLASS if section.sql else None),
        args=tuple(section.args),
        parallelism=section.parallelism,
        checkpoint_dir=specs.CheckpointDir(
            host=_path(section.checkpoint_dir.host, base),
            container=section.checkpoint_dir.container,
            exclusive=section.checkpoint_dir.exclusive,
        ),
        no_checkpoint_policy=section.no_checkpoint_policy,
        on_canceled=section.on_canceled,
        resubmit_command=tuple(section.resubmit_command),
        resubmit_timeout_s=section.resubmit_timeout_s,
        sink_output_dir=_path(section.sink_output_dir, base),
        sql=_path(section.sql, base),
    )


def _with_sql_statements(
    file: Path, clusters: tuple[specs.ClusterSpec, ...]
) -> tuple[tuple[specs.ClusterSpec, ...], list[str]]:
    """Each SQL job's statements file read and checked now, before anything runs (a statement the runner cannot
    run is found at load, not in a recovery), its statements kept in the job's spec; and every problem, one
    line each naming the key and the file's line."""
    found: list[str] = []
    read = []
    for c, cluster in enumerate(clusters):
        jobs = []
        for j, job in enumerate(cluster.jobs):
            if job.sql is not None:
                job = replace(job, sql_statements=_sql_statements(file, f"clusters[{c}].jobs[{j}]", job, found))
            jobs.append(job)
        read.append(replace(cluster, jobs=tuple(jobs)))
    return tuple(read), found


def _sql_statements(file: Path, key: str, job: specs.JobSpec, found: list[str]) -> tuple[str, ...]:
    at = f"{file}: {key}.sql"
    try:
        statements = sql_statements.split_statements(read_text(job.sql, InventoryError))
        sql_statements.checked_statements_of(statements)
    except InventoryError as exc:
        found.append(f"{at}: {exc}")
        return ()
    except sql_statements.SqlStatementsError as exc:
        found += [f"{at}: {job.sql}: {problem}" for problem in exc.problems]
        return ()
    written = sql_statements.checkpoint_dir_set(statements)
    expected = job.checkpoint_dir.container
    # file:///data/x, file:/data/x and /data/x are one directory to Flink.
    if written and expected and re.sub(r"^file:(//)?", "", written).rstrip("/") != expected.rstrip("/"):
        found.append(
            f"{at}: {job.sql}: SETs the checkpoint directory {written!r} but {key}.checkpoint_dir.container is "
            f"{expected!r}: the job would be restored from a directory it does not write to"
        )
    return tuple(s.text for s in statements)


def _selections(selector: specs.ContainerSelector) -> set[tuple[str, ...]]:
    """What a selector takes on its engine, role by role as states.find_containers does: ("name", name), or
    ("compose", project, service) for a role without names."""
    taken: set[tuple[str, ...]] = set()
    for names, service in (
        (selector.jobmanager_names, selector.jobmanager_service),
        (selector.taskmanager_names, selector.taskmanager_service),
    ):
        if names:
            taken |= {("name", name) for name in names}
        elif selector.compose_project:
            taken.add(("compose", selector.compose_project, service))
    return taken


def _same_container(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if a == b or a[0] == b[0]:
        return a == b
    (_, name), (_, project, service) = (a, b) if a[0] == "name" else (b, a)
    # Compose names a service's containers <project>-<service>-<n> (docker-compose 1: with _) and labels them.
    return re.fullmatch(rf"{re.escape(project)}[-_]{re.escape(service)}[-_]\d+", name) is not None


def _same_engine(a: specs.DockerEngine, b: specs.DockerEngine) -> bool:
    if a.engine_id and b.engine_id:
        return a.engine_id == b.engine_id
    return (a.host or LOCAL_DOCKER_SOCKET) == (b.host or LOCAL_DOCKER_SOCKET)


def _described(selection: tuple[str, ...]) -> str:
    if selection[0] == "name":
        return f"container {selection[1]!r}"
    return f"compose project {selection[1]!r} service {selection[2]!r}"


def _selectors_shared(file: Path, clusters: tuple[specs.ClusterSpec, ...]) -> list[str]:
    """Two clusters that select the same container on one engine: a recovery of one would restart or start the
    other's. Refused at load; on different engines the same names are different containers."""
    found = []
    for j, later in enumerate(clusters):
        for i, earlier in enumerate(clusters[:j]):
            if not _same_engine(earlier.docker, later.docker):
                continue
            shared = (
                (mine, theirs)
                for mine in sorted(_selections(later.containers))
                for theirs in sorted(_selections(earlier.containers))
                if _same_container(mine, theirs)
            )
            mine, theirs = next(shared, (None, None))
            if mine is None:
                continue
            engine = later.docker.engine_id or later.docker.where()
            found.append(
                f"{file}: clusters[{j}].containers: {_described(mine)} is also selected by cluster "
                f"{earlier.name!r} (clusters[{i}].containers: {_described(theirs)}) on the same Docker engine "
                f"({engine}): a recovery of one would act on the other's containers; give each cluster its own "
                "compose_project, services or names, or docker.host and docker.engine_id if they run on "
                "different engines"
            )
    return found


def _warnings(file: Path, clusters: tuple[specs.ClusterSpec, ...]) -> tuple[str, ...]:
    warnings = []
    for c, cluster in enumerate(clusters):
        for j, job in enumerate(cluster.jobs):
            if job.resubmit_may_run_twice:
                never = cluster.approval == specs.ApprovalPolicy.NEVER
                asked = "no one is asked (approval: never)" if never else "a human approves it"
                warnings.append(
                    f"{file}: clusters[{c}].jobs[{j}].resubmit_command: has no {{job_id}}, so Flink cannot refuse "
                    "a second run of it (a retry, a second recovery) and a second copy of the job may start; "
                    f"its resubmission counts as risky: {asked}. Pass {{job_id}} on to the submission (jobId of "
                    "POST /jars/:id/run)"
                )
    return tuple(warnings)

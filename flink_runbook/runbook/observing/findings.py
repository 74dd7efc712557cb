"""Classification: findings from what was observed (pure; no I/O).

Each finding has a stable code, a severity, what was seen (evidence) and
what to do (action). A cluster is healthy when no finding is error or worse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from flink_runbook.containers.docker_events import DockerEvent
from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.answers import JobInfo, JobState
from flink_runbook.inventory import ClusterSpec, JobSpec
from flink_runbook.runbook.keeping.person_stops import PersonStop, left_stopped
from flink_runbook.runbook.observing.application_mode import (
    EMBEDDED_TARGET,
    HA_TO_CONFIGURE,
    application_container,
    ended_by_a_person_or_done,
    ha_of,
)
from flink_runbook.runbook.observing.attribution import restarting_taskmanagers
from flink_runbook.runbook.observing.observe import ClusterObservation

CHECKPOINT_STALL_MIN_S = 60.0


class Severity(StrEnum):
    """How bad a finding is; error and worse make the cluster unhealthy."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    @property
    def unhealthy(self) -> bool:
        return self in (Severity.ERROR, Severity.CRITICAL)


class FindingCode(StrEnum):
    """The stable codes of findings: what alerts, tests, the guard rails and the plan key on."""

    APPLICATION_ENDED = "APPLICATION_ENDED"
    APPLICATION_MODE = "APPLICATION_MODE"
    CHECKPOINTS_STALLED = "CHECKPOINTS_STALLED"
    CONTAINER_DISCONNECTED = "CONTAINER_DISCONNECTED"
    CONTAINER_EXITED = "CONTAINER_EXITED"
    CONTAINER_NOT_RUNNING = "CONTAINER_NOT_RUNNING"
    CONTAINER_OOM_KILLED = "CONTAINER_OOM_KILLED"
    CONTAINER_PAUSED = "CONTAINER_PAUSED"
    CONTAINER_STOPPED_BY_HAND = "CONTAINER_STOPPED_BY_HAND"
    CONTAINER_UNHEALTHY = "CONTAINER_UNHEALTHY"
    DOCKER_ENGINE_MISMATCH = "DOCKER_ENGINE_MISMATCH"
    DOCKER_UNREACHABLE = "DOCKER_UNREACHABLE"
    DUPLICATE_JOB = "DUPLICATE_JOB"
    INSUFFICIENT_SLOTS = "INSUFFICIENT_SLOTS"
    JOBMANAGER_REST_INVALID = "JOBMANAGER_REST_INVALID"
    JOBMANAGER_UNREACHABLE = "JOBMANAGER_UNREACHABLE"
    JOB_CANCELED = "JOB_CANCELED"
    JOB_FAILED = "JOB_FAILED"
    JOB_MISSING = "JOB_MISSING"
    JOB_NOT_RUNNING = "JOB_NOT_RUNNING"
    JOB_RESTARTING = "JOB_RESTARTING"
    JOB_STARTING = "JOB_STARTING"
    JOB_STOPPED_BY_PERSON = "JOB_STOPPED_BY_PERSON"
    JOB_STOPPED_WITH_SAVEPOINT = "JOB_STOPPED_WITH_SAVEPOINT"
    NO_TASKMANAGERS = "NO_TASKMANAGERS"
    RESTARTS_EXHAUSTED = "RESTARTS_EXHAUSTED"
    REST_AUTH_OVER_HTTP = "REST_AUTH_OVER_HTTP"
    TASKMANAGERS_MISSING = "TASKMANAGERS_MISSING"
    TASKMANAGER_HEARTBEAT_STALE = "TASKMANAGER_HEARTBEAT_STALE"
    TASKMANAGER_HEARTBEAT_TIMEOUT = "TASKMANAGER_HEARTBEAT_TIMEOUT"
    TASKMANAGER_RESTARTING = "TASKMANAGER_RESTARTING"


@dataclass(frozen=True)
class Finding:
    code: FindingCode
    severity: Severity
    summary: str
    evidence: str
    action: str
    subject: str = ""  # the container, TaskManager or job it is about


def is_healthy(findings: list[Finding]) -> bool:
    return not any(Severity(f.severity).unhealthy for f in findings)


def classify(cluster: ClusterSpec, seen: ClusterObservation) -> list[Finding]:
    """All findings for one cluster, most severe first."""
    ended = _application_ended(seen)
    if ended:  # a decision or a finished job, not a fault: nothing of the cluster is judged as broken
        return sorted(
            [ended, *_connection_findings(cluster), *_application_mode_findings(seen)],
            key=lambda f: -Severity(f.severity).rank,
        )
    findings = _container_findings(cluster, seen) + _connection_findings(cluster) + _application_mode_findings(seen)
    if not seen.jobmanager.reachable:
        findings += _unreachable_findings(cluster, seen)
    else:
        findings += _taskmanager_findings(cluster, seen)
        findings += _job_findings(cluster, seen)
    return sorted(findings, key=lambda f: -Severity(f.severity).rank)


def _connection_findings(cluster: ClusterSpec) -> list[Finding]:
    if cluster.rest.auth.kind == "none" or not cluster.rest.url.startswith("http://"):
        return []
    return [
        Finding(
            FindingCode.REST_AUTH_OVER_HTTP,
            Severity.WARNING,
            f"Credentials ({cluster.rest.auth.kind} auth) are sent to the JobManager over plain HTTP",
            f"rest.url {cluster.rest.url} is http://, rest.auth.type is {cluster.rest.auth.kind}",
            "Anyone on the path can read them: serve the REST API over https:// (rest.ssl.enabled) "
            "and set rest.url and tls in the inventory.",
        )
    ]


def _application_ended(seen: ClusterObservation) -> Finding | None:
    """Its application ended: its JobManager exited 0 (the job FINISHED, or a person cancelled it or shut the
    cluster down) and no JobManager runs. Started again it would run the job from scratch, so it is left as it is
    (application_mode.ended_refusal), and the monitor neither recovers it nor pages anyone about it."""
    jobmanagers = [c for c in seen.containers.containers if c.role == "jobmanager"]
    ended = [c for c in jobmanagers if application_container(c) and ended_by_a_person_or_done(c)]
    if seen.jobmanager.reachable or not ended or any(c.state in ("running", "restarting") for c in jobmanagers):
        return None
    names = ", ".join(c.name for c in ended)
    return Finding(
        FindingCode.APPLICATION_ENDED,
        Severity.WARNING,
        f"The application ended: its JobManager {names} exited 0 (its job FINISHED, or was CANCELED by a person)",
        "; ".join(f"container {c.name}: state={c.state}, exit code {c.exit_code}, finished at {c.finished_at}"
                  for c in ended),
        "Left as it is: a cancel stands, and a start would run the job again from scratch (HA storage forgets an "
        "application that ended). If the end was not meant, restore it from a savepoint or a retained checkpoint, "
        "if one exists: set execution.state-recovery.path (or --fromSavepoint) to it and start the JobManager "
        f"yourself (docker start {ended[0].name}).",
        subject=ended[0].name,
    )


def _application_mode_findings(seen: ClusterObservation) -> list[Finding]:
    """Its JobManager runs its one job itself: what recover can and cannot do for it (application_mode)."""
    jobmanagers = [c for c in seen.containers.containers if c.role == "jobmanager"]
    by_command = [c for c in jobmanagers if application_container(c)]
    if not (seen.jobmanager.application_mode or by_command):
        return []
    evidence = []
    if seen.jobmanager.application_mode:
        evidence.append(f"GET /jobmanager/config: execution.target: {EMBEDDED_TARGET}")
    evidence += [f"container {c.name} runs `{' '.join(c.command[:1])}`" for c in by_command]
    ha = seen.jobmanager.high_availability or next((ha_of(c) for c in jobmanagers if ha_of(c)), None)
    evidence.append(f"high availability: {ha or 'none seen'}")
    if ha:
        action = (
            "Nothing is ever resubmitted to it (it takes no submission): a lost or frozen TaskManager is restarted "
            "or unpaused and Flink restarts the job in place; a stopped JobManager is started and HA restores the "
            "job from its checkpoint, unless its job ended (FAILED, FINISHED, or CANCELED by a person: started "
            "again, it would run from scratch)."
        )
    else:
        action = (
            "Nothing is ever resubmitted to it (it takes no submission), and a stopped JobManager is not started by "
            f"the runbook: its job would run again from scratch. To have it recovered, {HA_TO_CONFIGURE}."
        )
    # Docker restarts what the runbook would refuse to start: `on-failure` after a FAILED job (exit 163),
    # `always`/`unless-stopped` also after a cancel (exit 0); HA has forgotten an ended application either way.
    restarting = [c for c in jobmanagers if c.restart_policy in ("always", "unless-stopped", "on-failure")]
    if restarting:
        action += (
            f" Its restart policy ({', '.join(f'{c.name}: {c.restart_policy}' for c in restarting)}) restarts it "
            "after its job ended (FAILED; with always/unless-stopped a person's cancel too), and the job then runs "
            "again from scratch: set `restart: \"no\"` on the JobManager service and let the runbook decide."
        )
    severity = Severity.INFO if ha and not restarting else Severity.WARNING
    return [Finding(FindingCode.APPLICATION_MODE, severity, APPLICATION_MODE_SUMMARY, "; ".join(evidence), action)]


APPLICATION_MODE_SUMMARY = "The JobManager runs its job in application mode: nothing can be resubmitted to it"


def _unreachable_findings(cluster: ClusterSpec, seen: ClusterObservation) -> list[Finding]:
    jm = seen.jobmanager
    if jm.error_kind == "invalid_answer":
        return [
            Finding(
                FindingCode.JOBMANAGER_REST_INVALID,
                Severity.CRITICAL,
                f"{cluster.rest.url} answers, but not as the Flink JobManager REST API the runbook reads",
                jm.error or "",
                f"Check that rest.url of cluster {cluster.name} points at the JobManager REST port "
                "(default 8081) and not at a proxy or another service. If it does, the evidence names the URL "
                "and the field Flink answered differently: nothing is acted on until the runbook can read it.",
            )
        ]
    return [
        Finding(
            FindingCode.JOBMANAGER_UNREACHABLE,
            Severity.CRITICAL,
            f"The JobManager REST API at {cluster.rest.url} does not answer",
            jm.error or "",
            "Check the JobManager container (docker ps, docker logs); start or restart it, "
            "then resubmit the jobs from their latest retained checkpoint (flink-runbook recover).",
        )
    ]


def _container_findings(cluster: ClusterSpec, seen: ClusterObservation) -> list[Finding]:
    findings: list[Finding] = []
    view = seen.containers
    mismatch = view.engine_mismatch
    if mismatch is not None:
        return [
            Finding(
                FindingCode.DOCKER_ENGINE_MISMATCH,
                Severity.CRITICAL,
                f"The Docker engine at {mismatch.where} is engine {mismatch.found or '(no ID)'}, not the cluster's "
                f"engine {mismatch.expected or '(unknown)'}",
                f"expected engine ID {mismatch.expected or '(unknown)'} ({mismatch.source}); found engine ID "
                f"{mismatch.found or '(none reported)'} at docker.host {mismatch.where}",
                "Nothing is acted on there: a compose project or container of the same name on that engine is "
                "another host's. Run this where the cluster's engine is, or point docker.host at it. If the "
                "cluster really moved to this engine, set docker.engine_id to its ID, or remove the kept file "
                "named above so the next look learns it.",
            )
        ]
    if view.error:
        findings.append(
            Finding(
                FindingCode.DOCKER_UNREACHABLE,
                Severity.WARNING,
                "The Docker engine could not be asked about the cluster's containers",
                view.error,
                "Check docker.host of the cluster and that the engine runs; container checks were skipped.",
            )
        )
        return findings
    for state in view.containers:
        if left_stopped_by_hand(cluster, state):
            findings.append(
                Finding(
                    FindingCode.CONTAINER_STOPPED_BY_HAND,
                    Severity.WARNING,
                    f"{state.role} container {state.name} was stopped by a person (docker stop)",
                    f"state={state.state}, exit code {state.exit_code}, stopped at {state.finished_at}; the engine "
                    "logged a stop since it last started (a crash or an OOM kill logs none)",
                    "A stop is a decision: the runbook leaves it stopped. Start it when the work on it is done "
                    f"(`docker start {state.name}`), or set restart_stopped: true for cluster {cluster.name} to let "
                    "the runbook restart stopped TaskManagers like crashed ones.",
                    subject=state.name,
                )
            )
            continue
        if state.state != "running":
            detail = f"state={state.state}"
            if state.state in ("exited", "dead"):
                detail += f", exit code {state.exit_code}"
            detail += f", restarts={state.restart_count}"
            action = {
                "paused": f"The container is frozen (docker pause): `docker unpause {state.name}` or restart it.",
                "missing": "Start the cluster's containers (docker compose up -d) and check the inventory's "
                "container selection.",
            }.get(state.state, f"Start or restart it: `docker restart {state.name}`; read `docker logs {state.name}`.")
            findings.append(
                Finding(
                    FindingCode.CONTAINER_NOT_RUNNING,
                    Severity.CRITICAL if state.role == "jobmanager" else Severity.ERROR,
                    f"{state.role} container {state.name} is {state.state}",
                    detail,
                    action,
                    subject=state.name,
                )
            )
        if state.detached_from:
            findings.append(
                Finding(
                    FindingCode.CONTAINER_DISCONNECTED,
                    Severity.CRITICAL if state.role == "jobmanager" else Severity.ERROR,
                    f"{state.role} container {state.name} runs but is cut off network {state.detached_from}",
                    f"created on {state.detached_from}, attached now to: {', '.join(state.networks) or 'none'}",
                    f"`docker network connect {state.detached_from} {state.name}`; a restart alone does not "
                    "attach it again.",
                    subject=state.name,
                )
            )
        oom_kills = view.oom_kills.get(state.name, 0)
        if state.oom_killed or oom_kills:
            findings.append(
                Finding(
                    FindingCode.CONTAINER_OOM_KILLED,
                    # Once it runs again (restart policy) the kill is history; the memory limit is the lesson.
                    Severity.WARNING if state.state == "running" else Severity.ERROR,
                    f"{state.role} container {state.name} ran out of memory and was killed"
                    + (" (it has been restarted since)" if state.state == "running" else ""),
                    f"OOMKilled={state.oom_killed}, OOM events in the last "
                    f"{cluster.thresholds.oom_lookback_s:.0f}s: {oom_kills}, restarts={state.restart_count}",
                    "Raise the container memory limit above Flink's process memory "
                    "(taskmanager.memory.process.size) or lower that size; then restart it.",
                    subject=state.name,
                )
            )
    return findings


def _taskmanager_findings(cluster: ClusterSpec, seen: ClusterObservation) -> list[Finding]:
    findings: list[Finding] = []
    restarting = restarting_taskmanagers(
        seen.taskmanagers, seen.containers.containers, seen.observed_at_ms / 1000, cluster.recovery.registration_grace_s
    )
    for name, previous in sorted(restarting.items()):
        findings.append(
            Finding(
                FindingCode.TASKMANAGER_RESTARTING,
                Severity.ERROR,
                f"TaskManager container {name} (re)started moments ago; its TaskManager has not registered yet",
                "still listed from its previous process: " + ", ".join(sorted(previous))
                if previous
                else "no TaskManager registered from it yet",
                "Wait for it to register (flink-runbook recover waits, then resubmits a job that FAILED meanwhile); "
                f"read `docker logs {name}` for why it stopped.",
                subject=name,
            )
        )
    jm = seen.jobmanager
    registered = {tm.id for tm in seen.taskmanagers}
    # A TaskManager a person stopped is not expected back until they start it again.
    expected = cluster.expected_taskmanagers - len(held_stopped_taskmanagers(cluster, seen.containers.containers))
    if not seen.taskmanagers:
        findings.append(
            Finding(
                FindingCode.NO_TASKMANAGERS,
                Severity.CRITICAL,
                "No TaskManager is registered with the JobManager",
                f"GET /taskmanagers lists 0 TaskManagers (expected {expected})",
                "Restart the TaskManager container(s) and wait until they register (flink-runbook recover).",
            )
        )
    elif len(seen.taskmanagers) < expected:
        findings.append(
            Finding(
                FindingCode.TASKMANAGERS_MISSING,
                Severity.ERROR,
                f"{len(seen.taskmanagers)} of {expected} TaskManagers are registered",
                "registered: " + ", ".join(sorted(registered)),
                "Restart the missing TaskManager container(s).",
            )
        )
    stale_ms = cluster.thresholds.heartbeat_stale_ms or 2 * jm.heartbeat_interval_ms
    for tm in seen.taskmanagers:
        if tm.heartbeat_age_ms is not None and tm.heartbeat_age_ms > stale_ms:
            findings.append(
                Finding(
                    FindingCode.TASKMANAGER_HEARTBEAT_STALE,
                    Severity.WARNING,
                    f"TaskManager {tm.id} has not sent a heartbeat for {tm.heartbeat_age_ms / 1000:.1f}s",
                    f"last heartbeat {tm.heartbeat_age_ms} ms ago; stale after {stale_ms} ms; "
                    f"heartbeat.timeout is {jm.heartbeat_timeout_ms} ms",
                    "The TaskManager is frozen, overloaded (GC) or cut off; the JobManager will drop it at "
                    "heartbeat.timeout. Check its container (paused? CPU?) and logs.",
                    subject=tm.id,
                )
            )

    timed_out: dict[str, str] = {}
    for job in seen.jobs:
        for entry in job.info.exceptions if job.info else ():
            if entry.heartbeat_timeout_of:
                timed_out.setdefault(
                    entry.heartbeat_timeout_of, f"exception history of job {job.name}: {entry.message}"
                )
    for tm_id in seen.log_heartbeat_timeouts:
        timed_out.setdefault(tm_id, "JobManager log")
    specs = {job.name: job for job in cluster.jobs}
    jobs_running = all(
        (j.info is not None and j.info.fully_running) or left_stopped(j.info, specs.get(j.name), j.remembered_stop)
        for j in seen.jobs
    )
    cluster_recovered = len(seen.taskmanagers) >= expected and jobs_running
    for tm_id, where in sorted(timed_out.items()):
        if tm_id in registered:
            continue  # it came back
        findings.append(
            Finding(
                FindingCode.TASKMANAGER_HEARTBEAT_TIMEOUT,
                Severity.INFO if cluster_recovered else Severity.ERROR,
                f"The heartbeat of TaskManager {tm_id} timed out"
                + (" earlier; the cluster has recovered since" if cluster_recovered else ""),
                f"seen in the {where}",
                "Nothing to do now."
                if cluster_recovered
                else "Restart the TaskManager container so a new TaskManager registers, then resubmit the failed jobs "
                "from their latest retained checkpoint (flink-runbook recover).",
                subject=tm_id,
            )
        )
    return findings


def left_stopped_by_hand(cluster: ClusterSpec, state: ContainerState) -> bool:
    """A TaskManager container a person stopped, which the runbook leaves stopped (unless restart_stopped)."""
    return state.role == "taskmanager" and state.stopped_by_hand and not cluster.restart_stopped


def held_stopped_taskmanagers(cluster: ClusterSpec, containers: Iterable[ContainerState]) -> list[ContainerState]:
    return [c for c in containers if left_stopped_by_hand(cluster, c)]


def _job_findings(cluster: ClusterSpec, seen: ClusterObservation) -> list[Finding]:
    findings: list[Finding] = []
    specs = {job.name: job for job in cluster.jobs}
    slots_needed = 0
    for view in seen.jobs:
        info = view.info
        spec = specs.get(view.name)
        if info is None and left_stopped(None, spec, view.remembered_stop):
            findings.append(
                Finding(
                    FindingCode.JOB_STOPPED_BY_PERSON,
                    Severity.INFO,
                    f"Job {view.name} was stopped by a person; the JobManager has forgotten it since",
                    view.remembered_stop.describe(),
                    "A stop is a decision: the runbook does not resubmit it. To bring it back (from its savepoint "
                    f"when it has one): flink-runbook stopped release --cluster {cluster.name} --job {view.name}, "
                    "then flink-runbook recover.",
                    subject=view.name,
                )
            )
            continue
        if info is None:
            slots_needed += spec.parallelism if spec else 1
            findings.append(
                Finding(
                    FindingCode.JOB_MISSING,
                    Severity.ERROR,
                    f"Job {view.name} is not known to the JobManager",
                    "GET /jobs/overview has no job of that name (the JobManager restarted, or it was never submitted)",
                    "Submit it from the latest checkpoint in its checkpoint directory (flink-runbook recover).",
                    subject=view.name,
                )
            )
            continue
        if view.duplicate_ids:
            findings.append(
                Finding(
                    FindingCode.DUPLICATE_JOB,
                    Severity.CRITICAL,
                    f"{len(view.duplicate_ids)} live jobs are named {view.name}",
                    "job ids: " + ", ".join(view.duplicate_ids),
                    "Two copies write the same output. Cancel the copy that should not run (flink cancel <id>); "
                    "the runbook does not act on this job until only one is left.",
                    subject=view.name,
                )
            )
        findings += _one_job_findings(cluster, seen, info, spec, view.remembered_stop)
        if not info.fully_running and not left_stopped(info, spec, view.remembered_stop):
            slots_needed += spec.parallelism if spec else 1
    tms = seen.taskmanagers
    if slots_needed and tms and seen.jobmanager.slots_available < slots_needed:
        findings.append(
            Finding(
                FindingCode.INSUFFICIENT_SLOTS,
                Severity.ERROR,
                f"{slots_needed} task slot(s) are needed to place the jobs that are not running, "
                f"{seen.jobmanager.slots_available} are free",
                f"{len(tms)} TaskManager(s), {seen.jobmanager.slots_total} slots in all, "
                f"{seen.jobmanager.slots_available} free",
                "Add or restart TaskManagers, or free slots, before resubmitting.",
            )
        )
    return findings


def _one_job_findings(
    cluster: ClusterSpec, seen: ClusterObservation, info: JobInfo, spec: JobSpec | None, remembered: PersonStop | None
) -> list[Finding]:
    findings: list[Finding] = []
    subject = f"{info.name} ({info.id})"
    checkpoint = info.checkpoints.latest_completed
    checkpoint_text = (
        f"latest retained checkpoint: {checkpoint.external_path} (id {checkpoint.id})"
        if checkpoint and checkpoint.external_path
        else "no completed checkpoint"
    )
    if info.state == JobState.FAILED:
        findings.append(
            Finding(
                FindingCode.JOB_FAILED,
                Severity.CRITICAL,
                f"Job {info.name} has FAILED",
                f"job {info.id}; root cause: {info.root_cause or 'unknown'}; {checkpoint_text}",
                "Fix the cause (the other findings), then resubmit the job from its latest retained checkpoint "
                "(flink-runbook recover does both).",
                subject=subject,
            )
        )
        exhausted = next((e for e in info.exceptions if e.restart_strategy_exhausted), None)
        if exhausted:
            first = info.exceptions[-1]
            findings.append(
                Finding(
                    FindingCode.RESTARTS_EXHAUSTED,
                    Severity.ERROR,
                    f"Job {info.name} used up its restart strategy",
                    f"{exhausted.restart_strategy_exhausted}; {info.failures} failure(s) recorded, "
                    f"the first: {first.message}",
                    "Flink will not restart it again by itself. Consider an exponential-delay restart strategy "
                    "and a longer heartbeat.timeout (flink-runbook audit).",
                    subject=subject,
                )
            )
    elif info.state == JobState.CANCELED and left_stopped(info, spec, remembered):
        findings.append(
            Finding(
                FindingCode.JOB_CANCELED,
                Severity.INFO,
                f"Job {info.name} was cancelled",
                f"job {info.id}; {checkpoint_text}",
                "A cancel is a decision: the runbook does not resubmit it (set on_canceled: resubmit in the "
                "inventory if a cancelled job should be brought back). Resubmit it by hand when it should run.",
                subject=subject,
            )
        )
    elif left_stopped(info, spec, remembered):  # FINISHED by a stop-with-savepoint
        findings.append(
            Finding(
                FindingCode.JOB_STOPPED_WITH_SAVEPOINT,
                Severity.INFO,
                f"Job {info.name} was stopped with a savepoint",
                f"job {info.id}; savepoint {info.checkpoints.latest_savepoint.external_path}",
                "A stop is a decision: the runbook does not resubmit it. To bring it back from that savepoint: "
                f"flink-runbook stopped release --cluster {cluster.name} --job {info.name}, then flink-runbook "
                "recover.",
                subject=subject,
            )
        )
    elif info.state in (JobState.CANCELED, JobState.FINISHED, JobState.SUSPENDED):
        findings.append(
            Finding(
                FindingCode.JOB_NOT_RUNNING,
                Severity.ERROR,
                f"Job {info.name} is {info.state}",
                f"job {info.id}; {checkpoint_text}",
                "If it was not stopped on purpose, resubmit it from its latest retained checkpoint.",
                subject=subject,
            )
        )
    elif info.state in (JobState.RESTARTING, JobState.FAILING) or (
        info.state == JobState.RUNNING and not info.fully_running
    ):
        findings.append(
            Finding(
                FindingCode.JOB_RESTARTING,
                Severity.ERROR,
                f"Job {info.name} is restarting"
                + (
                    f" ({info.vertices_running} of {info.vertices_total} tasks running)"
                    if info.state == JobState.RUNNING
                    else f" (state {info.state})"
                ),
                f"job {info.id}; {info.failures} failure(s) so far; latest: {info.root_cause or 'none'}",
                "Flink is retrying; if TaskManagers are missing it cannot place the tasks. "
                "Check the TaskManager findings.",
                subject=subject,
            )
        )
    elif info.state != JobState.RUNNING:
        findings.append(
            Finding(
                FindingCode.JOB_STARTING,
                Severity.WARNING,
                f"Job {info.name} is {info.state}",
                f"job {info.id}",
                "Wait a little and diagnose again.",
                subject=subject,
            )
        )
    elif info.checkpoints.interval_ms:
        stall_s = cluster.thresholds.checkpoint_stall_s or max(
            CHECKPOINT_STALL_MIN_S, 5 * info.checkpoints.interval_ms / 1000
        )
        last_ms = (checkpoint.completed_at_ms if checkpoint else None) or info.start_time_ms or seen.observed_at_ms
        age_s = (seen.observed_at_ms - last_ms) / 1000
        if age_s > stall_s:
            findings.append(
                Finding(
                    FindingCode.CHECKPOINTS_STALLED,
                    Severity.WARNING,
                    f"Job {info.name} has completed no checkpoint for {age_s:.0f}s",
                    f"interval {info.checkpoints.interval_ms} ms; {info.checkpoints.failed} failed; {checkpoint_text}",
                    "A recovery now would replay everything since the last checkpoint. Check backpressure, "
                    "the checkpoint storage and failed checkpoints in the web UI.",
                    subject=subject,
                )
            )
    return findings


def container_event_finding(role: str, name: str, event: DockerEvent) -> Finding | None:
    """What Docker's event stream says just happened to a container of the cluster, as a finding: the fact the
    fault watcher acts on within a second (a later look classifies the container's state as above); None for
    an event that is no fault (start, unpause, connect, a healthy healthcheck)."""
    subject = f"{role} container {name}"
    severity = Severity.CRITICAL if role == "jobmanager" else Severity.ERROR
    evidence = f"Docker event {event.kind} {event.action} at {event.at:.3f}"
    logs = f"read `docker logs {name}` for why"
    if event.kind == "network":
        if event.action != "disconnect":
            return None
        code, summary = FindingCode.CONTAINER_DISCONNECTED, f"{subject} was disconnected from network {event.network}"
        action = f"`docker network connect {event.network} {name}`; a restart alone does not attach it again."
    elif event.action == "pause":
        code, summary = FindingCode.CONTAINER_PAUSED, f"{subject} was paused (frozen)"
        action = f"The container is frozen (docker pause): `docker unpause {name}` or restart it."
    elif event.action == "oom":
        code, summary = FindingCode.CONTAINER_OOM_KILLED, f"{subject}: the kernel OOM-killed a process in it"
        action = "Raise the container memory limit above Flink's process memory (taskmanager.memory.process.size)."
    elif event.action == "die":
        code, summary = FindingCode.CONTAINER_EXITED, f"{subject} exited with code {event.exit_code}"
        action = f"Start or restart it unless its restart policy does: `docker restart {name}`; {logs}."
    elif event.action.startswith("health_status") and event.action.endswith("unhealthy"):
        code, summary = FindingCode.CONTAINER_UNHEALTHY, f"{subject} turned unhealthy (its Docker healthcheck)"
        action = f"Its healthcheck fails: {logs}; restart it if it does not recover."
    else:
        return None
    return Finding(code, severity, summary, evidence, action, subject=name)

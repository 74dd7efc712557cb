"""The recovery plan: what to do, in which order, and why (a pure function of a diagnosis).

Safety rules, each a refusal rather than an attempt:
- a running JobManager is never restarted (it would kill every job);
- a TaskManager that is registered and running is never restarted (it may run
  jobs the inventory does not name);
- a FINISHED job is never resubmitted (its output is complete);
- a job is resubmitted only from a checkpoint that can be found, or fresh when
  its policy says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flink_runbook.containers.states import seconds_since
from flink_runbook.flink.answers import JobState
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.observe import RestProblem
from flink_runbook.runbook.restore_point import RestorePoint, RetainedCheckpoint, from_job_history, newest_retained

NOT_RUNNING = frozenset({"paused", "exited", "dead", "created", "restarting"})
# What a job may be in, once the TaskManagers are back, for it to be resubmitted: anything else
# (still restarting, running) is Flink's to finish, and a resubmission would run two copies.
RESUBMITTABLE = frozenset({JobState.FAILED, JobState.CANCELED, JobState.SUSPENDED, JobState.MISSING})


class Action(StrEnum):
    """The runbook's fix, step by step, in the order they are carried out."""

    START_JOBMANAGER = "start_jobmanager"
    RESTART_TASKMANAGERS = "restart_taskmanagers"
    WAIT_FOR_TASKMANAGERS = "wait_for_taskmanagers"
    RESUBMIT_JOB = "resubmit_job"


@dataclass(frozen=True)
class PlannedAction:
    action: Action
    target: str
    reason: str
    finding: str = ""
    # start_jobmanager, restart_taskmanagers: the containers, by name (`docker restart` starts, unpauses or restarts).
    containers: tuple[str, ...] = ()
    # wait_for_taskmanagers: how many must be registered, with how many free slots, none of them one of these
    # ids (registered from a container being restarted: the old process, not the new one).
    taskmanagers: int = 0
    free_slots: int = 0
    lost_taskmanager_ids: frozenset[str] = frozenset()
    # resubmit_job: from where, which job it replaces, and from when on its exceptions count: 0, every one,
    # since a new job's history starts empty (a job Flink restarts by itself is judged from when it is found
    # running instead: its history holds the failure being recovered from).
    restore_point: RestorePoint | None = None
    old_job_id: str | None = None
    exceptions_since_ms: int = 0


@dataclass(frozen=True)
class RecoveryPlan:
    """Everything the executor does, computed from one diagnosis; refusals are what it will not do."""

    cluster: str
    actions: tuple[PlannedAction, ...] = ()
    refusals: tuple[str, ...] = ()
    healthy: bool = False

    def of(self, action: Action) -> list[PlannedAction]:
        return [a for a in self.actions if a.action == action]

    def one(self, action: Action) -> PlannedAction | None:
        return next(iter(self.of(action)), None)

    @property
    def resubmits(self) -> list[PlannedAction]:
        return self.of(Action.RESUBMIT_JOB)


def _finding_code(diagnosis: Diagnosis, *codes: str) -> str:
    present = {f.code for f in diagnosis.findings}
    return next((c for c in codes if c in present), "")


def plan_recovery(
    cluster: ClusterSpec,
    diagnosis: Diagnosis,
    retained: dict[str, list[RetainedCheckpoint]] | None = None,
) -> RecoveryPlan:
    if diagnosis.healthy:
        return RecoveryPlan(cluster=cluster.name, healthy=True)
    seen = diagnosis.observation
    actions: list[PlannedAction] = []
    refusals: list[str] = []
    containers = seen.containers.containers

    if seen.containers.error:
        refusals.append(f"containers cannot be acted on: {seen.containers.error}")
    if seen.jobmanager.error_kind == RestProblem.INVALID_ANSWER:
        refusals.append(
            f"{cluster.rest.url} does not answer as a Flink JobManager; fix rest.url of cluster {cluster.name} "
            "before anything is restarted"
        )
        return RecoveryPlan(cluster=cluster.name, refusals=tuple(refusals))

    jobmanagers = [c for c in containers if c.role == "jobmanager"]
    stopped_jm = [c for c in jobmanagers if c.state in NOT_RUNNING]
    if any(c.state == "missing" for c in jobmanagers):
        refusals.append("the JobManager container does not exist; create it (docker compose up -d)")
    if stopped_jm:
        actions.append(
            PlannedAction(
                Action.START_JOBMANAGER,
                ", ".join(c.name for c in stopped_jm),
                "JobManager container is " + ", ".join(f"{c.name} {c.state}" for c in stopped_jm),
                finding="CONTAINER_NOT_RUNNING",
                containers=tuple(c.name for c in stopped_jm),
            )
        )
    elif not seen.jobmanager.reachable:
        if any(c.state == "running" for c in jobmanagers):
            refusals.append(
                f"the JobManager REST API at {cluster.rest.url} does not answer but its container runs; "
                "a running JobManager is not restarted (every job would die): read its log"
            )
        elif not jobmanagers or seen.containers.error:
            refusals.append(f"the JobManager REST API at {cluster.rest.url} does not answer and no container was found")
        return RecoveryPlan(cluster=cluster.name, actions=tuple(actions), refusals=tuple(refusals))

    taskmanagers = [c for c in containers if c.role == "taskmanager"]
    if any(c.state == "missing" for c in taskmanagers):
        refusals.append("a TaskManager container does not exist; create it (docker compose up -d)")
    registered = {tm.host for tm in seen.taskmanagers}
    jm_restarting = bool(stopped_jm)
    to_restart = []
    for container in taskmanagers:
        if container.state in NOT_RUNNING:
            to_restart.append((container, f"{container.name} is {container.state}"))
        elif (
            container.state == "running"
            and seen.jobmanager.reachable
            and not jm_restarting
            and container.ip_addresses
            and not set(container.ip_addresses) & registered
        ):
            up_for = seconds_since(container.started_at, seen.observed_at_ms / 1000)
            if up_for is not None and up_for < cluster.recovery.registration_grace_s:
                continue  # (re)started moments ago, e.g. by the restart policy: its TaskManager is registering
            to_restart.append((container, f"{container.name} runs but its TaskManager is not registered"))
    if to_restart:
        actions.append(
            PlannedAction(
                Action.RESTART_TASKMANAGERS,
                ", ".join(c.name for c, _ in to_restart),
                "; ".join(reason for _, reason in to_restart),
                finding=_finding_code(
                    diagnosis,
                    "TASKMANAGER_HEARTBEAT_TIMEOUT",
                    "NO_TASKMANAGERS",
                    "CONTAINER_NOT_RUNNING",
                    "TASKMANAGERS_MISSING",
                    "CONTAINER_OOM_KILLED",
                ),
                containers=tuple(c.name for c, _ in to_restart),
            )
        )

    resubmits = []
    for view in seen.jobs:
        spec = cluster.job(view.name)
        info = view.info
        if info is not None and info.state == JobState.FINISHED:
            refusals.append(f"job {view.name} is FINISHED; a finished job is not resubmitted")
            continue
        if info is not None and info.fully_running and not jm_restarting:
            continue
        point = from_job_history(info.checkpoints, f"{info.name} ({info.id})") if info else None
        if point is None:
            point = newest_retained((retained or {}).get(view.name, []), spec.checkpoint_dir)
        if point is None and spec.no_checkpoint_policy == "fail" and not spec.resubmit_command:
            refusals.append(
                f"job {view.name} has no retained checkpoint and its no_checkpoint_policy is 'fail': "
                "not resubmitted (set it to 'fresh' to start from scratch, accepting data loss or replay)"
            )
            continue
        state = info.state if info else JobState.MISSING
        reason = {
            "MISSING": "the JobManager knows no job of this name",
            "RESTARTING": "it is restarting; resubmitted only if it has FAILED once TaskManagers are back",
            "RUNNING": "it runs but not every task is running; resubmitted only if it has FAILED",
        }.get(state, f"it is {state}")
        resubmits.append(
            PlannedAction(
                Action.RESUBMIT_JOB,
                view.name,
                reason,
                finding=_finding_code(diagnosis, "JOB_FAILED", "JOB_MISSING", "JOB_NOT_RUNNING", "JOB_RESTARTING"),
                restore_point=point,
                old_job_id=info.id if info else None,
                exceptions_since_ms=0,
            )
        )
    if resubmits or to_restart or stopped_jm:
        needed = sum(cluster.job(a.target).parallelism for a in resubmits)
        restarted = {ip for container, _ in to_restart for ip in container.ip_addresses}
        actions.append(
            PlannedAction(
                Action.WAIT_FOR_TASKMANAGERS,
                f"{cluster.expected_taskmanagers} TaskManager(s)",
                f"jobs need {needed} free slot(s) before they can be placed",
                finding=_finding_code(diagnosis, "NO_TASKMANAGERS", "TASKMANAGERS_MISSING", "INSUFFICIENT_SLOTS"),
                taskmanagers=cluster.expected_taskmanagers,
                free_slots=needed,
                lost_taskmanager_ids=frozenset(tm.id for tm in seen.taskmanagers if tm.host in restarted),
            )
        )
    actions += resubmits
    return RecoveryPlan(cluster=cluster.name, actions=tuple(actions), refusals=tuple(refusals))

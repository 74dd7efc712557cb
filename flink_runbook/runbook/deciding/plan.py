"""The recovery plan: what to do, in which order, and why (a pure function of a diagnosis).

Safety rules, each a refusal rather than an attempt (README, "Safety rules"):
- nothing at all is done through a Docker engine that is not the cluster's (its engine ID differs);
- a JobManager is only ever unpaused or started, never restarted (it would kill every job);
- a stopped JobManager in application mode is started only when high availability brings its job back
  from its checkpoint (application_mode.start_refusal); its job is never resubmitted (it takes no submission);
- a container cut off its network is reconnected (a restart would not attach it again);
- a paused container is unpaused, not restarted; what is unpaused or started is observed
  again before the rest is planned (plan.observe_again);
- a TaskManager container is restarted only when it is stopped, or when it runs and no
  registered TaskManager is attributed to it (attribution: id, address, RPC path, hostname,
  aliases); when a registered TaskManager cannot be attributed to exactly one container,
  no running TaskManager container is restarted;
- a FINISHED job, a job someone cancelled (unless on_canceled: resubmit) and a job that
  runs twice (DUPLICATE_JOB) are never resubmitted;
- a job is resubmitted only from a checkpoint of its own lineage that is on disk, or fresh
  when its policy says so, whichever way it is submitted; an ambiguous lineage is a refusal;
- a resubmission carries a job id derived from the cluster, the job and the job it replaces,
  so Flink refuses a second submission of the same recovery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from enum import StrEnum

from flink_runbook.containers.states import seconds_since
from flink_runbook.flink.answers import JobState
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.deciding.restore_point import RestorePoint, RetainedCheckpoint, choose_restore_point
from flink_runbook.runbook.keeping.person_stops import left_stopped, released_savepoint
from flink_runbook.runbook.observing.application_mode import (
    NO_SUBMISSION,
    application_container,
    application_ended_elsewhere,
    ended_with_its_job,
    start_refusal,
)
from flink_runbook.runbook.observing.attribution import attribute_taskmanagers, restarting_taskmanagers
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.findings import FindingCode, held_stopped_taskmanagers
from flink_runbook.runbook.observing.observe import RestProblem

STOPPED = frozenset({"exited", "dead", "created"})
NOT_RUNNING = STOPPED | {"paused", "restarting"}
# What a job may be in, once the TaskManagers are back, for it to be resubmitted: anything else
# (still restarting, running) is Flink's to finish, and a resubmission would run two copies.
RESUBMITTABLE = frozenset({JobState.FAILED, JobState.CANCELED, JobState.SUSPENDED, JobState.MISSING})
JOB_ID_NAMESPACE = uuid.UUID("6f1c2a52-8d3e-4b7a-9c41-2f5d8e7b0a13")


def recovery_job_id(cluster: str, job: str, replaces: str | None) -> str:
    """The id a resubmission runs under: the same for every attempt of the same recovery (Flink refuses a
    second job of one id), another for the next failure (the job it replaces is another)."""
    return uuid.uuid5(JOB_ID_NAMESPACE, f"{cluster}/{job}/{replaces or 'unknown'}").hex


# The findings a step answers, most telling first (the step's `finding` in the report).
TASKMANAGER_SHORTAGES = (
    FindingCode.NO_TASKMANAGERS,
    FindingCode.TASKMANAGERS_MISSING,
    FindingCode.TASKMANAGER_RESTARTING,
    FindingCode.INSUFFICIENT_SLOTS,
)
JOB_DOWN = (FindingCode.JOB_FAILED, FindingCode.JOB_MISSING, FindingCode.JOB_NOT_RUNNING, FindingCode.JOB_RESTARTING)


class Action(StrEnum):
    """The runbook's fix, step by step, in the order they are carried out."""

    RECONNECT_NETWORKS = "reconnect_networks"
    UNPAUSE_CONTAINERS = "unpause_containers"
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
    # reconnect_networks, unpause_containers, start_jobmanager, restart_taskmanagers: the containers, by name.
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
    job_id: str | None = None  # the id it is submitted under (recovery_job_id)
    notes: tuple[str, ...] = ()  # what the choice of restore point passed over, and what that means
    older_than_newest: bool = False  # a newer restore point was passed over (gone, empty, outside the directory)
    # start_jobmanager: the containers that are stopped (started, a new process), not paused (unpaused).
    starts_stopped: tuple[str, ...] = ()
    # resubmit_job: the job id of a person's stop an operator released (its cancel or stop is not news).
    released_stop_of: str | None = None
    # resubmit_job of an application cluster's job: waits for Flink to restart it in place, never submits.
    application_mode: bool = False


@dataclass(frozen=True)
class RecoveryPlan:
    """Everything the executor does, computed from one diagnosis; refusals are what it will not do."""

    cluster: str
    actions: tuple[PlannedAction, ...] = ()
    refusals: tuple[str, ...] = ()
    healthy: bool = False
    # Containers are being brought back: the rest is planned from what is observed after.
    observe_again: bool = False

    def of(self, action: Action) -> list[PlannedAction]:
        return [a for a in self.actions if a.action == action]

    def one(self, action: Action) -> PlannedAction | None:
        return next(iter(self.of(action)), None)

    @property
    def resubmits(self) -> list[PlannedAction]:
        return self.of(Action.RESUBMIT_JOB)

    def followed_by(self, rest: RecoveryPlan) -> RecoveryPlan:
        """This plan's actions, then those planned after observing again (one plan for the report)."""
        return RecoveryPlan(
            cluster=self.cluster, actions=self.actions + rest.actions, refusals=self.refusals + rest.refusals
        )


def _finding_code(diagnosis: Diagnosis, *codes: str) -> str:
    present = {f.code for f in diagnosis.findings}
    return next((c for c in codes if c in present), "")


def _wait_for_taskmanagers(
    cluster: ClusterSpec, diagnosis: Diagnosis, reason: str, free_slots: int, lost_ids: frozenset[str]
) -> PlannedAction:
    """Wait until the expected TaskManagers are registered with `free_slots`, none of them one of `lost_ids`."""
    return PlannedAction(
        Action.WAIT_FOR_TASKMANAGERS,
        f"{cluster.expected_taskmanagers} TaskManager(s)",
        reason,
        finding=_finding_code(diagnosis, *TASKMANAGER_SHORTAGES),
        taskmanagers=cluster.expected_taskmanagers,
        free_slots=free_slots,
        lost_taskmanager_ids=lost_ids,
    )


def plan_recovery(
    cluster: ClusterSpec,
    diagnosis: Diagnosis,
    retained: dict[str, list[RetainedCheckpoint]] | None = None,
    lineage: dict[str, tuple[str, ...]] | None = None,
) -> RecoveryPlan:
    if diagnosis.healthy:
        return RecoveryPlan(cluster=cluster.name, healthy=True)
    seen = diagnosis.observation
    actions: list[PlannedAction] = []
    refusals: list[str] = []
    containers = seen.containers.containers

    if seen.containers.engine_mismatch:  # another host's engine, and its rest.url may be that host's Flink too
        return RecoveryPlan(cluster.name, refusals=(f"nothing is acted on: {seen.containers.error}",))
    if seen.containers.error:
        refusals.append(f"containers cannot be acted on: {seen.containers.error}")
    if seen.jobmanager.error_kind == RestProblem.INVALID_ANSWER:
        refusals.append(
            f"{cluster.rest.url} does not answer as a Flink JobManager; fix rest.url of cluster {cluster.name} "
            "before anything is restarted"
        )
        return RecoveryPlan(cluster=cluster.name, refusals=tuple(refusals))

    jobmanagers = [c for c in containers if c.role == "jobmanager"]
    taskmanagers = [c for c in containers if c.role == "taskmanager"]
    if any(c.state == "missing" for c in jobmanagers):
        refusals.append("the JobManager container does not exist; create it (docker compose up -d)")
    if any(c.state == "missing" for c in taskmanagers):
        refusals.append("a TaskManager container does not exist; create it (docker compose up -d)")

    # First bring back what is cut off, paused or stopped without restarting anything; then look again.
    detached = [c for c in containers if c.detached_from]
    if detached:
        actions.append(
            PlannedAction(
                Action.RECONNECT_NETWORKS,
                ", ".join(c.name for c in detached),
                "cut off the network it was created on ("
                + ", ".join(f"{c.name}: {c.detached_from}" for c in detached)
                + "): reconnected, since a restart would not attach it again",
                finding=FindingCode.CONTAINER_DISCONNECTED,
                containers=tuple(c.name for c in detached),
            )
        )
    paused = [c for c in taskmanagers if c.state == "paused"]
    stopped_jm = [c for c in jobmanagers if c.state in STOPPED | {"paused"}]
    application = seen.jobmanager.application_mode or any(application_container(c) for c in jobmanagers)
    if application:  # started again, it runs its job's main() again: from its checkpoint only with HA
        jobs = ", ".join(job.name for job in cluster.jobs) or "its job"
        ended = [c.name for c in jobmanagers if ended_with_its_job(c)]
        not_started = {
            c.name: start_refusal(c, jobs) or (application_ended_elsewhere(c.name, ended, jobs) if ended else None)
            for c in stopped_jm
            if c.state != "paused"
        }
        refusals += [why for why in not_started.values() if why]
        stopped_jm = [c for c in stopped_jm if not not_started.get(c.name)]
    if paused:
        actions.append(
            PlannedAction(
                Action.UNPAUSE_CONTAINERS,
                ", ".join(c.name for c in paused),
                "paused (frozen), not crashed: unpaused, and restarted only if it does not come back",
                finding=FindingCode.CONTAINER_NOT_RUNNING,
                containers=tuple(c.name for c in paused),
            )
        )
    if stopped_jm:
        actions.append(
            PlannedAction(
                Action.START_JOBMANAGER,
                ", ".join(c.name for c in stopped_jm),
                "JobManager container is " + ", ".join(f"{c.name} {c.state}" for c in stopped_jm),
                finding=FindingCode.CONTAINER_NOT_RUNNING,
                containers=tuple(c.name for c in stopped_jm),
                starts_stopped=tuple(c.name for c in stopped_jm if c.state != "paused"),
            )
        )
    if actions:
        return RecoveryPlan(cluster=cluster.name, actions=tuple(actions), refusals=tuple(refusals), observe_again=True)
    if not seen.jobmanager.reachable:
        if any(c.state in ("running", "restarting") for c in jobmanagers):
            refusals.append(
                f"the JobManager REST API at {cluster.rest.url} does not answer but its container runs; "
                "a running JobManager is not restarted (every job would die): read its log"
            )
        elif not jobmanagers or seen.containers.error:
            refusals.append(f"the JobManager REST API at {cluster.rest.url} does not answer and no container was found")
        return RecoveryPlan(cluster=cluster.name, refusals=tuple(refusals))

    attribution = attribute_taskmanagers(seen.taskmanagers, taskmanagers)
    starting = restarting_taskmanagers(
        seen.taskmanagers, taskmanagers, seen.observed_at_ms / 1000, cluster.recovery.registration_grace_s
    )
    to_restart = []
    unregistered = []
    # Stopped by a person (CONTAINER_STOPPED_BY_HAND): left stopped, like a cancelled job.
    held = held_stopped_taskmanagers(cluster, taskmanagers)
    for container in taskmanagers:
        if container in held:
            continue
        if container.state in NOT_RUNNING:
            to_restart.append((container, f"{container.name} is {container.state}"))
        elif container.state == "running" and not attribution.by_container.get(container.name):
            up_for = seconds_since(container.started_at, seen.observed_at_ms / 1000)
            if up_for is not None and up_for < cluster.recovery.registration_grace_s:
                continue  # (re)started moments ago, e.g. by the restart policy: its TaskManager is registering
            unregistered.append(container)
    if starting and not to_restart and not unregistered:
        # Wait for the new processes to register, then plan the jobs from what Flink says after (a job it
        # restarts by itself is left to it; one that FAILED meanwhile is resubmitted). Never a second restart.
        reason = f"{', '.join(starting)} (re)started moments ago: waiting for its TaskManager to register"
        actions.append(_wait_for_taskmanagers(cluster, diagnosis, reason, 0, frozenset().union(*starting.values())))
        return RecoveryPlan(cluster=cluster.name, actions=tuple(actions), refusals=tuple(refusals), observe_again=True)
    if unregistered and attribution.unattributed:
        refusals.append(
            f"TaskManager container(s) {', '.join(c.name for c in unregistered)} run without a registered "
            f"TaskManager attributed to them, but registered TaskManager(s) {attribution.describe_unattributed()} "
            "match no container (or several): not restarting a running container on a guess, it may run "
            "healthy work. Check taskmanager.host / taskmanager.resource-id against the container names"
        )
    else:
        to_restart += [(c, f"{c.name} runs but its TaskManager is not registered") for c in unregistered]
    if to_restart:
        actions.append(
            PlannedAction(
                Action.RESTART_TASKMANAGERS,
                ", ".join(c.name for c, _ in to_restart),
                "; ".join(reason for _, reason in to_restart),
                finding=_finding_code(
                    diagnosis,
                    FindingCode.TASKMANAGER_HEARTBEAT_TIMEOUT,
                    FindingCode.NO_TASKMANAGERS,
                    FindingCode.CONTAINER_NOT_RUNNING,
                    FindingCode.TASKMANAGERS_MISSING,
                    FindingCode.CONTAINER_OOM_KILLED,
                ),
                containers=tuple(c.name for c, _ in to_restart),
            )
        )

    resubmits = []
    # The slots each planned job needs free: one that has FAILED (or is gone) gave its slots back; one Flink is
    # restarting takes its own as soon as TaskManagers are back, and is resubmitted only if it fails (then they
    # are free again). Counting it too waits for slots that job itself holds: two such jobs fill a TaskManager.
    takes_slots: dict[str, int] = {}
    for view in seen.jobs:
        spec = cluster.job(view.name)
        info = view.info
        if view.duplicate_ids:
            refusals.append(
                f"job {view.name} runs as {len(view.duplicate_ids)} jobs ({', '.join(view.duplicate_ids)}): "
                "not acted on until a human cancels the copy that should not run"
            )
            continue
        remembered = view.remembered_stop
        if left_stopped(info, spec, remembered):
            continue  # a person's decision (JOB_CANCELED, JOB_STOPPED_*), until released; on_canceled: resubmit
        known = (lineage or {}).get(view.name, ())
        # A release brings back the job that was stopped, once: not a later run of it (whose checkpoints are newer).
        latest_id = info.id if info else (known[-1] if known else None)
        released = (
            remembered if remembered is not None and not remembered.stands and remembered.job_id == latest_id else None
        )
        if info is not None and info.state == JobState.FINISHED and released is None:
            refusals.append(f"job {view.name} is FINISHED; a finished job is not resubmitted")
            continue
        if info is not None and info.fully_running:
            continue
        if application:
            state = info.state if info else JobState.MISSING
            if state in RESUBMITTABLE:
                refusals.append(f"job {view.name} is {state}: not resubmitted, {NO_SUBMISSION}")
            else:  # restarting: Flink's to finish once the TaskManagers are back, followed by the step
                resubmits.append(
                    PlannedAction(
                        Action.RESUBMIT_JOB,
                        view.name,
                        f"it is {state}; {NO_SUBMISSION}",
                        finding=_finding_code(diagnosis, *JOB_DOWN),
                        old_job_id=info.id if info else None,
                        application_mode=True,
                    )
                )
            continue
        choice = choose_restore_point(
            view.name,
            spec.checkpoint_dir,
            info.checkpoints if info else None,
            info.id if info else None,
            known,
            (retained or {}).get(view.name, []),
            released_savepoint(released),
            frozenset(i for name, ids in (lineage or {}).items() if name != view.name for i in ids),
        )
        if choice.refusal:
            refusals.append(choice.refusal)
            continue
        point = choice.point
        if point is None and spec.no_checkpoint_policy == "fail":
            refusals.append(
                f"job {view.name} has no retained checkpoint and its no_checkpoint_policy is 'fail': "
                "not resubmitted (set it to 'fresh' to start from scratch, accepting data loss or replay)"
            )
            continue
        state = info.state if info else JobState.MISSING
        takes_slots[view.name] = spec.parallelism if state in RESUBMITTABLE else 0
        reason = {
            "MISSING": "the JobManager knows no job of this name",
            "RESTARTING": "it is restarting; resubmitted only if it has FAILED once TaskManagers are back",
            "RUNNING": "it runs but not every task is running; resubmitted only if it has FAILED",
        }.get(state, f"it is {state}")
        replaces = info.id if info else (known[-1] if known else None)
        resubmits.append(
            PlannedAction(
                Action.RESUBMIT_JOB,
                view.name,
                reason,
                finding=_finding_code(diagnosis, *JOB_DOWN),
                restore_point=point,
                old_job_id=info.id if info else None,
                exceptions_since_ms=0,
                job_id=recovery_job_id(cluster.name, view.name, replaces),
                notes=choice.notes,
                older_than_newest=choice.older_than_newest,
                released_stop_of=released.job_id if released else None,
            )
        )
    if held and len(held) >= cluster.expected_taskmanagers and resubmits:
        refusals.append(
            f"TaskManager container(s) {', '.join(c.name for c in held)} were stopped by a person (docker stop) and "
            f"are left stopped, so nothing could run {', '.join(a.target for a in resubmits)}: not resubmitted. "
            f"Start them when the work is done, or set restart_stopped: true for cluster {cluster.name}"
        )
        resubmits = []
    if resubmits or to_restart:
        needed = sum(takes_slots.get(a.target, 0) for a in resubmits)  # application mode: restarting, its own
        reason = f"jobs need {needed} free slot(s) before they can be placed"
        lost = attribution.ids_of(c.name for c, _ in to_restart)
        wait = _wait_for_taskmanagers(cluster, diagnosis, reason, needed, lost)
        # TaskManagers a person stopped are not waited for: they come back when that person starts them.
        actions.append(replace(wait, taskmanagers=max(1, wait.taskmanagers - len(held))))
    actions += resubmits
    return RecoveryPlan(cluster=cluster.name, actions=tuple(actions), refusals=tuple(refusals))

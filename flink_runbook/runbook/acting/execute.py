"""Carrying out a recovery plan: one function per runbook step, each step one recorded side effect.

Every step takes the plan and the progress so far and returns the progress
with its own step on the timeline (start, duration, outcome). A step the plan
does not call for returns the progress unchanged. Once an action step has
failed, the later action steps are not attempted: the report says what to do,
and the next recovery starts from what it observes. A failed verification
does not stop the stability check: the report shows both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import docker

from flink_runbook.containers.restart import reconnect_networks, restart_containers, start_or_unpause
from flink_runbook.flink.answers import JobState
from flink_runbook.flink.rest import FlinkRestError
from flink_runbook.inventory import ClusterSpec
from flink_runbook.polling import WaitTimeout, wait_until
from flink_runbook.runbook.acting import act
from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.deciding.plan import RESUBMITTABLE, Action, PlannedAction, RecoveryPlan
from flink_runbook.runbook.deciding.verify import (
    JOB_RUNNING_CHECK,
    NEW_CHECKPOINT_CHECK,
    job_checks,
    new_exceptions,
    newest_output_mtime,
    sink_fresh,
    taskmanagers_stable,
)
from flink_runbook.runbook.keeping.lineage import read_lineage
from flink_runbook.runbook.keeping.person_stops import (
    expected_taskmanagers,
    forget_stop,
    left_stopped,
    read_container_stops,
    read_stops,
    remember_own_restarts,
    standing_stops,
    stop_seen,
)
from flink_runbook.runbook.model import (
    ActionRecord,
    Check,
    JobRecord,
    Milestone,
    Progress,
    Resubmitted,
    StepStatus,
    utc_now_iso,
)
from flink_runbook.runbook.observing.application_mode import NO_SUBMISSION
from flink_runbook.runbook.observing.high_availability import (
    HaRestore,
    ha_restore,
    ha_type_described,
    high_availability_type,
    jobs_expected_back,
)
from flink_runbook.runbook.observing.observe import check_containers, check_job, look_at_engine, now_ms

# A job Flink is restarting gets the slot-request time to come back by itself.
SETTLE_TIMEOUT_S = 30
DEADLINE_PASSED = "the recovery's deadline (recovery.deadline_s) passed"
# The recovery settings that are waits, cut to what the deadline leaves (within_deadline).
WAITS = ("jobmanager_timeout_s", "taskmanager_timeout_s", "verify_timeout_s", "ha_restore_timeout_s")
VERIFY_JOB = "verify_job"
VERIFY_STABILITY = "verify_stability"






def _step(
    progress: Progress, action: str, target: str, reason: str, do: Callable[[ActionRecord], Progress | None]
) -> Progress:
    """Run one step and put it on the timeline; an exception fails the step (recorded), not the recovery run."""
    record = ActionRecord(action=action, target=target, reason=reason, started_at=utc_now_iso(), started_s=time.time())
    started = time.monotonic()
    updated = None
    if progress.past_deadline:  # a deadline is a deadline: nothing more is started after it
        record.status, record.detail = StepStatus.FAILED, f"{DEADLINE_PASSED}: not attempted"
        return replace(progress, steps=(*progress.steps, record))
    try:
        updated = do(record)
        if record.status == StepStatus.PLANNED:
            record.status = StepStatus.DONE
    except Exception as exc:  # what failed goes into the report, which says what to do next
        record.status, record.detail = StepStatus.FAILED, str(exc)
    record.duration_s = round(time.monotonic() - started, 2)
    base = updated or progress
    return replace(base, steps=(*base.steps, record))


def within_deadline(cluster: ClusterSpec, progress: Progress) -> ClusterSpec:
    """The cluster with every wait of its recovery cut to the time the recovery's deadline leaves: each step
    reads its timeouts from it, and each call under them is bounded (REST and Docker calls have their own)."""
    if progress.deadline_at is None:
        return cluster
    left = max(0.0, progress.deadline_at - time.time())
    r = cluster.recovery
    cut = {name: min(getattr(r, name), left) for name in WAITS}
    jobs = tuple(replace(job, resubmit_timeout_s=min(job.resubmit_timeout_s, left)) for job in cluster.jobs)
    return replace(cluster, recovery=replace(r, **cut), jobs=jobs)


def _left(progress: Progress, timeout_s: float) -> float:
    """A wait cut to what the recovery's deadline leaves."""
    if progress.deadline_at is None:
        return timeout_s
    return max(0.0, min(timeout_s, progress.deadline_at - time.time()))


def _docker(clients: ClusterClients) -> docker.DockerClient:
    if clients.docker is None:
        raise act.RecoveryError(f"no Docker client: {clients.docker_error}")
    return clients.docker


def _planned_step(
    plan: RecoveryPlan, action: Action, progress: Progress, do: Callable[[PlannedAction, ActionRecord], Progress | None]
) -> Progress:
    """The plan's step of that kind, unless the plan has none or an earlier step failed."""
    planned = plan.one(action)
    if planned is None or progress.stopped:
        return progress
    return _step(progress, planned.action, planned.target, planned.reason, lambda record: do(planned, record))


def _wait_for_ha_restore(cluster: ClusterSpec, clients: ClusterClients) -> str:
    """A started JobManager whose live config says high availability restores its jobs from HA storage under
    their old ids, possibly only after its REST API answers: wait, at most recovery.ha_restore_timeout_s
    from now, until every configured job is listed, so that the plan made next finds each one by name and
    never resubmits a second copy under a new id. Without HA it restores nothing: no wait."""
    timeout = cluster.recovery.ha_restore_timeout_s
    # A job a person stopped is not in HA's storage: not waited for.
    standing = standing_stops(cluster.state_dir, cluster.name)
    names = (job.name for job in cluster.jobs if job.name not in standing)
    expected = jobs_expected_back(names, read_lineage(cluster.state_dir, cluster.name))
    config: list[dict[str, str]] = []  # read once: a process's configuration does not change
    started = time.monotonic()

    def look() -> HaRestore | None:
        if not config:
            config.append(clients.rest.jobmanager_config())
        if high_availability_type(config[0]) is None:
            return None
        return ha_restore(expected, clients.rest.jobs_overview())

    try:
        restore = wait_until(
            look,
            lambda seen: seen is None or seen.complete,
            timeout=timeout,
            what=f"the jobs of {cluster.name} restored from high-availability storage",
            tolerate=(FlinkRestError,),
        )
    except WaitTimeout as exc:
        if not config:  # the plan made next reads it again, and refuses what it cannot read
            return f"its configuration did not answer within {timeout:.0f}s ({exc.last}): HA restore not known"
        last = exc.last if isinstance(exc.last, HaRestore) else None
        seen = f"{last.describe()}; " if last else f"{exc.last}; "
        return (
            f"{ha_type_described(config[0])}: {seen}not restored within {timeout:.0f}s "
            "(recovery.ha_restore_timeout_s): the plan treats what is not listed as gone"
        )
    if restore is None:
        return f"no high availability ({ha_type_described(config[0])}): no job to wait for"
    took = time.monotonic() - started
    return f"{ha_type_described(config[0])}: {restore.describe() or 'no job configured'} ({took:.1f}s after REST)"


def _wait_for_return(
    cluster: ClusterSpec, clients: ClusterClients, jobmanager: bool, timeout_s: float, started: bool = False
) -> str:
    """After an unpause or a start: the JobManager answering (when it was one of them), a started one's jobs
    restored by high availability (when `started`, a new process), then every expected TaskManager
    registered, for at most timeout_s; not coming back is for the next plan to see, not a failure."""
    parts = []
    if jobmanager:
        version = act.wait_for_jobmanager(clients.rest, cluster.recovery.jobmanager_timeout_s)
        parts.append(f"REST answers (Flink {version})")
        if started:
            parts.append(_wait_for_ha_restore(cluster, clients))
    expected = expected_taskmanagers(cluster)
    try:
        back = act.wait_for_taskmanagers(clients.rest, expected, 0, set(), timeout_s)
        parts.append(f"{len(back)} TaskManager(s) registered")
    except act.RecoveryError:
        parts.append(f"fewer than {expected} TaskManager(s) registered after {timeout_s:.0f}s")
    return "; ".join(parts)


def reconnect_container_networks(
    cluster: ClusterSpec, plan: RecoveryPlan, clients: ClusterClients, progress: Progress
) -> Progress:
    """`docker network connect` what was cut off its network: the TaskManager's heartbeats reach the
    JobManager again, before or after Flink timed it out (then it registers again by itself)."""

    def do(planned: PlannedAction, record: ActionRecord) -> None:
        done = reconnect_networks(_docker(clients), planned.containers)
        # The JobManager may be one of them (its REST port goes through the network): wait for it too.
        waited = _wait_for_return(cluster, clients, True, cluster.recovery.registration_grace_s)
        record.detail = f"{'; '.join(done)}; {waited}"

    return _planned_step(plan, Action.RECONNECT_NETWORKS, progress, do)


def unpause_containers(
    cluster: ClusterSpec, plan: RecoveryPlan, clients: ClusterClients, progress: Progress
) -> Progress:
    """`docker unpause` the frozen TaskManagers: one thawed before its heartbeat timed out loses nothing,
    and one that does not register again within the grace period is restarted by the next plan."""

    def do(planned: PlannedAction, record: ActionRecord) -> None:
        done = start_or_unpause(_docker(clients), planned.containers)
        waited = _wait_for_return(cluster, clients, False, cluster.recovery.registration_grace_s)
        record.detail = f"{'; '.join(done)}; {waited}"

    return _planned_step(plan, Action.UNPAUSE_CONTAINERS, progress, do)


def start_jobmanager(cluster: ClusterSpec, plan: RecoveryPlan, clients: ClusterClients, progress: Progress) -> Progress:
    """`docker start` (or unpause) the JobManager, never a restart, and wait until its REST API answers,
    a started one with high availability has listed the jobs it restores, and the TaskManagers have
    registered with it again."""

    def do(planned: PlannedAction, record: ActionRecord) -> None:
        done = start_or_unpause(_docker(clients), planned.containers)
        # Only a started one is a new process that restores jobs; an unpaused one still runs its own.
        started = bool(planned.starts_stopped)
        waited = _wait_for_return(cluster, clients, True, cluster.recovery.taskmanager_timeout_s, started)
        record.detail = f"{'; '.join(done)}; {waited}"

    return _planned_step(plan, Action.START_JOBMANAGER, progress, do)


def restart_taskmanagers(
    cluster: ClusterSpec, plan: RecoveryPlan, clients: ClusterClients, progress: Progress
) -> Progress:
    """`docker-compose restart taskmanager`, for exactly the containers the plan names."""

    def do(planned: PlannedAction, record: ActionRecord) -> Progress:
        # `docker restart` logs a stop too: if the start after it fails, that stop is the runbook's, not a person's.
        remember_own_restarts(cluster.state_dir, cluster.name, planned.containers)
        identities = restart_containers(_docker(clients), planned.containers, cluster.recovery.container_stop_timeout_s)
        record.detail = f"docker restart {' '.join(planned.containers)}"
        # Registered from those containers right after the restart: the old processes, not back yet.
        return replace(progress, still_registered=frozenset(act.taskmanagers_at(clients.rest, identities)))

    return _planned_step(plan, Action.RESTART_TASKMANAGERS, progress, do)


def wait_for_taskmanagers(
    cluster: ClusterSpec, plan: RecoveryPlan, clients: ClusterClients, progress: Progress
) -> Progress:
    """Wait until the TaskManagers are back with the free slots the jobs need; old registrations do not count."""

    def do(planned: PlannedAction, record: ActionRecord) -> Progress:
        gone = set(planned.lost_taskmanager_ids | progress.still_registered)
        timeout = cluster.recovery.taskmanager_timeout_s
        back = act.wait_for_taskmanagers(clients.rest, planned.taskmanagers, planned.free_slots, gone, timeout)
        record.detail = "registered: " + ", ".join(tm.id for tm in back)
        return replace(progress, taskmanagers=tuple(back))

    return _planned_step(plan, Action.WAIT_FOR_TASKMANAGERS, progress, do)


def resubmit_job(cluster: ClusterSpec, planned: PlannedAction, clients: ClusterClients, progress: Progress) -> Progress:
    """`./restart-flink-cdc-job.sh`, from the restore point, unless Flink brought the job back by itself."""
    if progress.stopped:
        return progress
    job = cluster.job(planned.target)
    job_record = JobRecord(name=job.name, old_id=planned.old_job_id)
    progress = replace(progress, jobs=(*progress.jobs, job_record))

    def do(record: ActionRecord) -> Progress:
        # Read right before acting: minutes may have passed since the plan (waiting for TaskManagers).
        known = (planned.old_job_id,) if planned.old_job_id else ()
        now = act.settle_job(clients.rest, job.name, _left(progress, SETTLE_TIMEOUT_S), known)
        state, job_id = (now.state, now.id) if now else (JobState.MISSING, None)
        stop = stop_seen(now, job)
        # The job the plan saw (or, missing then, any of the name) was stopped by a person since: it stands.
        if stop is not None and stop.job_id != planned.released_stop_of and (not known or stop.job_id in known):
            # A person cancelled or stopped it while the recovery waited: their decision stands.
            record.status = StepStatus.SKIPPED
            record.detail = (
                f"job {job.name} ({stop.job_id}) was {'cancelled' if stop.state == JobState.CANCELED else 'stopped'} "
                "by a person while the recovery waited; not resubmitted"
            )
            return progress
        if state == JobState.RUNNING:
            job_record.new_id = job_id
            record.status = StepStatus.SKIPPED
            record.detail = f"Flink restarted job {job_id} by itself; not resubmitted"
            # Its history holds the failure being recovered from: judge it from now on.
            adopted = Resubmitted(job.name, None, now_ms(), job_id)
            return replace(progress, resubmitted=(*progress.resubmitted, adopted), resubmitted_at=time.time())
        if planned.application_mode:
            raise act.RecoveryError(f"job {job.name} is {state}: not resubmitted, {NO_SUBMISSION}")
        if state not in RESUBMITTABLE and (job_id is None or job_id != planned.released_stop_of):
            raise act.RecoveryError(
                f"job {job.name} is still {state} after the TaskManagers came back; "
                "not resubmitted, to never run two copies"
            )
        point = planned.restore_point
        if job.resubmit_command:
            submission = act.run_resubmit_command(clients.rest, job, point, planned.job_id)
        else:
            submission = act.submit_job(clients.rest, job, point, planned.job_id)
        job_record.new_id = submission.job_id
        job_record.restored_from = point.path if point else None
        if planned.released_stop_of:  # the release is used up: never again from that savepoint
            forget_stop(cluster.state_dir, cluster.name, job.name)
        record.detail = " ".join(
            [submission.how, *(f"Note: {n}." for n in planned.notes)]
            + ([f"Output: {submission.output[-300:]}"] if submission.output else [])
        )
        new = Resubmitted(job.name, point, planned.exceptions_since_ms, submission.job_id)
        return replace(progress, resubmitted=(*progress.resubmitted, new), resubmitted_at=time.time())

    return _step(progress, planned.action, planned.target, planned.reason, do)


def verify_job(
    cluster: ClusterSpec,
    resubmitted: Resubmitted,
    clients: ClusterClients,
    progress: Progress,
    on_checks: Callable[[list[Check]], None] = lambda checks: None,
) -> Progress:
    """Wait until the job runs, restored from the chosen point, with no exception and a new checkpoint.

    `on_checks` sees every round of checks (the flow shows them as a progress artifact).
    """
    if progress.stopped:
        return progress
    job = cluster.job(resubmitted.job)
    since = progress.resubmitted_at or time.time()
    first_passed: dict[str, float] = {}  # check name -> when it first passed: the timeline's milestones

    def checks_now() -> list[Check]:
        followed = check_job(clients.rest, job.name, job_id=resubmitted.job_id).info
        checks = job_checks(followed, resubmitted.restore_point, resubmitted.exceptions_since_ms)
        if job.sink_output_dir:
            checks.append(sink_fresh(job.sink_output_dir, newest_output_mtime(job.sink_output_dir), since))
        now = time.time()
        for check in checks:
            if check.passed:
                first_passed.setdefault(check.name, now)
        on_checks(checks)
        return checks

    def milestones() -> tuple[Milestone, ...]:
        named = {
            JOB_RUNNING_CHECK: f"job {job.name} RUNNING",
            NEW_CHECKPOINT_CHECK: f"job {job.name} first new checkpoint",
        }
        return tuple(Milestone(label, first_passed[check]) for check, label in named.items() if check in first_passed)

    def do(record: ActionRecord) -> Progress:
        try:
            checks = wait_until(
                checks_now,
                lambda checks: all(c.passed for c in checks),
                timeout=cluster.recovery.verify_timeout_s,
                interval=1,
                what=f"job {job.name} to pass its checks",
                tolerate=(FlinkRestError,),
            )
        except WaitTimeout as exc:
            if not isinstance(exc.last, list):  # the REST API failed to the end
                raise
            checks = exc.last
            record.status = StepStatus.FAILED
            record.detail = "; ".join(c.detail for c in checks if not c.passed)
        return replace(progress, checks=(*progress.checks, *checks), milestones=(*progress.milestones, *milestones()))

    return _step(progress, VERIFY_JOB, job.name, "RUNNING, restored, no exceptions, a new checkpoint", do)


def _taskmanager_containers_still_running(cluster: ClusterSpec, clients: ClusterClients) -> list[Check]:
    """A TaskManager frozen again inside the window is still registered (Flink has not timed it out yet):
    only its container says so. A container a person stopped is theirs, not a failure."""
    if clients.docker is None:
        return []
    view = check_containers(cluster, look_at_engine(clients, cluster))
    if view.error:
        return []
    persons = read_container_stops(cluster.state_dir, cluster.name)
    down = [f"{c.name} {c.state}" for c in view.containers
            if c.role == "taskmanager" and c.state != "running" and c.name not in persons]
    return [Check("TaskManager containers still running", not down, ", ".join(down) or "all running")]


def verify_stability(
    cluster: ClusterSpec,
    plan: RecoveryPlan,
    clients: ClusterClients,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """TaskManagers and jobs stay healthy through the stabilisation window."""
    if not plan.actions or progress.stopped:
        return progress
    window = cluster.recovery.stabilization_s

    def do(record: ActionRecord) -> Progress:
        if progress.deadline_at is not None and time.time() + window > progress.deadline_at:
            raise act.RecoveryError(f"{DEADLINE_PASSED} before the {window:.0f}s stability window would end")
        # No TaskManager was waited for (an unpause, a reconnect): the ones registered now must stay.
        before = list(progress.taskmanagers) or clients.rest.taskmanagers()
        # A job the recovery did not resubmit keeps its whole exception history (the fault's own among it):
        # what counts for it is what the window sees.
        window_started_ms = int(time.time() * 1000)
        sleep(window)
        registered = clients.rest.taskmanagers()
        checks = [taskmanagers_stable(before, registered, expected_taskmanagers(cluster))]
        checks += _taskmanager_containers_still_running(cluster, clients)
        remembered = read_stops(cluster.state_dir, cluster.name)
        since = {r.job: r.exceptions_since_ms for r in progress.resubmitted}
        followed = {r.job: r.job_id for r in progress.resubmitted}
        for job in cluster.jobs:
            info = check_job(clients.rest, job.name, job_id=followed.get(job.name)).info
            if left_stopped(info, job, remembered.get(job.name)):
                continue  # a person's stop, not the recovery's to judge
            fresh = new_exceptions(info, since.get(job.name, window_started_ms)) if info else []
            checks.append(
                Check(
                    f"{job.name} still running without exceptions after {window:.0f}s",
                    info is not None and info.state == JobState.RUNNING and not fresh,
                    f"state {info.state if info else JobState.MISSING}, {len(fresh)} new exception(s)",
                )
            )
        if not all(c.passed for c in checks):
            record.status, record.detail = StepStatus.FAILED, "; ".join(c.detail for c in checks if not c.passed)
        return replace(progress, checks=(*progress.checks, *checks))

    return _step(progress, VERIFY_STABILITY, cluster.name, f"{window:.0f}s window", do)

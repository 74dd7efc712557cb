"""The recovery's side effects (Docker and REST), without Prefect.

Each function does one thing to the real cluster and returns what it saw.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flink_runbook.flink.answers import TERMINAL_JOB_STATES, JobInfo, TaskManagerInfo
from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.inventory import JobSpec
from flink_runbook.polling import WaitTimeout, wait_until
from flink_runbook.runbook.deciding.restore_point import RestorePoint
from flink_runbook.runbook.observing.attribution import taskmanagers_named_by
from flink_runbook.runbook.observing.observe import check_job

OUTPUT_TAIL_CHARS = 4000
SQL_RUN_TIMEOUT_S = 60.0


class RecoveryError(RuntimeError):
    """A recovery step failed; the message says what was tried and what was seen."""


@dataclass(frozen=True)
class Submission:
    job_id: str
    how: str  # what was done: "submitted jar ..." | "adopted ..." | "command ..."
    output: str = ""


def taskmanagers_at(rest: FlinkRestClient, identities: frozenset[str]) -> set[str]:
    """Ids of the TaskManagers registered now from the containers with these names and addresses.

    Right after a restart they are the old processes' registrations (the new
    JVMs take seconds to start): they must not count as back.
    """
    return taskmanagers_named_by(rest.taskmanagers(), identities)


def wait_for_jobmanager(rest: FlinkRestClient, timeout_s: float) -> str:
    """Wait until GET /overview answers; returns the Flink version."""
    try:
        overview = wait_until(
            rest.cluster_overview,
            lambda _: True,  # any answer Flink's parser accepts
            timeout=timeout_s,
            what=f"the JobManager at {rest.base_url}",
            tolerate=(FlinkRestError,),
        )
    except WaitTimeout as exc:
        raise RecoveryError(str(exc)) from exc
    return overview.flink_version


def wait_for_taskmanagers(
    rest: FlinkRestClient, expected: int, free_slots: int, gone_ids: set[str], timeout_s: float
) -> list[TaskManagerInfo]:
    """Wait until `expected` TaskManagers are registered, none of them one that was lost
    (`gone_ids`), with at least `free_slots` free slots between them."""

    def ready(tms: list[TaskManagerInfo]) -> bool:
        fresh = [tm for tm in tms if tm.id not in gone_ids]
        return len(fresh) >= expected and sum(tm.slots_free for tm in fresh) >= free_slots

    try:
        return wait_until(
            rest.taskmanagers,
            ready,
            timeout=timeout_s,
            what=f"{expected} TaskManager(s) with {free_slots} free slot(s), none of {sorted(gone_ids)}",
            tolerate=(FlinkRestError,),
        )
    except WaitTimeout as exc:
        raise RecoveryError(str(exc)) from exc


def settle_job(
    rest: FlinkRestClient, name: str, timeout_s: float, known_ids: Sequence[str] = ()
) -> JobInfo | None:
    """Let a job Flink is still restarting finish doing so: returns it as it is then (None: no job of the name).

    RUNNING with every task running, a terminal state, or MISSING; a job still
    restarting at the deadline is reported as it is. Of several jobs of the name, the one of `known_ids`
    (the job the plan saw) is the one read, not a copy beside it.
    """

    def observe():
        return check_job(rest, name, known_ids=known_ids).info

    def settled(info: JobInfo | None) -> bool:
        return info is None or info.state in TERMINAL_JOB_STATES or info.fully_running

    try:
        info = wait_until(observe, settled, timeout=timeout_s, what=f"job {name} to settle")
    except WaitTimeout:
        info = observe()
    return info


def _adopt_after_lost_answer(rest: FlinkRestClient, name: str, since_ms: int, error: Exception) -> Submission:
    """The submit's answer was lost: find the job it may have started instead of submitting again."""
    time.sleep(2)
    started = [j for j in rest.live_jobs_named(name) if j.start_time_ms >= since_ms]
    if len(started) == 1:
        return Submission(started[0].id, f"the submit's answer was lost ({error}); adopted job {started[0].id}")
    raise RecoveryError(
        f"submitting job {name} lost its answer ({error}) and {len(started)} new job(s) of that name exist; "
        "not submitting again: check GET /jobs/overview"
    )


def submit_job(
    rest: FlinkRestClient, spec: JobSpec, restore_point: RestorePoint | None, job_id: str | None = None
) -> Submission:
    """Upload the job's jar and run it from the restore point under `job_id`; never starts a second copy."""
    already = rest.live_jobs_named(spec.name)
    if already:
        return Submission(already[0].id, f"job {spec.name} is already {already[0].state}; not submitted again")
    if spec.jar is None or not spec.entry_class:
        raise RecoveryError(f"job {spec.name} has neither jar + entry_class nor resubmit_command in the inventory")
    if not spec.jar.is_file():
        raise RecoveryError(f"job {spec.name}: jar {spec.jar} does not exist")
    jar_id = rest.upload_jar(spec.jar)
    since_ms = int(time.time() * 1000) - 1000
    # The JobManager plans a SQL job inside the run request: measured 3.6 s warm and 9.3 s for the first SQL
    # job of a JobManager (Flink 2.2.0, a loaded 2-core machine), past the usual 10 s read timeout at times.
    # resubmit_timeout_s is what the recovery's deadline leaves of it (execute.within_deadline).
    runner = rest.patient(min(SQL_RUN_TIMEOUT_S, spec.resubmit_timeout_s)) if spec.sql else rest
    try:
        submitted = runner.run_jar(
            jar_id,
            entry_class=spec.entry_class,
            program_args=spec.program_args,
            parallelism=spec.parallelism,
            savepoint_path=restore_point.path if restore_point else None,
            job_id=job_id,
        )
    except FlinkRestError as exc:
        if exc.status is None:
            return _adopt_after_lost_answer(rest, spec.name, since_ms, exc)
        twin = next((j for j in rest.jobs_overview() if job_id and j.id == job_id), None)
        if twin is not None and twin.live:  # another recovery of the same failure submitted it first
            return Submission(twin.id, f"job id {job_id} was already submitted (by another recovery); following it")
        if twin is not None:
            raise RecoveryError(
                f"Flink refused to run job {spec.name} again as {job_id}: that job already ran and is {twin.state}; "
                "the next recovery submits it under a new id"
            ) from exc
        raise RecoveryError(f"Flink refused to run job {spec.name}: {exc}") from exc
    origin = f"from {restore_point.path}" if restore_point else "fresh (no checkpoint)"
    what = f"{spec.jar.name} with the SQL statements of {spec.sql.name}" if spec.sql else spec.jar.name
    return Submission(submitted, f"submitted {what} as job {submitted} {origin}")


def _run_as_a_group(command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """subprocess.run in a session of its own: on timeout (or any interruption) the whole process group is
    killed, not only the command (a wrapper script's `flink run` would go on and submit the job later)."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: the group id is its pid
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def run_resubmit_command(
    rest: FlinkRestClient, spec: JobSpec, restore_point: RestorePoint | None, job_id: str | None = None
) -> Submission:
    """Run the job's own resubmit command (argument list, no shell) and find the job it started.

    `{restore_path}` in an argument is replaced by the restore point (empty when fresh, which the plan
    allows only under no_checkpoint_policy: fresh), `{job_id}` by the recovery's job id (pass it to
    `flink run` / POST /jars/:id/run so a second submission is refused).
    """
    already = rest.live_jobs_named(spec.name)
    if already:
        return Submission(already[0].id, f"job {spec.name} is already {already[0].state}; command not run")
    path = restore_point.path if restore_point else ""
    command = [arg.replace("{restore_path}", path).replace("{job_id}", job_id or "") for arg in spec.resubmit_command]
    since_ms = int(time.time() * 1000) - 1000
    try:
        result = _run_as_a_group(command, spec.resubmit_timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise RecoveryError(
            f"resubmit command {command} did not finish in {spec.resubmit_timeout_s:.0f}s; it was killed with "
            "every process it started"
        ) from exc
    except OSError as exc:
        raise RecoveryError(f"resubmit command {command} could not run: {exc}") from exc
    output = (result.stdout + result.stderr)[-OUTPUT_TAIL_CHARS:]
    if result.returncode != 0:
        raise RecoveryError(f"resubmit command {command} exited {result.returncode}: {output[-500:]}")
    try:
        started = wait_until(
            lambda: [j for j in rest.live_jobs_named(spec.name) if j.start_time_ms >= since_ms],
            lambda jobs: len(jobs) >= 1,
            timeout=60,
            what=f"a job named {spec.name} started by the command",
        )
    except WaitTimeout as exc:
        raise RecoveryError(f"resubmit command {command} exited 0 but {exc}") from exc
    return Submission(started[0].id, f"ran {command[0]} (exit 0); it started job {started[0].id}", output)

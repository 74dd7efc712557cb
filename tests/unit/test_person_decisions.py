"""Safety II: a person's decision outlives Flink's memory; a stale lineage never picks an old checkpoint silently.

Jobs cancelled and stopped with a savepoint are answers recorded from real Flink clusters
(tests/fixtures/rest/flink-*/cancelled, stopped-with-savepoint).
"""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flink_runbook.containers.docker_events import DockerEvent
from flink_runbook.containers.states import ContainerState, EngineView, stopped_by_hand
from flink_runbook.inventory import CheckpointDir, ClusterSpec, JobSpec
from flink_runbook.runbook import model
from flink_runbook.runbook.acting import execute
from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.deciding.plan import Action, PlannedAction, RecoveryPlan, plan_recovery
from flink_runbook.runbook.deciding.restore_point import choose_restore_point, list_retained_checkpoints, normalize_path
from flink_runbook.runbook.keeping.person_stops import (
    OwnRestart,
    asks_to_stop,
    died_when_asked_to_stop,
    forget_stop,
    next_container_stops,
    next_stops,
    persons_stop,
    read_stops,
    release_stop,
    remember_stops,
    stops_file,
    unreadable_stops,
)
from flink_runbook.runbook.model import StepStatus
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import ContainersView, JobView

from .recorded import STOPS_VERSIONS, VERSIONS, recorded_answers, recorded_job, recorded_rest
from .test_findings import CLUSTER, observed, running

JOB = CLUSTER.jobs[0].name
SPECS = {JOB: CLUSTER.jobs[0]}


def stopped(version: str, scenario: str, forgotten: bool = False, remembered=None):
    """The healthy cluster with the demo job as the recording shows it (cancelled, stopped with a savepoint),
    or, `forgotten`, as a JobManager that no longer lists it; `remembered`: what the tool kept."""
    info = recorded_job(version, scenario)
    base = observed(version, "healthy")
    view = JobView(JOB, None if forgotten else info, remembered_stop=remembered)
    return dataclasses.replace(base, jobs=(view,)), info


def in_directory(host: Path) -> ClusterSpec:
    """The cluster with its job's checkpoint directory at `host` (the containers see /data/checkpoints)."""
    job = dataclasses.replace(CLUSTER.jobs[0], checkpoint_dir=CheckpointDir(host, "/data/checkpoints"))
    return dataclasses.replace(CLUSTER, jobs=(job,))


def codes(diagnosis) -> dict[str, str]:
    return {f.code: f.severity for f in diagnosis.findings}


@pytest.mark.parametrize("version", STOPS_VERSIONS)
@pytest.mark.parametrize("scenario", ["cancelled", "stopped-with-savepoint"])
def test_a_persons_stop_is_remembered_after_the_jobmanager_forgets_the_job(version, scenario):
    seen, info = stopped(version, scenario)
    record = next_stops({}, [(JOB, info)], SPECS)
    assert record[JOB].job_id == info.id and record[JOB].stands
    listed = diagnose(CLUSTER, seen)
    code = "JOB_CANCELED" if scenario == "cancelled" else "JOB_STOPPED_WITH_SAVEPOINT"
    assert codes(listed)[code] == "info" and listed.healthy  # was JOB_NOT_RUNNING (error) for a stop
    plan = plan_recovery(CLUSTER, listed, {})
    assert not plan.resubmits and plan.refusals == ()  # the old plan refused FINISHED: recover exited 1

    # The JobManager restarted (or jobstore.expiration-time passed): it knows no such job any more.
    assert next_stops(record, [(JOB, None)], SPECS) == record
    forgotten, _ = stopped(version, scenario, forgotten=True, remembered=record[JOB])
    diagnosis = diagnose(CLUSTER, forgotten)
    assert codes(diagnosis) == {"JOB_STOPPED_BY_PERSON": "info"} and diagnosis.healthy
    assert not plan_recovery(CLUSTER, diagnosis, {}).resubmits  # the old code resubmitted it (JOB_MISSING)

    # Without the record, it is what it always was: missing, resubmitted.
    unknown, _ = stopped(version, scenario, forgotten=True)
    assert "JOB_MISSING" in codes(diagnose(CLUSTER, unknown))


@pytest.mark.parametrize("version", STOPS_VERSIONS)
def test_a_released_stop_with_savepoint_comes_back_from_its_savepoint_not_an_older_checkpoint(version, tmp_path):
    seen, info = stopped(version, "stopped-with-savepoint")
    remember_stops(tmp_path, CLUSTER.name, [(JOB, info)], SPECS)
    released = release_stop(tmp_path, CLUSTER.name, JOB, by="alice")
    assert released.released_by == "alice" and not read_stops(tmp_path, CLUSTER.name)[JOB].stands
    savepoint = info.checkpoints.latest_savepoint.external_path
    # An older checkpoint of the same job lies in its directory (the lineage knows the job id).
    job_dir = tmp_path / info.id / "chk-2"
    job_dir.mkdir(parents=True)
    (job_dir / "_metadata").write_bytes(b"x")
    on_disk = tmp_path / savepoint.removeprefix("file:/data/checkpoints/")  # the savepoint itself
    on_disk.mkdir(parents=True)
    (on_disk / "_metadata").write_bytes(b"x")
    retained = {JOB: list_retained_checkpoints(tmp_path)}
    cluster = in_directory(tmp_path)
    for forgotten in (False, True):
        seen, _ = stopped(version, "stopped-with-savepoint", forgotten, read_stops(tmp_path, CLUSTER.name)[JOB])
        diagnosis = diagnose(cluster, seen)
        assert not diagnosis.healthy  # released: the job should run and does not
        (resubmit,) = plan_recovery(cluster, diagnosis, retained, {JOB: (info.id,)}).resubmits
        assert resubmit.restore_point.path == savepoint and resubmit.restore_point.kind == "savepoint"
        assert resubmit.released_stop_of == info.id


def test_a_job_seen_live_again_is_forgotten_and_a_cancel_that_resubmits_is_not_kept():
    cancelled = recorded_job("1.20.3", "cancelled")
    record = next_stops({}, [(JOB, cancelled)], SPECS)
    running = recorded_job("1.20.3", "healthy")
    assert next_stops(record, [(JOB, running)], SPECS) == {}
    resubmitting = {JOB: dataclasses.replace(CLUSTER.jobs[0], on_canceled="resubmit")}
    assert next_stops({}, [(JOB, cancelled)], resubmitting) == {}


def test_the_record_is_a_file_per_cluster_and_a_planted_symlink_is_not_followed(tmp_path):
    cancelled = recorded_job("2.2.0", "cancelled")
    remember_stops(tmp_path, "c1", [(JOB, cancelled)], SPECS)
    assert read_stops(tmp_path, "c1")[JOB].state == "CANCELED" and read_stops(tmp_path, "c2") == {}
    assert release_stop(tmp_path, "c1", "no-such-job", by="bob") is None
    lock = stops_file(tmp_path, "c3").with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path / "elsewhere", lock)
    with pytest.raises(OSError):
        remember_stops(tmp_path, "c3", [(JOB, cancelled)], SPECS)
    assert not (tmp_path / "elsewhere").exists()


# -- case 2: a cancel during a recovery stands --------------------------------------------------------------


@pytest.mark.parametrize("version", STOPS_VERSIONS)
def test_a_job_cancelled_while_the_recovery_waited_is_not_resubmitted(version):
    answers = recorded_answers(version, "cancelled")
    jid = answers["job"]["jid"]
    rest, jobmanager = recorded_rest("http://jm:8081", answers, jid)
    cluster = dataclasses.replace(CLUSTER, jobs=(JobSpec(name=JOB, jar=Path("/nonexistent.jar"), entry_class="X"),))
    # Planned when the job was RESTARTING (Flink waiting for slots); a person cancelled it meanwhile.
    planned = PlannedAction(Action.RESUBMIT_JOB, JOB, "it is RESTARTING", old_job_id=jid, job_id="f" * 32)
    progress = execute.resubmit_job(cluster, planned, ClusterClients(rest, None), model.Progress())
    (step,) = progress.steps
    assert step.status == StepStatus.SKIPPED and "cancelled by a person" in step.detail, step.detail
    assert not progress.resubmitted and not any("/jars" in path for path in jobmanager.asked)


# -- case 5: a stale lineage never picks an old checkpoint silently ----------------------------------------


def retain(root: Path, job_id: str, checkpoint: int, mtime: float) -> None:
    chk = root / job_id / f"chk-{checkpoint}"
    chk.mkdir(parents=True)
    (chk / "_metadata").write_bytes(b"metadata")
    os.utime(chk / "_metadata", (mtime, mtime))


def test_a_newer_checkpoint_outside_a_stale_lineage_makes_the_restore_risky_and_said(tmp_path):
    old, unseen = "a" * 32, "b" * 32
    retain(tmp_path, old, 50, 100.0)  # the lineage's, weeks old
    retain(tmp_path, unseen, 500, 900.0)  # the job resubmitted by hand while the tool did not watch
    directory = CheckpointDir(tmp_path, "/data/checkpoints")
    retained = list_retained_checkpoints(tmp_path)
    choice = choose_restore_point(JOB, directory, None, None, (old,), retained)
    assert choice.point.checkpoint_id == 50  # still the lineage's, but not silently:
    assert choice.older_than_newest and any("may be stale" in n and unseen in n for n in choice.notes)
    # A newer checkpoint that another job of the cluster is known to own is not this job's news.
    other = choose_restore_point(JOB, directory, None, None, (old,), retained, others_ids=frozenset({unseen}))
    assert other.point.checkpoint_id == 50 and not other.older_than_newest and other.notes == ()
    # exclusive: true means every job id there is the job's own, lineage or not (it was ignored before).
    exclusive = dataclasses.replace(directory, exclusive=True)
    assert choose_restore_point(JOB, exclusive, None, None, (old,), retained).point.checkpoint_id == 500


def test_the_plan_asks_a_human_for_a_restore_from_a_stale_lineage(tmp_path):
    from flink_runbook.runbook.deciding.approval import risky_steps

    old, unseen = "a" * 32, "b" * 32
    retain(tmp_path, old, 50, 100.0)
    retain(tmp_path, unseen, 500, 900.0)
    cluster = in_directory(tmp_path)
    seen, _ = stopped("1.20.3", "cancelled", forgotten=True)
    plan = plan_recovery(cluster, diagnose(cluster, seen), {JOB: list_retained_checkpoints(tmp_path)}, {JOB: (old,)})
    (resubmit,) = plan.resubmits
    assert resubmit.older_than_newest and risky_steps(plan, None)


# -- case 10: checkpoint paths that climb out, symlinked job directories -------------------------------------


def test_a_path_with_dot_dot_is_outside_the_checkpoint_directory(tmp_path):
    assert normalize_path("file:/data/checkpoints/../secrets/chk-1") == "/data/secrets/chk-1"
    from flink_runbook.flink.answers import CheckpointInfo, CheckpointStats

    history = CheckpointStats(latest_completed=CheckpointInfo(15, "file:/data/checkpoints/../other/chk-15", 1))
    choice = choose_restore_point(JOB, CheckpointDir(tmp_path, "/data/checkpoints"), history, "d" * 32, (), [])
    assert choice.point is None and "outside the configured checkpoint directory" in choice.refusal


def test_a_symlinked_job_directory_is_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    retain(elsewhere, "e" * 32, 7, 100.0)
    root = tmp_path / "checkpoints"
    root.mkdir()
    os.symlink(elsewhere / ("e" * 32), root / ("e" * 32))
    retain(root, "f" * 32, 3, 100.0)
    assert [c.job_id for c in list_retained_checkpoints(root)] == ["f" * 32]


# -- case 3: a deliberate `docker stop` of a TaskManager is not a crash ------------------------------------


def taskmanager(state: str, **fields) -> ContainerState:
    times = {"started_at": "2026-12-05T10:00:00.5Z", "finished_at": "2026-12-05T11:00:00Z"}
    return ContainerState(role="taskmanager", name="tm", service="taskmanager", state=state, container_id="tm1",
                          **times, **fields)


def test_a_stop_logged_since_the_last_start_is_a_persons_stop_a_die_alone_is_a_crash():
    started = datetime(2026, 12, 5, 10, 0, 0, 500000, tzinfo=UTC).timestamp()  # the container's StartedAt
    view = EngineView(client=None, listed=(), taken_at=started + 7200, stop_times={"tm1": (started + 3600,)})
    assert stopped_by_hand(view, taskmanager("exited", exit_code=143))
    assert not stopped_by_hand(view, taskmanager("running"))
    crashed = EngineView(client=None, listed=(), taken_at=started + 7200, stop_times={"tm1": (started - 60,)})
    assert not stopped_by_hand(crashed, taskmanager("exited", exit_code=137))  # a stop before the last start


def test_a_taskmanager_stopped_by_a_person_is_reported_and_left_unless_the_inventory_says_restart():
    base = observed("1.20.3", "failed-heartbeat-timeout")
    stopped_tm = taskmanager("exited", exit_code=143, stopped_by_hand=True)
    seen = dataclasses.replace(base, containers=ContainersView(containers=(running("jm", "jobmanager"), stopped_tm)))
    diagnosis = diagnose(CLUSTER, seen)
    found = codes(diagnosis)
    assert found["CONTAINER_STOPPED_BY_HAND"] == "warning" and "CONTAINER_NOT_RUNNING" not in found
    plan = plan_recovery(CLUSTER, diagnosis, {})
    # The old plan restarted it: [restart_taskmanagers, wait_for_taskmanagers, resubmit_job].
    assert not plan.of(Action.RESTART_TASKMANAGERS) and not plan.resubmits
    assert any("stopped by a person" in r for r in plan.refusals)
    restarting = dataclasses.replace(CLUSTER, restart_stopped=True)
    again = plan_recovery(restarting, diagnose(restarting, seen), {})
    assert again.of(Action.RESTART_TASKMANAGERS) and again.resubmits
    assert "CONTAINER_NOT_RUNNING" in codes(diagnose(restarting, seen))


def test_a_stop_is_remembered_after_dockers_event_log_forgot_it():
    stopped_tm = taskmanager("exited", exit_code=143, stopped_by_hand=True)
    record = next_container_stops({}, [stopped_tm])
    forgotten = dataclasses.replace(stopped_tm, stopped_by_hand=False)  # the event buffer moved on
    assert next_container_stops(record, [forgotten]) == record
    started_again = dataclasses.replace(forgotten, state="running")
    assert next_container_stops(record, [started_again]) == {}
    crashed_later = dataclasses.replace(forgotten, finished_at="2026-12-05T12:00:00Z")  # exited again by itself
    assert next_container_stops(record, [crashed_later]) == {}


def test_the_watcher_lets_a_stop_by_hand_be_and_acts_on_a_crash():
    sigterm = DockerEvent("container", "kill", "tm1", 100.0, "tm", labels={"signal": "15"})
    sigkill = DockerEvent("container", "kill", "tm1", 100.0, "tm", labels={"signal": "9"})
    die = DockerEvent("container", "die", "tm1", 103.0, "tm", exit_code=143)
    assert asks_to_stop(sigterm) and not asks_to_stop(sigkill)
    assert died_when_asked_to_stop(die, 100.0)
    assert not died_when_asked_to_stop(die, None)  # a die with no stop asked: a crash
    assert not died_when_asked_to_stop(dataclasses.replace(die, at=500.0), 100.0)  # long after: not that stop
    assert persons_stop(die, 100.0, "taskmanager", restart_stopped=False)
    assert not persons_stop(die, 100.0, "taskmanager", restart_stopped=True)  # the inventory asks to restart it
    assert not persons_stop(die, 100.0, "jobmanager", restart_stopped=False)  # a stopped JobManager is started


# -- after the review: what must not outlive its reason, and what must not be lost ---------------------------


def test_a_release_is_used_once_a_later_run_of_the_job_restores_from_its_own_checkpoints(tmp_path):
    seen, info = stopped("1.20.3", "stopped-with-savepoint")
    remember_stops(tmp_path, CLUSTER.name, [(JOB, info)], SPECS)
    released = release_stop(tmp_path, CLUSTER.name, JOB, by="alice")
    later_run = "c" * 32  # resubmitted from the savepoint, it ran, and Flink forgot it too
    retain(tmp_path, later_run, 900, 900.0)
    savepoint = info.checkpoints.latest_savepoint.external_path
    on_disk = tmp_path / savepoint.removeprefix("file:/data/checkpoints/")
    on_disk.mkdir(parents=True)
    (on_disk / "_metadata").write_bytes(b"x")
    cluster = in_directory(tmp_path)
    forgotten, _ = stopped("1.20.3", "stopped-with-savepoint", forgotten=True, remembered=released)
    retained = {JOB: list_retained_checkpoints(tmp_path)}
    plan = plan_recovery(cluster, diagnose(cluster, forgotten), retained, {JOB: (info.id, later_run)})
    (resubmit,) = plan.resubmits
    # Before the review, the release outlived the resubmission: back to the old savepoint, chk-900 ignored.
    assert resubmit.released_stop_of is None and resubmit.restore_point.checkpoint_id == 900
    forget_stop(tmp_path, CLUSTER.name, JOB)
    assert read_stops(tmp_path, CLUSTER.name) == {}


def test_a_record_that_cannot_be_read_resubmits_no_missing_job(tmp_path):
    path = stops_file(tmp_path, CLUSTER.name)
    path.parent.mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere.json", path)  # what cannot be read is not "no stop"
    with pytest.raises(OSError):
        read_stops(tmp_path, CLUSTER.name)
    (stand_in,) = unreadable_stops([JOB], "its record cannot be read").values()
    forgotten, _ = stopped("2.2.0", "cancelled", forgotten=True, remembered=stand_in)
    diagnosis = diagnose(CLUSTER, forgotten)
    assert codes(diagnosis) == {"JOB_STOPPED_BY_PERSON": "info"}
    assert not plan_recovery(CLUSTER, diagnosis, {}).resubmits


def test_a_look_taken_before_a_stop_was_recorded_does_not_forget_it_and_a_cancels_savepoint_is_kept():
    cancelled = recorded_job("1.20.3", "cancelled")
    record = next_stops({}, [(JOB, cancelled)], SPECS)
    running = recorded_job("1.20.3", "healthy")
    assert next_stops(record, [(JOB, running)], SPECS, looked_at=record[JOB].seen_at - 5) == record
    from flink_runbook.flink.answers import CheckpointInfo

    with_savepoint = dataclasses.replace(cancelled, checkpoints=dataclasses.replace(
        cancelled.checkpoints, latest_savepoint=CheckpointInfo(99, "file:/data/checkpoints/savepoints/sp-1", 1, True)))
    assert next_stops({}, [(JOB, with_savepoint)], SPECS)[JOB].savepoint == "file:/data/checkpoints/savepoints/sp-1"


def test_the_runbooks_own_failed_restart_is_not_a_persons_stop():
    stopped_tm = taskmanager("exited", exit_code=143, stopped_by_hand=True)
    finished = datetime(2026, 12, 5, 11, 0, 0, tzinfo=UTC).timestamp()
    own = {"tm": OwnRestart(finished - 3)}  # the runbook's docker restart, 3 s before it exited
    assert next_container_stops({}, [stopped_tm], own, now=finished + 60) == {}
    long_before = {"tm": OwnRestart(finished - 3600)}
    assert "tm" in next_container_stops({}, [stopped_tm], long_before, now=finished + 60)


# -- an unpause that came after Flink's heartbeat timeout: the window judges, not the job's whole history ------


@pytest.mark.parametrize("version", VERSIONS)
def test_stability_after_an_unpause_counts_the_exceptions_of_the_window_not_the_jobs_history(version, tmp_path):
    answers = recorded_answers(version, "healthy")
    # The job Flink restarted in place carries the fault's exceptions, all raised before the recovery acted.
    answers["job_exceptions"] = recorded_answers(version, "failed-heartbeat-timeout")["job_exceptions"]
    jid = answers["job"]["jid"]
    rest, jobmanager = recorded_rest("http://jm:8081", answers, jid)
    cluster = dataclasses.replace(CLUSTER, state_dir=tmp_path)
    plan = RecoveryPlan(
        CLUSTER.name, (PlannedAction(Action.UNPAUSE_CONTAINERS, "tm", "paused", containers=("tm",)),)
    )
    calm = execute.verify_stability(cluster, plan, ClusterClients(rest, None), model.Progress(), lambda _: None)
    assert all(c.passed for c in calm.checks), [c.detail for c in calm.checks]

    def fails_again_during_the_window(_: float) -> None:
        entries = jobmanager.by_path[f"/jobs/{jid}/exceptions"]["exceptionHistory"]["entries"]
        entries.insert(0, {**entries[0], "timestamp": int(time.time() * 1000) + 1})

    shaky = execute.verify_stability(
        cluster, plan, ClusterClients(rest, None), model.Progress(), fails_again_during_the_window
    )
    (step,) = shaky.steps
    assert step.status == StepStatus.FAILED and "1 new exception(s)" in step.detail, step.detail

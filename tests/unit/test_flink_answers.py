"""Reading Flink's REST answers, on answers recorded from real 1.20.3 and 2.2.0 clusters."""

from __future__ import annotations

import pytest

from flink_runbook.flink.answers import (
    ClusterOverview,
    parse_cluster_config,
    parse_cluster_overview,
    parse_exception_history,
    parse_jobs_overview,
    parse_taskmanagers,
    pick_job,
)

from .recorded import VERSIONS, answer, recorded_at_ms, recorded_job


@pytest.mark.parametrize("version", VERSIONS)
def test_overview_names_the_version_and_slots(version):
    overview = parse_cluster_overview(answer(version, "healthy", "overview"))
    assert overview == ClusterOverview(flink_version=version, taskmanagers=1, slots_total=2, slots_available=1)


@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeat_field_is_an_epoch_timestamp_not_an_age(version):
    now = recorded_at_ms(version, "healthy")
    (tm,) = parse_taskmanagers(answer(version, "healthy", "taskmanagers"), now)
    # Read as an age (the runbook's reading) it would be ~57 years.
    assert 0 <= tm.heartbeat_age_ms < 2_000
    assert (tm.slots_total, tm.slots_free) == (2, 1)


def test_just_registered_taskmanager_has_no_heartbeat_yet():
    # Seen on a real 1.20.3 cluster right after a TaskManager (re)registered: the field is 0.
    (tm,) = parse_taskmanagers(
        {
            "taskmanagers": [
                {"id": "172.21.0.3:36885-e67333", "timeSinceLastHeartbeat": 0, "slotsNumber": 2, "freeSlots": 2}
            ]
        },
        now_ms=1795501633400,
    )
    assert tm.heartbeat_age_ms is None


@pytest.mark.parametrize("version", VERSIONS)
def test_frozen_taskmanager_heartbeat_age_grows(version):
    now = recorded_at_ms(version, "frozen-before-timeout")
    (tm,) = parse_taskmanagers(answer(version, "frozen-before-timeout", "taskmanagers"), now)
    assert 2_000 < tm.heartbeat_age_ms < 5_000  # frozen 2.5 s earlier; heartbeat.timeout 5 s


@pytest.mark.parametrize("version", VERSIONS)
def test_taskmanager_is_gone_after_the_timeout(version):
    assert parse_taskmanagers(answer(version, "failed-heartbeat-timeout", "taskmanagers"), 0) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_exception_history_of_the_heartbeat_incident(version):
    history = parse_exception_history(answer(version, "failed-heartbeat-timeout", "job_exceptions"))
    entries = history.entries
    assert not history.truncated
    assert len(entries) == 4  # the timeout and three failed restarts
    assert entries[0].restart_strategy_exhausted == (
        "FixedDelayRestartBackoffTimeStrategy(maxNumberRestartAttempts=3, backoffTimeMS=1000)"
    )
    assert "NoResourceAvailableException" in entries[1].message
    heartbeat = entries[-1]
    assert heartbeat.exception_name == "java.util.concurrent.TimeoutException"
    assert heartbeat.heartbeat_timeout_of == heartbeat.taskmanager_id
    (frozen,) = answer(version, "frozen-before-timeout", "taskmanagers")["taskmanagers"]
    assert heartbeat.heartbeat_timeout_of == frozen["id"]


def test_only_the_exception_history_exists_on_2x():
    assert set(answer("2.2.0", "failed-heartbeat-timeout", "job_exceptions")) == {"exceptionHistory"}
    legacy = answer("1.20.3", "failed-heartbeat-timeout", "job_exceptions")
    assert len(legacy["all-exceptions"]) == 1  # not the history: the job failed 4 times


@pytest.mark.parametrize("version", VERSIONS)
def test_healthy_job(version):
    job = recorded_job(version, "healthy")
    assert (job.name, job.state, job.failures, job.root_cause) == ("realtime-cdc-demo", "RUNNING", 0, None)
    assert job.vertices_running == job.vertices_total == 1
    assert job.checkpoints.interval_ms == 2000
    assert job.checkpoints.retained_on_cancellation is True
    latest = job.checkpoints.latest_completed
    assert latest.external_path == f"file:/data/checkpoints/{job.id}/chk-{latest.id}"


@pytest.mark.parametrize("version", VERSIONS)
def test_failed_job_keeps_its_last_checkpoint(version):
    job = recorded_job(version, "failed-heartbeat-timeout")
    assert job.state == "FAILED"
    assert job.root_cause.startswith("org.apache.flink.runtime.JobException: Recovery is suppressed by")
    assert job.checkpoints.latest_completed.external_path.startswith("file:/data/checkpoints/")


def test_pick_job_prefers_a_live_job_then_the_newest():
    jobs = parse_jobs_overview(
        {
            "jobs": [
                {"jid": "old", "name": "a", "state": "FAILED", "start-time": 1},
                {"jid": "new", "name": "a", "state": "RUNNING", "start-time": 2},
                {"jid": "newer-failed", "name": "a", "state": "FAILED", "start-time": 3},
                {"jid": "other", "name": "b", "state": "RUNNING", "start-time": 4},
            ]
        }
    )
    assert pick_job(jobs, "a").id == "new"
    assert pick_job(jobs[:1] + jobs[2:3], "a").id == "newer-failed"
    assert pick_job(jobs, "missing") is None


@pytest.mark.parametrize("version", VERSIONS)
def test_cluster_config_lists_the_heartbeat_settings(version):
    config = parse_cluster_config(answer(version, "healthy", "jobmanager_config"))
    assert (config["heartbeat.interval"], config["heartbeat.timeout"]) == ("1000", "5000")

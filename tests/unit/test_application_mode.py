"""Application mode (`standalone-job`): recognised from what a real JobManager answers, never resubmitted to,
and a stopped JobManager started only when high availability brings its job back from its checkpoint.

Recorded from the demo stack with stack/application-mode.yml on 1.20.3 and 2.2.0
(tests/fixtures/record_application_mode_rest.py).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from flink_runbook.containers.states import ContainerState, flink_properties
from flink_runbook.runbook.deciding.approval import risky_steps
from flink_runbook.runbook.deciding.plan import Action, plan_recovery
from flink_runbook.runbook.observing.application_mode import (
    APPLICATION_FAILED_EXIT_CODE,
    ha_of,
    restore_path,
    runs_in_application_mode,
    start_refusal,
)
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.findings import FindingCode, Severity
from flink_runbook.runbook.observing.observe import ContainersView, check_jobmanager
from flink_runbook.runbook.reporting.status import cluster_status, status_lines

from .recorded import APPLICATION_MODE_VERSIONS, RECORDED, answer, recorded_answers, recorded_rest
from .test_findings import CLUSTER, observed
from .test_recovery_plan import tm_container, unreachable, with_containers

RUNNING = "application-mode-running"
COMMAND = ("standalone-job", "--job-classname", "flinkrunbook.demo.SequenceToCsvJob", "--output", "/data/output")
HA = (("high-availability.type", "zookeeper"),)


def application_jm(state: str = "running", exit_code: int | None = None, **fields) -> ContainerState:
    return ContainerState(
        role="jobmanager", name="jm", service="jobmanager", state=state, exit_code=exit_code, container_id="jm",
        **{"command": COMMAND, **fields},
    )


def live_view(version: str, scenario: str):
    # /config and /jars are recorded to pin what tells application mode; the runbook reads neither.
    answers = {k: v for k, v in recorded_answers(version, scenario).items() if k not in ("config", "jars")}
    (job,) = answers["jobs_overview"]["jobs"]
    rest, _ = recorded_rest(CLUSTER.rest.url, answers, job["jid"])
    return check_jobmanager(CLUSTER, rest)


@pytest.mark.parametrize("version", APPLICATION_MODE_VERSIONS)
def test_the_live_config_says_application_mode_and_a_session_jobmanager_does_not(version):
    config = {e["key"]: e["value"] for e in answer(version, RUNNING, "jobmanager_config")}
    assert config["execution.target"] == "embedded"
    session = {e["key"]: e["value"] for e in answer(version, "healthy", "jobmanager_config")}
    assert "execution.target" not in session and not runs_in_application_mode(session)
    # What else tells it: no web submission, and no /jars to upload to or run from.
    assert answer(version, RUNNING, "config")["features"]["web-submit"] is False
    assert "jars 404" in (RECORDED / f"flink-{version}" / RUNNING / "statuses.txt").read_text()

    view, _, jobs = live_view(version, RUNNING)
    assert view.reachable and view.application_mode and view.high_availability is None
    assert jobs[0].info.state == "RUNNING"
    assert not live_view(version, "healthy")[0].application_mode


@pytest.mark.parametrize("version", APPLICATION_MODE_VERSIONS)
def test_diagnose_says_application_mode_and_what_to_configure(version):
    view, taskmanagers, jobs = live_view(version, RUNNING)
    seen = dataclasses.replace(
        observed(version, "healthy"), jobmanager=view, taskmanagers=tuple(taskmanagers), jobs=tuple(jobs)
    )
    seen = with_containers(seen, application_jm(restart_policy="unless-stopped"), tm_container("running"))
    diagnosis = diagnose(CLUSTER, seen)
    assert diagnosis.healthy and diagnosis.to_dict()["application_mode"] is True
    (finding,) = [f for f in diagnosis.findings if f.code == FindingCode.APPLICATION_MODE]
    assert finding.severity == Severity.WARNING  # no HA: a stopped JobManager cannot be brought back
    assert "execution.target: embedded" in finding.evidence and "high availability: none" in finding.evidence
    assert "high-availability.type: zookeeper" in finding.action
    assert 'restart: \\"no\\"' not in finding.action and 'restart: "no"' in finding.action  # its policy is unsafe
    assert plan_recovery(CLUSTER, diagnosis).healthy
    # With HA the policy is still unsafe: Docker would restart it after a cancel (exit 0), HA having forgotten the
    # job; without such a policy, HA is all it needs (info).
    always = application_jm(restart_policy="always", flink_properties=HA)
    with_ha = with_containers(seen, always, tm_container("running"))
    (finding,) = [f for f in diagnose(CLUSTER, with_ha).findings if f.code == FindingCode.APPLICATION_MODE]
    assert finding.severity == Severity.WARNING and "a person's cancel too" in finding.action
    quiet = with_containers(seen, application_jm(restart_policy="no", flink_properties=HA), tm_container("running"))
    (finding,) = [f for f in diagnose(CLUSTER, quiet).findings if f.code == FindingCode.APPLICATION_MODE]
    assert finding.severity == Severity.INFO and "restart policy" not in finding.action


@pytest.mark.parametrize("version", APPLICATION_MODE_VERSIONS)
def test_a_jobmanager_that_ended_with_its_failed_job_is_not_started_without_ha(version):
    folder = RECORDED / f"flink-{version}" / "application-mode-failed"
    state = json.loads((folder / "jobmanager_state.json").read_text())
    log = (folder / "jobmanager_log.txt").read_text()
    assert state["ExitCode"] == APPLICATION_FAILED_EXIT_CODE and "with exit code 1443" in log

    ended = application_jm("exited", state["ExitCode"])
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, unreachable("unreachable", ended, tm_container("running"))))
    assert not plan.of(Action.START_JOBMANAGER) and not plan.actions
    (refusal,) = plan.refusals
    assert "application mode without high availability" in refusal and "FAILED (exit code 163)" in refusal
    assert "from scratch" in refusal and "high-availability.type: zookeeper" in refusal
    assert "execution.state-recovery.path" in refusal


def test_a_stopped_application_jobmanager_is_started_only_when_ha_brings_its_job_back():
    def plan_for(jm: ContainerState):
        return plan_recovery(CLUSTER, diagnose(CLUSTER, unreachable("unreachable", jm, tm_container("running"))))

    stopped_with_ha = plan_for(application_jm("exited", 143, flink_properties=HA))
    (start,) = stopped_with_ha.of(Action.START_JOBMANAGER)
    assert start.starts_stopped == ("jm",) and stopped_with_ha.refusals == ()
    # An application that FAILED is cleaned out of HA storage: started again it would run from scratch.
    failed_with_ha = plan_for(application_jm("exited", APPLICATION_FAILED_EXIT_CODE, flink_properties=HA))
    assert not failed_with_ha.actions and "removed from HA storage" in failed_with_ha.refusals[0]
    # Exit code 0: its job FINISHED or a person CANCELED it (ApplicationStatus.CANCELED exits 0, as measured in
    # tests/integration/test_application_mode.py). A decision, not a fault: healthy, with a warning that says so
    # (the monitor neither recovers nor pages); never started, HA or not (HA has forgotten the job).
    for properties in (HA, ()):
        ended_jm = application_jm("exited", 0, flink_properties=properties)
        diagnosis = diagnose(CLUSTER, unreachable("unreachable", ended_jm, tm_container("running")))
        assert diagnosis.healthy, [f.code for f in diagnosis.serious]
        (ended,) = [f for f in diagnosis.findings if f.code == FindingCode.APPLICATION_ENDED]
        assert ended.severity == Severity.WARNING and "exited 0" in ended.summary and "a cancel stands" in ended.action
        assert plan_recovery(CLUSTER, diagnosis).healthy
        shown = "\n".join(status_lines([cluster_status(CLUSTER, diagnosis, "", [], None, [])]))
        assert "job realtime-cdc-demo    ENDED  the application ended" in shown and "MISSING" not in shown
    refusal = start_refusal(application_jm("exited", 0, flink_properties=HA), "realtime-cdc-demo")
    assert "exited 0: its job FINISHED, or was CANCELED by a person" in refusal and "a cancel stands" in refusal
    assert "from scratch" in refusal and "If the end was meant, there is nothing to do" in refusal
    assert "configure high availability" not in start_refusal(application_jm("exited", 0), "realtime-cdc-demo")
    # Two JobManagers (a standby): one exited with the application's FAILED end (163), the other was stopped.
    # HA forgot the job for both: the stopped one is not started either.
    standby = dataclasses.replace(application_jm("exited", 143, flink_properties=HA), name="jm2", container_id="jm2")
    failed = application_jm("exited", APPLICATION_FAILED_EXIT_CODE, flink_properties=HA)
    both = plan_recovery(CLUSTER, diagnose(CLUSTER, unreachable("unreachable", failed, standby,
                                                                tm_container("running"))))
    assert not both.of(Action.START_JOBMANAGER)
    assert any("jm2 runs realtime-cdc-demo" in r and "jm of the same cluster exited" in r for r in both.refusals)
    # A restore path is recognised, not trusted: it is fixed, and may be older than the newest checkpoint.
    pinned = application_jm("exited", 143, command=(*COMMAND[:3], "--fromSavepoint", "file:/data/sp-1", *COMMAND[3:]))
    assert restore_path(pinned) == "file:/data/sp-1"
    refused = plan_for(pinned)
    assert not refused.actions and "set to restore from file:/data/sp-1" in refused.refusals[0]
    # Paused is the same process: unpaused, as any JobManager.
    assert plan_for(application_jm("paused")).of(Action.START_JOBMANAGER)


def test_its_job_is_never_resubmitted_and_a_lost_taskmanager_is_brought_back_as_today():
    base = observed("1.20.3", "failed-heartbeat-timeout")
    application = dataclasses.replace(base, jobmanager=dataclasses.replace(base.jobmanager, application_mode=True))
    failed = with_containers(application, application_jm(), tm_container("exited"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, failed))
    assert [a.action for a in plan.actions] == [Action.RESTART_TASKMANAGERS, Action.WAIT_FOR_TASKMANAGERS]
    assert "is FAILED: not resubmitted" in plan.refusals[0] and "takes no job submission" in plan.refusals[0]

    frozen = with_containers(application, application_jm(), tm_container("paused"))
    assert [a.action for a in plan_recovery(CLUSTER, diagnose(CLUSTER, frozen)).actions] == [Action.UNPAUSE_CONTAINERS]

    restarting_job = dataclasses.replace(failed.jobs[0].info, state="RESTARTING")
    restarting = dataclasses.replace(failed, jobs=(dataclasses.replace(failed.jobs[0], info=restarting_job),))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, restarting))
    (wait_for_flink,) = plan.resubmits
    assert wait_for_flink.application_mode and wait_for_flink.restore_point is None and plan.refusals == ()
    assert risky_steps(plan) == ()  # it submits nothing, from no checkpoint or any other


def test_only_the_flink_properties_that_decide_a_start_are_kept_from_a_container():
    env = [
        "PATH=/usr/bin",
        "FLINK_PROPERTIES=high-availability.type: zookeeper\ns3.secret-key: hunter2\n"
        "execution.state-recovery.path: file:/data/chk-7\n",
    ]
    assert flink_properties(env) == (
        ("high-availability.type", "zookeeper"), ("execution.state-recovery.path", "file:/data/chk-7")
    )
    assert restore_path(application_jm(flink_properties=flink_properties(env))) == "file:/data/chk-7"
    assert flink_properties(None) == () and ContainersView().containers == ()
    # Set on the command as dynamic properties (as stack/application-mode.yml sets its restart strategy).
    dynamic = application_jm(
        command=(*COMMAND, "-Dhigh-availability.type=zookeeper", "-D", "execution.savepoint.path=/sp")
    )
    assert ha_of(dynamic) == "zookeeper" and restore_path(dynamic) == "/sp"

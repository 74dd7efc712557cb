"""The fault watcher's pure parts: Docker's events read as findings, the runbook's own look at a glance and what
of its diagnosis counts as a fault, one fault one recovery, and a container cut off its network planned as a
reconnect (never a blind restart)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from flink_runbook.containers.docker_events import docker_event
from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.rest import FlinkRestClient
from flink_runbook.inventory import ClusterSpec, JobSpec
from flink_runbook.polling import wait_until
from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.deciding.guard import GuardAction, GuardDecision
from flink_runbook.runbook.deciding.plan import plan_recovery
from flink_runbook.runbook.observing.diagnosis import Diagnosis, diagnose
from flink_runbook.runbook.observing.fault_watch import (
    Fault,
    FaultDeduper,
    WatchedContainer,
    container_fault,
    fault_persists,
    glance_fault,
    restarts_by_itself,
)
from flink_runbook.runbook.observing.findings import Finding
from flink_runbook.runbook.observing.observe import Depth, observe_cluster
from flink_runbook.runbook.reporting.events import STARTED_BY_WATCHER, fault_event

from .recorded import STOPS_VERSIONS, VERSIONS, recorded_answers, recorded_rest
from .test_findings import CLUSTER, observed
from .test_recovery_plan import LONG_AGO, jm_container, with_containers

# Recorded from a real engine (its version is in the file): a container with Compose labels and a
# failing healthcheck, paused, unpaused, disconnected and reconnected, then its process kill -9'd.
RECORDED_EVENTS = json.loads((Path(__file__).parents[1] / "fixtures" / "docker" / "events-20.10.json").read_text())


def recorded_events():
    return [e for e in (docker_event(raw) for raw in RECORDED_EVENTS["events"]) if e is not None]


def watched_by_id():
    container_id = next(e.container_id for e in recorded_events() if e.kind == "container")
    return {container_id: WatchedContainer("realtime-pipeline", "taskmanager", "rec-events")}


def test_recorded_docker_events_become_the_findings_they_are():
    faults = [container_fault(e, watched_by_id().get(e.container_id)) for e in recorded_events()]
    codes = [f.code for f in faults if f is not None]
    # start, unpause, connect are not faults; the disconnect that follows the die is the die's own teardown
    assert codes == [
        "CONTAINER_UNHEALTHY",
        "CONTAINER_PAUSED",
        "CONTAINER_DISCONNECTED",
        "CONTAINER_DISCONNECTED",
        "CONTAINER_EXITED",
        "CONTAINER_DISCONNECTED",
    ]
    died = next(f for f in faults if f and f.code == "CONTAINER_EXITED")
    assert "exited with code 137" in died.what and died.definite and died.container == "rec-events"
    (finding,) = died.findings  # a finding like the runbook's others: severity, evidence, what to do, subject
    assert (finding.severity, finding.subject) == ("error", "rec-events")
    assert "docker restart rec-events" in finding.action
    paused = next(f for f in faults if f and f.code == "CONTAINER_PAUSED")
    assert "docker unpause rec-events" in paused.findings[0].action
    assert all(f.at > 1.7e9 for f in faults if f)  # Docker's own time, in seconds


def test_events_of_containers_outside_the_inventory_are_not_faults():
    assert all(container_fault(e, None) is None for e in recorded_events())


def test_an_event_that_is_not_a_container_or_network_event_is_ignored():
    assert docker_event({"Type": "image", "Action": "pull", "Actor": {"ID": "x"}}) is None
    assert docker_event({"Type": "network", "Action": "create", "Actor": {"ID": "n", "Attributes": {}}}) is None


def glance(cluster: ClusterSpec, answers: dict, jid: str) -> tuple[Diagnosis, list[str]]:
    """The runbook's look at a glance on a JobManager answering as recorded (no engine here), and what it asked."""
    rest, asked = recorded_rest(cluster.rest.url, answers, jid)
    seen = observe_cluster(cluster, ClusterClients(rest, None, "no Docker engine in a unit test"), Depth.GLANCE)
    return diagnose(cluster, seen), asked.asked


def recorded_glance(version: str, scenario: str, cluster: ClusterSpec = CLUSTER) -> tuple[Diagnosis, list[str]]:
    answers = recorded_answers(version, scenario)
    return glance(cluster, answers, answers["job"]["jid"])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_glance_reads_nothing_per_job_and_picks_the_job_as_the_full_look_does(version):
    diagnosis, asked = recorded_glance(version, "failed-heartbeat-timeout")
    assert asked == ["/overview", "/jobmanager/config", "/taskmanagers", "/jobs/overview"]
    (job,) = diagnosis.observation.jobs
    full = observed(version, "failed-heartbeat-timeout").jobs[0].info
    assert (job.info.id, job.info.state) == (full.id, full.state) == (full.id, "FAILED")
    assert diagnosis.observation.depth == Depth.GLANCE


@pytest.mark.parametrize("version", VERSIONS)
def test_a_stale_heartbeat_alone_is_no_fault_and_never_a_restart(version):
    # frozen-before-timeout: the TaskManager is frozen, Flink has not timed it out yet; the job shows RUNNING.
    diagnosis, _ = recorded_glance(version, "frozen-before-timeout")
    assert "TASKMANAGER_HEARTBEAT_STALE" in {f.code for f in diagnosis.findings}  # seen, a warning
    assert glance_fault(diagnosis, 0.0) is None
    taskmanager = diagnosis.observation.taskmanagers[0]
    running_tm = ContainerState(
        role="taskmanager", name="tm", service="taskmanager", state="running", container_id="tm",
        ip_addresses=(taskmanager.host,), started_at=LONG_AGO,
    )
    seen = with_containers(observed(version, "frozen-before-timeout"), jm_container(), running_tm)
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen), {})
    assert not plan.of("restart_taskmanagers")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_glance_names_the_runbooks_findings(version):
    fault = glance_fault(recorded_glance(version, "failed-heartbeat-timeout")[0], 5.0)
    assert fault is not None and not fault.definite and fault.at == 5.0 and fault.source == "rest"
    assert [f.code for f in fault.findings] == ["NO_TASKMANAGERS", "JOB_FAILED"]  # most severe first, the runbook's
    assert glance_fault(recorded_glance(version, "healthy")[0], 5.0) is None


def test_a_jobmanager_that_does_not_answer_is_a_fault():
    nothing_listens = dataclasses.replace(CLUSTER, rest=dataclasses.replace(CLUSTER.rest, url="http://127.0.0.1:9"))
    rest = FlinkRestClient("http://127.0.0.1:9", read_retries=0)
    seen = observe_cluster(nothing_listens, ClusterClients(rest, None, "no engine"), Depth.GLANCE)
    fault = glance_fault(diagnose(nothing_listens, seen), 0.0)
    assert fault is not None and fault.code == "JOBMANAGER_UNREACHABLE" and "127.0.0.1:9" in fault.what


@pytest.mark.parametrize("version", VERSIONS)
def test_a_suspended_or_restarting_job_is_a_fault(version):
    answers = recorded_answers(version, "healthy")
    for state, code in (("SUSPENDED", "JOB_NOT_RUNNING"), ("RESTARTING", "JOB_RESTARTING")):
        answers["jobs_overview"] = {"jobs": [{**answers["jobs_overview"]["jobs"][0], "state": state}]}
        fault = glance_fault(glance(CLUSTER, answers, answers["job"]["jid"])[0], 0.0)
        assert fault is not None and fault.code == code, (state, fault)


@pytest.mark.parametrize("version", STOPS_VERSIONS)
@pytest.mark.parametrize("on_canceled", ["leave", "resubmit"])
def test_a_cancelled_or_stopped_job_is_not_a_glances_fault(version, on_canceled):
    """A glance cannot see a stop's savepoint (no per-job reads): an ended job is the monitor's full look to judge,
    whatever its entry says to do with a cancel."""
    cluster = dataclasses.replace(CLUSTER, jobs=(JobSpec(name="realtime-cdc-demo", on_canceled=on_canceled),))
    for scenario in ("cancelled", "stopped-with-savepoint"):
        diagnosis, _ = recorded_glance(version, scenario, cluster)
        assert glance_fault(diagnosis, 0.0) is None, (scenario, diagnosis.findings)
    stopped, _ = recorded_glance(version, "stopped-with-savepoint", cluster)
    assert "JOB_NOT_RUNNING" in {f.code for f in stopped.serious}  # what the glance alone would have acted on


@pytest.mark.parametrize("version", VERSIONS)
def test_the_glance_does_not_count_a_persons_decisions_as_faults(version):
    answers = recorded_answers(version, "healthy")
    answers["taskmanagers"] = {"taskmanagers": []}  # the one TaskManager was stopped by a person
    answers["jobs_overview"] = {"jobs": []}  # and the job they cancelled is forgotten
    diagnosis, _ = glance(CLUSTER, answers, answers["job"]["jid"])
    fault = glance_fault(diagnosis, 0.0)
    assert fault is not None and {f.code for f in fault.findings} == {"NO_TASKMANAGERS", "JOB_MISSING"}
    assert glance_fault(diagnosis, 0.0, frozenset({"realtime-cdc-demo"}), expected_taskmanagers=0) is None
    only_the_job = glance_fault(diagnosis, 0.0, expected_taskmanagers=0)
    assert [f.code for f in only_the_job.findings] == ["JOB_MISSING"]


def fault(code: str = "CONTAINER_PAUSED", source: str = "docker", at: float = 100.0) -> Fault:
    return Fault("realtime-pipeline", source, (Finding(code, "error", "what", "", ""),), at)


def test_one_fault_starts_one_recovery():
    dedupe = FaultDeduper(recheck_s=30)
    assert dedupe.admit(fault(), 100)
    dedupe.recovery_started("realtime-pipeline")
    # While it runs: neither the Docker fact that follows (its own restart's die) nor the glance's reading
    assert not dedupe.admit(fault("CONTAINER_EXITED"), 101)
    assert not dedupe.admit(fault("TASKMANAGERS_MISSING", "rest"), 102)
    # The Docker fact seen while it ran comes back when it ends, to be checked against the container then
    assert dedupe.recovery_ended("realtime-pipeline", 110).code == "CONTAINER_EXITED"
    # The same reading right after the recovery is its aftermath: looked at again only after recheck_s
    assert dedupe.admit(fault("TASKMANAGERS_MISSING", "rest"), 111)
    assert not dedupe.admit(fault("TASKMANAGERS_MISSING", "rest"), 120)
    assert dedupe.admit(fault("TASKMANAGERS_MISSING", "rest"), 142)
    # A new fact from Docker is always looked at
    assert dedupe.admit(fault("CONTAINER_PAUSED"), 143)


def test_the_watchers_event_never_asks_the_trigger_for_a_second_recovery():
    recover = GuardDecision(GuardAction.RECOVER, "unhealthy; recovery 1 of at most 3 in the window")
    event = fault_event(fault(), "http://127.0.0.1:8081", recover)
    assert event.event == "flink.cluster.unhealthy"
    assert event.resource["flink.recovery"] == STARTED_BY_WATCHER != "recover"  # the trigger matches "recover"
    assert event.payload["findings"] == [{"code": "CONTAINER_PAUSED", "severity": "error", "summary": "what"}]
    assert event.payload["decision"] == "recover"
    wait = GuardDecision(GuardAction.WAIT, "cooldown")
    assert fault_event(fault(), "http://x", wait).resource["flink.recovery"] == "wait"


def disconnected_tm(state: str = "running", networks: tuple[str, ...] = ()) -> ContainerState:
    return ContainerState(
        role="taskmanager", name="tm", service="taskmanager", state=state, container_id="tm",
        network_mode="realtime-pipeline_default", networks=networks, started_at=LONG_AGO,
    )


def test_a_container_cut_off_its_network_is_reconnected_first_then_observed_again():
    seen = with_containers(observed("1.20.3", "failed-heartbeat-timeout"), jm_container(), disconnected_tm())
    diagnosis = diagnose(CLUSTER, seen)
    assert "CONTAINER_DISCONNECTED" in {f.code for f in diagnosis.findings}
    plan = plan_recovery(CLUSTER, diagnosis, {})
    assert [a.action for a in plan.actions] == ["reconnect_networks"] and plan.observe_again
    assert plan.actions[0].containers == ("tm",)


@pytest.mark.parametrize(
    "container",
    [
        disconnected_tm(networks=("realtime-pipeline_default",)),  # attached
        disconnected_tm(state="exited"),  # a stopped container has no attachments to lose
        dataclasses.replace(disconnected_tm(), network_mode="host"),
        dataclasses.replace(disconnected_tm(), network_mode="bridge"),
        dataclasses.replace(disconnected_tm(), network_mode="container:abc"),
    ],
)
def test_what_is_not_cut_off(container):
    assert container.detached_from is None


@pytest.mark.parametrize(
    "policy, exit_code, restarts",
    [
        ("unless-stopped", 137, True),
        ("always", 0, True),
        ("on-failure", 137, True),
        ("on-failure", 0, False),
        ("no", 137, False),  # the official image's compose examples set none: the recovery restarts it
        ("", 1, False),
    ],
)
def test_which_restart_policies_start_a_crashed_container_again(policy, exit_code, restarts):
    exited = dataclasses.replace(disconnected_tm("exited"), exit_code=exit_code, restart_policy=policy or None)
    assert restarts_by_itself(exited) is restarts


def test_a_docker_engine_that_is_down_is_retried_with_backoff_and_the_rest_watch_goes_on(tmp_path):
    from flink_runbook.serving.fault_watch import FaultWatcher

    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "clusters:\n  - name: far\n    rest: {url: 'http://127.0.0.1:9'}\n"
        f"    docker: {{host: 'unix://{tmp_path}/no-engine.sock'}}\n"
        "    containers: {compose_project: far}\n"
    )
    said: list[str] = []
    watcher = FaultWatcher(inventory, said.append, rest_interval_s=0.5, recheck_s=3600)
    watcher.deduper.recovery_started("far")  # the glance's fault (nothing on port 9) is not what this tests
    watcher.start()
    try:
        wait_until(
            lambda: list(said),
            lambda lines: sum("broke" in line for line in lines) >= 2,
            timeout=10,
            what="two retries",
        )
    finally:
        watcher.stop()
    broke = [line for line in said if "broke" in line]
    assert "no-engine.sock" in broke[0] and "again in 1s" in broke[0] and "again in 2s" in broke[1]
    assert all(thread.is_alive() for thread in watcher._threads if thread.name == "watch rest")


@pytest.mark.parametrize(
    "code, state, holds",
    [
        ("CONTAINER_PAUSED", disconnected_tm(state="paused"), True),
        ("CONTAINER_PAUSED", disconnected_tm(networks=("realtime-pipeline_default",)), False),
        ("CONTAINER_EXITED", disconnected_tm(state="exited"), True),
        ("CONTAINER_EXITED", disconnected_tm(state="restarting"), False),  # the recovery's own restart, or Docker's
        ("CONTAINER_DISCONNECTED", disconnected_tm(), True),
        ("CONTAINER_DISCONNECTED", disconnected_tm(networks=("realtime-pipeline_default",)), False),
        ("CONTAINER_UNHEALTHY", dataclasses.replace(disconnected_tm(), health="unhealthy"), True),
    ],
)
def test_a_fault_seen_during_a_recovery_is_acted_on_after_it_only_if_it_still_holds(code, state, holds):
    assert fault_persists(fault(code), state) is holds

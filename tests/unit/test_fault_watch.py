"""The fault watcher's pure parts: Docker's events read, what counts as a fault, one fault one recovery,
and a container cut off its network planned as a reconnect (never a blind restart)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from flink_runbook.containers.docker_events import docker_event
from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.answers import JobSummary, parse_jobs_overview, parse_taskmanagers
from flink_runbook.inventory import JobSpec
from flink_runbook.polling import wait_until
from flink_runbook.runbook.diagnosis import diagnose
from flink_runbook.runbook.events import STARTED_BY_WATCHER, fault_event
from flink_runbook.runbook.fault_watch import (
    Fault,
    FaultDeduper,
    WatchedContainer,
    container_fault,
    fault_persists,
    rest_fault,
    restarts_by_itself,
)
from flink_runbook.runbook.guard import GuardAction, GuardDecision
from flink_runbook.runbook.plan import plan_recovery

from .recorded import VERSIONS, answer, recorded_at_ms
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


def test_recorded_docker_events_become_the_faults_they_are():
    faults = [container_fault(e, watched_by_id()) for e in recorded_events()]
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
    assert all(f.at > 1.7e9 for f in faults if f)  # Docker's own time, in seconds


def test_events_of_containers_outside_the_inventory_are_not_faults():
    assert all(container_fault(e, {}) is None for e in recorded_events())


def test_an_event_that_is_not_a_container_or_network_event_is_ignored():
    assert docker_event({"Type": "image", "Action": "pull", "Actor": {"ID": "x"}}) is None
    assert docker_event({"Type": "network", "Action": "create", "Actor": {"ID": "n", "Attributes": {}}}) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_a_stale_heartbeat_alone_is_no_fault_and_never_a_restart(version):
    # frozen-before-timeout: the TaskManager is frozen, Flink has not timed it out yet; the job shows RUNNING.
    now = recorded_at_ms(version, "frozen-before-timeout")
    taskmanagers = parse_taskmanagers(answer(version, "frozen-before-timeout", "taskmanagers"), now)
    jobs = parse_jobs_overview(answer(version, "frozen-before-timeout", "jobs_overview"))
    assert taskmanagers and taskmanagers[0].heartbeat_age_ms > 2000  # stale: two of the demo's 1 s heartbeats missed
    assert rest_fault(CLUSTER, taskmanagers, jobs, None, now / 1000) is None
    running_tm = ContainerState(
        role="taskmanager", name="tm", service="taskmanager", state="running", container_id="tm",
        ip_addresses=(taskmanagers[0].host,), started_at=LONG_AGO,
    )  # fmt: skip
    seen = with_containers(observed(version, "frozen-before-timeout"), jm_container(), running_tm)
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen), {})
    assert not plan.of("restart_taskmanagers")


@pytest.mark.parametrize("version", VERSIONS)
def test_rest_faults_from_recorded_answers(version):
    now = recorded_at_ms(version, "failed-heartbeat-timeout")
    taskmanagers = parse_taskmanagers(answer(version, "failed-heartbeat-timeout", "taskmanagers"), now)
    jobs = parse_jobs_overview(answer(version, "failed-heartbeat-timeout", "jobs_overview"))
    fault = rest_fault(CLUSTER, taskmanagers, jobs, None, now / 1000)
    assert fault is not None and fault.code in ("TASKMANAGERS_MISSING", "JOB_NOT_RUNNING") and not fault.definite
    healthy = parse_jobs_overview(answer(version, "healthy", "jobs_overview"))
    healthy_tms = parse_taskmanagers(answer(version, "healthy", "taskmanagers"), now)
    assert rest_fault(CLUSTER, healthy_tms, healthy, None, now / 1000) is None
    down = rest_fault(CLUSTER, None, None, "connection refused", now / 1000)
    assert down is not None and down.code == "JOBMANAGER_UNREACHABLE" and "connection refused" in down.what


def test_a_cancelled_job_is_not_a_fault_unless_its_entry_resubmits_it():
    jobs = [JobSummary("a" * 32, "realtime-cdc-demo", "CANCELED", 1)]
    tms = parse_taskmanagers(answer("1.20.3", "healthy", "taskmanagers"), 0)
    assert rest_fault(CLUSTER, tms, jobs, None, 0) is None
    resubmitting = dataclasses.replace(CLUSTER, jobs=(JobSpec(name="realtime-cdc-demo", on_canceled="resubmit"),))
    # CANCELED is terminal but not in NOT_RUNNING_JOB_STATES: the monitor's plan decides what to do with it
    assert rest_fault(resubmitting, tms, [], None, 0).code == "JOB_MISSING"


def fault(code: str = "CONTAINER_PAUSED", source: str = "docker", at: float = 100.0) -> Fault:
    return Fault("realtime-pipeline", source, code, "what", at)


def test_one_fault_starts_one_recovery():
    dedupe = FaultDeduper(recheck_s=30)
    assert dedupe.admit(fault(), 100)
    dedupe.recovery_started("realtime-pipeline")
    # While it runs: neither the Docker fact that follows (its own restart's die) nor the REST watch's reading
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
    assert event.payload["findings"][0]["code"] == "CONTAINER_PAUSED" and event.payload["decision"] == "recover"
    wait = GuardDecision(GuardAction.WAIT, "cooldown")
    assert fault_event(fault(), "http://x", wait).resource["flink.recovery"] == "wait"


def disconnected_tm(state: str = "running", networks: tuple[str, ...] = ()) -> ContainerState:
    return ContainerState(
        role="taskmanager", name="tm", service="taskmanager", state=state, container_id="tm",
        network_mode="realtime-pipeline_default", networks=networks, started_at=LONG_AGO,
    )  # fmt: skip


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
    assert restarts_by_itself(policy, exit_code) is restarts


def test_a_docker_engine_that_is_down_is_retried_with_backoff_and_the_rest_watch_goes_on(tmp_path):
    from flink_runbook.deployments.fault_watch import FaultWatcher

    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "clusters:\n  - name: far\n    rest: {url: 'http://127.0.0.1:9'}\n"
        f"    docker: {{host: 'unix://{tmp_path}/no-engine.sock'}}\n"
        "    containers: {compose_project: far}\n"
    )
    said: list[str] = []
    watcher = FaultWatcher(inventory, said.append, rest_interval_s=0.5, recheck_s=3600)
    watcher.deduper.recovery_started("far")  # the REST watch's fault (nothing on port 9) is not what this tests
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

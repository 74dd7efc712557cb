"""Classification on observations built from answers recorded on real clusters."""

from __future__ import annotations

import pytest

from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.answers import parse_cluster_overview, parse_taskmanagers
from flink_runbook.inventory import ClusterSpec, ContainerSelector, JobSpec, RestSettings
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import ClusterObservation, ContainersView, JobManagerView, JobView

from .recorded import VERSIONS, answer, recorded_at_ms, recorded_job

CLUSTER = ClusterSpec(
    name="realtime-pipeline",
    rest=RestSettings(url="http://127.0.0.1:8081"),
    containers=ContainerSelector(compose_project="realtime-pipeline"),
    jobs=(JobSpec(name="realtime-cdc-demo"),),
)


def running(name: str, role: str) -> ContainerState:
    return ContainerState(role=role, name=name, service=role, state="running", container_id=name)


def oom_killed_taskmanager(state: str, **details) -> ContainersView:
    taskmanager = ContainerState(
        role="taskmanager", name="tm", service="taskmanager", state=state, oom_killed=True, container_id="tm", **details
    )
    return ContainersView(containers=(running("jm", "jobmanager"), taskmanager), oom_kills={"tm": 1})


HEALTHY_CONTAINERS = ContainersView(containers=(running("jm", "jobmanager"), running("tm", "taskmanager")))


def observed(version: str, scenario: str, containers: ContainersView = HEALTHY_CONTAINERS) -> ClusterObservation:
    now = recorded_at_ms(version, scenario)
    overview = parse_cluster_overview(answer(version, scenario, "overview"))
    job = recorded_job(version, scenario)
    return ClusterObservation(
        cluster=CLUSTER.name,
        rest_url=CLUSTER.rest.url,
        observed_at_ms=now,
        jobmanager=JobManagerView(
            reachable=True,
            flink_version=overview.flink_version,
            slots_total=overview.slots_total,
            slots_available=overview.slots_available,
            heartbeat_interval_ms=1000,
            heartbeat_timeout_ms=5000,
        ),
        taskmanagers=tuple(parse_taskmanagers(answer(version, scenario, "taskmanagers"), now)),
        jobs=(JobView(name="realtime-cdc-demo", info=job),),
        containers=containers,
    )


def codes(diagnosis) -> dict[str, str]:
    return {f.code: f.severity for f in diagnosis.findings}


@pytest.mark.parametrize("version", VERSIONS)
def test_healthy_cluster_has_no_findings(version):
    diagnosis = diagnose(CLUSTER, observed(version, "healthy"))
    assert diagnosis.healthy
    assert diagnosis.findings == ()


@pytest.mark.parametrize("version", VERSIONS)
def test_frozen_taskmanager_before_the_timeout_is_stale(version):
    paused = ContainersView(
        containers=(
            running("jm", "jobmanager"),
            ContainerState(role="taskmanager", name="tm", service="taskmanager", state="paused", container_id="tm"),
        )
    )
    diagnosis = diagnose(CLUSTER, observed(version, "frozen-before-timeout", paused))
    assert codes(diagnosis) == {"TASKMANAGER_HEARTBEAT_STALE": "warning", "CONTAINER_NOT_RUNNING": "error"}
    assert not diagnosis.healthy


@pytest.mark.parametrize("version", VERSIONS)
def test_job_failed_by_heartbeat_timeout(version):
    diagnosis = diagnose(CLUSTER, observed(version, "failed-heartbeat-timeout"))
    assert codes(diagnosis) == {
        "NO_TASKMANAGERS": "critical",
        "JOB_FAILED": "critical",
        "TASKMANAGER_HEARTBEAT_TIMEOUT": "error",
        "RESTARTS_EXHAUSTED": "error",
    }
    assert [f.severity for f in diagnosis.findings][:2] == ["critical", "critical"]
    exhausted = next(f for f in diagnosis.findings if f.code == "RESTARTS_EXHAUSTED")
    assert "4 failure(s)" in exhausted.evidence
    assert "eartbeat of TaskManager with id" in exhausted.evidence


def test_past_heartbeat_timeout_of_a_recovered_cluster_is_only_info():
    seen = observed("2.2.0", "healthy")
    seen = ClusterObservation(**{**seen.__dict__, "log_heartbeat_timeouts": frozenset({"172.0.0.9:1-old"})})
    diagnosis = diagnose(CLUSTER, seen)
    assert diagnosis.healthy
    assert codes(diagnosis) == {"TASKMANAGER_HEARTBEAT_TIMEOUT": "info"}


def test_oom_killed_container_restarted_by_docker_is_a_warning():
    diagnosis = diagnose(CLUSTER, observed("2.2.0", "healthy", oom_killed_taskmanager("running", restart_count=1)))
    assert codes(diagnosis) == {"CONTAINER_OOM_KILLED": "warning"}
    assert diagnosis.healthy


def test_oom_killed_and_exited_containers():
    diagnosis = diagnose(CLUSTER, observed("1.20.3", "healthy", oom_killed_taskmanager("exited", exit_code=137)))
    assert codes(diagnosis) == {"CONTAINER_NOT_RUNNING": "error", "CONTAINER_OOM_KILLED": "error"}
    assert "exit code 137" in next(f for f in diagnosis.findings if f.code == "CONTAINER_NOT_RUNNING").evidence


def test_unreachable_jobmanager_skips_rest_findings():
    seen = ClusterObservation(
        cluster=CLUSTER.name,
        rest_url=CLUSTER.rest.url,
        observed_at_ms=0,
        jobmanager=JobManagerView(reachable=False, error="connection refused", error_kind="unreachable"),
        containers=ContainersView(
            containers=(
                ContainerState(role="jobmanager", name="jm", service="jobmanager", state="exited", exit_code=143),
                running("tm", "taskmanager"),
            )
        ),
    )
    diagnosis = diagnose(CLUSTER, seen)
    assert codes(diagnosis) == {"JOBMANAGER_UNREACHABLE": "critical", "CONTAINER_NOT_RUNNING": "critical"}


def test_missing_job_and_slots():
    seen = observed("1.20.3", "failed-heartbeat-timeout")
    seen = ClusterObservation(**{**seen.__dict__, "jobs": (JobView(name="realtime-cdc-demo", info=None),)})
    assert codes(diagnose(CLUSTER, seen)) == {"NO_TASKMANAGERS": "critical", "JOB_MISSING": "error"}


def test_diagnosis_json_has_the_documented_shape():
    result = diagnose(CLUSTER, observed("2.2.0", "failed-heartbeat-timeout")).to_dict()
    assert {"cluster", "healthy", "flink_version", "containers", "taskmanagers", "jobs", "findings"} <= set(result)
    assert set(result["containers"][0]) >= {"name", "service", "state", "oom_killed", "restart_count"}
    (job,) = result["jobs"]
    assert job["state"] == "FAILED" and job["exceptions"] == 4 and job["root_cause"].startswith("org.apache")
    assert set(result["findings"][0]) >= {"code", "severity", "summary", "action"}

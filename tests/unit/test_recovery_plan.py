"""The recovery plan: the right actions, in order, and refusals instead of unsafe actions."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from flink_runbook.containers.states import ContainerState, seconds_since
from flink_runbook.inventory import CheckpointDir, JobSpec
from flink_runbook.runbook.deciding.plan import plan_recovery
from flink_runbook.runbook.deciding.restore_point import list_retained_checkpoints, normalize_path
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import ClusterObservation, ContainersView, JobManagerView, JobView

from .test_findings import CLUSTER, observed

NOW_S = 1795501000.0
LONG_AGO = "2026-11-24T04:00:00.123456789Z"


def tm_container(state: str, ip: str = "172.30.0.3", started_at: str = LONG_AGO) -> ContainerState:
    return ContainerState(
        role="taskmanager",
        name="tm",
        service="taskmanager",
        state=state,
        container_id="tm",
        ip_addresses=(ip,),
        started_at=started_at,
    )


def jm_container(state: str = "running") -> ContainerState:
    return ContainerState(
        role="jobmanager", name="jm", service="jobmanager", state=state, container_id="jm", started_at=LONG_AGO
    )


def unreachable(kind: str, *containers: ContainerState, **fields) -> ClusterObservation:
    """A cluster whose JobManager REST API did not answer (kind: unreachable | invalid_answer)."""
    return ClusterObservation(
        cluster=CLUSTER.name,
        rest_url=CLUSTER.rest.url,
        observed_at_ms=0,
        jobmanager=JobManagerView(reachable=False, error=kind, error_kind=kind),
        containers=ContainersView(containers=containers),
        **fields,
    )


def with_containers(seen: ClusterObservation, *containers: ContainerState) -> ClusterObservation:
    return dataclasses.replace(seen, containers=ContainersView(containers=containers))


def test_healthy_cluster_needs_no_plan():
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, observed("1.20.3", "healthy")))
    assert plan.healthy and plan.actions == () and plan.refusals == ()


def test_the_runbook_incident_plan():
    seen = with_containers(observed("1.20.3", "failed-heartbeat-timeout"), jm_container(), tm_container("exited"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen))
    assert [a.action for a in plan.actions] == ["restart_taskmanagers", "wait_for_taskmanagers", "resubmit_job"]
    restart, _, resubmit = plan.actions
    assert restart.containers == ("tm",) and restart.finding == "TASKMANAGER_HEARTBEAT_TIMEOUT"
    assert resubmit.restore_point.path.startswith("file:/data/checkpoints/")
    assert resubmit.restore_point.kind == "checkpoint" and resubmit.old_job_id
    assert len(resubmit.job_id) == 32 and resubmit.job_id != resubmit.old_job_id
    assert plan.refusals == () and not plan.observe_again


def test_running_container_whose_taskmanager_is_lost_is_restarted_unless_it_just_started():
    base = observed("2.2.0", "failed-heartbeat-timeout")
    base = dataclasses.replace(base, observed_at_ms=int(NOW_S * 1000))
    lost = with_containers(base, jm_container(), tm_container("running"))
    assert plan_recovery(CLUSTER, diagnose(CLUSTER, lost)).of("restart_taskmanagers")
    just_started = with_containers(base, jm_container(), tm_container("running", started_at="2026-11-24T06:16:30Z"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, just_started))
    assert not plan.of("restart_taskmanagers")
    # Its TaskManager is registering: waited for, then the jobs are planned from what Flink says after
    assert [a.action for a in plan.actions] == ["wait_for_taskmanagers"] and plan.observe_again


def test_a_just_restarted_container_still_registered_under_its_previous_process_is_waited_for():
    # Docker restarted the TaskManager after a crash; Flink has not dropped the old registration yet and the
    # job still shows RUNNING: the cluster looks healthy to the REST API, but that TaskManager is gone.
    base = dataclasses.replace(observed("1.20.3", "healthy"), observed_at_ms=int(NOW_S * 1000))
    old_tm = dataclasses.replace(base.taskmanagers[0], heartbeat_age_ms=5000)
    base = dataclasses.replace(base, taskmanagers=(old_tm,))
    restarted = tm_container("running", ip=old_tm.host, started_at="2026-11-24T06:16:37Z")  # 3 s before NOW_S
    seen = with_containers(base, jm_container(), restarted)
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen))
    wait = plan.one("wait_for_taskmanagers")
    assert wait is not None and wait.lost_taskmanager_ids == {old_tm.id} and plan.observe_again
    # Registered by the new process (a heartbeat newer than the container): nothing to wait for
    fresh = dataclasses.replace(base, taskmanagers=(dataclasses.replace(old_tm, heartbeat_age_ms=500),))
    assert plan_recovery(CLUSTER, diagnose(CLUSTER, with_containers(fresh, jm_container(), restarted))).healthy


def test_unreachable_but_running_jobmanager_is_not_restarted():
    seen = unreachable("unreachable", jm_container(), tm_container("running"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen))
    assert plan.actions == ()
    assert "a running JobManager is not restarted" in plan.refusals[0]


def retain(root: Path, job_id: str, checkpoint: int, modified_at: float, metadata: bytes = b"meta") -> None:
    """A checkpoint on disk as Flink leaves it: <dir>/<job id>/chk-<n>/_metadata."""
    chk = root / job_id / f"chk-{checkpoint}"
    chk.mkdir(parents=True)
    (chk / "_metadata").write_bytes(metadata)
    os.utime(chk / "_metadata", (modified_at, modified_at))


def test_stopped_jobmanager_is_started_then_jobs_resubmitted_from_the_checkpoint_directory(tmp_path):
    job = JobSpec(
        name="realtime-cdc-demo",
        checkpoint_dir=CheckpointDir(host=tmp_path, container="/data/checkpoints", exclusive=True),
    )
    cluster = dataclasses.replace(CLUSTER, jobs=(job,))
    seen = unreachable(
        "unreachable",
        jm_container("exited"),
        tm_container("running"),
        jobs=(JobView(name="realtime-cdc-demo", info=None),),
    )
    # First the JobManager is started, and nothing else planned: what it knows is seen only then.
    plan = plan_recovery(cluster, diagnose(cluster, seen))
    assert [a.action for a in plan.actions] == ["start_jobmanager"] and plan.observe_again
    # Seen again: the JobManager answers and knows no job; the checkpoint directory holds two runs of it.
    retain(tmp_path, "aaa", 7, 100.0)
    retain(tmp_path, "bbb", 3, 200.0)  # the newer run, with a lower id
    again = dataclasses.replace(
        with_containers(observed("1.20.3", "healthy"), jm_container(), tm_container("running", ip="172.28.0.3")),
        jobs=(JobView(name="realtime-cdc-demo", info=None),),
    )
    rest = plan_recovery(cluster, diagnose(cluster, again), {job.name: list_retained_checkpoints(tmp_path)})
    assert [a.action for a in rest.actions] == ["wait_for_taskmanagers", "resubmit_job"]
    assert rest.actions[-1].restore_point.path == "file:/data/checkpoints/bbb/chk-3"


def test_no_checkpoint_with_fail_policy_is_refused_and_fresh_policy_resubmits():
    seen = dataclasses.replace(
        observed("1.20.3", "failed-heartbeat-timeout"), jobs=(JobView(name="realtime-cdc-demo", info=None),)
    )
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen), {"realtime-cdc-demo": []})
    assert not plan.of("resubmit_job")
    assert "no retained checkpoint and its no_checkpoint_policy is 'fail'" in plan.refusals[0]
    fresh = dataclasses.replace(CLUSTER, jobs=(JobSpec(name="realtime-cdc-demo", no_checkpoint_policy="fresh"),))
    (resubmit,) = plan_recovery(fresh, diagnose(fresh, seen), {}).of("resubmit_job")
    assert resubmit.restore_point is None


def test_garbage_rest_is_refused_before_touching_anything():
    seen = unreachable("invalid_answer", jm_container(), tm_container("exited"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen))
    assert plan.actions == () and "does not answer as a Flink JobManager" in plan.refusals[0]


def test_docker_timestamps_and_paths():
    assert abs(seconds_since("2026-11-24T06:16:50.504596499Z", 1795501010.504596) - 0.0) < 1e-3
    assert seconds_since("0001-01-01T00:00:00Z", NOW_S) is None
    assert normalize_path("file:/data/x") == normalize_path("file:///data/x") == normalize_path("/data/x")
    assert Path("/data/x").as_posix() == "/data/x"


def test_missing_jobmanager_container_is_refused_once_with_the_right_reason():
    missing = ContainerState(role="jobmanager", name="jobmanager (none found)", service="jobmanager", state="missing")
    seen = unreachable("unreachable", missing, tm_container("running"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen))
    assert plan.actions == ()
    assert plan.refusals == ("the JobManager container does not exist; create it (docker compose up -d)",)

"""The verdict of a recovery (pure): recovered only when every step worked, every check passed,
nothing was refused and the cluster is healthy afterwards."""

from __future__ import annotations

import dataclasses

from flink_runbook.runbook.deciding.plan import Action, plan_recovery
from flink_runbook.runbook.deciding.verdict import verdict
from flink_runbook.runbook.model import ActionRecord, Check, Progress, RecoveryStatus, StepStatus
from flink_runbook.runbook.observing.diagnosis import diagnose

from .test_findings import CLUSTER, observed
from .test_recovery_plan import jm_container, tm_container, with_containers

HEALTHY = diagnose(CLUSTER, observed("2.2.0", "healthy"))
FAILED = diagnose(
    CLUSTER, with_containers(observed("2.2.0", "failed-heartbeat-timeout"), jm_container(), tm_container("paused"))
)
PLAN = plan_recovery(CLUSTER, FAILED)
STEPS = tuple(ActionRecord(a.action, a.target, a.reason, status=StepStatus.DONE) for a in PLAN.actions)
PASSED = (Check("job running", True, "state RUNNING"),)


def judged(progress: Progress | None, after=HEALTHY, plan=PLAN):
    return verdict(FAILED, plan, progress, after, started_at="2026-12-01T09:00:00+00:00", duration_s=12.345)


def test_every_step_done_every_check_passed_and_healthy_after_is_recovered():
    result = judged(Progress(steps=STEPS, checks=PASSED))
    assert result.status == RecoveryStatus.RECOVERED and result.status.ok and result.verified
    assert result.duration_s == 12.35 and "JOB_FAILED" in [f["code"] for f in result.findings_before]


def test_a_failed_step_a_failed_check_or_an_unhealthy_cluster_after_is_failed():
    failed_step = (*STEPS[:-1], dataclasses.replace(STEPS[-1], status=StepStatus.FAILED))
    assert judged(Progress(steps=failed_step, checks=PASSED)).status == RecoveryStatus.FAILED
    failed_check = (Check("no exceptions", False, "1, newest: boom"),)
    assert judged(Progress(steps=STEPS, checks=failed_check)).status == RecoveryStatus.FAILED
    assert judged(Progress(steps=STEPS, checks=PASSED), after=FAILED).status == RecoveryStatus.FAILED
    assert not judged(Progress(steps=STEPS, checks=PASSED), after=None).status.ok


def test_a_dry_run_is_the_plan_and_a_healthy_cluster_needs_nothing():
    dry = judged(None, after=None)
    assert dry.status == RecoveryStatus.PLANNED and dry.dry_run
    assert [a.action for a in dry.actions] == [a.action for a in PLAN.actions]
    assert all(a.status == StepStatus.PLANNED for a in dry.actions)
    assert [j.name for j in dry.jobs] == [a.target for a in PLAN.of(Action.RESUBMIT_JOB)]
    healthy = verdict(HEALTHY, plan_recovery(CLUSTER, HEALTHY), Progress(), None, started_at="", duration_s=0)
    assert healthy.status == RecoveryStatus.HEALTHY and healthy.actions == []


def test_refusals_and_nothing_to_do_is_refused():
    refused = dataclasses.replace(PLAN, actions=(), refusals=("a running JobManager is not restarted",))
    assert judged(Progress(), after=FAILED, plan=refused).status == RecoveryStatus.REFUSED
    assert judged(None, after=None, plan=refused).status == RecoveryStatus.REFUSED

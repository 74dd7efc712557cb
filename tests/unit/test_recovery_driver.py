"""The recovery driver (flink_runbook.runbook.deciding.recovery) over in-memory fakes of its two ports: the runbook's
order, the approval gate, "superseded", "notify or not", the deadline and the run's outcome."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path

import pytest

from flink_runbook.inventory import JobSpec
from flink_runbook.runbook.deciding.approval import ApprovalDecision
from flink_runbook.runbook.deciding.guard import Escalation
from flink_runbook.runbook.deciding.plan import Action, PlannedAction, RecoveryPlan
from flink_runbook.runbook.deciding.recovery import (
    CHANGED_WHILE_WAITING,
    RecoveryTurn,
    is_superseded,
    outcome_is_news,
    recover_cluster,
    risks_to_ask,
    run_outcome,
)
from flink_runbook.runbook.deciding.restore_point import RestorePoint
from flink_runbook.runbook.keeping.host_lock import RecoveryLockTimeout
from flink_runbook.runbook.model import (
    ActionRecord,
    Check,
    Progress,
    RecoveryResult,
    RecoveryStatus,
    Resubmitted,
    StepStatus,
)
from flink_runbook.runbook.observing.diagnosis import diagnose

from .test_findings import CLUSTER, observed
from .test_recovery_plan import jm_container, tm_container, with_containers

HEALTHY = diagnose(CLUSTER, observed("2.2.0", "healthy"))
FAILED = diagnose(
    CLUSTER, with_containers(observed("2.2.0", "failed-heartbeat-timeout"), jm_container(), tm_container("exited"))
)
JOB = CLUSTER.jobs[0].name
RESTART = PlannedAction(Action.RESTART_TASKMANAGERS, "tm", "exited", containers=("tm",))
WAIT = PlannedAction(Action.WAIT_FOR_TASKMANAGERS, CLUSTER.name, "restarted")
CHECKPOINT = RestorePoint(f"file:///checkpoints/{'a' * 32}/chk-7", 7, "checkpoint", "checkpoint history")
FROM_CHECKPOINT = PlannedAction(Action.RESUBMIT_JOB, JOB, "failed", old_job_id="a" * 32, restore_point=CHECKPOINT)
FRESH = dataclasses.replace(FROM_CHECKPOINT, restore_point=None)  # no checkpoint: risky
SAFE_PLAN = RecoveryPlan(CLUSTER.name, (RESTART, WAIT))
RISKY_PLAN = RecoveryPlan(CLUSTER.name, (RESTART, WAIT, FRESH))


class FakeCluster:
    """The cluster port: diagnoses and plans in the order given; every step done and noted."""

    def __init__(self, diagnoses, plans, fail: Action | None = None) -> None:
        self.diagnoses, self.plans, self.fail = list(diagnoses), list(plans), fail
        self.done: list[str] = []

    def diagnose(self):
        self.done.append("diagnose")
        return self.diagnoses.pop(0) if len(self.diagnoses) > 1 else self.diagnoses[0]

    def plan(self, diagnosis):
        self.done.append("plan")
        return self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]

    def _record(self, progress: Progress, action: str, target: str) -> Progress:
        self.done.append(f"{action} {target}")
        status = StepStatus.FAILED if action == self.fail else StepStatus.DONE
        return dataclasses.replace(progress, steps=(*progress.steps, ActionRecord(action, target, "", status=status)))

    def step(self, action, plan, progress):
        if progress.stopped or not plan.of(action):
            return progress
        return self._record(progress, action, plan.one(action).target)

    def resubmit(self, planned, progress):
        if progress.stopped:
            return progress
        done = self._record(progress, Action.RESUBMIT_JOB, planned.target)
        job = Resubmitted(planned.target, None, 0, "b" * 32)
        return dataclasses.replace(done, resubmitted=(*done.resubmitted, job))

    def verify_job(self, job, progress):
        self.done.append(f"verify_job {job.job}")
        return dataclasses.replace(progress, checks=(*progress.checks, Check("job running", True, "RUNNING")))

    def verify_stability(self, plan, progress):
        self.done.append("verify_stability")
        return progress


class FakeRecords:
    """The records port in memory: a lock that may be busy or waited for, escalations, a human's answers."""

    def __init__(self, *, waited=False, busy=False, guard=None, escalation=None, answers=()) -> None:
        self.waited, self.busy, self.guard = waited, busy, guard
        self.escalations = [escalation] if escalation else []
        self.answers = list(answers)
        self.asked: list[tuple[str, ...]] = []
        self.notices: list[str] = []
        self.reports: list[RecoveryResult] = []
        self.locked = False

    @contextmanager
    def one_recovery_at_a_time(self):
        if self.busy:
            raise RecoveryLockTimeout("another recovery held the lock of realtime-pipeline for 900s")
        self.locked = True
        try:
            yield RecoveryTurn(self.waited)
        finally:
            self.locked = False

    def guard_refusal(self):
        return self.guard

    def escalation(self):
        return self.escalations[-1] if self.escalations else None

    def escalate(self, escalation):
        self.escalations.append(escalation)

    def ask_for_approval(self, plan, diagnosis, risks, asked_before):
        self.asked.append(risks)
        return self.answers.pop(0)

    def tell_the_story(self, diagnosis, plan):
        pass

    def show_progress(self, progress, total_steps):
        assert len(progress.steps) <= total_steps, (progress.steps, total_steps)

    def notify(self, notice):
        self.notices.append(notice.event)

    def run_url(self):
        return "http://127.0.0.1:4200/runs/flow-run/x"

    def write_report(self, result):
        assert not self.locked, "the report is written once the lock is free for the next recovery"
        self.reports.append(result)
        return result


def recovered(world, records, cluster=CLUSTER, **options):
    return recover_cluster(cluster, world, records, **options)


def test_the_runbooks_order_observe_plan_act_verify_report():
    world = FakeCluster([FAILED, HEALTHY], [RecoveryPlan(CLUSTER.name, (RESTART, WAIT, FROM_CHECKPOINT))])
    records = FakeRecords()
    result = recovered(world, records)
    assert world.done == [
        "diagnose", "plan", f"{Action.RESTART_TASKMANAGERS} tm", f"{Action.WAIT_FOR_TASKMANAGERS} {CLUSTER.name}",
        f"{Action.RESUBMIT_JOB} {JOB}", f"verify_job {JOB}", "verify_stability", "diagnose",
    ]
    assert result.status == RecoveryStatus.RECOVERED and records.reports == [result]
    assert records.notices == ["recovery_started", "recovered"] and not result.nothing_done


def test_a_failed_step_stops_the_later_ones_and_the_failure_is_told():
    plan = RecoveryPlan(CLUSTER.name, (RESTART, WAIT, FROM_CHECKPOINT))
    world = FakeCluster([FAILED], [plan], fail=Action.RESTART_TASKMANAGERS)
    records = FakeRecords()
    result = recovered(world, records)
    assert f"{Action.RESUBMIT_JOB} {JOB}" not in world.done and result.status == RecoveryStatus.FAILED
    assert records.notices == ["recovery_started", "recovery_failed"]


def test_a_dry_run_takes_no_lock_changes_nothing_and_tells_nobody():
    world = FakeCluster([FAILED], [SAFE_PLAN])
    records = FakeRecords(busy=True)  # a lock would be refused: a dry run does not ask for it
    result = recovered(world, records, dry_run=True)
    assert world.done == ["diagnose", "plan"] and result.status == RecoveryStatus.PLANNED
    assert records.notices == [] and not result.nothing_done


def test_a_busy_lock_is_a_refusal_that_did_nothing():
    world = FakeCluster([FAILED], [SAFE_PLAN])
    result = recovered(world, FakeRecords(busy=True))
    assert world.done == [] and result.status == RecoveryStatus.REFUSED and result.nothing_done
    assert "held the lock" in result.refusals[0]


# -- superseded ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guarded", "waited", "healthy", "held", "expected"),
    [
        (True, True, True, False, True),  # queued behind a recovery that fixed it
        (True, True, False, True, True),  # queued, and the guard rails hold it now
        (True, True, False, False, False),  # queued, still broken: this run recovers
        (True, False, True, False, False),  # did not queue: not a duplicate
        (False, True, True, False, False),  # a person's run is never a duplicate
    ],
)
def test_superseded_only_a_triggered_run_that_queued_with_nothing_left(guarded, waited, healthy, held, expected):
    assert is_superseded(guarded, waited, healthy, held) is expected


def test_a_superseded_run_does_nothing_is_not_counted_and_is_not_news():
    world = FakeCluster([HEALTHY], [SAFE_PLAN])
    records = FakeRecords(waited=True)
    result = recovered(world, records, guarded=True)
    assert result.status == RecoveryStatus.SUPERSEDED and result.nothing_done and records.notices == []
    assert world.done == ["diagnose"]
    assert run_outcome([result]).cancelled


def test_a_run_the_guard_rails_hold_acts_on_nothing_and_tells_nobody():
    world = FakeCluster([FAILED], [SAFE_PLAN])
    records = FakeRecords(guard="the guard rails do not allow a recovery now (hold: cooldown)")
    result = recovered(world, records, guarded=True)
    assert world.done == ["diagnose"] and result.status == RecoveryStatus.REFUSED and result.nothing_done
    assert records.notices == []


# -- the approval gate -----------------------------------------------------------------------------------------


def test_the_gate_asks_only_for_risks_not_yet_approved_and_never_under_never():
    cluster_jobs = (JobSpec(name=JOB),)
    risks = risks_to_ask(RISKY_PLAN, "risky", None, cluster_jobs, [])
    assert risks and "FRESH" in risks[0]
    assert risks_to_ask(SAFE_PLAN, "risky", None, cluster_jobs, []) is None
    assert risks_to_ask(SAFE_PLAN, "always", None, cluster_jobs, []) == ()
    approved = [ApprovalDecision(True, "a human", asked=True, risks=risks)]
    assert risks_to_ask(RISKY_PLAN, "risky", None, cluster_jobs, approved) is None  # asked once per run
    assert risks_to_ask(RISKY_PLAN, "never", None, cluster_jobs, []) is None
    escalated = risks_to_ask(SAFE_PLAN, "risky", "2 recoveries within 900s", cluster_jobs, [])
    assert escalated and "escalated" in escalated[0]


def test_a_no_refuses_the_plan_and_escalates_so_the_monitor_does_not_ask_every_tick():
    world = FakeCluster([FAILED], [RISKY_PLAN])
    records = FakeRecords(answers=[ApprovalDecision(False, "a human through Prefect", "not at 3 a.m.", asked=True)])
    result = recovered(world, records)
    assert result.status == RecoveryStatus.REFUSED and "not at 3 a.m." in result.refusals[-1]
    assert not any(step.startswith(Action.RESTART_TASKMANAGERS) for step in world.done)
    assert records.escalations and "not approved" in records.escalations[-1].reason
    assert result.approval["approved"] is False


def test_after_a_humans_wait_the_plan_is_made_again_and_runs_only_if_it_risks_what_was_approved():
    yes = ApprovalDecision(True, "a human through Prefect", "go", asked=True)
    same = FakeCluster([FAILED, FAILED, HEALTHY], [RISKY_PLAN, RISKY_PLAN])
    assert recovered(same, FakeRecords(answers=[yes])).status == RecoveryStatus.RECOVERED
    assert same.done[:4] == ["diagnose", "plan", "diagnose", "plan"]  # looked again after the wait

    other_job = dataclasses.replace(FRESH, target="another-job")
    changed = FakeCluster([FAILED], [RISKY_PLAN, RecoveryPlan(CLUSTER.name, (RESTART, WAIT, other_job))])
    result = recovered(changed, FakeRecords(answers=[yes]))
    assert result.status == RecoveryStatus.REFUSED and result.refusals == [CHANGED_WHILE_WAITING]
    assert not any(step.startswith(Action.RESTART_TASKMANAGERS) for step in changed.done)


def test_an_escalated_cluster_under_approval_never_is_not_asked_nor_read():
    never = dataclasses.replace(CLUSTER, approval="never")
    records = FakeRecords(escalation=Escalation(0.0, "2 recoveries within 900s"))
    records.escalation = None  # reading it would fail the test: `never` asks no record
    result = recovered(FakeCluster([FAILED, HEALTHY], [RISKY_PLAN]), records, cluster=never)
    assert result.status == RecoveryStatus.RECOVERED and records.asked == []


# -- notify or not, the deadline, the run's outcome ---------------------------------------------------------


def test_news_is_a_recovery_that_acted_or_refused_on_an_unhealthy_cluster():
    restart = ActionRecord("restart_taskmanagers", "tm", "")
    acted = RecoveryResult(CLUSTER.name, RecoveryStatus.FAILED, actions=[restart])
    refused = RecoveryResult(CLUSTER.name, RecoveryStatus.REFUSED, refusals=["no checkpoint"])
    assert outcome_is_news(acted, FAILED, dry_run=False, superseded=False, held=False)
    assert outcome_is_news(refused, FAILED, dry_run=False, superseded=False, held=False)
    assert not outcome_is_news(acted, HEALTHY, dry_run=False, superseded=False, held=False)
    assert not outcome_is_news(acted, FAILED, dry_run=True, superseded=False, held=False)
    assert not outcome_is_news(acted, FAILED, dry_run=False, superseded=True, held=False)
    assert not outcome_is_news(refused, FAILED, dry_run=False, superseded=False, held=True)
    assert not outcome_is_news(RecoveryResult(CLUSTER.name, RecoveryStatus.FAILED), FAILED, dry_run=False,
                               superseded=False, held=False)


def test_a_recovery_past_its_deadline_is_timed_out_and_escalated():
    late = dataclasses.replace(CLUSTER, recovery=dataclasses.replace(CLUSTER.recovery, deadline_s=-1))
    world = FakeCluster([FAILED], [SAFE_PLAN], Action.WAIT_FOR_TASKMANAGERS)
    records = FakeRecords()
    result = recovered(world, records, cluster=late)
    assert result.status == RecoveryStatus.TIMED_OUT
    assert "recovery.deadline_s" in records.escalations[-1].reason


def test_the_run_outcome_names_what_was_not_done():
    ok = RecoveryResult("a", RecoveryStatus.RECOVERED)
    bad = RecoveryResult("b", RecoveryStatus.FAILED)
    idle = RecoveryResult("c", RecoveryStatus.HEALTHY, nothing_done=True)
    assert run_outcome([ok, bad]).failed == "recovery not done: b failed; see the recovery report"
    assert run_outcome([ok]) == run_outcome([ok]) and not run_outcome([ok]).failed
    assert run_outcome([idle]).nothing_done and not run_outcome([idle, ok]).nothing_done
    assert not run_outcome([ok, RecoveryResult("d", RecoveryStatus.SUPERSEDED)]).cancelled


def test_the_core_driver_is_the_only_recovery_path_of_the_flow():
    flow_source = (Path(__file__).parents[2] / "flows" / "recover.py").read_text()
    assert "recover_cluster(" in flow_source and len(flow_source.splitlines()) <= 40


def test_the_run_forms_approval_modes_are_the_cores():
    import typing

    from flink_runbook.flows.parameters import ApprovalModeParameter
    from flink_runbook.runbook.deciding.approval import ApprovalMode

    assert set(typing.get_args(ApprovalModeParameter)) == {mode.value for mode in ApprovalMode}
    assert [m for m in ApprovalMode if m.from_a_terminal] == [ApprovalMode.YES, ApprovalMode.PROMPT]

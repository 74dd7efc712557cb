"""The recovery driver's two ports (flink_runbook.runbook.deciding.recovery) as Prefect gives them: every step a
task of the run, what is kept in Prefect's records, what is said in the run's log and artifacts."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import Cancelled, Completed, Failed, State

from flink_runbook.flows.approval import ask_for_approval
from flink_runbook.flows.locking import one_recovery_at_a_time
from flink_runbook.flows.run_log import keep_engine_lines_out_of_the_way
from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.deciding.approval import ApprovalDecision
from flink_runbook.runbook.deciding.guard import NOTHING_DONE, Escalation
from flink_runbook.runbook.deciding.plan import Action, PlannedAction, RecoveryPlan
from flink_runbook.runbook.deciding.recovery import RecoveryTurn, run_outcome
from flink_runbook.runbook.deciding.verdict import RecoveryNotDone
from flink_runbook.runbook.model import Progress, RecoveryResult, Resubmitted
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.observing.observe import Depth
from flink_runbook.runbook.reporting.notices import Notice
from flink_runbook.tasks import recover_steps
from flink_runbook.tasks.diagnose_steps import diagnose_cluster
from flink_runbook.tasks.monitor_steps import read_escalations, store_escalation
from flink_runbook.tasks.notify_steps import notify_operators, run_url

keep_engine_lines_out_of_the_way()

STEP_TASKS = {
    Action.RECONNECT_NETWORKS: recover_steps.reconnect_networks,
    Action.UNPAUSE_CONTAINERS: recover_steps.unpause_containers,
    Action.START_JOBMANAGER: recover_steps.start_jobmanager,
    Action.RESTART_TASKMANAGERS: recover_steps.restart_taskmanagers,
    Action.WAIT_FOR_TASKMANAGERS: recover_steps.wait_for_taskmanagers,
}


class PrefectCluster:
    """The cluster port: each runbook step a task run of the flow."""

    def __init__(self, cluster: ClusterSpec) -> None:
        self.cluster = cluster

    def diagnose(self) -> Diagnosis:
        return diagnose_cluster(self.cluster, Depth.FULL)

    def plan(self, diagnosis: Diagnosis) -> RecoveryPlan:
        return recover_steps.plan_cluster_recovery(self.cluster, diagnosis)

    def step(self, action: Action, plan: RecoveryPlan, progress: Progress) -> Progress:
        return STEP_TASKS[action](self.cluster, plan, progress)

    def resubmit(self, planned: PlannedAction, progress: Progress) -> Progress:
        return recover_steps.resubmit_job(self.cluster, planned, progress)

    def verify_job(self, job: Resubmitted, progress: Progress) -> Progress:
        return recover_steps.verify_job(self.cluster, job, progress)

    def verify_stability(self, plan: RecoveryPlan, progress: Progress) -> Progress:
        return recover_steps.verify_stability(self.cluster, plan, progress)


class PrefectRecords:
    """The records port: the lock, escalations and guard rails in Prefect, a human asked through the UI (or
    the terminal, as `approval_mode` says), notices, the progress bar and the report as artifacts."""

    def __init__(self, cluster: ClusterSpec, config: Path, approval_mode: str) -> None:
        self.cluster, self.config, self.approval_mode = cluster, config, approval_mode
        self._artifact = None

    def one_recovery_at_a_time(self) -> AbstractContextManager[RecoveryTurn]:
        return one_recovery_at_a_time(self.cluster)

    def guard_refusal(self) -> str | None:
        return recover_steps.guard_refusal(self.cluster, self.config)

    def escalation(self) -> Escalation | None:
        return read_escalations([self.cluster.name]).get(self.cluster.name)

    def escalate(self, escalation: Escalation) -> None:
        store_escalation(self.cluster.name, escalation)

    def ask_for_approval(
        self, plan: RecoveryPlan, diagnosis: Diagnosis, risks: tuple[str, ...], asked_before: int
    ) -> ApprovalDecision:
        return ask_for_approval(self.cluster, plan, diagnosis, risks, self.approval_mode, asked_before)

    def tell_the_story(self, diagnosis: Diagnosis | None, plan: RecoveryPlan) -> None:
        """What was seen and what will be done, first in the run's log."""
        logger, name = get_run_logger(), self.cluster.name
        if diagnosis is not None:
            seen = "; ".join(f"{f.code}: {f.summary}" for f in diagnosis.serious)
            logger.info("SEEN on %s: %s", name, seen or "healthy")
        if plan.actions:
            steps = "; then ".join(f"{a.action} {a.target} ({a.reason})" for a in plan.actions)
            logger.info("PLAN for %s: %s", name, steps)
        for refusal in plan.refusals:
            logger.error("REFUSED on %s: %s", name, refusal)

    def show_progress(self, progress: Progress, total_steps: int) -> None:
        """The recovery's progress bar in the UI (a progress artifact), moved on after every step."""
        done = 100.0 * len(progress.steps) / max(total_steps, 1)
        if self._artifact is None:
            self._artifact = create_progress_artifact(
                progress=0.0, key=f"recover-{self.cluster.name}-progress",
                description=f"Recovery of {self.cluster.name}: steps done",
            )
        update_progress_artifact(self._artifact, progress=min(100.0, done))

    def notify(self, notice: Notice) -> None:
        notify_operators(self.cluster, notice)

    def run_url(self) -> str | None:
        return run_url()

    def write_report(self, result: RecoveryResult) -> RecoveryResult:
        return recover_steps.write_recovery_report(result)


def run_state(results: list[RecoveryResult]) -> list[RecoveryResult] | State:
    """The run's state in Prefect, as the core's run_outcome says: Cancelled for a duplicate, Failed (red in
    the UI) when a recovery was not done, named "Nothing done" when nothing was acted on."""
    outcome = run_outcome(results)
    named = {"name": NOTHING_DONE} if outcome.nothing_done else {}
    if outcome.cancelled:  # not a recovery: the guard rails do not count it
        return Cancelled(message="another recovery of the cluster ran first; nothing was left for this run")
    if outcome.failed:  # Prefect needs an exception as a failed state's data: it carries the results
        return Failed(message=outcome.failed, data=RecoveryNotDone(outcome.failed, results), **named)
    return Completed(data=results, **named) if named else results

"""The approval gate: a risky step waits for a human, through Prefect's pause with a typed input.

Modes (recover's `approval_mode`): pause (a Prefect run: the UI's Resume form, or the API), yes (the CLI's
--yes), prompt (the CLI on a terminal), refuse (the CLI with no terminal and no --yes). Silence is a no:
a pause that times out, or a prompt read from nothing, changes nothing.
"""

from __future__ import annotations

import sys
import time

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.states import Running

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.deciding.approval import (
    ApprovalDecision,
    ApprovalMode,
    approval_mode_problem,
    approval_request,
    unanswered,
)
from flink_runbook.runbook.deciding.plan import RecoveryPlan
from flink_runbook.runbook.observing.diagnosis import Diagnosis
from flink_runbook.runbook.reporting.notices import approval_needed_notice
from flink_runbook.tasks.notify_steps import notify_operators, run_url

POLL_S = 2  # how soon an answer in the UI is seen


def check_approval_mode(mode: str) -> None:
    """Refuse, before anything is read or changed, an approval_mode this run may not take (ValueError)."""
    problem = approval_mode_problem(mode, deployment.id)  # None: not a run of a deployment
    if problem:
        raise ValueError(problem)


class RecoveryApproval(RunInput):
    """The Resume form of a recover run waiting for a human."""

    approve: bool = False
    reason: str = ""


def ask_for_approval(
    cluster: ClusterSpec, plan: RecoveryPlan, diagnosis: Diagnosis, risks: tuple[str, ...], mode: str, asked: int
) -> ApprovalDecision:
    """Ask, the way `mode` says, and wait for the answer (at most the cluster's approval_timeout_s)."""
    if mode == ApprovalMode.YES:
        return ApprovalDecision(True, "--yes on the command line")
    if mode == ApprovalMode.REFUSE:
        return ApprovalDecision(False, "the command line", "it needs approval and no terminal can ask (--yes approves)")
    request = approval_request(cluster.name, plan, diagnosis, risks, cluster.approval_timeout_s)
    started = time.monotonic()
    if mode == ApprovalMode.PROMPT:
        print(request, file=sys.stderr)
        answer = input(f"Approve the recovery of {cluster.name}? [y/N] ").strip().lower()
        reason = input("Reason (optional): ").strip() if answer else ""
        return ApprovalDecision(answer in ("y", "yes"), "a person at the terminal", reason, time.monotonic() - started,
                                asked=True)
    logger = get_run_logger()
    create_markdown_artifact(key=f"approval-{cluster.name}", markdown=request,
                             description=f"Approval asked for the recovery of {cluster.name}")
    notify_operators(cluster, approval_needed_notice(cluster.name, diagnosis, plan, risks, cluster.approval_timeout_s,
                                                     run_url()))
    logger.warning("WAITING FOR APPROVAL of the recovery of %s (%s). Resume this run in the Prefect UI with approve "
                   "checked, or unchecked to reject; rejected by itself after %.0fs. %s", cluster.name,
                   "; ".join(risks) or "policy: always", cluster.approval_timeout_s, run_url() or "")
    try:
        answer = pause_flow_run(
            wait_for_input=RecoveryApproval.with_initial_data(description=request, approve=False),
            timeout=int(cluster.approval_timeout_s),
            poll_interval=POLL_S,
            key=f"approval-{cluster.name}-{asked}",
        )
    except FlowPauseTimeout:
        # Running again, so the run ends in the state its report says (Prefect would fail it as "never resumed").
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Running(message="approval timed out: nothing changed"), force=True)
        waited = time.monotonic() - started
        return unanswered(cluster.approval_timeout_s, waited)
    decision = ApprovalDecision(answer.approve, "a human through Prefect", answer.reason, time.monotonic() - started,
                                asked=True)
    (logger.info if decision.approved else logger.warning)(
        "Recovery of %s %s: %s", cluster.name, "APPROVED" if decision.approved else "REJECTED", answer.reason or "-"
    )
    return decision

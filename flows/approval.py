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
from flink_runbook.runbook.approval import ApprovalDecision, approval_request
from flink_runbook.runbook.diagnosis import Diagnosis
from flink_runbook.runbook.notices import approval_needed_notice
from flink_runbook.runbook.plan import RecoveryPlan
from flink_runbook.tasks.notify_steps import notify_operators, run_url

APPROVAL_MODES = ("pause", "yes", "prompt", "refuse")
# A person at the terminal that runs the flow in its own process (the CLI): `--yes`, or the y/N question.
TERMINAL_MODES = ("yes", "prompt")
POLL_S = 2  # how soon an answer in the UI is seen


def approval_mode_problem(mode: str, deployment_id: str | None) -> str | None:
    """Why a recover run may not take this approval_mode, or None.

    A run of a deployment (the UI's Run or custom run, the API, a trigger, a schedule) has its parameters
    from whoever could start it, not from a person at a terminal: `yes` there would let a run parameter
    skip the inventory's `approval: risky | always`, and `prompt` would read from no terminal. It waits for
    a human (pause), or refuses. A run in the CLI's own process has no deployment.
    """
    if mode not in APPROVAL_MODES:
        return f"approval_mode must be one of {', '.join(APPROVAL_MODES)}, not {mode!r}"
    if mode in TERMINAL_MODES and deployment_id is not None:
        return (
            f"approval_mode {mode!r} is for the command line (recover --yes, or its y/N question); a run of "
            f"deployment {deployment_id} waits for a human in its Resume form: leave approval_mode at pause "
            "(or refuse). Nothing was changed"
        )
    return None


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
    if mode == "yes":
        return ApprovalDecision(True, "--yes on the command line")
    if mode == "refuse":
        return ApprovalDecision(False, "the command line", "it needs approval and no terminal can ask (--yes approves)")
    request = approval_request(cluster.name, plan, diagnosis, risks, cluster.approval_timeout_s)
    started = time.monotonic()
    if mode == "prompt":
        print(request, file=sys.stderr)
        answer = input(f"Approve the recovery of {cluster.name}? [y/N] ").strip().lower()
        reason = input("Reason (optional): ").strip() if answer else ""
        return ApprovalDecision(answer in ("y", "yes"), "a person at the terminal", reason, time.monotonic() - started,
                                asked=True)  # fmt: skip
    logger = get_run_logger()
    create_markdown_artifact(key=f"approval-{cluster.name}", markdown=request,
                             description=f"Approval asked for the recovery of {cluster.name}")  # fmt: skip
    notify_operators(cluster, approval_needed_notice(cluster.name, diagnosis, plan, risks, cluster.approval_timeout_s,
                                                     run_url()))  # fmt: skip
    logger.warning("WAITING FOR APPROVAL of the recovery of %s (%s). Resume this run in the Prefect UI with approve "
                   "checked, or unchecked to reject; rejected by itself after %.0fs. %s", cluster.name,
                   "; ".join(risks) or "policy: always", cluster.approval_timeout_s, run_url() or "")  # fmt: skip
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
        return ApprovalDecision(False, "nobody", f"no answer within {cluster.approval_timeout_s:.0f}s", waited, True)
    decision = ApprovalDecision(answer.approve, "a human through Prefect", answer.reason, time.monotonic() - started,
                                asked=True)  # fmt: skip
    (logger.info if decision.approved else logger.warning)(
        "Recovery of %s %s: %s", cluster.name, "APPROVED" if decision.approved else "REJECTED", answer.reason or "-"
    )
    return decision

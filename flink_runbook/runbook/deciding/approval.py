"""Which recovery steps a human approves first, and what they are shown (pure).

Safe alone: reconnecting, unpausing or restarting a dead TaskManager, resubmitting a job from its own
newest retained checkpoint. Risky (README, "Approvals"): starting a job fresh, restoring an older
checkpoint than the newest, starting a stopped JobManager, resubmitting with a resubmit_command that
has no {job_id} (not idempotent), and anything on an escalated cluster.
A question nobody answers is a "no": the gate never acts on silence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from flink_runbook.inventory import ApprovalPolicy, JobSpec
from flink_runbook.runbook.deciding.plan import Action, RecoveryPlan
from flink_runbook.runbook.observing.diagnosis import Diagnosis


class ApprovalMode(StrEnum):
    """How a recover run gets a human's answer to a step that needs one."""

    PAUSE = "pause"  # the run waits for the answer in its Resume form (the UI, the API)
    YES = "yes"  # approved by the person at the terminal that started it (recover --yes)
    PROMPT = "prompt"  # asked at that terminal (y/N)
    REFUSE = "refuse"  # not taken: nobody can be asked

    @property
    def from_a_terminal(self) -> bool:
        """Only a person at the terminal that runs the flow in its own process (the CLI) can answer so."""
        return self in (ApprovalMode.YES, ApprovalMode.PROMPT)


def approval_mode_problem(mode: str, deployment_id: str | None) -> str | None:
    """Why a recover run may not take this approval_mode, or None.

    A run of a deployment (the UI's Run or custom run, the API, a trigger, a schedule) has its parameters
    from whoever could start it, not from a person at a terminal: `yes` there would let a run parameter
    skip the inventory's `approval: risky | always`, and `prompt` would read from no terminal. It waits for
    a human (pause), or refuses. A run in the CLI's own process has no deployment.
    """
    if mode not in set(ApprovalMode):
        return f"approval_mode must be one of {', '.join(ApprovalMode)}, not {mode!r}"
    if ApprovalMode(mode).from_a_terminal and deployment_id is not None:
        return (
            f"approval_mode {mode!r} is for the command line (recover --yes, or its y/N question); a run of "
            f"deployment {deployment_id} waits for a human in its Resume form: leave approval_mode at pause "
            "(or refuse). Nothing was changed"
        )
    return None


@dataclass(frozen=True)
class ApprovalDecision:
    """What the gate decided: approved or not, by whom (a person, --yes, the policy), and why."""

    approved: bool
    by: str
    reason: str = ""
    waited_s: float = 0.0
    asked: bool = False  # a human was asked (not decided by the policy alone)
    risks: tuple[str, ...] = ()  # what was asked about

    def to_dict(self) -> dict:
        return {"approved": self.approved, "by": self.by, "reason": self.reason, "waited_s": round(self.waited_s, 1),
                "asked": self.asked}


NOT_NEEDED = ApprovalDecision(approved=True, by="policy", reason="no step needs a human")
NOBODY = "nobody"  # the question went unanswered: silence is a no, said as the timeout, not as a person


def unanswered(timeout_s: float, waited_s: float) -> ApprovalDecision:
    """What the gate decides when nobody answered within the cluster's approval_timeout_s."""
    return ApprovalDecision(False, NOBODY, f"no answer within {timeout_s:g} s", waited_s, asked=True)


def risky_steps(plan: RecoveryPlan, escalated: str | None = None, jobs: Iterable[JobSpec] = ()) -> tuple[str, ...]:
    """What in the plan deserves a human, each said as what will change. `jobs`: the cluster's configured
    jobs (how each is resubmitted)."""
    may_run_twice = {job.name for job in jobs if job.resubmit_may_run_twice}
    risks = []
    if escalated and plan.actions:
        risks.append(f"the cluster is escalated ({escalated}): a human owns it until the escalation is reset")
    for action in plan.of(Action.START_JOBMANAGER):
        if action.starts_stopped:  # an unpause continues the same process: safe
            risks.append(
                f"starts the stopped JobManager container {', '.join(action.starts_stopped)}: a new JobManager "
                "process; every job it ran restarts from its high-availability state, or is resubmitted"
            )
    for action in plan.resubmits:
        if action.application_mode:  # waits for Flink's restart in place: submits nothing
            continue
        if action.restore_point is None:
            risks.append(
                f"starts job {action.target} FRESH, from no checkpoint: its state is lost, and its source "
                "starts over (records replayed or skipped)"
            )
        elif action.older_than_newest:
            risks.append(
                f"restores job {action.target} from the older {action.restore_point.kind} "
                f"{action.restore_point.checkpoint_id}, not the newest: " + "; ".join(action.notes)
            )
        if action.target in may_run_twice:
            risks.append(
                f"resubmits job {action.target} with its resubmit_command, which has no {{job_id}}: Flink cannot "
                "refuse a second run of it, so a retry or a second recovery may start a second copy of the job"
            )
    return tuple(risks)


def needs_approval(policy: str, plan: RecoveryPlan, risks: tuple[str, ...]) -> bool:
    """never: no human; risky: when a step is risky; always: every plan that changes something."""
    return ApprovalPolicy(policy).asks(bool(plan.actions), bool(risks))


def approval_request(
    cluster: str, plan: RecoveryPlan, diagnosis: Diagnosis, risks: tuple[str, ...], timeout_s: float
) -> str:
    """The question, in Markdown: why a human, what was seen, what will be done, what changes."""
    out = [f"# Approve the recovery of Flink cluster {cluster}?", ""]
    out += ["## Why you are asked", ""]
    out += [f"- {risk}" for risk in risks] or ["- the cluster's approval policy is `always`"]
    out += ["", "## What was seen", ""]
    out += [f"- **{f.code}** ({f.severity}): {f.summary}" for f in diagnosis.findings] or ["- nothing wrong"]
    out += ["", "## What will be done", "", "| step | target | why | restore point |", "|---|---|---|---|"]
    for a in plan.actions:
        point = ""
        if a.action == Action.RESUBMIT_JOB and a.application_mode:
            point = "none: restarted in place by Flink"
        elif a.action == Action.RESUBMIT_JOB:
            point = f"{a.restore_point.kind} {a.restore_point.checkpoint_id}" if a.restore_point else "none (fresh)"
        out.append(f"| {a.action} | {a.target} | {a.reason} | {point} |")
    out += [f"- refused either way: {r}" for r in plan.refusals]
    out += [
        "",
        "## How to answer",
        "",
        f"Resume this run with **approve** checked (and a reason) to go ahead, unchecked to reject. "
        f"Nothing is changed until then; unanswered after {timeout_s:.0f} s it counts as rejected.",
    ]
    return "\n".join(out) + "\n"


def not_approved_refusal(decision: ApprovalDecision) -> str:
    """The refusal a recovery reports when the gate said no."""
    why = f": {decision.reason}" if decision.reason else ""
    by = "" if decision.by == NOBODY else f" by {decision.by}"
    return f"not approved{by}{why}; nothing was changed. Run recover again to be asked again"

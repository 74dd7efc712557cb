"""Run the recover flow in this process and hand back its results, failed or not (the CLI, tests, benchmarks)."""

from __future__ import annotations

from flink_runbook.flows.recover import recover_flow
from flink_runbook.runbook.deciding.verdict import RecoveryNotDone
from flink_runbook.runbook.model import RecoveryResult


def run_recover(
    config: str, cluster: str | None = None, dry_run: bool = False, all_clusters: bool = False,
    approval_mode: str = "refuse",
) -> list[RecoveryResult]:
    """The results whether or not the recovery was done; a run that failed for another reason than the
    recovery's verdict raises what failed it."""
    state = recover_flow(config=config, cluster=cluster or "", dry_run=dry_run, all_clusters=all_clusters,
                         approval_mode=approval_mode, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RecoveryNotDone):
        return outcome.results
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome

"""recover: restart the TaskManagers, resubmit jobs from their last retained checkpoint, verify. The runbook's
order is the core driver's (runbook/deciding/recovery.py); Prefect gives its two ports (tasks/recover_ports.py)."""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from flink_runbook.flows.approval import check_approval_mode
from flink_runbook.flows.parameters import ApprovalModeParameter
from flink_runbook.flows.run_labels import labelled
from flink_runbook.inventory import load_inventory
from flink_runbook.runbook.deciding.recovery import recover_cluster
from flink_runbook.runbook.model import RecoveryResult
from flink_runbook.tasks.recover_ports import PrefectCluster, PrefectRecords, run_state


@flow(name="recover", flow_run_name=labelled("recover"),
      description="Restart TaskManagers, resubmit jobs from their last checkpoint, verify.")
def recover_flow(config: str, cluster: str = "", dry_run: bool = False, all_clusters: bool = False,
                 guarded: bool = False, approval_mode: ApprovalModeParameter = "pause") -> list[RecoveryResult] | State:
    """Recover one cluster of the inventory, or every one, each under its lock, each with its report.

    Args:
        config: Path of the inventory YAML file (clusters, jobs, settings) on the machine that runs the flow.
        cluster: Name of one cluster of the inventory; empty: the inventory's only cluster.
        dry_run: Observe and plan only: nothing is changed and no lock is taken.
        all_clusters: Every cluster of the inventory, one after the other.
        guarded: Check the guard rails first (escalation, cooldown, flap limit); the monitor's trigger sets it.
        approval_mode: How a step that needs a human is approved: pause (this run waits in its Resume form) or
            refuse. yes and prompt are the command line's; a deployment's run refuses them.
    """
    check_approval_mode(approval_mode)  # before anything is read or changed
    inventory = load_inventory(config)
    results = []
    for spec in inventory.to_act_on(cluster or None, all_clusters):
        records = PrefectRecords(spec, inventory.path, approval_mode)
        results.append(recover_cluster(spec, PrefectCluster(spec), records, dry_run=dry_run, guarded=guarded))
    return run_state(results)

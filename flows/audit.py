"""audit: the runbook's preventive measures as a configuration audit, with safe fixes on request.

Reads every selected cluster's files before it changes any (a bad file
changes nothing), audits, and with fix=True edits the files that have a
safe fix (backup first) and audits again to show what is left.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flink_runbook.audit.cluster import audit_cluster
from flink_runbook.flows.run_labels import labelled
from flink_runbook.inventory import load_inventory
from flink_runbook.tasks.audit_steps import apply_safe_fixes, read_configuration, write_audit_report


@flow(
    name="audit",
    flow_run_name=labelled("audit"),
    description="Check config files and live settings against the runbook; optionally fix.",
)
def audit_flow(config: str, cluster: str | None = None, fix: bool = False) -> list[dict[str, Any]]:
    """Audit every cluster of the inventory `config`, or the one named `cluster`."""
    logger = get_run_logger()
    clusters = load_inventory(config).select(cluster)
    read = [(spec, read_configuration(spec)) for spec in clusters]
    results = []
    for spec, inputs in read:
        result = audit_cluster(inputs)
        fixes = []
        if fix and result.findings:
            fixes = apply_safe_fixes(spec, inputs, result)
            for written in fixes:
                for change in written.changes:
                    logger.info("%s: %s: %s (backup %s)", spec.name, written.path, change, written.backup)
            result = audit_cluster(read_configuration(spec))  # what is left
        for finding in result.findings:
            log = logger.warning if finding.severity != "info" else logger.info
            log(
                "%s %s [%s]: %s. Set: %s (%s)",
                spec.name,
                finding.code,
                finding.severity,
                finding.current,
                finding.recommended,
                finding.where,
            )
        if not result.needs_attention:
            logger.info("%s: configuration audit clean (Flink %s)", spec.name, result.flink_version)
        write_audit_report(spec, result, fixes)
        results.append({**result.to_dict(), "fixes": [w.to_dict() for w in fixes]})
    return results

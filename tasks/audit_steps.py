"""The audit's steps as Prefect tasks: read (retryable), fix (once, never retried), report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flink_runbook.audit.cluster import AuditInputs, AuditResult, audit_report_markdown
from flink_runbook.audit.fixes import WrittenFix, plan_fixes, write_fixes
from flink_runbook.audit.sources import read_audit_inputs
from flink_runbook.inventory import ClusterSpec
from flink_runbook.tasks.clients import cluster_rest


@task(
    name="read configuration",
    task_run_name="read configuration of {cluster.name}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=1,
)
def read_configuration(cluster: ClusterSpec) -> AuditInputs:
    return read_audit_inputs(cluster, cluster_rest(cluster))


@task(name="apply safe fixes", task_run_name="apply safe fixes to {cluster.name}", cache_policy=NO_CACHE)
def apply_safe_fixes(cluster: ClusterSpec, inputs: AuditInputs, result: AuditResult) -> list[WrittenFix]:
    """Writes files: no retries, so a half-understood failure is never repeated."""
    with tempfile.TemporaryDirectory(prefix="flink-runbook-fix-") as probe:
        return write_fixes(plan_fixes(inputs, result), Path(probe))


@task(name="write audit report", task_run_name="write audit report of {cluster.name}", cache_policy=NO_CACHE)
def write_audit_report(cluster: ClusterSpec, result: AuditResult, fixes: list[WrittenFix]) -> str:
    report = audit_report_markdown(result)
    for fix in fixes:
        if fix.backup:
            report += f"\n## Fixed {fix.path}\n\nBackup: `{fix.backup}`\n\n```diff\n{fix.diff}```\n"
        if fix.left:
            report += f"\nNot fixed in {fix.path}:\n\n" + "".join(f"- {left}\n" for left in fix.left)
    create_markdown_artifact(
        key=f"audit-{cluster.name}", markdown=report, description=f"Configuration audit of Flink cluster {cluster.name}"
    )
    return report

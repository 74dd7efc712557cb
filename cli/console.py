"""Compact human output of diagnose, recover and audit results for a terminal."""

from __future__ import annotations

from typing import Any


def diagnosis_lines(result: dict[str, Any]) -> list[str]:
    status = "healthy" if result["healthy"] else "UNHEALTHY"
    version = f"Flink {result['flink_version']}" if result["flink_version"] else "Flink ?"
    lines = [f"{result['cluster']}: {status}  ({version}, {result['rest_url']})"]
    for c in result["containers"]:
        extra = f" exit={c['exit_code']}" if c["state"] in ("exited", "dead") else ""
        extra += " OOM-killed" if c["oom_killed"] else ""
        lines.append(f"  container   {c['name']:<40} {c['state']}{extra} restarts={c['restart_count']}")
    for tm in result["taskmanagers"]:
        lines.append(
            f"  taskmanager {tm['id']:<40} heartbeat "
            + ("none yet" if tm["heartbeat_age_ms"] is None else f"{tm['heartbeat_age_ms'] / 1000:.1f}s ago")
            + ", "
            f"{tm['slots_free']}/{tm['slots_total']} slots free"
        )
    for job in result["jobs"]:
        lines.append(
            f"  job         {job['name']:<40} {job['state']} ({job['exceptions']} exception(s)) {job['id'] or ''}"
        )
    for f in result["findings"]:
        lines.append(f"  {f['severity'].upper():<8} {f['code']}: {f['summary']}")
        if f["severity"] in ("error", "critical"):
            lines.append(f"           do: {f['action']}")
    return lines


def recovery_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['cluster']}: {result['status']} in {result['duration_s']:.1f}s (verified: {result['verified']})"]
    for a in result["actions"]:
        took = f" {a['duration_s']:.1f}s" if a["duration_s"] is not None else ""
        lines.append(f"  {a['status']:<8} {a['action']:<22} {a['target']}{took}  {a['detail'] or a['reason']}")
    for job in result["jobs"]:
        lines.append(
            f"  job      {job['name']}: {job['old_id'] or '-'} -> {job['new_id'] or '-'} "
            f"from {job['restored_from'] or 'no checkpoint'}"
        )
    lines += [f"  refused  {r}" for r in result["refusals"]]
    lines += [f"  check    [{'ok' if c['passed'] else 'FAILED'}] {c['name']}: {c['detail']}" for c in result["checks"]]
    lines += [f"  after    {f['severity'].upper()} {f['code']}: {f['summary']}" for f in result["findings_after"]]
    return lines


def audit_lines(result: dict[str, Any]) -> list[str]:
    worst = result["worst"]
    lines = [f"{result['cluster']}: audit, Flink {result['flink_version']}: worst finding {worst}"]
    for fix in result.get("fixes", []):
        if fix["backup"]:
            lines.append(f"  fixed {fix['path']} (backup {fix['backup']}):")
            lines += [f"    {line}" for line in fix["diff"].splitlines()]
        lines += [f"  not fixed: {left}" for left in fix["left"]]
    for f in result["findings"]:
        lines.append(f"  {f['severity'].upper():<8} {f['code']}: {f['current']}")
        lines.append(f"           set: {f['recommended']}")
        lines.append(f"           why: {f['why']}")
        lines.append(f"           at:  {f['where']}")
    lines += [f"  not read: {n}" for n in result["not_read"]]
    return lines

"""Where the seconds go between a fault and the recovery's first step: the trigger's door against the watcher's.

    .venv/bin/python benchmarks/start_latency.py [--runs 3] [--flink-version 1.20]

One stack, one local Prefect server. Twice --runs freezes of the TaskManager: first served with
`--no-watch` (the monitor every 5 s detects; the trigger, an automation on the server, creates the
run; the runner polls for it and starts a subprocess), then served with the fault watcher (Docker's
event; the recover flow starts in the serving process). From Prefect's record of each recover run:

    detect      fault -> the first flink.cluster.unhealthy event
    create      event -> the flow run exists (the automation's action; in process: the flow call)
    start       created -> Running (runner poll, subprocess, Python and Prefect imports, the engine)
    to-task     Running -> the first task starts (the flow's own imports, inventory, the recovery lock)
    diagnose    the first task (observe + classify, FULL: logs too)
    first step  fault -> the first step that changes the cluster starts (unpause)
    completed   fault -> the recover run COMPLETED (verified: the 5 s stabilisation window included)

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stack import bench_stack, up_with_the_demo_job  # noqa: E402

from flink_runbook.polling import wait_until  # noqa: E402

PARTS = ("detect", "create", "start", "to-task", "diagnose", "first step", "completed")


def breakdown(run_id: str, injected_at, detected_at) -> tuple[dict[str, float], str]:
    """The parts of one recovery's start, and the name of its first task."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])), sort=TaskRunSort.EXPECTED_START_TIME_ASC
        )
    started = [t for t in tasks if t.start_time]
    first = min(started, key=lambda t: t.start_time)
    changing = [t for t in started if t.name.startswith(("unpause", "reconnect", "restart", "start JobManager"))]
    step = min(changing, key=lambda t: t.start_time) if changing else None

    def s(later, earlier) -> float:
        return (later - earlier).total_seconds()

    return {
        "detect": s(detected_at, injected_at),
        "create": s(run.created, detected_at),
        "start": s(run.start_time, run.created),
        "to-task": s(first.start_time, run.start_time),
        "diagnose": s(first.end_time, first.start_time) if first.end_time else float("nan"),
        "first step": s(step.start_time, injected_at) if step else float("nan"),
    }, first.name


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flink-version", default=None)
    args = parser.parse_args()
    work, version, stack, server = bench_stack("bench-start-", 18093, 4296, args.flink_version)
    project = stack.settings.project
    from flink_runbook.demo import faults
    from flink_runbook.demo.drill import ServedDeployments, run_drill, wait_for_event

    try:
        _, inventory = up_with_the_demo_job(stack, work, version)
        print(f"Flink {version}; {args.runs} freezes per door; seconds", flush=True)
        for door, watch, interval in (("trigger (monitor every 5 s, no watcher)", False, 5), ("watcher", True, 60)):
            served = ServedDeployments.start(
                inventory, server.api_url, work / f"serve-{watch}.log", interval, prefect_home=server.home,
                watch=watch,
            )
            served.wait_until_serving()
            rows = []
            try:
                for _ in range(args.runs):
                    wait_for_event(project, "flink.cluster.healthy", since=None, timeout_s=180)
                    time.sleep(6)
                    result = run_drill(project, lambda: faults.freeze(stack.taskmanager()), timeout_s=300)
                    detected = wait_for_event(project, "flink.cluster.unhealthy", result.injected_at, 10)
                    row, first_task = breakdown(result.recover_run_id, result.injected_at, detected.occurred)
                    row["completed"] = result.recover_s if result.recover_state == "COMPLETED" else float("nan")
                    rows.append(row)
                    print(f"  {door}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()) + f" ({first_task})",
                          flush=True)
                    wait_until(
                        stack.rest.jobs_overview, lambda jobs: any(j.state == "RUNNING" for j in jobs), timeout=120,
                        what="the job RUNNING",
                    )
            finally:
                served.stop()
            print(f"{door}, median of {len(rows)}: " + ", ".join(
                f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in PARTS
            ), flush=True)
    finally:
        stack.down()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

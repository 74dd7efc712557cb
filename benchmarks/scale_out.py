"""Recoveries on the scaled shape (PostgreSQL + Prefect server + 2 process workers, deployed from prefect.yaml):
one cluster failing alone against two failing together, and a worker SIGKILLed (with its flow runs) during
a recovery. Two demo stacks; the runbook's failure (a frozen TaskManager) is injected; nothing is asserted.

    .venv/bin/python benchmarks/scale_out.py [--trials 3] [--interval 10] [--flink-version 1.20]

Per trial: the fault's detection to the end of recovery, each recover run's own duration, and for two
clusters the span from the first recover run's start to the last one's end (in parallel: about one
recovery; serialised, as the old deployment limit did: about two). Every sink is checked: each id once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402

from flink_runbook.demo import faults  # noqa: E402
from flink_runbook.demo.drill import recover_runs, running_recovery  # noqa: E402
from flink_runbook.demo.job import build_demo_job_jar, committed_ids, sink_integrity, submit_demo_job  # noqa: E402
from flink_runbook.demo.stack import DemoStack, StackSettings, drill_inventory  # noqa: E402
from flink_runbook.demo.versions import resolve_flink_version  # noqa: E402
from flink_runbook.infrastructure.local_server import TELEMETRY_OFF  # noqa: E402
from flink_runbook.infrastructure.scale_up import scale_up  # noqa: E402
from flink_runbook.polling import wait_until  # noqa: E402
from flink_runbook.serving.processes import parent_pid  # noqa: E402

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def job_runs(stack: DemoStack) -> bool:
    stack.taskmanager().reload()
    running = [j for j in stack.rest.jobs_overview() if j.state == "RUNNING"]
    return stack.taskmanager().status == "running" and len(running) == 1


def settled(stack: DemoStack, since: datetime):
    """The cluster's recover runs once all ended and it runs again (a killed run may have fixed it first)."""
    runs = recover_runs(stack.settings.project, since)
    if not runs or not all(r.state_type.value in FINAL for r in runs) or not job_runs(stack):
        return None
    return runs


def trial(stacks: list[DemoStack], scaled, kill: bool = False) -> dict:
    """Freeze the TaskManager of each stack at once; wait until each cluster's recovery completed."""
    since = datetime.now(UTC)
    names = [s.settings.project for s in stacks]
    for stack in stacks:
        faults.freeze(stack.taskmanager())
    killed_at = None
    if kill:
        found = wait_until(lambda: running_recovery(names, since), bool, timeout=120, interval=0.2,
                           what="a running recovery")
        pid = found[2]
        time.sleep(1.0)
        worker = next(n for n, w in scaled.workers.items() if w.pid == parent_pid(pid))
        scaled.kill_worker(worker)
        killed_at = datetime.now(UTC)
    outcome = {s.settings.project: wait_until(lambda s=s: settled(s, since), bool, timeout=420, interval=1,
                                              what=f"{s.settings.project} recovered")
               for s in stacks}
    done = [max((r for r in runs if r.end_time), key=lambda r: r.end_time) for runs in outcome.values()]
    first_start = min(r.start_time for runs in outcome.values() for r in runs)
    result = {
        "clusters": len(stacks),
        "fault_to_recovered_s": max((r.end_time - since).total_seconds() for r in done),
        "run_s": [round((r.end_time - r.start_time).total_seconds(), 1) for r in done],
        "span_s": (max(r.end_time for r in done) - first_start).total_seconds(),
        "runs": {n: [r.state_type.value for r in runs] for n, runs in outcome.items()},
    }
    if killed_at:
        result["kill_to_recovered_s"] = (max(r.end_time for r in done) - killed_at).total_seconds()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="0: only the killed worker's trial")
    parser.add_argument("--interval", type=float, default=10.0, help="the monitor's interval (s)")
    parser.add_argument("--flink-version", default=None)
    args = parser.parse_args()
    os.environ.update(TELEMETRY_OFF)
    version = resolve_flink_version(args.flink_version)
    work = Path(tempfile.mkdtemp(prefix="flink-runbook-scale-bench-", dir="/var/tmp"))
    work.chmod(0o755)
    jar = build_demo_job_jar(version)
    stacks = [
        DemoStack(
            StackSettings(
                data_dir=work / f"data-{i}",
                project=f"bench-{uuid.uuid4().hex[:6]}",
                flink_version=version,
                rest_port=28491 + i,
            )
        )
        for i in range(2)
    ]
    clusters = [drill_inventory(s.settings, jar, work / "state")["clusters"][0] for s in stacks]
    inventory = work / "fleet.yaml"
    inventory.write_text(yaml.safe_dump({"state_dir": str(work / "state"), "clusters": clusters}))
    scaled = None
    try:
        for stack in stacks:
            stack.up()
            submit_demo_job(stack.rest, jar)
        scaled = scale_up(work / "scale", inventory, workers=2, limit=2, port=4331, database_port=54339,
                          monitor_interval_s=args.interval)
        settings = temporary_settings(updates={PREFECT_API_URL: scaled.api_url})  # Prefect read the env at import
        settings.__enter__()
        time.sleep(40)  # jobs running, checkpoints taken, TaskManagers past their registration grace
        rows = []
        for _ in range(args.trials):
            for group in ([stacks[0]], stacks):
                rows.append(trial(group, scaled))
                print(rows[-1], flush=True)
                time.sleep(15)  # settle: the next fault is a new incident
        killed = trial(stacks, scaled, kill=True)
        print(killed, flush=True)
        one = [r for r in rows if r["clusters"] == 1]
        two = [r for r in rows if r["clusters"] == 2]
        print()
        print(f"Flink {version}, monitor every {args.interval:g}s, 2 workers (limit 2 each), {args.trials} trials")
        if rows:
            single = statistics.median(r["run_s"][0] for r in one)
            span = statistics.median(r["span_s"] for r in two)
            print("| case | fault to recovered s (median) | recover run s (median) | span of the runs s (median) |")
            print("|---|---:|---:|---:|")
            print(
                f"| one cluster | {statistics.median(r['fault_to_recovered_s'] for r in one):.1f} | {single:.1f} | - |"
            )
            print(f"| two clusters together | {statistics.median(r['fault_to_recovered_s'] for r in two):.1f} | "
                  f"{statistics.median(s for r in two for s in r['run_s']):.1f} | {span:.1f} |")
            print(f"two together / one alone (span / run): {span / single:.2f}")
        print(f"worker SIGKILLed mid-recovery: recovered {killed['kill_to_recovered_s']:.0f}s after the kill "
              f"({killed['fault_to_recovered_s']:.0f}s after the fault); runs {killed['runs']}")
        for stack in stacks:
            duplicated, missing = sink_integrity(committed_ids(stack.output_dir))
            print(f"{stack.settings.project}: {len(committed_ids(stack.output_dir))} ids, "
                  f"{duplicated} duplicated, {missing} missing")
    finally:
        if scaled is not None:
            scaled.stop()
        for stack in stacks:
            stack.down()


if __name__ == "__main__":
    main()

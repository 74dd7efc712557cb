"""The served deployments, measured: time to detect and to recover, and the serving process's footprint.

    .venv/bin/python benchmarks/served.py [--runs 5] [--interval 10] [--idle-minutes 60] [--flink-version 1.20]

A stack of its own (own project, port, data dir), a local Prefect server of
its own, `python -m flink_runbook.serving.serve`. Then --runs drills (freeze the
TaskManager, touch nothing else; the monitor detects, the trigger recovers),
then --idle-minutes of monitor ticks every 30 s on the healthy stack, sampling
CPU time and RSS of the serving process (its finished run subprocesses
included) once a minute. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stack import bench_stack, up_with_the_demo_job  # noqa: E402

from flink_runbook.demo.job import committed_ids, sink_integrity  # noqa: E402
from flink_runbook.polling import wait_until  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and of its children it has waited for (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def summary(name: str, values: list[float], unit: str) -> str:
    if not values:
        return f"{name}: no samples"
    return (
        f"{name}: median {statistics.median(values):.1f}{unit}, min {min(values):.1f}{unit}, "
        f"max {max(values):.1f}{unit} (n={len(values)})"
    )


def monitor_run_states(since: datetime) -> dict[str, int]:
    """How the monitor's runs expected since `since` ended: Completed, Cancelled (overlap), Skipped, ..."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterExpectedStartTime

    from flink_runbook.records.flow_runs import MONITOR_FLOW_NAME, flow_runs

    expected = FlowRunFilterExpectedStartTime(after_=since, before_=datetime.now(UTC))  # not the ones ahead
    with get_client(sync_client=True) as client:
        runs = flow_runs(
            client,
            flow_filter=FlowFilter(name=FlowFilterName(any_=[MONITOR_FLOW_NAME])),
            flow_run_filter=FlowRunFilter(expected_start_time=expected),
        )
    return dict(collections.Counter(r.state_name for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=10.0, help="monitor tick during the drills")
    parser.add_argument("--idle-minutes", type=float, default=60.0)
    parser.add_argument("--flink-version", default=None)
    args = parser.parse_args()
    work, version, stack, server = bench_stack("bench-served-", 18091, 4291, args.flink_version)
    project = stack.settings.project
    from prefect import get_client  # noqa: F401 - after PREFECT_API_URL is set

    from flink_runbook.demo import faults
    from flink_runbook.demo.drill import ServedDeployments, run_drill, wait_for_event

    served = None
    try:
        _, inventory = up_with_the_demo_job(stack, work, version)

        print(f"Flink {version}, monitor every {args.interval:.0f}s during drills, {args.runs} drills", flush=True)
        served = ServedDeployments.start(
            inventory, server.api_url, work / "serve.log", args.interval, prefect_home=server.home
        )
        detect, recover = [], []
        for run in range(1, args.runs + 1):
            wait_for_event(project, "flink.cluster.healthy", since=None, timeout_s=180)
            time.sleep(args.interval)  # a healthy tick after the previous recovery, and output to lose
            result = run_drill(project, lambda: faults.freeze(stack.taskmanager()), timeout_s=420)
            detect.append(result.detect_s)
            recover.append(result.recover_s)
            print(
                f"  drill {run}: detect {result.detect_s:.1f}s, recover {result.recover_s:.1f}s "
                f"({result.recover_state}, {result.recover_run})",
                flush=True,
            )
            # The next drill starts from a fresh healthy event.
            wait_until(
                stack.rest.jobs_overview,
                lambda jobs: any(j.state == "RUNNING" for j in jobs),
                timeout=60,
                what="the recovered job RUNNING",
            )
        print(summary("time to detect", detect, "s"))
        print(summary("time to recover", recover, "s"))
        time.sleep(15)
        duplicated, missing = sink_integrity(committed_ids(stack.output_dir))
        print(
            f"sink after {args.runs} recoveries: {len(committed_ids(stack.output_dir))} ids, "
            f"{duplicated} duplicated, {missing} missing"
        )
        served.stop()

        if args.idle_minutes > 0:
            print(f"idle: monitor every 30 s for {args.idle_minutes:.0f} min on the healthy stack", flush=True)
            served = ServedDeployments.start(
                inventory, server.api_url, work / "serve-idle.log", 30, prefect_home=server.home
            )
            pid = served.process.pid
            idle_since = datetime.now(UTC)
            time.sleep(60)  # past start-up
            start_cpu, start = cpu_seconds(pid), time.monotonic()
            samples, last_cpu, last = [], start_cpu, start
            cpu_pct = []
            while time.monotonic() - start < args.idle_minutes * 60:
                time.sleep(60)
                now_cpu, now = cpu_seconds(pid), time.monotonic()
                cpu_pct.append(100 * (now_cpu - last_cpu) / (now - last))
                samples.append(rss_mib(pid))
                last_cpu, last = now_cpu, now
            elapsed = time.monotonic() - start
            ticks = elapsed / 30
            print(f"  measured {elapsed / 60:.1f} min (~{ticks:.0f} ticks)")
            print(
                f"  CPU of the serving process + its run subprocesses: {cpu_seconds(pid) - start_cpu:.0f}s, "
                f"{(cpu_seconds(pid) - start_cpu) / ticks:.2f}s per tick"
            )
            print("  " + summary("CPU % of one core (per minute)", cpu_pct, "%"))
            print("  " + summary("RSS of the serving process", samples, " MiB"))
            print(f"  Prefect server RSS at the end: {rss_mib(server.process.pid):.0f} MiB")
            print(f"  monitor runs while idle, by state: {monitor_run_states(idle_since)}")
    finally:
        if served:
            served.stop()
        stack.down()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

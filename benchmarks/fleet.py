"""The monitor's tick against a fleet: 1, 10, 100 and 500 clusters, then the same with 10 % of them hanging.

The fleet is loopback JobManagers replaying answers recorded from real Flink
(tests/fixtures/rest/: healthy and failed, 1.20.3 and 2.2.0; one child process
serves them all, see tests/unit/replay_jobmanagers.py) whose container checks
are real (each its own compose project on the demo's engine, which has none of
its containers: two clusters may not select the same container on one engine,
so they are CONTAINER_NOT_RUNNING), plus the real demo stack itself. Each
tick is the monitor flow as a deployment runs it, in this process, against a
local Prefect server: wall time, this process's CPU, the server's CPU, and
this process's memory. Nothing is asserted; it prints a table.

    .venv/bin/python benchmarks/fleet.py [--sizes 1,10,100,500] [--ticks 3] [--flink-version 2.2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_stack import bench_stack, up_with_the_demo_job  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Every fifth replayed cluster failed (the runbook's heartbeat timeout), on both releases.
SCENARIOS = [
    ("2.2.0", "healthy"),
    ("1.20.3", "healthy"),
    ("2.2.0", "healthy"),
    ("1.20.3", "healthy"),
    ("2.2.0", "failed-heartbeat-timeout"),
    ("2.2.0", "healthy"),
    ("1.20.3", "healthy"),
    ("2.2.0", "healthy"),
    ("1.20.3", "healthy"),
    ("1.20.3", "failed-heartbeat-timeout"),
]
FIRST_PORT = 31000


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def endpoints(count: int, hanging: float) -> list[dict]:
    every = round(1 / hanging) if hanging else 0
    return [
        {
            "port": FIRST_PORT + i,
            "version": SCENARIOS[i % len(SCENARIOS)][0],
            "scenario": SCENARIOS[i % len(SCENARIOS)][1],
            "hang": bool(every) and i % every == every - 1,
        }
        for i in range(count)
    ]


def fleet_inventory(real: dict, project: str, count: int, state: Path) -> dict:
    """The real demo cluster first, then count - 1 replayed ones on its engine, each its own (absent) project."""
    clusters = [real]
    for i in range(count - 1):
        clusters.append(
            {
                "name": f"fleet-{i:03d}",
                "rest": {"url": f"http://127.0.0.1:{FIRST_PORT + i}", "connect_timeout_s": 3, "read_timeout_s": 10},
                "containers": {"compose_project": f"{project}-replayed-{i:03d}"},
                "jobs": [{"name": "realtime-cdc-demo"}],
            }
        )
    return {"state_dir": str(state), "clusters": clusters}


def tick(inventory: Path) -> tuple[list, dict[str, float]]:
    """One monitor run; its results and how long each of its tasks took (s)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flink_runbook.flows.monitor import monitor_flow

    state = monitor_flow(config=str(inventory), return_state=True)
    results = state.result(raise_on_failure=False)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    phases = {r.name: (r.end_time - r.start_time).total_seconds() for r in runs if r.start_time and r.end_time}
    return (results if isinstance(results, list) else []), phases


def measure(inventory: Path, server_pid: int, ticks: int) -> dict:
    walls, cpus, server_cpus, healthy, failed, checks = [], [], [], 0, 0, []
    for _ in range(ticks):
        usage, server_before, started = resource.getrusage(resource.RUSAGE_SELF), cpu_s(server_pid), time.monotonic()
        results, phases = tick(inventory)
        checks.append(next((t for name, t in phases.items() if name.startswith("check ")), 0.0))
        print(json.dumps({k: round(v, 2) for k, v in phases.items()}), flush=True)
        walls.append(time.monotonic() - started)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpus.append((after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime))
        server_cpus.append(cpu_s(server_pid) - server_before)
        healthy = sum(1 for r in results if r["healthy"])
        failed = sum(1 for r in results if "CHECK_FAILED" in r["findings"])
    return {
        "wall_s": statistics.median(walls),
        "check_s": statistics.median(checks),
        "cpu_s": statistics.median(cpus),
        "server_cpu_s": statistics.median(server_cpus),
        "rss_mib": rss_mib(),
        "healthy": healthy,
        "not_checked": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--flink-version", default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work, version, stack, server = bench_stack("fleet-bench-", 28481, 4251, args.flink_version)
    replay = None
    try:
        jar, drill = up_with_the_demo_job(stack, work, version)
        real = yaml.safe_load(drill.read_text())["clusters"][0]
        time.sleep(35)  # the TaskManager past its registration grace: the replayed clusters that share it are healthy
        rows = []
        for hanging in (0.0, 0.1):
            spec = Path(tempfile.mkstemp(suffix=".json", dir=work)[1])
            spec.write_text(json.dumps(endpoints(max(sizes), hanging)))
            replay = subprocess.Popen(
                [sys.executable, "-m", "tests.unit.replay_jobmanagers", str(spec)],
                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            assert replay.stdout.readline().strip() == "ready", "the replayed JobManagers did not start"
            for size in sizes:
                if hanging and size < 10:
                    continue
                inventory = work / f"fleet-{size}-{hanging}.yaml"
                fleet = fleet_inventory(real, stack.settings.project, size, work / "state")
                inventory.write_text(yaml.safe_dump(fleet))
                tick(inventory)  # warm: imports, the first Prefect calls, the engine's client
                measured = measure(inventory, server.process.pid, args.ticks)
                row = {"clusters": size, "hanging": f"{hanging:.0%}", **measured}
                row["cpu_ms_per_cluster"] = 1000 * row["cpu_s"] / size
                rows.append(row)
                print(json.dumps(row), flush=True)
            replay.stdin.close()
            replay.wait(10)
            replay = None
        print()
        print(f"Flink {version} demo stack + replayed JobManagers; median of {args.ticks} ticks after one warm-up")
        print(
            "| clusters | hanging | tick wall s | of it the check s | tick CPU s | CPU ms/cluster "
            "| Prefect server CPU s | RSS MiB | healthy |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['clusters']} | {r['hanging']} | {r['wall_s']:.2f} | {r['check_s']:.2f} | {r['cpu_s']:.2f} | "
                f"{r['cpu_ms_per_cluster']:.1f} | {r['server_cpu_s']:.2f} | {r['rss_mib']:.0f} | {r['healthy']} |"
            )
    finally:
        if replay is not None:
            replay.kill()
        stack.down()
        server.stop()


if __name__ == "__main__":
    main()
